// expo search: choose alpha by reward. For each candidate alpha: the extrapolated model answers
// the prompt set (built-in engine, or a server expo starts per candidate), the reward model
// scores the answers, and the best mean reward wins; a report (table and plot) goes to D.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/option_ranges.h"
#include "cli/search_command.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/progress.h"
#include "core/staging_dir.h"
#include "core/units.h"
#include "eval/answers.h"
#include "eval/report.h"
#include "eval/search.h"
#include "merge/alpha_rules.h"
#include "pipeline/search_run.h"

namespace expo::cli {

namespace {

namespace fs = std::filesystem;

std::string duration_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  if (s < 60) return str(s, "s");
  if (s < 3600) return str(s / 60, "m", (s % 60 < 10 ? "0" : ""), s % 60, "s");
  return str(s / 3600, "h", (s % 3600) / 60 < 10 ? "0" : "", (s % 3600) / 60, "m");
}

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// Progress on stderr: a line per finished alpha (always), and while an alpha runs a status line
// (on a terminal or with --progress) with the stage, prompts, tokens/s and ETA.
class SearchProgressPrinter {
 public:
  explicit SearchProgressPrinter(bool redraw) : line_(redraw) {}
  ~SearchProgressPrinter() { line_.clear(); }

  void set_total(size_t total) { total_ = total; }

  void stage(const PipelineProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (p.alpha != current_alpha_ || !alpha_started_) {
      current_alpha_ = p.alpha;
      alpha_started_ = true;
      alpha_start_ = now;
    }
    if (!line_.due()) return;
    const double in_alpha = std::chrono::duration<double>(now - alpha_start_).count();
    // The time one alpha takes: the mean of the finished ones, else this one's extrapolated.
    const double per_alpha = evaluated_          ? seconds_ / evaluated_
                             : p.fraction > 0.05 ? in_alpha / p.fraction
                                                 : NAN;
    const double left_here = std::max(0.0, per_alpha * (1 - p.fraction));
    const double left_after =
        per_alpha * static_cast<double>(total_ > done_ + 1 ? total_ - done_ - 1 : 0);
    line_.draw(str("alpha ", format_alpha(p.alpha), " [", done_ + 1, "/", estimated_ ? "~" : "",
                   std::max(total_, done_ + 1), "]: ", p.stage, p.detail.empty() ? "" : " ",
                   p.detail, ", ETA ", duration_text(left_here + left_after)));
  }

  void finished(const SearchProgress& s, bool estimated) {
    estimated_ = estimated;
    done_ = s.done;
    total_ = s.total;
    const auto now = std::chrono::steady_clock::now();
    double took = 0;
    if (!s.resumed && alpha_started_) {
      took = std::chrono::duration<double>(now - alpha_start_).count();
      seconds_ += took;
      ++evaluated_;
    }
    alpha_started_ = false;
    const AlphaSummary& m = *s.summary;
    line_.print_line(str(
        "alpha ", format_alpha(s.alpha), " [", s.done, "/", estimated ? "~" : "", s.total,
        "]: reward ", fixed(m.mean_reward, 4), " +- ", fixed(m.reward_se, 4),
        ", win rate vs alpha 0 ", fixed(100 * m.win_rate, 1), "%, ", fixed(m.mean_answer_tokens, 1),
        " tokens, ", m.failed, " failed, ", m.truncated, " truncated",
        s.resumed ? " (from results.jsonl)" : str(" (", duration_text(took), ")")));
  }

  // A line of its own, above the progress line.
  void print_line(const std::string& line) { line_.print_line(line); }

 private:
  StatusLine line_;
  bool estimated_ = false, alpha_started_ = false;
  size_t done_ = 0, total_ = 0, evaluated_ = 0;
  double seconds_ = 0, current_alpha_ = -1;
  std::chrono::steady_clock::time_point alpha_start_;
};

std::vector<double> parse_search_alphas(const std::string& text) {
  std::vector<double> alphas;
  for (const auto& a : parse_alpha_list(text)) {
    if (!(a.value >= 0))
      usage_fail("--alphas: ", a.text,
                 " is negative; search alphas are >= 0 (0 is the aligned model)");
    alphas.push_back(a.value);
  }
  return alphas;
}

}  // namespace

