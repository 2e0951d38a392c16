#include "pipeline/search_pipeline.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/thread_pool.h"
#include "eval/report.h"
#include "gguf/gguf_pair.h"
#include "io/checkpoint.h"
#include "merge/alpha_rules.h"
#include "merge/expo_pair.h"
#include "merge/extrapolate.h"
#include "merge/plan.h"
#include "model/model_source.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "pipeline/local_answers.h"
#include "pipeline/remote_answers.h"
#include "pipeline/reward_scores.h"
#include "pipeline/run_fingerprint.h"
#include "pipeline/server_process.h"
#include "text/prompt_encoder.h"

namespace expo {

namespace fs = std::filesystem;

struct SearchPipeline::Impl {
  SearchPipelineOptions o;
  ThreadPool pool;
  // The pair and how its tensors match, read once (the plans point into the pair).
  std::shared_ptr<const ExpoPair> pair;
  std::shared_ptr<const Plan> plan;
  // With an adapter as aligned and --serve: the candidates are scaled adapters.
  std::shared_ptr<const Plan> adapter_plan;
  // The same, checked for the built-in engine (local generation only): the candidates are
  // loaded from it, alpha 0 from its aligned model alone.
  ModelSource policy, aligned_policy;
  ModelConfig policy_config;
  fs::path aligned_folder;    // the aligned model's, or adapter's, folder
  fs::path tokenizer_folder;  // the policy's tokenizer (ExpoPair::tokenizer_folder)
  std::unique_ptr<PromptEncoder> policy_encoder;
  // Reward model on the built-in engine...
  std::unique_ptr<LocalRewardModel> reward_model;
  // ...or on servers.
  std::unique_ptr<OpenAIClient> reward_client;
  std::vector<std::string> warnings;
  Fingerprint fingerprint;
  std::function<void(const PipelineProgress&)> on_progress;

  explicit Impl(SearchPipelineOptions options) : o(std::move(options)), pool(o.threads) {}

  bool gguf_pair() const { return pair && pair->model().gguf().has_value(); }

  bool local_generation() const { return o.endpoints.empty() && o.serve_command.empty(); }

  // The model (or, for --serve with an adapter, the scaled adapter) of `alpha` into `dir`.
  void write(double alpha, const fs::path& dir, const std::string& command_line, bool adapter) {
    if (gguf_pair()) {  // written as GGUF, as `expo extrapolate` writes a GGUF pair
      GgufExportOptions g;
      if (dir.extension() == ".gguf") {
        g.output = dir;
      } else {
        fs::create_directories(dir);
        g.output = dir / "model.gguf";
      }
      g.allow_nonfinite = o.allow_nonfinite;
      g.alpha_text = format_alpha(alpha);
      g.sources = {{"sft", o.sft}, {"aligned", o.aligned}};
      extrapolate_gguf_pair(o.sft, o.aligned, alpha, g);
      return;
    }
    ExtrapolateOptions options;
    options.outputs.push_back({dir, AlphaValue{alpha, format_alpha(alpha)}});
    options.allow_nonfinite = o.allow_nonfinite;
    options.command_line = command_line;
    extrapolate_checkpoints(pair->sources(adapter), adapter ? *adapter_plan : *plan, options, pool);
  }

