#pragma once
// The built-in engine behind `expo serve`: a ServeBackend (src/http/openai_server.h) that
// answers chat and text completions with a causal LM and reward scores with a reward model
// (*ForSequenceClassification), both loaded once (extrapolated on load when asked). Requests
// from every connection share one continuous batch on the engine thread (serve/engine_loop.h).
//
// Chat: the messages go through the chat template with add_generation_prompt, as
// apply_chat_template(tokenize=True) does; completions: the prompt text is encoded as
// `expo generate --raw` encodes it (BOS as the tokenizer adds it), or token ids are taken as
// given. The answer ends at eos or the template's end-of-turn token ("stop"), at the first of
// the request's `stop` strings (the text is cut before it, "stop"), or at max_tokens / the
// context ("length"). A sequence's random stream is prompt_stream(prompt) and its seed the
// request's (kDefaultSeed when it sends none), so an answer is what `expo generate` gives for
// the same prompt, sampling options and seed, whatever else is in the batch.
//
// Scores: the reward head's raw logit (label 0) at the last token of the conversation
// rendered without a generation prompt, or of each already-rendered text (encoded without
// adding special tokens: the rendered text carries its own BOS); concurrent requests are
// scored in shared forward passes.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/thread_pool.h"
#include "http/openai_server.h"
#include "http/serve_request.h"
#include "model/generator.h"
#include "model/model_source.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "serve/engine_loop.h"
#include "text/prompt_encoder.h"

namespace expo {

struct EngineBackendOptions {
  ModelSource model;                      // opened by the caller (a checkpoint, or a pair)
  double alpha = 0;                       // a pair's: extrapolated on load at this alpha
  bool allow_nonfinite = false;           // a pair's: carry NaN/Inf weights through
  std::filesystem::path tokenizer;        // empty: the model's folder
  std::string chat_template = "default";  // a named template of tokenizer_config.json
  std::string model_name;                 // empty: default_model_name of the model
  size_t threads = 0;                     // 0: all cores
  uint64_t max_new_tokens = 0;            // for requests without max_tokens; 0: up to the context
  uint64_t context_length = 0;            // tokens a sequence may reach; 0: the model's context
  uint64_t max_batch = 16;                // sequences decoded together (--batch-size)
  size_t max_queue = 256;                 // requests waiting for a slot (--max-queue)
};

class EngineBackend : public ServeBackend {
 public:
  // The seed of requests that send none.
  static constexpr uint64_t kDefaultSeed = 42;

  // Loads the tokenizer (first, so that a bad tokenizer fails before the weights are read)
  // and the model. Throws expo::Error for a model or tokenizer that cannot be loaded.
  explicit EngineBackend(const EngineBackendOptions& options);
  ~EngineBackend() override;

  // The --model argument's last path component ("zephyr-7b-dpo") or a repo id as given
  // ("HuggingFaceH4/zephyr-7b-beta"); for extrapolation on load, the --aligned argument's name
  // with the alpha ("zephyr-7b-dpo-expo-alpha0.3").
  static std::string default_model_name(const std::string& model_spec);
  static std::string default_model_name(const std::string& aligned_spec, double alpha);

  std::string model_name() override { return name_; }
  std::shared_ptr<GenerationStream> generate(const ServeRequest& request) override;
  std::optional<std::vector<double>> score(const nlohmann::json& messages_or_input) override;
  bool is_reward_model() override { return model_->config().is_reward_model; }
  void set_metrics(ServeMetrics* metrics) override;
  void shutdown() override;

  // A chat request answered in full (generate() and a wait for the end): for tests and
  // callers without a server.
  ChatResponse chat(const ChatRequest& request);

  // The sampling a request asks for (its seed, or kDefaultSeed), validated.
  static SamplingParams sampling_of(const ChatRequest& request);
  // The conversation as the chat template wants it: content null -> "", an array of text
  // parts -> their texts joined by "\n" (as vLLM does); other fields are kept.
  static nlohmann::ordered_json template_messages(const nlohmann::json& messages);

  const ModelConfig& config() const { return model_->config(); }
  const PromptEncoder& encoder() const { return *encoder_; }
  // eos ids of config.json / generation_config.json and the template's end-of-turn token.
  const std::vector<int32_t>& stop_ids() const { return stop_ids_; }
  uint64_t context_length() const { return context_; }

 private:
  // Refuses a text that cannot fit the context however it is tokenized (each token covers at
  // most a few times the longest vocabulary entry's bytes), before tokenizing it.
  void check_text_size(size_t bytes, const std::string& what) const;
  std::vector<int32_t> prompt_of(const ServeRequest& request) const;

  EngineBackendOptions options_;
  std::string name_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<PromptEncoder> encoder_;
  std::unique_ptr<LoadedModel> model_;
  std::unique_ptr<Transformer> transformer_;
  std::vector<int32_t> stop_ids_;
  uint64_t context_ = 0;
  size_t longest_token_bytes_ = 1;
  std::unique_ptr<EngineLoop> loop_;
};

}  // namespace expo
