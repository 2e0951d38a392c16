#include "http/serve_request.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "http/json_fields.h"

namespace expo {

using nlohmann::json;

namespace {

std::vector<int32_t> token_ids(const json& value, const char* field) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < value.size(); ++i) {
    const json& v = value[i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      fail(field, "[", i, "] must be a token id (an integer >= 0), not ", show_json(v));
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return ids;
}

// Fields that change the answer and that expo serve cannot honour: present with a value other
// than the neutral one, they are refused rather than silently ignored.
void refuse_unsupported(const json& body, ServeEndpoint endpoint) {
  if (auto n = integer_field(body, "n"); n && *n != 1)
    fail("field `n` is ", *n,
         "; expo serve makes one choice per request (send n = 1, or repeat the request)");
  if (auto best_of = integer_field(body, "best_of"); best_of && *best_of != 1)
    fail("field `best_of` is ", *best_of, "; expo serve does not rank several candidates");
  if (const json* tools = find_field(body, "tools"); tools && !tools->empty())
    fail("field `tools` is not supported by expo serve (no tool calling)");
  if (const json* functions = find_field(body, "functions"); functions && !functions->empty())
    fail("field `functions` is not supported by expo serve (no function calling)");
  if (const json* bias = find_field(body, "logit_bias"); bias && !bias->empty())
    fail("field `logit_bias` is not supported by expo serve");
  if (const json* format = find_field(body, "response_format")) {
    if (!format->is_object() || format->value("type", "") != "text")
      fail("field `response_format` is ", show_json(*format),
           "; expo serve only produces free text ({\"type\": \"text\"})");
  }
  if (bool_field(body, "echo", false))
    fail("field `echo` is not supported by expo serve; the answer never repeats the prompt");
  if (const json* suffix = find_field(body, "suffix");
      suffix && !(suffix->is_string() && suffix->get<std::string>().empty()))
    fail("field `suffix` is not supported by expo serve (no insertion)");
  if (bool_field(body, "use_beam_search", false))
    fail("field `use_beam_search` is not supported by expo serve");
  if (auto min_tokens = integer_field(body, "min_tokens"); min_tokens && *min_tokens != 0)
    fail("field `min_tokens` is not supported by expo serve");
  if (bool_field(body, "include_stop_str_in_output", false))
    fail(
        "field `include_stop_str_in_output` is not supported by expo serve; the answer ends "
        "before a stop string");
  if (!bool_field(body, "skip_special_tokens", true))
    fail("field `skip_special_tokens`: expo serve always leaves special tokens out of the text");
  if (const json* p = find_field(body, "prompt_logprobs"))
    fail("field `prompt_logprobs` is not supported by expo serve (", show_json(*p), ")");
  for (const char* key : {"guided_json", "guided_regex", "guided_choice", "guided_grammar",
                          "structured_outputs", "bad_words", "allowed_token_ids",
                          "truncate_prompt_tokens", "length_penalty", "logits_processors"})
    if (const json* v = find_field(body, key); v && !(v->is_array() && v->empty()))
      fail("field `", key, "` is not supported by expo serve");
  if (endpoint == ServeEndpoint::kChat) {
    if (!bool_field(body, "add_generation_prompt", true))
      fail("field `add_generation_prompt` false is not supported by expo serve");
    if (bool_field(body, "continue_final_message", false))
      fail("field `continue_final_message` is not supported by expo serve");
  }
}

json bytes_of(const std::string& s) {
  json out = json::array();
  for (unsigned char c : s) out.push_back(static_cast<int>(c));
  return out;
}

json chat_logprobs(const std::vector<StreamedLogprob>& logprobs) {
  json content = json::array();
  for (const auto& l : logprobs) {
    json top = json::array();
    for (const auto& [token, lp] : l.top)
      top.push_back({{"token", token}, {"logprob", lp}, {"bytes", bytes_of(token)}});
    content.push_back({{"token", l.token},
                       {"logprob", l.logprob},
                       {"bytes", bytes_of(l.token)},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

json completion_logprobs(const std::vector<StreamedLogprob>& logprobs, size_t text_offset) {
  json tokens = json::array(), token_logprobs = json::array(), top = json::array(),
       offsets = json::array();
  for (const auto& l : logprobs) {
    tokens.push_back(l.token);
    token_logprobs.push_back(l.logprob);
    json alternatives = json::object();
    for (const auto& [token, lp] : l.top)
      if (!alternatives.contains(token)) alternatives[token] = lp;
    top.push_back(std::move(alternatives));
    offsets.push_back(text_offset);
    text_offset += l.token.size();
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(token_logprobs)},
          {"top_logprobs", std::move(top)},
          {"text_offset", std::move(offsets)}};
}

json usage_json(uint64_t prompt_tokens, uint64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

// Counts what json::parse would build, to refuse bodies that expand too much.
struct MemoryEstimate : nlohmann::json_sax<json> {
  // A json value is 16 bytes and a container's vector may hold up to twice its elements; a
  // string, array or object adds a heap block; an object key a map node.
  size_t bytes = 0;
  size_t limit;
  explicit MemoryEstimate(size_t max) : limit(max) {}
  bool add(size_t n) {
    bytes += n;
    return bytes <= limit;
  }
  bool null() override { return add(32); }
  bool boolean(bool) override { return add(32); }
  bool number_integer(number_integer_t) override { return add(32); }
  bool number_unsigned(number_unsigned_t) override { return add(32); }
  bool number_float(number_float_t, const string_t&) override { return add(32); }
  bool string(string_t& s) override { return add(64 + s.size()); }
  bool binary(binary_t& b) override { return add(64 + b.size()); }
  bool start_object(std::size_t) override { return add(96); }
  bool key(string_t& s) override { return add(96 + s.size()); }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return add(64); }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }
};

}  // namespace

json parse_request_body(std::string_view text, size_t max_memory) {
  MemoryEstimate estimate(max_memory);
  const bool ok = json::sax_parse(text, &estimate, json::input_format_t::json, false);
  if (!ok && estimate.bytes > estimate.limit)
    fail("the request body holds too many JSON values: parsed, it would take over ",
         max_memory >> 20, " MiB; send fewer, larger values");
  json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded())
    fail(text.empty() ? "the request has no body; send a JSON object"
                      : "the request body is not valid JSON");
  if (!body.is_object()) fail("the request body must be a JSON object, not ", show_json(body));
  return body;
}

ServeRequest serve_request_from_json(const json& body, ServeEndpoint endpoint) {
  if (!body.is_object()) fail("the request body must be a JSON object, not ", show_json(body));
  ServeRequest r;
  r.endpoint = endpoint;
  refuse_unsupported(body, endpoint);
  if (endpoint == ServeEndpoint::kChat) {
    r.generation = chat_request_from_json(body);
  } else {
    read_generation_fields(body, r.generation);
    const json* prompt = find_field(body, "prompt");
    if (!prompt) fail("missing field `prompt` (the text to continue)");
    if (prompt->is_string()) {
      r.prompt = prompt->get<std::string>();
    } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
      r.prompt = (*prompt)[0].get<std::string>();
    } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number()) {
      r.prompt_tokens = token_ids(*prompt, "prompt");
      r.prompt_is_tokens = true;
    } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_array()) {
      r.prompt_tokens = token_ids((*prompt)[0], "prompt[0]");
      r.prompt_is_tokens = true;
    } else if (prompt->is_array() && prompt->size() > 1) {
      fail("field `prompt` holds ", prompt->size(),
           " prompts; expo serve answers one prompt per request (send them separately)");
    } else {
      fail("field `prompt` must be a string (or a list of token ids), not ", show_json(*prompt));
    }
    if (!r.prompt_is_tokens && r.prompt.empty()) fail("field `prompt` is empty");
    if (r.prompt_is_tokens && r.prompt_tokens.empty()) fail("field `prompt` has no tokens");
    // The completions API's documented default (OpenAI and vLLM): 16 tokens.
    if (r.generation.max_tokens == 0) r.generation.max_tokens = 16;
  }
  r.stream = bool_field(body, "stream", false);
  if (const json* options = find_field(body, "stream_options")) {
    if (!r.stream) fail("field `stream_options` is only allowed with \"stream\": true");
    if (!options->is_object())
      fail("field `stream_options` must be an object, not ", show_json(*options));
    r.include_usage = bool_field(*options, "include_usage", false);
  }
  if (endpoint == ServeEndpoint::kChat) {
    if (bool_field(body, "logprobs", false)) {
      r.logprobs = 0;
      if (auto k = integer_field(body, "top_logprobs")) {
        if (*k < 0 || *k > kMaxTopLogprobs)
          fail("field `top_logprobs` is ", *k, "; it must lie in [0, ", kMaxTopLogprobs, "]");
        r.logprobs = static_cast<int>(*k);
      }
    } else if (auto k = integer_field(body, "top_logprobs"); k && *k != 0) {
      fail("field `top_logprobs` needs \"logprobs\": true");
    }
  } else if (auto k = integer_field(body, "logprobs")) {
    if (*k < 0 || *k > kMaxTopLogprobs)
      fail("field `logprobs` is ", *k, "; it must lie in [0, ", kMaxTopLogprobs, "]");
    r.logprobs = static_cast<int>(*k);
  }
  r.ignore_eos = bool_field(body, "ignore_eos", false);
  if (const json* ids = find_field(body, "stop_token_ids")) {
    if (!ids->is_array()) fail("field `stop_token_ids` must be an array of token ids");
    r.stop_token_ids = token_ids(*ids, "stop_token_ids");
  }
  return r;
}

