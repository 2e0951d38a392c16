#include "http/openai_protocol.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "http/json_fields.h"

namespace expo {

using nlohmann::json;

void check_chat_messages(const json& messages, const char* key) {
  if (!messages.is_array())
    fail("field `", key, "` must be an array of messages, not ", show_json(messages));
  if (messages.empty()) fail("field `", key, "` is empty; send at least one message");
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object())
      fail("", key, "[", i, "] must be an object {\"role\", \"content\"}, not ", show_json(m));
    auto role = m.find("role");
    if (role == m.end()) fail("", key, "[", i, "] has no field `role`");
    if (!role->is_string())
      fail("", key, "[", i, "].role must be a string, not ", show_json(*role));
    auto content = m.find("content");
    if (content == m.end()) fail("", key, "[", i, "] has no field `content`");
    if (content->is_string() || content->is_null()) continue;
    if (!content->is_array())
      fail("", key, "[", i, "].content must be a string or an array of text parts, not ",
           show_json(*content));
    for (size_t j = 0; j < content->size(); ++j) {
      const json& part = (*content)[j];
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
          !part["text"].is_string())
        fail("", key, "[", i, "].content[", j,
             "] must be a text part {\"type\": \"text\", \"text\": \"...\"} (expo serves text "
             "only), not ",
             show_json(part));
    }
  }
}

json chat_request_to_json(const ChatRequest& request) {
  json body = {{"model", request.model},
               {"messages", request.messages},
               {"temperature", request.temperature},
               {"top_p", request.top_p}};
  if (request.max_tokens > 0) body["max_tokens"] = request.max_tokens;
  if (request.seed) body["seed"] = *request.seed;
  if (!request.stop.empty()) body["stop"] = request.stop;
  if (request.presence_penalty != 0) body["presence_penalty"] = request.presence_penalty;
  if (request.frequency_penalty != 0) body["frequency_penalty"] = request.frequency_penalty;
  if (request.top_k > 0) body["top_k"] = request.top_k;
  if (request.min_p > 0) body["min_p"] = request.min_p;
  if (request.repetition_penalty != 1) body["repetition_penalty"] = request.repetition_penalty;
  return body;
}

ChatRequest chat_request_from_json(const json& body) {
  if (!body.is_object()) fail("the request body must be a JSON object, not ", show_json(body));
  ChatRequest r;
  const json* messages = find_field(body, "messages");
  if (!messages) fail("missing field `messages` (an array of {\"role\", \"content\"})");
  check_chat_messages(*messages, "messages");
  r.messages = *messages;
  read_generation_fields(body, r);
  return r;
}

void read_generation_fields(const json& body, ChatRequest& r) {
  if (!body.is_object()) fail("the request body must be a JSON object, not ", show_json(body));
  if (const json* model = find_field(body, "model")) {
    if (!model->is_string()) fail("field `model` must be a string, not ", show_json(*model));
    r.model = model->get<std::string>();
  }
  const double inf = std::numeric_limits<double>::infinity();
  r.temperature = number_field(body, "temperature", 1.0, 0.0, inf);
  r.top_p = number_field(body, "top_p", 1.0, 0.0, 1.0);
  if (r.top_p == 0) fail("field `top_p` is 0; it must lie in (0, 1]");
  if (auto top_k = integer_field(body, "top_k")) {
    // vLLM uses -1 (llama.cpp 0) for "no top-k".
    if (*top_k < -1 || *top_k > std::numeric_limits<int>::max())
      fail("field `top_k` is ", *top_k, "; use a positive integer, or 0 or -1 for none");
    r.top_k = *top_k > 0 ? static_cast<int>(*top_k) : 0;
  }
  r.min_p = number_field(body, "min_p", 0.0, 0.0, 1.0);
  r.presence_penalty = number_field(body, "presence_penalty", 0.0, -2.0, 2.0);
  r.frequency_penalty = number_field(body, "frequency_penalty", 0.0, -2.0, 2.0);
  r.repetition_penalty = number_field(body, "repetition_penalty", 1.0, 0.0, inf);
  if (r.repetition_penalty == 0) fail("field `repetition_penalty` is 0; it must be > 0");
  if (auto seed = integer_field(body, "seed")) {
    if (*seed < 0) fail("field `seed` is ", *seed, "; it must be >= 0");
    r.seed = static_cast<uint64_t>(*seed);
  }
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    if (auto max_tokens = integer_field(body, key)) {
      if (*max_tokens < 1) fail("field `", key, "` is ", *max_tokens, "; it must be >= 1");
      r.max_tokens = static_cast<uint64_t>(*max_tokens);
      break;
    }
  }
  if (const json* stop = find_field(body, "stop")) {
    if (stop->is_string()) {
      r.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (size_t i = 0; i < stop->size(); ++i) {
        if (!(*stop)[i].is_string())
          fail("stop[", i, "] must be a string, not ", show_json((*stop)[i]));
        r.stop.push_back((*stop)[i].get<std::string>());
      }
    } else {
      fail("field `stop` must be a string or an array of strings, not ", show_json(*stop));
    }
    for (const auto& s : r.stop)
      if (s.empty()) fail("field `stop` holds an empty string; remove it");
  }
}

json chat_response_to_json(const ChatResponse& response, const std::string& model,
                           const std::string& id, int64_t created) {
  return {
      {"id", id},
      {"object", "chat.completion"},
      {"created", created},
      {"model", model},
      {"choices", json::array({{{"index", 0},
                                {"message", {{"role", "assistant"}, {"content", response.text}}},
                                {"logprobs", nullptr},
                                {"finish_reason", response.finish_reason}}})},
      {"usage",
       {{"prompt_tokens", response.prompt_tokens},
        {"completion_tokens", response.completion_tokens},
        {"total_tokens", response.prompt_tokens + response.completion_tokens}}},
  };
}

