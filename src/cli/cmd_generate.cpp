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
#include "eval/answers.h"
#include "eval/prompt_set.h"
#include "model/generator.h"
#include "text/prompt_encoder.h"

namespace expo::cli {

namespace {

using nlohmann::json;

struct GenerateArgs {
  ModelOptions model;
  std::string tokens_file, output;
  std::string prompt, prompts_file, tokenizer, format, template_name = "default";
  bool raw = false;
  GenerationOptions gen;
  std::vector<int32_t> stop_ids;
  bool ignore_eos = false;
  bool greedy = false;
  bool progress = false, no_progress = false;
};

struct TokenPrompt {
  json id;
  size_t line;
};

// {"id": ..., "tokens": [...]} per line; blank lines are skipped. Errors name the line.
std::vector<GenerationRequest> read_token_prompts(const std::string& path, std::vector<TokenPrompt>& meta) {
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

// The memory a run needs beyond the weights, for --max-memory.
uint64_t working_memory(const ModelConfig& config, const GenerationOptions& gen, uint64_t prompts,
                        uint64_t longest_prompt) {
  const uint64_t limit = gen.context_length ? gen.context_length : model_context_length(config);
  const uint64_t context = std::min(limit, longest_prompt + gen.max_new_tokens);
  const uint64_t slots = std::min<uint64_t>(gen.max_batch, prompts);
  const uint64_t step = std::min<uint64_t>(gen.step_tokens + slots, slots * context);
  return slots * KvCache::bytes_for(config, context) +
         step * (4 * config.hidden_size + 3 * config.intermediate_size + config.q_dim() +
                 2 * config.kv_dim()) * 4 +
         slots * config.vocab_size * 4;
}

class ProgressLine {
 public:
  explicit ProgressLine(bool show) : show_(show) {}
  ~ProgressLine() {
    if (drawn_) std::fputc('\n', stderr);
  }
  void draw(const GenerationStats& s, const std::string& what) {
    // At most four redraws a second, and always the last one.
    if (!show_ || (s.finished < s.total && s.seconds < last_ + 0.25)) return;
    last_ = s.seconds;
    drawn_ = true;
    std::fprintf(stderr, "\rgenerate%s: %llu/%llu prompts, %llu tokens, %.1f tok/s   ", what.c_str(),
                 static_cast<unsigned long long>(s.finished), static_cast<unsigned long long>(s.total),
                 static_cast<unsigned long long>(s.generated_tokens),
                 s.seconds > 0 ? s.generated_tokens / s.seconds : 0.0);
  }

 private:
  bool show_, drawn_ = false;
  double last_ = -1;
};

ModelConfig probe_config(const WeightSource& source, std::filesystem::path* folder) {
  const Checkpoint probe = Checkpoint::open(source.extrapolate() ? source.aligned : source.model);
  if (folder) *folder = probe.folder();
  ModelConfig config = read_model_config(probe);
  if (config.is_reward_model)
    fail(config.architecture,
         " is a reward model: it scores text and cannot generate; use a *ForCausalLM model");
  return config;
}

void set_stop_ids(GenerateArgs& args, const ModelConfig& config, std::span<const int32_t> more) {
  args.gen.stop_ids = args.stop_ids;
  if (!args.stop_ids.empty() || args.ignore_eos) return;
  args.gen.stop_ids = config.eos_token_ids;
  for (int32_t id : more)
    if (std::find(args.gen.stop_ids.begin(), args.gen.stop_ids.end(), id) == args.gen.stop_ids.end())
      args.gen.stop_ids.push_back(id);
}

void run_tokens(GenerateArgs& args) {
  if (args.output.empty()) fail("--tokens-file needs --output");
  std::vector<TokenPrompt> meta;
  const auto requests = read_token_prompts(args.tokens_file, meta);
  const WeightSource source = args.model.source();
  check_output_target(args.output, true);
  const ModelConfig config = probe_config(source, nullptr);
  uint64_t longest = 0;
  for (const auto& r : requests) longest = std::max<uint64_t>(longest, r.prompt.size());
  args.model.check_memory(source, working_memory(config, args.gen, requests.size(), longest),
                          "KV cache and activations");

  ThreadPool pool(args.model.threads);
  const auto loaded = LoadedModel::load(source, pool);
  Transformer model(*loaded);
  set_stop_ids(args, loaded->config(), {});
  check_requests(model, requests, args.gen, [&](size_t i) {
    return args.tokens_file + ":" + std::to_string(meta[i].line);
  });

  // Results go out as each prompt finishes, one flushed line each, so an interruption or a
  // later error loses nothing already generated.
  std::FILE* out = std::fopen(args.output.c_str(), "w");
  if (!out) fail(args.output, ": cannot create");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(out, std::fclose);
  size_t written = 0;
  {
    ProgressLine progress(args.progress || (!args.no_progress && Progress::stderr_is_terminal()));
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
          [&](const GenerationStats& s) { progress.draw(s, ""); });
    } catch (const Error& e) {
      fail(e.what(), " (", written, " of ", requests.size(), " results were written to ", args.output, ")");
    }
  }
  if (std::fclose(closer.release()) != 0) fail(args.output, ": write failed");
}

// Text prompts: the chat template (unless --raw), the tokenizer, generation turn by turn
// (MT-Bench's second turn is asked after the first answer), answers decoded.
void run_text(GenerateArgs& args) {
  PromptSet set;
  if (!args.prompt.empty()) {
    set.path = "--prompt";
    set.prompts.push_back(prompt_from_json(json{{"prompt", args.prompt}}, 0, "--prompt"));
  } else {
    set = read_prompt_set(args.prompts_file);
    if (args.output.empty()) fail("--prompts needs --output (the answers file)");
  }
  const AnswerFormat format =
      args.format.empty() ? default_answer_format(set.format) : parse_answer_format(args.format);
  if (!args.output.empty()) check_output_target(args.output, true);
  const WeightSource source = args.model.source();
  std::filesystem::path model_folder;
  const ModelConfig config = probe_config(source, &model_folder);
  const std::filesystem::path tokenizer_folder =
      args.tokenizer.empty() ? model_folder : std::filesystem::path(args.tokenizer);
  if (tokenizer_folder.empty())
    fail("the model is a lone .safetensors file: give --tokenizer DIR (a folder with tokenizer.json)");
  const PromptEncoder encoder(tokenizer_folder, args.template_name);
  if (args.raw)
    for (const auto& p : set.prompts)
      if (p.turn_count() > 1 || p.messages.size() > 1)
        fail(set.path.string(), ": prompt ", p.id_text,
             " is a conversation; --raw sends one text prompt without a chat template");
  auto encode = [&](const Prompt& p, size_t turn, std::span<const std::string> answers) {
    if (args.raw) return encoder.encode_raw(p.user_turn(0));
    return encoder.encode_messages(conversation_for_turn(p, turn, answers), true);
  };
  // Turn-0 prompts first, to size memory and check everything before loading the model.
  std::vector<GenerationRequest> first(set.prompts.size());
  uint64_t longest = 0;
  for (size_t i = 0; i < set.prompts.size(); ++i) {
    first[i] = {encode(set.prompts[i], 0, {}), i};
    longest = std::max<uint64_t>(longest, first[i].prompt.size());
  }
  args.model.check_memory(source, working_memory(config, args.gen, first.size(), longest),
                          "KV cache and activations");

  ThreadPool pool(args.model.threads);
  const auto loaded = LoadedModel::load(source, pool);
  Transformer model(*loaded);
  set_stop_ids(args, loaded->config(), encoder.stop_ids());

  std::vector<Answer> answers(set.prompts.size());
  for (size_t i = 0; i < set.prompts.size(); ++i) answers[i].prompt = set.prompts[i];
  size_t turns = 0;
  for (const auto& p : set.prompts) turns = std::max(turns, p.turn_count());
  const bool show = args.progress || (!args.no_progress && Progress::stderr_is_terminal());
  size_t done = 0;
  auto save_finished = [&] {
    if (args.output.empty()) return;
    std::vector<Answer> finished;
    for (const auto& a : answers)
      if (!a.turns.empty() && a.turns.size() == a.prompt.turn_count()) finished.push_back(a);
    AnswerWriteOptions options;
    options.generator = loaded->folder().filename().string();
    write_answers(args.output, finished, format, options);
    done = finished.size();
  };
  try {
    for (size_t turn = 0; turn < turns; ++turn) {
      std::vector<GenerationRequest> requests;
      std::vector<size_t> owner;
      for (size_t i = 0; i < set.prompts.size(); ++i) {
        if (set.prompts[i].turn_count() <= turn) continue;
        requests.push_back(turn == 0 ? first[i]
                                     : GenerationRequest{encode(set.prompts[i], turn, answers[i].turns),
                                                         i + turn * set.prompts.size()});
        owner.push_back(i);
      }
      check_requests(model, requests, args.gen, [&](size_t k) {
        return set.path.string() + ": prompt " + set.prompts[owner[k]].id_text + " (turn " +
               std::to_string(turn + 1) + ")";
      });
      ProgressLine progress(show);
      const std::string what = turns > 1 ? str(" (turn ", turn + 1, " of ", turns, ")") : "";
      generate(
          model, requests, args.gen, pool,
          [&](GenerationResult&& r) {
            Answer& a = answers[owner[r.request]];
            a.turns.push_back(encoder.decode_answer(r.tokens));
            a.finish_reasons.push_back(r.finish_reason);
            a.output_tokens.push_back(r.tokens.size());
          },
          [&](const GenerationStats& s) { progress.draw(s, what); });
    }
  } catch (const Error& e) {
    save_finished();
    if (args.output.empty()) throw;
    fail(e.what(), " (", done, " of ", set.prompts.size(), " answers were written to ", args.output, ")");
  }
  if (!args.prompt.empty() && args.output.empty()) {
    const std::string& text = answers[0].turns[0];
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    return;
  }
  save_finished();
}

void run(GenerateArgs& args) {
  const int inputs = !args.tokens_file.empty() + !args.prompt.empty() + !args.prompts_file.empty();
  if (inputs != 1) fail("give exactly one of --prompt TEXT, --prompts FILE and --tokens-file FILE");
  if (args.greedy) args.gen.sampling.temperature = 0;
  validate(args.gen.sampling);
  if (!args.tokens_file.empty()) return run_tokens(args);
  run_text(args);
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
      "Generate answers with the built-in engine (continuous batching). Text prompts go through the\n"
      "model's chat template and tokenizer; token prompts (--tokens-file, lines {\"id\", \"tokens\"})\n"
      "give lines {\"id\", \"tokens\", \"finish_reason\"}, written as each prompt finishes.\n"
      "Examples: expo generate --model ./zephyr --prompt \"Why is the sky blue?\"\n"
      "          expo generate --model ./tiny --tokens-file prompts.jsonl --output out.jsonl");
  args->model.add_to(*cmd);
  cmd->add_option("--prompt", args->prompt, "one prompt: its answer is printed (or written to --output)");
  cmd->add_option("--prompts", args->prompts_file,
                  "prompt set: JSONL ({\"prompt\"}, {\"messages\"} or {\"instruction\"} per line), "
                  "AlpacaEval JSON or MT-Bench question.jsonl");
  cmd->add_option("--tokens-file", args->tokens_file, "JSONL of token prompts {\"id\", \"tokens\"}");
  cmd->add_option("--output", args->output,
                  "answers file (--prompts: AlpacaEval model_outputs.json, MT-Bench answer JSONL or "
                  "JSONL, following the prompt set) or generated tokens (--tokens-file)");
  cmd->add_option("--format", args->format, "answers format: jsonl, alpaca_eval or mt_bench");
  cmd->add_flag("--raw", args->raw, "send the prompt text as is, without the chat template");
  cmd->add_option("--tokenizer", args->tokenizer,
                  "folder with tokenizer.json and the chat template (default: the model's folder)");
  cmd->add_option("--chat-template", args->template_name, "named chat template to use")
      ->capture_default_str();
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
