// expo generate: continuations of token prompts with the built-in engine.
#include <cstdio>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/progress.h"
#include "core/units.h"
#include "model/generator.h"

namespace expo::cli {

namespace {

using nlohmann::json;

struct GenerateArgs {
  ModelOptions model;
  std::string tokens_file, output;
  GenerationOptions gen;
  std::vector<int32_t> stop_ids;
  bool ignore_eos = false;
  bool greedy = false;
  bool progress = false, no_progress = false;
};

struct Prompt {
  json id;
  size_t line;
};

// {"id": ..., "tokens": [...]} per line; blank lines are skipped. Errors name the line.
std::vector<GenerationRequest> read_token_prompts(const std::string& path, std::vector<Prompt>& meta) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open");
  std::vector<GenerationRequest> requests;
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      fail(where, ": not valid JSON (", e.what(), ")");
    }
    if (!j.is_object()) fail(where, ": expected an object {\"id\": ..., \"tokens\": [...]}");
    if (!j.contains("tokens") || !j["tokens"].is_array())
      fail(where, ": no \"tokens\" array");
    GenerationRequest r;
    for (const auto& t : j["tokens"]) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
        fail(where, ": \"tokens\" must hold non-negative integer token ids, found ", t.dump());
      r.prompt.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    r.stream = requests.size();
    meta.push_back({j.contains("id") ? j["id"] : json(requests.size()), number});
    requests.push_back(std::move(r));
  }
  if (in.bad()) fail(path, ": read error");
  if (requests.empty()) fail(path, ": no prompts (the file is empty)");
  return requests;
}

void run(GenerateArgs& args) {
  std::vector<Prompt> meta;
  const auto requests = read_token_prompts(args.tokens_file, meta);
  const WeightSource source = args.model.source();
  if (args.greedy) args.gen.sampling.temperature = 0;
  validate(args.gen.sampling);
  check_output_target(args.output, true);

  const Checkpoint probe = Checkpoint::open(source.extrapolate() ? source.aligned : source.model);
  ModelConfig config = read_model_config(probe);
  if (config.is_reward_model)
    fail(config.architecture, " is a reward model: it scores text and cannot generate; use a *ForCausalLM model");
  {
    uint64_t longest = 0;
    for (const auto& r : requests) longest = std::max<uint64_t>(longest, r.prompt.size());
    const uint64_t limit = args.gen.context_length ? args.gen.context_length : model_context_length(config);
    const uint64_t context = std::min(limit, longest + args.gen.max_new_tokens);
    const uint64_t slots = std::min<uint64_t>(args.gen.max_batch, requests.size());
    const uint64_t step = std::min<uint64_t>(args.gen.step_tokens + slots, slots * context);
    const uint64_t extra = slots * KvCache::bytes_for(config, context) +
                           step * (4 * config.hidden_size + 3 * config.intermediate_size +
                                   config.q_dim() + 2 * config.kv_dim()) * 4 +
                           slots * config.vocab_size * 4;
    args.model.check_memory(source, extra, "KV cache and activations");
  }

  ThreadPool pool(args.model.threads);
  const auto loaded = LoadedModel::load(source, pool);
  Transformer model(*loaded);
  args.gen.stop_ids = args.stop_ids;
  if (args.stop_ids.empty() && !args.ignore_eos) args.gen.stop_ids = loaded->config().eos_token_ids;
  check_requests(model, requests, args.gen, [&](size_t i) {
    return args.tokens_file + ":" + std::to_string(meta[i].line);
  });

  // Results go out as each prompt finishes, one flushed line each, so an interruption or a
  // later error loses nothing already generated.
  std::FILE* out = std::fopen(args.output.c_str(), "w");
  if (!out) fail(args.output, ": cannot create");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(out, std::fclose);
  const bool show = args.progress || (!args.no_progress && Progress::stderr_is_terminal());
  size_t written = 0;
  double last_draw = -1;
  try {
    generate(
        model, requests, args.gen, pool,
        [&](GenerationResult&& r) {
          json line{{"id", meta[r.request].id}, {"tokens", r.tokens}, {"finish_reason", r.finish_reason}};
          const std::string text = line.dump() + "\n";
          if (std::fwrite(text.data(), 1, text.size(), out) != text.size() || std::fflush(out) != 0)
            fail(args.output, ": write failed (disk full?)");
          ++written;
        },
        [&](const GenerationStats& s) {
          // At most four redraws a second, and always the last one.
          if (!show || (s.finished < s.total && s.seconds < last_draw + 0.25)) return;
          last_draw = s.seconds;
          std::fprintf(stderr, "\rgenerate: %llu/%llu prompts, %llu tokens, %.1f tok/s   ",
                       static_cast<unsigned long long>(s.finished), static_cast<unsigned long long>(s.total),
                       static_cast<unsigned long long>(s.generated_tokens),
                       s.seconds > 0 ? s.generated_tokens / s.seconds : 0.0);
        });
  } catch (const Error& e) {
    if (show) std::fputc('\n', stderr);
    fail(e.what(), " (", written, " of ", requests.size(), " results were written to ", args.output, ")");
  }
  if (show) std::fputc('\n', stderr);
  if (std::fclose(closer.release()) != 0) fail(args.output, ": write failed");
}
}  // namespace

