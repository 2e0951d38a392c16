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
          : options.model.is_pair()
              ? default_model_name(options.model.display_spec(), options.alpha)
              : default_model_name(options.model.display_spec());
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
  const Tokenizer& vocabulary = encoder_->tokenizer();
  for (size_t id = 0; id < vocabulary.vocab_size(); ++id)
    longest_token_bytes_ =
        std::max(longest_token_bytes_, vocabulary.id_to_token(static_cast<int32_t>(id)).size());
  EngineLoopOptions loop;
  loop.limits.max_batch = options.max_batch;
  loop.limits.context_length = context_;
  loop.max_queue = options.max_queue;
  loop_ = std::make_unique<EngineLoop>(*transformer_, *encoder_, *pool_, loop);
}

EngineBackend::~EngineBackend() { loop_->stop(); }

void EngineBackend::set_metrics(ServeMetrics* metrics) { loop_->set_metrics(metrics); }

void EngineBackend::shutdown() { loop_->stop(); }

void EngineBackend::check_text_size(size_t bytes, const std::string& what) const {
  // A token's text is at most its vocabulary entry's (byte-level and SentencePiece pieces are
  // never shorter than the bytes they stand for); 4x covers normalizers that shorten text.
  const uint64_t at_least = bytes / (4 * longest_token_bytes_);
  if (at_least >= context_)
    fail(what, " has ", bytes, " bytes: at least ", at_least,
         " tokens, but the model's context is ", context_, " tokens");
}

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
      for (size_t j = 0; j < content.size(); ++j) {
        if (j) text += '\n';
        text += content[j]["text"].get_ref<const std::string&>();
      }
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

std::vector<int32_t> EngineBackend::prompt_of(const ServeRequest& request) const {
  const ModelConfig& config = model_->config();
  if (config.is_reward_model)
    fail("model `", name_, "` is a reward model (", config.architecture,
         "): it scores conversations through POST /pooling or /classify and cannot generate; "
         "serve a *ForCausalLM model for completions");
  if (request.endpoint == ServeEndpoint::kCompletions) {
    if (request.prompt_is_tokens) return request.prompt_tokens;
    check_text_size(request.prompt.size(), "the prompt");
    return encoder_->encode_raw(request.prompt);
  }
  if (!encoder_->has_chat_template())
    fail("model `", name_,
         "` has no chat template (tokenizer_config.json); send raw text to /v1/completions, or "
         "restart expo serve with --tokenizer DIR or --chat-template NAME naming one");
  size_t bytes = 0;
  for (const auto& m : request.generation.messages)
    if (m.contains("content") && m["content"].is_string())
      bytes += m["content"].get_ref<const std::string&>().size();
  check_text_size(bytes, "the conversation");
  return encoder_->encode_messages(template_messages(request.generation.messages), true);
}

std::shared_ptr<GenerationStream> EngineBackend::generate(const ServeRequest& request) {
  GenerationJob job;
  job.spec.prompt = prompt_of(request);
  job.spec.sampling = sampling_of(request.generation);
  job.spec.stream = prompt_stream(job.spec.prompt);
  uint64_t max_new =
      request.generation.max_tokens ? request.generation.max_tokens : options_.max_new_tokens;
  // Up to the context when neither the request nor the server sets a limit; never beyond it.
  if (max_new == 0 || max_new > context_) max_new = context_;
  job.spec.max_new_tokens = max_new;
  job.spec.stop_ids = request.ignore_eos ? std::vector<int32_t>{} : stop_ids_;
  for (int32_t id : request.stop_token_ids) {
    if (static_cast<uint64_t>(id) >= model_->config().vocab_size)
      fail("stop_token_ids holds ", id, ", outside the model's vocabulary of ",
           model_->config().vocab_size);
    job.spec.stop_ids.push_back(id);
  }
  job.spec.logprobs = request.logprobs;
  job.stop = request.generation.stop;
  job.incremental = request.stream;
  GenerationOptions check;
  check.sampling = job.spec.sampling;
  check.max_new_tokens = max_new;
  check.context_length = context_;
  const GenerationRequest probe{job.spec.prompt, 0};
  check_requests(*transformer_, std::span(&probe, 1), check, [&](size_t) {
    return std::string(request.endpoint == ServeEndpoint::kChat ? "the conversation"
                                                                : "the prompt");
  });
  return loop_->submit(std::move(job));
}

ChatResponse EngineBackend::chat(const ChatRequest& request) {
  ServeRequest r;
  r.endpoint = ServeEndpoint::kChat;
  r.generation = request;
  const auto stream = generate(r);
  ChatResponse response;
  for (;;) {
    stream->wait(std::chrono::milliseconds(100));
    StreamUpdate u = stream->take();
    response.text += u.text;
    if (!u.finished) continue;
    if (!u.error.empty()) fail(u.error);
    response.finish_reason = u.finish_reason;
    response.prompt_tokens = u.prompt_tokens;
    response.completion_tokens = u.completion_tokens;
    return response;
  }
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
      check_text_size(arg[i].get_ref<const std::string&>().size(), str("input[", i, "]"));
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
  return loop_->score(std::move(sequences));
}

}  // namespace expo
