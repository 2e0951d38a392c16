#include "cli/generation_args.h"
#include "cli/option_ranges.h"

#include <cstdlib>

#include "core/error.h"
#include "core/progress.h"

namespace expo::cli {

GenerationArgs::GenerationArgs() {
  // Sampling defaults of the paper's evaluation (temperature 0.7, top_p 0.9, top_k 50, presence
  // and frequency penalty 0.1, seed 42); --greedy or --temperature 0 for argmax decoding, where
  // the penalties default to 0 (finish()).
  gen.sampling = SamplingParams{0.7, 50, 0.9, 0.0, 0.1, 0.1, 1.0, 42};
  gen.max_new_tokens = 2048;
}

void GenerationArgs::add_to(CLI::App& cmd, bool with_prompts) {
  if (with_prompts) {
    cmd.add_option(
        "--prompts", prompts_file,
        "prompt set: JSONL ({\"prompt\"}, {\"messages\"} or {\"instruction\"} per line), "
        "AlpacaEval JSON or MT-Bench question.jsonl");
    limit_option = cmd.add_option("--limit", limit, "use the first N prompts (after --shuffle)")
                       ->check(count_in(1, UINT64_MAX));
    cmd.add_flag("--shuffle", shuffle, "shuffle the prompts with --seed before --limit");
    cmd.add_option("--format", format,
                   "answers format: jsonl, alpaca_eval or mt_bench (default: the prompt set's)");
    cmd.add_flag("--raw", raw, "send the prompt text as is, without the chat template");
    cmd.add_option(
        "--tokenizer", tokenizer,
        "folder with tokenizer.json and the chat template (default: the model's folder)");
    cmd.add_option("--chat-template", template_name, "named chat template to use")
        ->capture_default_str();
  }
  cmd.add_flag("--progress", progress, "progress on stderr even when it is not a terminal");
  cmd.add_flag("--no-progress", no_progress, "no progress line");
  auto& s = gen.sampling;
  cmd.add_option("--temperature", s.temperature, "0 = greedy")
      ->capture_default_str()
      ->check(real_in(0, 1e4));
  cmd.add_option("--top-k", s.top_k, "0 = off")
      ->capture_default_str()
      ->check(count_in(0, INT32_MAX));
  cmd.add_option("--top-p", s.top_p, "1 = off")->capture_default_str()->check(real_in(0, 1, true));
  cmd.add_option("--min-p", s.min_p, "0 = off")->capture_default_str()->check(real_in(0, 1));
  presence_option = cmd.add_option("--presence-penalty", s.presence_penalty,
                                   "sampling only, unless given (--greedy: 0)")
                        ->capture_default_str()
                        ->check(real_in(-1e4, 1e4));
  frequency_option = cmd.add_option("--frequency-penalty", s.frequency_penalty,
                                    "sampling only, unless given (--greedy: 0)")
                         ->capture_default_str()
                         ->check(real_in(-1e4, 1e4));
  cmd.add_option("--repetition-penalty", s.repetition_penalty, "1 = off")
      ->capture_default_str()
      ->check(real_in(0, 1e4, true));
  cmd.add_option("--seed", s.seed, "sampling seed (and --shuffle's)")
      ->capture_default_str()
      ->check(count_in(0, UINT64_MAX));
  cmd.add_flag("--greedy", greedy,
               "argmax decoding (same as --temperature 0): the model's most likely token; the "
               "default penalties are off then, and apply only when given explicitly");
  cmd.add_option("--max-new-tokens", gen.max_new_tokens)
      ->capture_default_str()
      ->check(count_in(1, kMaxNewTokens));
  cmd.add_option(
         "--stop-token-ids", stop_ids,
         "stop after any of these (default: eos ids of generation_config.json / config.json "
         "and the chat template's end-of-turn token)")
      ->delimiter(',')
      ->check(count_in(0, INT32_MAX));
  cmd.add_flag("--ignore-eos", ignore_eos, "do not stop at eos");
  cmd.add_option("--max-context", gen.context_length,
                 "tokens a sequence may reach, prompt included (default: max_position_embeddings; "
                 "for dynamic rope, times its factor)")
      ->check(count_in(1, kMaxContext));
  cmd.add_option("--batch-size", gen.max_batch, "sequences decoded together")
      ->capture_default_str()
      ->check(count_in(1, 4096));
}

void GenerationArgs::finish() {
  if (greedy) gen.sampling.temperature = 0;
  if (gen.sampling.temperature == 0) {
    // Argmax means the model's argmax: the paper's default penalties are for sampling, and are
    // kept under greedy decoding only when given on the command line.
    if (presence_option && presence_option->count() == 0) gen.sampling.presence_penalty = 0;
    if (frequency_option && frequency_option->count() == 0) gen.sampling.frequency_penalty = 0;
  }
  validate(gen.sampling);
  if (gen.max_new_tokens == 0) usage_fail("--max-new-tokens must be at least 1");
  if (gen.max_batch == 0) usage_fail("--batch-size must be at least 1");
}

PromptSet GenerationArgs::read_prompts() const {
  PromptSet set = read_prompt_set(prompts_file);
  std::optional<size_t> n;
  if (limit_option && limit_option->count() > 0) {
    if (limit == 0) usage_fail("--limit must be at least 1");
    n = limit;
  }
  select_prompts(set, n, shuffle, gen.sampling.seed);
  return set;
}

bool GenerationArgs::show_progress() const {
  return progress || (!no_progress && StatusLine::stderr_is_terminal());
}

void BackendArgs::add_to(CLI::App& cmd, const std::string& what, bool scoring) {
  if (scoring)
    cmd.add_option("--score-api", score_api,
                   "openai scoring: pooling (vLLM's /pooling) or classify (/classify); both ask "
                   "for the raw logit")
        ->capture_default_str();
  cmd.add_option("--backend", backend,
                 "local (the built-in engine) or openai (OpenAI-compatible servers) for " + what)
      ->capture_default_str();
  cmd.add_option("--endpoint", endpoints,
                 "openai: server base URL, e.g. http://127.0.0.1:8000 (repeat to spread the work)");
  cmd.add_option("--api-key-env", api_key_env,
                 "openai: environment variable holding the API key (sent as a Bearer token)");
  cmd.add_option("--model-name", model_name,
                 "openai: the served model's name (default: the first of GET /v1/models)");
  cmd.add_option("--parallel", parallel, "openai: requests in flight")
      ->capture_default_str()
      ->check(count_in(1, 1024));
  cmd.add_option("--request-timeout", request_timeout, "openai: seconds per request attempt")
      ->capture_default_str()
      ->check(real_in(0, kMaxSeconds, true));
  cmd.add_option("--max-retries", max_retries,
                 "openai: retries on 429, 5xx, timeouts and dropped connections")
      ->capture_default_str()
      ->check(count_in(0, 100));
}

bool BackendArgs::remote() const {
  if (backend == "openai") return true;
  if (backend != "local") usage_fail("--backend ", backend, ": expected local or openai");
  if (!endpoints.empty()) usage_fail("--endpoint needs --backend openai");
  return false;
}

std::string BackendArgs::api_key() const {
  if (api_key_env.empty()) return "";
  const char* value = std::getenv(api_key_env.c_str());
  if (!value || !*value)
    fail("--api-key-env ", api_key_env, ": the environment variable is not set");
  return value;
}

std::vector<Endpoint> BackendArgs::endpoint_list() const {
  const std::string key = api_key();
  std::vector<Endpoint> list;
  for (const auto& e : endpoints) list.push_back({e, key});
  return list;
}

ClientOptions BackendArgs::client_options(uint64_t seed) const {
  ClientOptions o = ClientOptions::from_environment();
  if (parallel == 0) usage_fail("--parallel must be at least 1");
  if (!(request_timeout > 0)) usage_fail("--request-timeout must be positive");
  if (max_retries < 0) usage_fail("--max-retries must be >= 0");
  o.parallel = parallel;
  o.timeout_s = request_timeout;
  o.max_retries = max_retries;
  o.seed = seed;
  if (score_api == "pooling")
    o.score_api = ScoreApi::kPooling;
  else if (score_api == "classify")
    o.score_api = ScoreApi::kClassify;
  else
    usage_fail("--score-api ", score_api, ": expected pooling or classify");
  return o;
}

}  // namespace expo::cli
