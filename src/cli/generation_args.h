#pragma once
// The options of every command that generates answers (generate, search): the prompt set
// (--prompts, --limit, --shuffle), sampling with the paper's defaults, token limits, stop
// tokens and batching; and the backend (--backend local|openai with --endpoint, --api-key-env,
// --model-name, --parallel). Listed once, used by generate and search.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "eval/prompt_set.h"
#include "http/openai_client.h"
#include "model/generator.h"

namespace expo::cli {

struct GenerationArgs {
  GenerationOptions gen;
  std::vector<int32_t> stop_ids;
  bool ignore_eos = false;
  bool greedy = false;
  CLI::Option* presence_option = nullptr;  // given explicitly: kept under --greedy
  CLI::Option* frequency_option = nullptr;
  // The prompt set.
  std::string prompts_file;
  size_t limit = 0;
  CLI::Option* limit_option = nullptr;
  bool shuffle = false;
  // Text: the answers file's format, the tokenizer and template, and progress.
  std::string format, tokenizer, template_name = "default";
  bool raw = false;
  bool progress = false, no_progress = false;

  GenerationArgs();  // the paper's sampling defaults
  // `with_prompts`: also --prompts, --limit, --shuffle, --format, --raw, --tokenizer,
  // --chat-template.
  void add_to(CLI::App& cmd, bool with_prompts);
  // Applies --greedy (temperature 0, and the default penalties off unless given) and checks
  // the sampling values.
  void finish();
  // Reads --prompts and applies --shuffle (with --seed) and --limit.
  PromptSet read_prompts() const;
  // --progress, or stderr is a terminal and not --no-progress.
  bool show_progress() const;
};

struct BackendArgs {
  std::string backend = "local";
  std::vector<std::string> endpoints;
  std::string api_key_env;
  std::string model_name;
  size_t parallel = 8;
  double request_timeout = 600;
  int max_retries = 5;
  std::string score_api = "pooling";

  // `what`: "generation" or "scoring", for the help text; `scoring` adds --score-api.
  void add_to(CLI::App& cmd, const std::string& what, bool scoring = false);
  // Checks --backend against the other options; true for openai.
  bool remote() const;
  // The endpoints with the API key read from --api-key-env (an unset variable is an error).
  std::vector<Endpoint> endpoint_list() const;
  // The key from --api-key-env ("" without it; an unset variable is an error).
  std::string api_key() const;
  ClientOptions client_options(uint64_t seed) const;
};

}  // namespace expo::cli
