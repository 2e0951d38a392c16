// expo score: a reward per answer, from a reward model on the built-in engine or on an
// OpenAI-compatible pooling server, and a summary.
#include <cmath>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/generation_args.h"
#include "cli/option_ranges.h"
#include "core/atomic_write.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/progress.h"
#include "core/staging_dir.h"
#include "eval/alpha_stats.h"
#include "eval/answers.h"
#include "model/model_source.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "pipeline/reward_scores.h"
#include "text/prompt_encoder.h"

namespace expo::cli {

namespace {

struct ScoreArgs {
  std::string reward_model, adapter, answers, output, prompts, summary, tokenizer;
  BackendArgs backend;
  size_t threads = 0;
  bool progress = false, no_progress = false;
};

std::string number(double v, const char* format = "%.4f") {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

void run(const ScoreArgs& args) {
  if (args.answers.empty())
    fail("give --answers FILE (an answers file from expo generate, AlpacaEval or MT-Bench)");
  if (args.output.empty()) fail("give --output FILE (the rewards, one JSON line per answer)");
  const bool remote = args.backend.remote();
  if (args.reward_model.empty())
    fail(remote ? "give --reward-model NAME (the reward model's name on the server)"
                : "give --reward-model DIR (a *ForSequenceClassification or "
                  "InternLM2ForRewardModel folder)");
  check_output_target(args.output, true);
  if (!args.summary.empty()) check_output_target(args.summary, true);

  AnswerSet set = read_answers(args.answers);
  if (!args.prompts.empty()) {
    attach_prompts(set, read_prompt_set(args.prompts));
  } else if (set.format == AnswerFormat::kMtBench) {
    fail(args.answers, ": MT-Bench answers hold only question ids; give --prompts question.jsonl");
  }
  const bool show = args.progress || (!args.no_progress && StatusLine::stderr_is_terminal());

  std::vector<double> rewards;
  std::vector<std::string> warnings;
  std::unique_ptr<Tokenizer> counter;
  if (!args.tokenizer.empty())
    counter = std::make_unique<Tokenizer>(Tokenizer::load(args.tokenizer));
  if (remote) {
    if (args.backend.endpoints.empty()) usage_fail("--backend openai needs --endpoint URL");
    if (!args.adapter.empty())
      usage_fail(
          "--adapter applies a LoRA adapter to the built-in engine's --reward-model; a "
          "server loads its own adapters");
    OpenAIClient client(args.backend.endpoint_list(), args.backend.client_options(0));
    Progress progress("score", set.answers.size(), 0, show, "answers");
    rewards = score_answers_remote(client, args.reward_model, set.answers,
                                   [&](size_t) { progress.add(1, 0); });
    progress.finish();
  } else {
    ThreadPool pool(args.threads);
    ModelSource source = args.adapter.empty()
                             ? ModelSource::open(args.reward_model)
                             : ModelSource::with_adapter(args.reward_model, args.adapter);
    for (const auto& w : source.pair_warnings())
      std::fprintf(stderr, "expo: warning: %s\n", w.c_str());
    LocalRewardModel rm = LocalRewardModel::load(std::move(source), pool);
    Progress progress("score", set.answers.size(), 0, show, "answers");
    size_t last = 0;
    rewards = score_answers_local(rm, set.answers, pool, warnings, [&](size_t done) {
      progress.add(done - last, 0);
      last = done;
    });
    progress.finish();
    if (!counter) counter = std::make_unique<Tokenizer>(rm.encoder->tokenizer());
  }
  for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());

  const AlphaResult result = answers_result(0, set.answers, rewards, counter.get());
  write_rewards(args.output, set.answers, result);
  const AlphaSummary s = summarize(result, nullptr);
  if (!args.summary.empty()) {
    nlohmann::ordered_json j = summary_to_json(s);
    j.erase("win_rate_vs_alpha0");
    j.erase("paired");
    j["answers"] = args.answers;
    j["reward_model"] = args.reward_model;
    write_file_atomically(args.summary, j.dump(2) + "\n");
  }
  std::printf("answers:       %zu (%zu scored, %zu failed, %zu truncated)\n", s.prompts, s.scored,
              s.failed, s.truncated);
  std::printf("mean reward:   %s +- %s (standard error)\n", number(s.mean_reward).c_str(),
              number(s.reward_se).c_str());
  std::printf("mean length:   %s tokens, %s characters\n",
              number(s.mean_answer_tokens, "%.1f").c_str(),
              number(s.mean_answer_chars, "%.1f").c_str());
  std::printf("rewards:       %s\n", args.output.c_str());
}

}  // namespace

void add_score_command(CLI::App& app) {
  auto args = std::make_shared<ScoreArgs>();
  auto* cmd = app.add_subcommand(
      "score",
      "Score answers with a reward model: the reward model reads each conversation rendered with\n"
      "its own chat template (BOS never doubled). Writes one line per answer {\"id\", \"reward\",\n"
      "\"answer_tokens\", \"answer_chars\", \"finish_reason\"} and prints the mean reward, its\n"
      "standard error and the mean answer length.\n"
      "Examples: expo score --reward-model ./rm --answers answers.jsonl --output rewards.jsonl\n"
      "          expo score --backend openai --endpoint http://127.0.0.1:8001 --reward-model rm "
      "\\\n"
      "              --answers model_outputs.json --output rewards.jsonl");
  cmd->add_option("--reward-model", args->reward_model,
                  "reward model folder (local), or its served name (--backend openai)");
  cmd->add_option("--adapter", args->adapter,
                  "a PEFT LoRA adapter of the reward model (e.g. task_type SEQ_CLS, its score "
                  "head in modules_to_save), applied on load");
  cmd->add_option("--answers", args->answers,
                  "answers: expo JSONL, AlpacaEval model_outputs.json or MT-Bench answer JSONL");
  cmd->add_option("--output", args->output, "rewards file (JSONL, one line per answer)");
  cmd->add_option("--prompts", args->prompts,
                  "the prompt set the answers answer (needed for MT-Bench answer files)");
  cmd->add_option("--summary", args->summary, "also write the summary as JSON to this file");
  cmd->add_option("--tokenizer", args->tokenizer,
                  "tokenizer folder to count answer tokens with when the answers file has no "
                  "counts (default: the reward model's)");
  add_threads_option(*cmd, args->threads);
  args->backend.add_to(*cmd, "scoring (vLLM's /pooling API)", true);
  cmd->add_flag("--progress", args->progress, "progress on stderr even when it is not a terminal");
  cmd->add_flag("--no-progress", args->no_progress, "no progress line");
  cmd->callback([args] { run(*args); });
}

}  // namespace expo::cli
