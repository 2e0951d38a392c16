#include "serve/engine_backend.h"

#include <algorithm>

#include "core/error.h"
#include "model/sampler.h"
#include "model/scorer.h"

namespace expo {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

std::string path_name(const std::string& spec) {
  std::error_code ec;
  if (!fs::exists(spec, ec)) return spec;  // a repo id ("org/name"), served as given
  fs::path p = fs::weakly_canonical(spec, ec);
  if (ec) p = fs::path(spec).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  if (fs::is_regular_file(p, ec)) return p.stem().string();  // a lone .safetensors file
  return p.filename().string();
}

// Where a stop string first occurs in `text` at or after `from`; npos when none does.
size_t first_stop(const std::string& text, const std::vector<std::string>& stop, size_t from) {
  size_t best = std::string::npos;
  for (const auto& s : stop) {
    const size_t at = text.find(s, from);
    if (at < best) best = at;
  }
  return best;
}

}  // namespace

std::string EngineBackend::default_model_name(const std::string& model_spec) {
  return path_name(model_spec);
}

std::string EngineBackend::default_model_name(const std::string& aligned_spec, double alpha) {
  const std::string aligned = path_name(aligned_spec);
  return str(aligned.substr(aligned.find_last_of('/') + 1), "-expo-alpha", alpha);
}

EngineBackend::EngineBackend(const EngineBackendOptions& options) : options_(options) {
  if (options.model.empty()) fail("internal: the engine backend needs an opened model");
  const Checkpoint& checkpoint = options.model.checkpoint();  // the model, or the aligned one
  name_ = !options.model_name.empty() ? options.model_name
          : options.model.is_pair()   ? default_model_name(checkpoint.spec(), options.alpha)
                                      : default_model_name(checkpoint.spec());
  fs::path tokenizer = options.tokenizer;
  if (tokenizer.empty()) {
    tokenizer = options.model.folder();
    if (tokenizer.empty())
      fail(checkpoint.spec(),
           " is a lone .safetensors file: give --tokenizer DIR (a folder with tokenizer.json)");
  }
  encoder_ = std::make_unique<PromptEncoder>(tokenizer, options.chat_template);
  pool_ = std::make_unique<ThreadPool>(options.threads);
  model_ = LoadedModel::load(options.model, options.alpha, options.allow_nonfinite, *pool_);
  options_.model = ModelSource();  // what the weights need of it, they keep
  transformer_ = std::make_unique<Transformer>(*model_);
  const uint64_t model_context = model_context_length(model_->config());
  context_ =
      options.context_length ? std::min(options.context_length, model_context) : model_context;
  stop_ids_ = default_stop_ids({}, false, model_->config().eos_token_ids, encoder_->stop_ids());
}

EngineBackend::~EngineBackend() = default;

SamplingParams EngineBackend::sampling_of(const ChatRequest& request) {
  SamplingParams s;
  s.temperature = request.temperature;
  s.top_k = request.top_k;
  s.top_p = request.top_p;
  s.min_p = request.min_p;
  s.presence_penalty = request.presence_penalty;
  s.frequency_penalty = request.frequency_penalty;
  s.repetition_penalty = request.repetition_penalty;
  s.seed = request.seed.value_or(kDefaultSeed);
  validate(s);
  return s;
}

ordered_json EngineBackend::template_messages(const json& messages) {
  check_chat_messages(messages, "messages");
  ordered_json out = ordered_json::array();
  for (const auto& m : messages) {
    ordered_json message = ordered_json::object();
    message["role"] = m["role"];
    const json& content = m["content"];
    if (content.is_null()) {
      message["content"] = "";
    } else if (content.is_array()) {
      std::string text;
      for (size_t j = 0; j < content.size(); ++j)
        text += (j ? "\n" : "") + content[j]["text"].get<std::string>();
      message["content"] = text;
    } else {
      message["content"] = content;
    }
    for (const auto& [key, value] : m.items())
      if (key != "role" && key != "content") message[key] = ordered_json::parse(value.dump());
    out.push_back(std::move(message));
  }
  return out;
}

