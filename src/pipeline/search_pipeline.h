#pragma once
// The model work behind `expo search`, one alpha at a time: make the candidate
// theta1 + alpha (theta1 - theta0), generate answers to the prompt set with it, score them
// with the reward model, and keep both in the output folder:
//
//   D/alpha-<alpha>/<answers file>   in the prompt set's own format (AlpacaEval
//                                    model_outputs.json, MT-Bench answer JSONL, or JSONL)
//   D/alpha-<alpha>/rewards.jsonl    {"id", "reward", "answer_tokens", "answer_chars",
//                                    "finish_reason"} per prompt
//   D/alpha-<alpha>/server.log       (--serve) the server's output
//
// Alpha 0 is the aligned model itself, read as is. Generation runs on the built-in engine
// (the candidate is extrapolated while it loads, nothing written) or on OpenAI-compatible
// servers: given endpoints that already serve every candidate, each under its own model name
// (served_model_name with {alpha}, e.g. behind a router), or, with a --serve command template,
// a server expo starts per candidate on a model folder it writes with the extrapolation pass
// (removed afterwards unless `keep`). Rewards come
// from the built-in engine (the reward model loaded once) or from reward endpoints.
//
// When resuming, an alpha whose answers file is complete (every prompt, every turn, the same
// ids) is scored again without generating.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/fingerprint.h"
#include "eval/alpha_stats.h"
#include "eval/answers.h"
#include "eval/prompt_set.h"
#include "http/openai_client.h"
#include "model/generator.h"

namespace expo {

struct SearchPipelineOptions {
  std::string sft, aligned;  // checkpoint specs
  std::string base;          // --base: the model two adapters (--sft, --aligned) were trained on
  std::string reward_model;  // folder (built-in engine), or the served name with reward endpoints
  std::filesystem::path out_dir;
  PromptSet prompts;
  AnswerFormat answer_format = AnswerFormat::kJsonl;

  // Generation.
  GenerationOptions gen;          // sampling, max_new_tokens, batch; stop_ids filled below
  std::vector<int32_t> stop_ids;  // explicit --stop-token-ids (local backend)
  bool ignore_eos = false;
  bool raw = false;
  std::string tokenizer;  // default: the aligned model's folder
  std::string template_name = "default";
  bool allow_nonfinite = false;
  size_t threads = 0;

  // Generation backend: local unless endpoints or serve_command are given.
  std::vector<Endpoint> endpoints;  // --backend openai --endpoint
  // --serve template ({model}, {port}, {host}, {alpha}; {adapter} with an adapter as aligned:
  // {model} is then the SFT folder and {adapter} the candidate, written as a scaled adapter).
  std::string serve_command;
  // --model-name, {alpha} replaced by the candidate's alpha; default: the first model of
  // GET /v1/models (--serve only).
  std::string served_model_name;
  double serve_timeout_s = 600;
  bool keep_candidates = false;  // --keep
  ClientOptions client;          // parallel, timeouts, retries

  // Reward backend: local (reward_model is a folder) unless reward_endpoints are given.
  std::vector<Endpoint> reward_endpoints;

  bool resume = false;  // reuse complete answers files left in D by an interrupted run
};

struct PipelineProgress {
  double alpha = 0;
  std::string stage;    // "loading", "extrapolating", "starting server", "generating", "scoring"
  double fraction = 0;  // of this alpha's work, in [0, 1]
  std::string detail;   // "12/32 prompts, 1234 tokens, 130 tok/s"
};

// Where a search writes an alpha's answers and rewards: out_dir/alpha-<alpha>.
std::filesystem::path search_alpha_dir(const std::filesystem::path& out_dir, double alpha);

class SearchPipeline {
 public:
  // Opens the pair and the reward model once, and checks what can be checked before any model
  // work: the models' configs, tensors (the pair's plan; for the built-in engine, the
  // architecture's tensor list) and tokenizers, every prompt's encoding against the context,
  // the reward model's template.
  explicit SearchPipeline(SearchPipelineOptions options);
  ~SearchPipeline();

  // Evaluates one alpha (the search's Evaluate callback).
  AlphaResult evaluate(double alpha);
  // Writes the model of `alpha` into `dir` with the extrapolation pass of `expo extrapolate`
  // (the candidates of --serve, and --write-best); `command_line` goes into its model card.
  void write_model(double alpha, const std::filesystem::path& dir, const std::string& command_line);
  // Writes the scaled PEFT adapter of `alpha` (an adapter as aligned, --serve candidates).
  void write_adapter(double alpha, const std::filesystem::path& dir,
                     const std::string& command_line);
  // Folder of an alpha's files: search_alpha_dir(out_dir, alpha).
  std::filesystem::path alpha_dir(double alpha) const;

  void set_progress(std::function<void(const PipelineProgress&)> on_progress);
  const std::vector<std::string>& warnings() const;
  // Every setting the results depend on (pipeline/run_fingerprint.h), for D/fingerprint.json.
  const Fingerprint& fingerprint() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace expo