  void report(double alpha, const std::string& stage, double fraction, const std::string& detail) {
    if (on_progress) on_progress({alpha, stage, fraction, detail});
  }
};

SearchPipeline::SearchPipeline(SearchPipelineOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  Impl& m = *impl_;
  auto& o = m.o;
  if (o.prompts.prompts.empty()) fail(o.prompts.path.string(), ": no prompts");
  if (!o.endpoints.empty() && !o.serve_command.empty())
    fail("give --endpoint (servers already running) or --serve (a server per candidate), not both");
  PairSpec spec;
  spec.sft = o.sft;
  spec.aligned = o.aligned;
  spec.base = o.base;
  m.pair = ExpoPair::open(spec);
  for (const auto& w : m.pair->warnings()) m.warnings.push_back(w);
  if (m.pair->form() == ExpoPair::Form::kCheckpoints &&
      m.pair->sft_checkpoint()->architecture() != m.pair->aligned_checkpoint()->architecture())
    fail("--sft ", o.sft, " is ", m.pair->sft_checkpoint()->architecture(), " but --aligned ",
         o.aligned, " is ", m.pair->aligned_checkpoint()->architecture());
  // Every tensor pairs up (names, shapes, dtypes) before any alpha is evaluated.
  m.plan = std::make_shared<const Plan>(m.pair->plan(PlanOptions{}));
  const bool serve_adapters = m.pair->form() == ExpoPair::Form::kAdapter;
  if (!o.serve_command.empty()) {
    if (serve_adapters)
      m.adapter_plan = std::make_shared<const Plan>(m.pair->adapter_output_plan(PlanOptions{}));
    else if (o.serve_command.find("{adapter}") != std::string::npos)
      fail("--serve: {adapter} needs --aligned to be a PEFT LoRA adapter over --sft",
           m.pair->form() == ExpoPair::Form::kTwoAdapters
               ? " (with --base, each candidate is a full model: use {model})"
               : "");
  }
  m.aligned_folder = m.pair->aligned_adapter() ? m.pair->aligned_adapter()->folder()
                     : m.gguf_pair()           ? fs::path(o.aligned)  // the file a server loads
                                               : m.pair->model().folder();
  m.tokenizer_folder = m.pair->tokenizer_folder();
  m.policy_config = read_model_config(m.pair->model());
  if (m.policy_config.is_reward_model)
    fail(o.aligned, ": ", m.policy_config.architecture,
         " is a reward model; --sft and --aligned must be generative (*ForCausalLM) models");
  if (m.plan->identical)
    fail(*m.plan->identical,
         "; a search needs two different models: the SFT checkpoint as --sft and the aligned "
         "(DPO/RLHF) one as --aligned");
  if (m.local_generation()) {
    m.policy = ModelSource::from_pair(m.pair, m.plan);
    m.aligned_policy = m.policy.aligned_only();
  }
  const fs::path tokenizer = o.tokenizer.empty() ? m.tokenizer_folder : fs::path(o.tokenizer);
  if (tokenizer.empty())
    fail(
        "the aligned model is a lone .safetensors file: give --tokenizer DIR (a folder with "
        "tokenizer.json)");
  m.policy_encoder = std::make_unique<PromptEncoder>(tokenizer, o.template_name);
  o.gen.stop_ids = default_stop_ids(o.stop_ids, o.ignore_eos, m.policy_config.eos_token_ids,
                                    m.policy_encoder->stop_ids());

  // Every first turn encodes and fits the context (the local engine's; a server has its own).
  if (m.local_generation()) {
    const uint64_t context =
        o.gen.context_length ? o.gen.context_length : model_context_length(m.policy_config);
    for (const auto& p : o.prompts.prompts) {
      std::vector<int32_t> tokens;
      try {
        tokens = encode_prompt_turn(*m.policy_encoder, p, 0, {}, o.raw);
      } catch (const Error& e) {
        fail(o.prompts.path.string(), ": prompt ", p.id_text, ": ", e.what());
      }
      if (tokens.size() >= context)
        fail(o.prompts.path.string(), ": prompt ", p.id_text, " is ", tokens.size(),
             " tokens, which leaves no room for an answer in the context of ", context);
    }
  }

  Fingerprint& f = m.fingerprint;
  add_version_setting(f);
  for (const auto& [option, checkpoint] : m.pair->inputs())
    add_checkpoint_setting(f, option, *checkpoint);
  add_adapter_settings(f, *m.pair);
  add_prompt_settings(f, o.prompts);
  add_generation_settings(f, o.gen);
  add_tokenizer_setting(f, "--tokenizer", tokenizer);
  f.add("--chat-template", o.template_name);
  f.add("--raw", o.raw ? "yes" : "no");
  auto urls = [](const std::vector<Endpoint>& endpoints) {
    std::string list;
    for (const auto& e : endpoints) {
      if (!list.empty()) list += ' ';
      list += e.base_url;
    }
    return list;
  };
  if (m.local_generation()) {
    f.add("generation", "built-in engine");
  } else {
    f.add("generation", o.serve_command.empty() ? "--endpoint " + urls(o.endpoints)
                                                : "--serve " + o.serve_command);
    f.add("--model-name",
          o.served_model_name.empty() ? "(the first of /v1/models)" : o.served_model_name);
  }

  if (o.reward_endpoints.empty()) {
    ModelSource reward = ModelSource::open(o.reward_model);
    add_checkpoint_setting(f, "--reward-model", reward.checkpoint());
    if (!reward.folder().empty())
      add_tokenizer_setting(f, "reward model template", reward.folder());
    m.reward_model =
        std::make_unique<LocalRewardModel>(LocalRewardModel::load(std::move(reward), m.pool));
  } else {
    f.add("--reward-model", o.reward_model);
    f.add("--reward-endpoint", urls(o.reward_endpoints));
    f.add("--score-api", o.client.score_api == ScoreApi::kPooling ? "pooling" : "classify");
    m.reward_client = std::make_unique<OpenAIClient>(o.reward_endpoints, o.client);
  }
}

const Fingerprint& SearchPipeline::fingerprint() const { return impl_->fingerprint; }

SearchPipeline::~SearchPipeline() = default;

void SearchPipeline::set_progress(std::function<void(const PipelineProgress&)> on_progress) {
  impl_->on_progress = std::move(on_progress);
}

const std::vector<std::string>& SearchPipeline::warnings() const { return impl_->warnings; }

fs::path search_alpha_dir(const fs::path& out_dir, double alpha) {
  return out_dir / ("alpha-" + format_alpha(alpha));
}

fs::path SearchPipeline::alpha_dir(double alpha) const {
  return search_alpha_dir(impl_->o.out_dir, alpha);
}

void SearchPipeline::write_model(double alpha, const fs::path& dir,
                                 const std::string& command_line) {
  impl_->write(alpha, dir, command_line, false);
}

void SearchPipeline::write_adapter(double alpha, const fs::path& dir,
                                   const std::string& command_line) {
  impl_->write(alpha, dir, command_line, true);
}

namespace {

std::string rate_detail(size_t done, size_t total, uint64_t tokens, double seconds, size_t turn,
                        size_t turns) {
  std::string s = str(done, "/", total, " prompts");
  if (turns > 1) s += str(" (turn ", turn + 1, "/", turns, ")");
  s += str(", ", tokens, " tokens");
  if (seconds > 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, ", %.1f tok/s", tokens / seconds);
    s += buf;
  }
  return s;
}

// Answers left by an interrupted run, when they answer every prompt of the set, in order.
std::optional<std::vector<Answer>> complete_answers(const fs::path& path, const PromptSet& set) {
  if (!fs::exists(path)) return std::nullopt;
  try {
    AnswerSet answers = read_answers(path);
    attach_prompts(answers, set);
    if (answers.answers.size() != set.prompts.size()) return std::nullopt;
    for (size_t i = 0; i < set.prompts.size(); ++i) {
      if (answers.answers[i].prompt.id_text != set.prompts[i].id_text ||
          answers.answers[i].turns.size() != set.prompts[i].turn_count())
        return std::nullopt;
      answers.answers[i].prompt = set.prompts[i];
    }
    return std::move(answers.answers);
  } catch (const Error&) {
    return std::nullopt;
  }
}

}  // namespace

