#pragma once
// The OpenAI-compatible wire format that expo speaks both as a client (openai_client) and as a
// server (openai_server, behind `expo serve`): chat completions, vLLM's reward-scoring
// endpoints (/pooling and /classify) and OpenAI-style error bodies. Both sides use these
// functions, so what the server writes is by construction what the client reads.
//
// Reward scores: expo wants the reward head's raw logit, never a sigmoid/softmax of it.
//
//  vLLM, what it serves and which fields the client reads (vllm/entrypoints/pooling/*/protocol.py
//  and vllm/model_executor/layers/pooler/activations.py in vllm-project/vllm; docs.vllm.ai,
//  "Pooling Models"):
//   - A reward model with a single-label head (LlamaForSequenceClassification with
//     num_labels = 1, e.g. Skywork-Reward-Llama-3.1-8B) is served with
//     `vllm serve MODEL --runner pooling` (auto-detected in recent versions; `--task classify`
//     or `--task reward` in versions before 0.10).
//   - POST /classify {"model", "input": [texts]} (recent versions also accept
//     {"model", "messages"}) answers {"data": [{"index", "label", "probs": [...],
//     "num_classes"}]}. By default `probs` has the activation applied: sigmoid when there is
//     one label, softmax otherwise. The client reads data[i].probs[0] and requires exactly one
//     value per input.
//   - POST /pooling {"model", "messages"} or {"model", "input": text} answers
//     {"data": [{"index", "object": "pooling", "data": ...}]}: a list of num_labels floats for
//     a sequence-level (classify) pooler, or one row per token for the token-level ("reward",
//     ALL pooling) pooler. The client reads data[i].data: a single float, or for per-token
//     output the last token's row, which must hold one value (the sequence reward).
//   - Raw logits: the request field "use_activation": false (vLLM >= 0.11; "activation" in
//     0.10 and "softmax" before, both deprecated and removed in 0.15), which the client sends
//     unless ClientOptions::raw_scores is false; or for the whole server
//     `--pooler-config '{"use_activation": false}'` (older versions:
//     `--override-pooler-config '{"softmax": false}'`). A vLLM too old to know the request
//     field ignores it (with a warning in its log) and returns sigmoid(logit): use the server
//     flag there. Values that all lie in (0, 1) are the sign of this.
//
//  expo serve answers both endpoints in these shapes. It honours "use_activation" (and the
//  older aliases "activation" and "softmax"); without it, /classify applies the sigmoid like
//  vLLM and /pooling returns the raw logit (the reward pooler's convention). It sends no
//  "usage" for scoring (the backend does not report token counts).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace expo {

struct ChatRequest {
  std::string model;
  nlohmann::json messages = nlohmann::json::array();  // [{"role", "content"}, ...]
  double temperature = 1.0;
  double top_p = 1.0;
  int top_k = 0;                    // vLLM/llama.cpp extra field "top_k", sent only when > 0
  double min_p = 0.0;               // extra field, sent only when > 0
  double presence_penalty = 0.0;    // sent only when != 0
  double frequency_penalty = 0.0;   // sent only when != 0
  double repetition_penalty = 1.0;  // extra field, sent only when != 1
  std::optional<uint64_t> seed;
  uint64_t max_tokens = 0;  // 0: not sent, the server's default (its context limit) applies
  std::vector<std::string> stop;
  // Names the request in error messages ("prompt 12"); never sent. Empty: "request <index>".
  std::string label;
};

struct ChatResponse {
  std::string text;
  std::string finish_reason;  // "stop", "length", ... ("" when the server sent none)
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
};

// The body of POST /v1/chat/completions. Extra (non-OpenAI) fields are sent only when they
// differ from their neutral value, so that servers which reject unknown fields (OpenAI's own)
// accept requests that do not use them.
nlohmann::json chat_request_to_json(const ChatRequest& request);

// Reads a chat completion request's conversation and generation fields, strictly: a wrong
// type or value throws expo::Error naming the field ("messages[1].role must be a string").
// Fields it does not know are ignored; the server's own checks (stream, n, logprobs, fields
// it cannot honour) are in serve_request.h.
ChatRequest chat_request_from_json(const nlohmann::json& body);

// The generation fields alone (model, temperature, top_p, top_k, min_p, the penalties, seed,
// max_completion_tokens / max_tokens, stop), into `request`: what chat and completion
// requests share.
void read_generation_fields(const nlohmann::json& body, ChatRequest& request);

// Checks a conversation: a non-empty array of {"role": string, "content": string, null or an
// array of text parts}; an expo::Error names the field (`field`[i].role ...) otherwise.
void check_chat_messages(const nlohmann::json& messages, const char* field);

nlohmann::json chat_response_to_json(const ChatResponse& response, const std::string& model,
                                     const std::string& id, int64_t created);

// Reads choices[0].message.content (null reads as ""), choices[0].finish_reason and
// usage.{prompt,completion}_tokens (0 when absent). Throws expo::Error saying what is missing;
// the caller adds the URL and the request.
ChatResponse chat_response_from_json(const nlohmann::json& body);

enum class ScoreApi { kPooling, kClassify };
const char* score_api_path(ScoreApi api);  // "/pooling" or "/classify"

// One input to a reward model: a conversation (the server applies the model's chat
// template) or, when `messages` is null, text already rendered with that template.
struct ScoreInput {
  nlohmann::json messages = nullptr;  // null, or [{"role", "content"}, ...]
  std::string text = {};
  // Names the input in error messages ("answer 3 of prompt 12"); never sent. Empty:
  // "score input <index>".
  std::string label = {};
};

// The body for one input. raw: add "use_activation": false (see above).
nlohmann::json score_request_to_json(ScoreApi api, const std::string& model,
                                     const ScoreInput& input, bool raw);

// The scores of a /pooling or /classify response, in the order of data[].index; one value
// per input or expo::Error saying what the response held instead.
std::vector<double> score_response_from_json(ScoreApi api, const nlohmann::json& body);

nlohmann::json score_response_to_json(ScoreApi api, const std::vector<double>& scores,
                                      const std::string& model, const std::string& id,
                                      int64_t created);

// {"error": {"message", "type", "param": null, "code": null}}
nlohmann::json error_body(const std::string& message, const std::string& type,
                          const std::string& code = "");

// What an error response says: error.message (or a string "error", or "message") when the
// body is JSON that has one, else the body itself, truncated to max_chars.
std::string error_message_from_body(const std::string& body, size_t max_chars = 500);

}  // namespace expo