SearchOutcome run_search_command(SearchArgs& args) {
  if (args.sft.empty() || args.aligned.empty())
    usage_fail("give --sft DIR (theta0) and --aligned DIR (theta1)");
  if (args.reward_model.empty())
    usage_fail(
        "give --reward-model DIR (a reward model folder; with --reward-endpoint, its served name)");
  if (args.g.prompts_file.empty())
    usage_fail("give --prompts FILE (JSONL, AlpacaEval JSON or MT-Bench question.jsonl)");
  if (args.output_dir.empty()) usage_fail("give --output-dir D (results, answers, report)");
  if (!args.alphas.empty() && args.auto_search)
    usage_fail("give --alphas LIST or --auto, not both");
  const bool grid = !args.alphas.empty();
  const std::vector<double> alphas =
      grid ? parse_search_alphas(args.alphas) : std::vector<double>{};
  if (!grid) {
    if (!(args.auto_options.tol > 0))
      usage_fail("--tol must be positive (relative width, e.g. 0.1)");
    if (args.auto_options.max_evaluations < 2) usage_fail("--max-evals must be at least 2");
  }
  args.g.finish();
  const bool remote = args.backend.remote();
  if (remote && args.serve.empty() && args.backend.endpoints.empty())
    usage_fail(
        "--backend openai needs --serve 'COMMAND' (a server per candidate, e.g. 'vllm serve "
        "{model} --port {port}') or --endpoint URL");
  if (!remote && !args.serve.empty()) usage_fail("--serve needs --backend openai");
  if (remote && !args.backend.endpoints.empty() && args.serve.empty() &&
      args.backend.model_name.find("{alpha}") == std::string::npos)
    usage_fail(
        "--endpoint sends every candidate to servers that are already running, so each "
        "candidate needs its own served name: --model-name 'NAME-{alpha}' (alpha 0 is the "
        "aligned model); or use --serve 'COMMAND' to start a server per candidate");
  if (!args.write_best.empty()) {
    check_output_target(args.write_best, false);
    check_can_create(args.write_best, "--write-best");
  }
  check_can_create(args.output_dir, "--output-dir");

  const fs::path dir(args.output_dir);
  if (fs::exists(dir) && !fs::is_directory(dir))
    fail("--output-dir ", dir.string(), ": exists and is not a folder");

  SearchRunOptions run;
  SearchPipelineOptions& o = run.pipeline;
  o.sft = args.sft;
  o.aligned = args.aligned;
  o.base = args.base;
  o.reward_model = args.reward_model;
  o.out_dir = dir;
  o.prompts = args.g.read_prompts();
  o.answer_format = args.g.format.empty() ? default_answer_format(o.prompts.format)
                                          : parse_answer_format(args.g.format);
  o.gen = args.g.gen;
  o.stop_ids = args.g.stop_ids;
  o.ignore_eos = args.g.ignore_eos;
  o.raw = args.g.raw;
  o.tokenizer = args.g.tokenizer;
  o.template_name = args.g.template_name;
  o.allow_nonfinite = args.allow_nonfinite;
  o.threads = args.threads;
  if (remote) {
    o.endpoints = args.backend.endpoint_list();
    o.serve_command = args.serve;
    o.served_model_name = args.backend.model_name;
  }
  o.serve_timeout_s = args.serve_timeout;
  o.keep_candidates = args.keep;
  o.client = args.backend.client_options(args.g.gen.sampling.seed);
  for (const auto& e : args.reward_endpoints)
    o.reward_endpoints.push_back({e, args.backend.api_key()});
  o.resume = args.resume;
  run.alphas = alphas;
  run.auto_options = args.auto_options;
  run.write_best = args.write_best;
  run.invocation = args.invocation;

  const size_t prompt_count = o.prompts.prompts.size();
  const std::string prompt_path = o.prompts.path.string();
  const std::string prompt_format = prompt_format_name(o.prompts.format);
  const std::string backend =
      remote ? (args.serve.empty() ? "openai endpoints" : "a server per candidate (--serve)")
             : "built-in engine";
  run.report_details = {
      str(args.base.empty() ? "" : "base: `" + args.base + "`; ", "SFT (theta0): `", args.sft,
          "`; aligned (theta1): `", args.aligned, "`"),
      str("reward model: `", args.reward_model, "`"),
      str("prompts: `", prompt_path, "` (", prompt_format, ", ", prompt_count, " prompts)"),
      str("sampling: temperature ", args.g.gen.sampling.temperature, ", top_p ",
          args.g.gen.sampling.top_p, ", top_k ", args.g.gen.sampling.top_k, ", presence penalty ",
          args.g.gen.sampling.presence_penalty, ", frequency penalty ",
          args.g.gen.sampling.frequency_penalty, ", seed ", args.g.gen.sampling.seed,
          ", max new tokens ", args.g.gen.max_new_tokens),
      str("backend: ", remote ? (args.serve.empty() ? "openai endpoints"
                                                    : "openai, --serve `" + args.serve + "`")
                              : "built-in engine"),
      str("answers and rewards per alpha: `", dir.string(), "/alpha-<alpha>/`; results: `",
          (dir / "results.jsonl").string(), "`"),
  };

  std::fprintf(stderr, "expo search: %zu prompts from %s, %s, up to %llu new tokens, %s\n",
               prompt_count, prompt_path.c_str(),
               grid ? str(alphas.size(), " alphas").c_str() : "auto search",
               static_cast<unsigned long long>(o.gen.max_new_tokens), backend.c_str());

  SearchProgressPrinter printer(args.g.show_progress());
  // --auto: alpha 0, the scan and a typical refinement until the search says more.
  printer.set_total(grid ? alphas.size() : 1 + args.auto_options.scan.size() + 6);
  SearchRunEvents events;
  events.warning = [&](const std::string& w) { printer.print_line("warning: " + w); };
  events.stage = [&](const PipelineProgress& p) { printer.stage(p); };
  events.alpha_done = [&](const SearchProgress& s) { printer.finished(s, !grid); };
  const SearchRunResult result = run_search(std::move(run), events);
  const SearchOutcome& outcome = result.outcome;

  if (args.quiet) return outcome;
  std::printf("%s\n", format_table(outcome.summaries, outcome.best_alpha).c_str());
  std::printf(
      "best alpha: %s (%s search, %zu alphas, %zu evaluated now, %zu from results.jsonl; %s)\n",
      format_alpha(outcome.best_alpha).c_str(), outcome.method.c_str(), outcome.results.size(),
      outcome.evaluated, outcome.resumed, outcome.stop_reason.c_str());
  std::printf("report: %s\nplot:   %s%s\n", result.report.markdown.c_str(),
              result.report.svg.c_str(),
              result.report.png ? str("\n        ", result.report.png->string()).c_str() : "");
  std::fprintf(stderr, "search took %s\n", duration_text(result.seconds).c_str());
  if (!args.write_best.empty())
    std::printf("best model: %s (alpha %s)\n", args.write_best.c_str(),
                format_alpha(outcome.best_alpha).c_str());
  return outcome;
}