void add_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  // Sampling defaults of the paper's evaluation (temperature 0.7, top_p 0.9, top_k 50, presence
  // and frequency penalty 0.1, seed 42); --greedy or --temperature 0 for argmax decoding.
  args->gen.sampling = SamplingParams{0.7, 50, 0.9, 0.0, 0.1, 0.1, 1.0, 42};
  args->gen.max_new_tokens = 2048;
  auto* cmd = app.add_subcommand(
      "generate",
      "Generate continuations of token prompts with the built-in engine (continuous batching).\n"
      "Input lines {\"id\": ..., \"tokens\": [...]}; output lines {\"id\": ..., \"tokens\": "
      "[...], \"finish_reason\": \"stop\"|\"length\"}, written as each prompt finishes.\n"
      "Example: expo generate --model ./tiny --tokens-file prompts.jsonl --output out.jsonl");
  args->model.add_to(*cmd);
  cmd->add_option("--tokens-file", args->tokens_file, "JSONL of token prompts")->required();
  cmd->add_option("--output", args->output, "JSONL of generated tokens")->required();
  auto& s = args->gen.sampling;
  cmd->add_option("--temperature", s.temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "0 = off")->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "1 = off")->capture_default_str();
  cmd->add_option("--min-p", s.min_p, "0 = off")->capture_default_str();
  cmd->add_option("--presence-penalty", s.presence_penalty)->capture_default_str();
  cmd->add_option("--frequency-penalty", s.frequency_penalty)->capture_default_str();
  cmd->add_option("--repetition-penalty", s.repetition_penalty, "1 = off")->capture_default_str();
  cmd->add_option("--seed", s.seed)->capture_default_str();
  cmd->add_flag("--greedy", args->greedy, "argmax decoding (same as --temperature 0)");
  cmd->add_option("--max-new-tokens", args->gen.max_new_tokens)->capture_default_str();
  cmd->add_option("--stop-token-ids", args->stop_ids,
                  "stop after any of these (default: eos ids of generation_config.json / config.json)")
      ->delimiter(',');
  cmd->add_flag("--ignore-eos", args->ignore_eos, "do not stop at eos");
  cmd->add_option("--max-context", args->gen.context_length,
                  "tokens a sequence may reach, prompt included (default: max_position_embeddings; "
                  "for dynamic rope, times its factor)");
  cmd->add_option("--batch-size", args->gen.max_batch, "sequences decoded together")
      ->capture_default_str();
  cmd->add_flag("--progress", args->progress, "progress on stderr even when it is not a terminal");
  cmd->add_flag("--no-progress", args->no_progress, "no progress line");
  cmd->callback([args] { run(*args); });
}

}  // namespace expo::cli