GenerationResult EngineBackend::decode(const std::vector<int32_t>& prompt,
                                       const SamplingParams& sampling, uint64_t max_new_tokens,
                                       const std::vector<std::string>& stop, std::string& text) {
  GenerationOptions options;
  options.sampling = sampling;
  options.max_new_tokens = max_new_tokens;
  options.stop_ids = stop_ids_;
  options.max_batch = 1;
  options.context_length = context_;
  size_t max_stop = 0;
  for (const auto& s : stop) max_stop = std::max(max_stop, s.size());
  size_t searched = 0;  // text before this offset holds no stop string
  size_t cut = std::string::npos;
  if (!stop.empty())
    options.stop_when = [&](size_t, std::span<const int32_t> generated) {
      text = encoder_->decode_answer(generated);
      cut = first_stop(text, stop, std::min(searched, text.size()));
      // A character still incomplete decodes differently once its last byte arrives, so the
      // last few bytes are searched again.
      searched = text.size() > max_stop + 8 ? text.size() - max_stop - 8 : 0;
      return cut != std::string::npos;
    };
  const GenerationRequest request{prompt, 0};
  GenerationResult result;
  generate(*transformer_, std::span(&request, 1), options, *pool_,
           [&](GenerationResult&& r) { result = std::move(r); });
  if (cut != std::string::npos)
    text.resize(cut);
  else
    text = encoder_->decode_answer(result.tokens);
  return result;
}

ChatResponse EngineBackend::chat(const ChatRequest& request) {
  const ModelConfig& config = model_->config();
  if (config.is_reward_model)
    fail("model `", name_, "` is a reward model (", config.architecture,
         "): it scores conversations through POST /pooling or /classify and cannot generate; "
         "serve a *ForCausalLM model for chat completions");
  if (!encoder_->has_chat_template())
    fail("model `", name_,
         "` has no chat template (tokenizer_config.json); restart expo serve with --tokenizer DIR "
         "or --chat-template NAME naming one");
  const SamplingParams sampling = sampling_of(request);
  const std::vector<int32_t> prompt =
      encoder_->encode_messages(template_messages(request.messages), true);
  uint64_t max_new = request.max_tokens ? request.max_tokens : options_.max_new_tokens;
  // Up to the context when neither the request nor the server sets a limit; never beyond it.
  if (max_new == 0 || max_new > context_) max_new = context_;
  GenerationOptions check;
  check.sampling = sampling;
  check.max_new_tokens = max_new;
  check.context_length = context_;
  const GenerationRequest probe{prompt, 0};
  check_requests(*transformer_, std::span(&probe, 1), check,
                 [](size_t) { return std::string("the conversation"); });

  std::string text;
  GenerationResult result = decode(prompt, sampling, max_new, request.stop, text);
  ChatResponse response;
  response.text = std::move(text);
  response.finish_reason = result.finish_reason;
  response.prompt_tokens = prompt.size();
  response.completion_tokens = result.tokens.size();
  return response;
}

std::optional<std::vector<double>> EngineBackend::score(const json& messages_or_input) {
  if (!model_->config().is_reward_model) return std::nullopt;
  const json& arg = messages_or_input;
  if (!arg.is_array() || arg.empty())
    fail("scoring needs a conversation (an array of messages) or an array of rendered texts");
  std::vector<std::vector<int32_t>> sequences;
  std::vector<std::string> names;
  if (arg[0].is_string()) {
    for (size_t i = 0; i < arg.size(); ++i) {
      if (!arg[i].is_string()) fail("input[", i, "] must be a string");
      // Rendered text already holds the template's special tokens (BOS included).
      sequences.push_back(encoder_->tokenizer().encode(arg[i].get<std::string>(), false));
      names.push_back(str("input[", i, "]"));
    }
  } else {
    if (!encoder_->has_chat_template())
      fail("model `", name_,
           "` has no chat template (tokenizer_config.json) to render `messages`; send `input` "
           "with the rendered text, or restart expo serve with --tokenizer DIR or "
           "--chat-template NAME");
    sequences.push_back(encoder_->encode_messages(template_messages(arg), false));
    names.push_back("the conversation");
  }
  for (size_t i = 0; i < sequences.size(); ++i) {
    if (sequences[i].empty()) fail(names[i], " is empty: there is nothing to score");
    if (sequences[i].size() > context_)
      fail(names[i], " has ", sequences[i].size(), " tokens, but the model's context is ", context_,
           " tokens");
    for (int32_t id : sequences[i])
      if (id < 0 || static_cast<uint64_t>(id) >= model_->config().vocab_size)
        fail(names[i], ": token id ", id, " is outside the model's vocabulary of ",
             model_->config().vocab_size, " (is the tokenizer the model's?)");
  }
  const auto rows = score_sequences(*transformer_, sequences, *pool_);
  std::vector<double> scores;
  for (const auto& row : rows) scores.push_back(row.at(0));
  return scores;
}

}  // namespace expo