void add_search_command(CLI::App& app, const std::string& invocation) {
  auto args = std::make_shared<SearchArgs>();
  auto* cmd = app.add_subcommand(
      "search",
      "Choose alpha by reward: for each candidate alpha, the extrapolated model answers the\n"
      "prompts, the reward model scores the answers, and the best mean reward wins. Alpha 0 (the\n"
      "aligned model) is the baseline. Results go to D/results.jsonl as each alpha finishes\n"
      "(--resume continues), answers and rewards to D/alpha-<alpha>/, the table and plot to\n"
      "D/report.md.\n"
      "Examples: expo search --sft ./sft --aligned ./dpo --reward-model ./rm --prompts p.jsonl \\\n"
      "              --alphas 0,0.1,0.2,0.3,0.5 --output-dir runs/search\n"
      "          expo search ... --auto --write-best ./expo-best\n"
      "          expo search ... --backend openai --serve 'vllm serve {model} --port {port}'");
  cmd->add_option("--sft", args->sft, "theta0: the SFT checkpoint (with --base: an adapter)");
  cmd->add_option("--aligned", args->aligned,
                  "theta1: the aligned (DPO/RLHF) checkpoint, or a PEFT LoRA adapter trained on "
                  "--sft");
  cmd->add_option("--base", args->base,
                  "the model --sft and --aligned (both LoRA adapters) were trained on");
  cmd->add_option("--reward-model", args->reward_model,
                  "reward model folder (*ForSequenceClassification or InternLM2ForRewardModel), or "
                  "its served name with "
                  "--reward-endpoint");
  cmd->add_option("--output-dir", args->output_dir, "folder for results, answers and the report");
  cmd->add_option("--alphas", args->alphas,
                  "a grid of alphas, e.g. 0,0.1,0.2,0.3,0.5 (0 is added)");
  cmd->add_flag("--auto", args->auto_search,
                "log-scale scan over 0.1..25, then golden-section refinement (the default "
                "without --alphas)");
  cmd->add_option("--tol", args->auto_options.tol,
                  "--auto: stop when the bracket is within this relative width")
      ->capture_default_str()
      ->check(real_in(0, 100, true));
  cmd->add_option("--max-evals", args->auto_options.max_evaluations,
                  "--auto: most alphas to evaluate, alpha 0 included")
      ->capture_default_str()
      ->check(count_in(2, 1000));
  cmd->add_flag("--resume", args->resume,
                "continue an interrupted search in the same --output-dir");
  cmd->add_option("--write-best", args->write_best, "write the best model to this folder");
  args->g.add_to(*cmd, true);
  args->backend.add_to(*cmd, "generation", true);
  cmd->add_option("--serve", args->serve,
                  "openai: command that serves a candidate; {model} is its folder, {port} a free "
                  "port, {host} 127.0.0.1, {alpha} the alpha. Example: 'vllm serve {model} --port "
                  "{port}' or 'expo serve --model {model} --port {port}'. With a LoRA adapter as "
                  "--aligned, {model} is the SFT folder and {adapter} the candidate written as a "
                  "scaled adapter: 'vllm serve {model} --enable-lora --lora-modules "
                  "expo={adapter} --port {port}' with --model-name expo");
  cmd->add_option("--serve-timeout", args->serve_timeout,
                  "seconds to wait for a started server to answer /health or /v1/models")
      ->capture_default_str()
      ->check(real_in(0, kMaxSeconds, true));
  cmd->add_flag("--keep", args->keep, "--serve: keep the candidate folders expo writes");
  cmd->add_option("--reward-endpoint", args->reward_endpoints,
                  "score through this reward server's pooling API instead of the built-in engine "
                  "(repeatable)");
  cmd->add_flag("--allow-nonfinite", args->allow_nonfinite,
                "carry NaN/Inf weights through extrapolation");
  add_threads_option(*cmd, args->threads);
  cmd->callback([args, invocation] {
    args->invocation = invocation;
    run_search_command(*args);
  });
}

}  // namespace expo::cli