ChatResponse chat_response_from_json(const json& body) {
  if (!body.is_object()) fail("the response is not a JSON object: ", show_json(body));
  auto choices = body.find("choices");
  if (choices == body.end() || !choices->is_array() || choices->empty())
    fail("the response has no `choices`: ", show_json(body));
  const json& choice = (*choices)[0];
  if (!choice.is_object()) fail("choices[0] is not an object: ", show_json(choice));
  auto message = choice.find("message");
  if (message == choice.end() || !message->is_object())
    fail("choices[0] has no `message` (a streaming or completions-API response?): ",
         show_json(choice));
  ChatResponse r;
  if (auto content = message->find("content"); content != message->end()) {
    if (content->is_string()) {
      r.text = content->get<std::string>();
    } else if (!content->is_null()) {
      fail("choices[0].message.content is not a string: ", show_json(*content));
    }
  }
  if (auto reason = choice.find("finish_reason"); reason != choice.end() && reason->is_string())
    r.finish_reason = reason->get<std::string>();
  if (auto usage = body.find("usage"); usage != body.end() && usage->is_object()) {
    auto count = [&](const char* key) -> uint64_t {
      auto it = usage->find(key);
      if (it == usage->end() || it->is_null()) return 0;
      if (!it->is_number_unsigned()) fail("usage.", key, " is not a count: ", show_json(*it));
      return it->get<uint64_t>();
    };
    r.prompt_tokens = count("prompt_tokens");
    r.completion_tokens = count("completion_tokens");
  }
  return r;
}

const char* score_api_path(ScoreApi api) {
  return api == ScoreApi::kPooling ? "/pooling" : "/classify";
}

json score_request_to_json(ScoreApi api, const std::string& model, const ScoreInput& input,
                           bool raw) {
  json body = {{"model", model}};
  if (!input.messages.is_null()) {
    body["messages"] = input.messages;
  } else if (api == ScoreApi::kClassify) {
    body["input"] = json::array({input.text});
  } else {
    body["input"] = input.text;
  }
  if (raw) body["use_activation"] = false;
  return body;
}

std::vector<double> score_response_from_json(ScoreApi api, const json& body) {
  if (!body.is_object()) fail("the response is not a JSON object: ", show_json(body));
  auto data = body.find("data");
  if (data == body.end() || !data->is_array() || data->empty())
    fail("the response has no `data` array: ", show_json(body));
  const char* field = api == ScoreApi::kPooling ? "data" : "probs";
  std::vector<std::pair<int64_t, double>> indexed;
  for (size_t i = 0; i < data->size(); ++i) {
    const json& item = (*data)[i];
    if (!item.is_object()) fail("data[", i, "] is not an object: ", show_json(item));
    int64_t index = static_cast<int64_t>(i);
    if (auto it = item.find("index"); it != item.end() && it->is_number_integer())
      index = it->get<int64_t>();
    auto values = item.find(field);
    if (values == item.end()) fail("data[", i, "] has no `", field, "`: ", show_json(item));
    const json* v = &*values;
    // Token-level pooling ("reward", ALL): one row per token; the sequence's reward is the
    // last token's.
    if (v->is_array() && !v->empty() && v->back().is_array()) v = &v->back();
    double score;
    if (v->is_number()) {
      score = v->get<double>();
    } else if (v->is_array() && v->size() == 1 && (*v)[0].is_number()) {
      score = (*v)[0].get<double>();
    } else if (v->is_array() && v->size() > 1) {
      fail("data[", i, "].", field, " holds ", v->size(),
           " values; expo reads a reward model with one output (a single-label head), and "
           "this one has a head with several labels");
    } else {
      fail("data[", i, "].", field, " is not a number or a list of one number: ", show_json(*v));
    }
    indexed.emplace_back(index, score);
  }
  std::sort(indexed.begin(), indexed.end());
  std::vector<double> scores;
  for (size_t i = 0; i < indexed.size(); ++i) {
    if (indexed[i].first != static_cast<int64_t>(i))
      fail("the response's data[].index values are not 0..", indexed.size() - 1);
    scores.push_back(indexed[i].second);
  }
  return scores;
}

json score_response_to_json(ScoreApi api, const std::vector<double>& scores,
                            const std::string& model, const std::string& id, int64_t created) {
  json data = json::array();
  for (size_t i = 0; i < scores.size(); ++i) {
    if (api == ScoreApi::kPooling) {
      data.push_back({{"index", i}, {"object", "pooling"}, {"data", {scores[i]}}});
    } else {
      data.push_back(
          {{"index", i}, {"label", "LABEL_0"}, {"probs", {scores[i]}}, {"num_classes", 1}});
    }
  }
  return {{"id", id}, {"object", "list"}, {"created", created}, {"model", model}, {"data", data}};
}

json error_body(const std::string& message, const std::string& type, const std::string& code) {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", nullptr},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

std::string error_message_from_body(const std::string& body, size_t max_chars) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) {
    auto error = parsed.find("error");
    if (error != parsed.end()) {
      if (error->is_string()) return error->get<std::string>();
      if (error->is_object()) {
        auto message = error->find("message");
        if (message != error->end() && message->is_string()) return message->get<std::string>();
      }
    }
    // FastAPI/vLLM validation errors put it under "message" or "detail".
    for (const char* key : {"message", "detail"}) {
      auto it = parsed.find(key);
      if (it != parsed.end() && it->is_string()) return it->get<std::string>();
    }
  }
  std::string text = body;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.pop_back();
  if (text.empty()) return "(empty body)";
  if (text.size() > max_chars) text = text.substr(0, max_chars) + "... (truncated)";
  return text;
}

}  // namespace expo
