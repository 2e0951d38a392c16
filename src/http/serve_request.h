#pragma once
// What `expo serve` reads from POST /v1/chat/completions and POST /v1/completions, and the
// JSON it answers with: whole responses and the server-sent-event chunks of "stream": true,
// in the OpenAI API's shapes (chat.completion, chat.completion.chunk, text_completion).
//
// Fields that would change the answer and that expo cannot honour are refused with a 400
// naming the field (n > 1, best_of > 1, echo, suffix, logit_bias, tools, a response_format
// other than text, beam search, guided decoding, ...); fields it does not know are ignored, as
// vLLM ignores them. logprobs (chat: "logprobs": true with "top_logprobs": k; completions:
// "logprobs": k) are the raw model's log-probabilities, before penalties and temperature.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/generation_stream.h"
#include "http/openai_protocol.h"

namespace expo {

enum class ServeEndpoint { kChat, kCompletions };

struct ServeRequest {
  ServeEndpoint endpoint = ServeEndpoint::kChat;
  ChatRequest generation;  // model, messages (chat), sampling, seed, max_tokens, stop
  // Completions: the prompt as text, or as token ids when prompt_is_tokens.
  std::string prompt;
  std::vector<int32_t> prompt_tokens;
  bool prompt_is_tokens = false;
  bool stream = false;
  bool include_usage = false;           // stream_options.include_usage
  int logprobs = -1;                    // -1: none; k >= 0: each token's logprob and the top k
  bool ignore_eos = false;              // vLLM's extra field
  std::vector<int32_t> stop_token_ids;  // vLLM's extra field
};

// The largest top_logprobs / logprobs a request may ask for (vLLM's default limit).
constexpr int kMaxTopLogprobs = 20;

// Reads a request body; expo::Error naming the field for anything wrong or unsupported.
ServeRequest serve_request_from_json(const nlohmann::json& body, ServeEndpoint endpoint);

// Parses a request body, refusing one whose parsed form would take more than about
// `max_memory` bytes (many tiny values: "[1,1,1,...]"), before building it. expo::Error
// otherwise names what is wrong with the JSON.
nlohmann::json parse_request_body(std::string_view text, size_t max_memory);

// The whole answer: chat.completion or text_completion.
nlohmann::json serve_response_to_json(const ServeRequest& request, const std::string& text,
                                      const std::vector<StreamedLogprob>& logprobs,
                                      const std::string& finish_reason, uint64_t prompt_tokens,
                                      uint64_t completion_tokens, const std::string& model,
                                      const std::string& id, int64_t created);

// One streamed chunk (the JSON after "data: "). role: the first chat chunk's delta carries
// the role; finish_reason empty: null.
nlohmann::json serve_chunk_to_json(const ServeRequest& request, const std::string& text,
                                   const std::vector<StreamedLogprob>& logprobs, bool role,
                                   const std::string& finish_reason, const std::string& model,
                                   const std::string& id, int64_t created);

// The last chunk of a stream with include_usage: no choices, the usage.
nlohmann::json serve_usage_chunk_to_json(const ServeRequest& request, uint64_t prompt_tokens,
                                         uint64_t completion_tokens, const std::string& model,
                                         const std::string& id, int64_t created);

}  // namespace expo