AlphaResult SearchPipeline::evaluate(double alpha) {
  Impl& m = *impl_;
  const auto& o = m.o;
  const fs::path dir = alpha_dir(alpha);
  fs::create_directories(dir);
  const std::string model_id =
      (m.gguf_pair() ? m.aligned_folder.stem() : m.aligned_folder.filename()).string() +
      "-expo-alpha" + format_alpha(alpha);
  const fs::path answers_path = dir / default_answer_file_name(o.answer_format, model_id);
  const auto& prompts = o.prompts.prompts;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };

  std::vector<Answer> answers;
  std::optional<std::vector<Answer>> reused;
  if (o.resume) reused = complete_answers(answers_path, o.prompts);
  if (reused) {
    answers = std::move(*reused);
    m.warnings.push_back(str("alpha ", format_alpha(alpha), ": reused the complete answers in ",
                             answers_path.string()));
  } else if (m.local_generation()) {
    m.report(alpha, alpha == 0 ? "loading" : "extrapolating", 0, "");
    // Alpha 0 is the aligned model read as is; the others are extrapolated from the pair.
    auto loaded = LoadedModel::load(alpha == 0 ? m.aligned_policy : m.policy, alpha,
                                    o.allow_nonfinite, m.pool);
    Transformer model(*loaded);
    generate_answers(
        model, *m.policy_encoder, prompts, o.gen, o.raw, m.pool, o.prompts.path.string(), answers,
        [&](const TurnProgress& p) {
          const double f =
              (p.turn + (p.stats.total ? double(p.stats.finished) / p.stats.total : 0)) / p.turns;
          m.report(alpha, "generating", 0.9 * f,
                   rate_detail(p.stats.finished, p.stats.total, p.stats.generated_tokens,
                               p.stats.seconds, p.turn, p.turns));
        });
  } else {
    std::unique_ptr<ServerProcess> server;
    std::vector<Endpoint> endpoints = o.endpoints;
    fs::path candidate;
    if (!o.serve_command.empty()) {
      // With an adapter as aligned, the server keeps the SFT model and loads each candidate
      // as a LoRA adapter; otherwise each candidate is a model folder.
      const bool adapters = m.adapter_plan != nullptr;
      std::string model_folder =
          adapters ? m.pair->model().folder().string() : m.aligned_folder.string();
      std::string adapter_folder = adapters ? m.aligned_folder.string() : "";
      if (alpha != 0) {
        m.report(alpha, "extrapolating", 0, "");
        candidate = o.out_dir / "candidates" /
                    ("alpha-" + format_alpha(alpha) + (m.gguf_pair() ? ".gguf" : ""));
        if (fs::exists(candidate)) fs::remove_all(candidate);  // left by an interrupted run
        fs::create_directories(candidate.parent_path());
        const std::string card = "expo search (candidate alpha " + format_alpha(alpha) + ")";
        if (adapters) {
          write_adapter(alpha, candidate, card);
          adapter_folder = candidate.string();
        } else {
          write_model(alpha, candidate, card);
          model_folder = candidate.string();
        }
      }
      const int port = free_loopback_port();
      std::map<std::string, std::string> values{{"model", model_folder},
                                                {"port", std::to_string(port)},
                                                {"host", "127.0.0.1"},
                                                {"alpha", format_alpha(alpha)}};
      if (adapters) values["adapter"] = adapter_folder;
      const std::string command = expand_command_template(o.serve_command, values);
      m.report(alpha, "starting server", 0.05, command);
      server = std::make_unique<ServerProcess>(command, dir / "server.log");
      const std::string url = "http://127.0.0.1:" + std::to_string(port);
      server->wait_ready(url, o.serve_timeout_s);
      endpoints = {Endpoint{url, o.endpoints.empty() ? "" : o.endpoints[0].api_key}};
    }
    OpenAIClient client(endpoints, o.client);
    std::string name =
        o.served_model_name.find('{') == std::string::npos
            ? o.served_model_name
            : expand_command_template(o.served_model_name, {{"alpha", format_alpha(alpha)}},
                                      "--model-name");
    if (name.empty()) {
      const auto models = client.models();
      if (models.empty())
        fail(endpoints[0].base_url, "/v1/models lists no model; give --model-name");
      name = models[0];
    }
    try {
      generate_answers_remote(
          client, name, prompts, o.gen.sampling, o.gen.max_new_tokens, answers,
          [&](const RemoteProgress& p) {
            m.report(alpha, "generating", 0.9 * (p.turn + double(p.done) / p.total) / p.turns,
                     rate_detail(p.done, p.total, p.completion_tokens, elapsed(), p.turn, p.turns));
          });
    } catch (const Error& e) {
      if (server && !server->running())
        fail(e.what(), "\nthe server exited (", server->exit_description(), "); end of ",
             (dir / "server.log").string(), ":\n", server->log_tail());
      throw;
    }
    if (server) server->stop();
    if (!candidate.empty() && !o.keep_candidates) {
      fs::remove_all(candidate);
      std::error_code ignored;
      fs::remove(candidate.parent_path(), ignored);  // D/candidates, when it is empty now
    }
  }
  AnswerWriteOptions wo;
  wo.generator = model_id;
  wo.answer_id_seed = o.gen.sampling.seed;
  write_answers(answers_path, answers, o.answer_format, wo);

  m.report(alpha, "scoring", 0.9, str(answers.size(), " answers"));
  std::vector<double> rewards;
  if (m.reward_model) {
    rewards = score_answers_local(*m.reward_model, answers, m.pool, m.warnings, [&](size_t done) {
      m.report(alpha, "scoring", 0.9 + 0.1 * done / answers.size(),
               str(done, "/", answers.size(), " answers"));
    });
  } else {
    rewards = score_answers_remote(*m.reward_client, o.reward_model, answers, [&](size_t done) {
      m.report(alpha, "scoring", 0.9 + 0.1 * done / answers.size(),
               str(done, "/", answers.size(), " answers"));
    });
  }
  AlphaResult result = answers_result(alpha, answers, rewards, &m.policy_encoder->tokenizer());
  write_rewards(dir / "rewards.jsonl", answers, result);
  return result;
}

}  // namespace expo