json serve_response_to_json(const ServeRequest& request, const std::string& text,
                            const std::vector<StreamedLogprob>& logprobs,
                            const std::string& finish_reason, uint64_t prompt_tokens,
                            uint64_t completion_tokens, const std::string& model,
                            const std::string& id, int64_t created) {
  const bool chat = request.endpoint == ServeEndpoint::kChat;
  json choice;
  if (chat) {
    choice = {{"index", 0},
              {"message", {{"role", "assistant"}, {"content", text}}},
              {"logprobs", request.logprobs >= 0 ? chat_logprobs(logprobs) : json(nullptr)},
              {"finish_reason", finish_reason}};
  } else {
    choice = {
        {"index", 0},
        {"text", text},
        {"logprobs", request.logprobs >= 0 ? completion_logprobs(logprobs, 0) : json(nullptr)},
        {"finish_reason", finish_reason}};
  }
  return {{"id", id},
          {"object", chat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({std::move(choice)})},
          {"usage", usage_json(prompt_tokens, completion_tokens)}};
}

json serve_chunk_to_json(const ServeRequest& request, const std::string& text,
                         const std::vector<StreamedLogprob>& logprobs, bool role,
                         const std::string& finish_reason, const std::string& model,
                         const std::string& id, int64_t created) {
  const bool chat = request.endpoint == ServeEndpoint::kChat;
  json choice;
  const json reason = finish_reason.empty() ? json(nullptr) : json(finish_reason);
  const bool with_logprobs = request.logprobs >= 0 && !logprobs.empty();
  if (chat) {
    json delta = json::object();
    if (role) delta["role"] = "assistant";
    if (role || !text.empty()) delta["content"] = text;
    choice = {{"index", 0},
              {"delta", std::move(delta)},
              {"logprobs", with_logprobs ? chat_logprobs(logprobs) : json(nullptr)},
              {"finish_reason", reason}};
  } else {
    choice = {{"index", 0},
              {"text", text},
              {"logprobs", with_logprobs ? completion_logprobs(logprobs, 0) : json(nullptr)},
              {"finish_reason", reason}};
  }
  json chunk = {{"id", id},
                {"object", chat ? "chat.completion.chunk" : "text_completion"},
                {"created", created},
                {"model", model},
                {"choices", json::array({std::move(choice)})}};
  if (request.include_usage) chunk["usage"] = nullptr;
  return chunk;
}

json serve_usage_chunk_to_json(const ServeRequest& request, uint64_t prompt_tokens,
                               uint64_t completion_tokens, const std::string& model,
                               const std::string& id, int64_t created) {
  const bool chat = request.endpoint == ServeEndpoint::kChat;
  return {{"id", id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array()},
          {"usage", usage_json(prompt_tokens, completion_tokens)}};
}

}  // namespace expo
