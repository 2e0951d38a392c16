// expo generate: answers to prompts (text or token ids) with the built-in engine or an
// OpenAI-compatible server.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/generation_args.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/input_limits.h"
#include "core/json_reader.h"
#include "core/progress.h"
#include "core/staging_dir.h"
#include "core/units.h"
#include "eval/answers.h"
#include "eval/partial_answers.h"
#include "eval/prompt_set.h"
#include "io/checkpoint_identity.h"
#include "model/continuous_batch.h"
#include "model/generator.h"
#include "pipeline/local_answers.h"
#include "pipeline/remote_answers.h"
#include "pipeline/run_fingerprint.h"
#include "text/prompt_encoder.h"

namespace expo::cli {

namespace {

using nlohmann::json;

struct GenerateArgs {
  ModelOptions model;
  GenerationArgs g;
  BackendArgs backend;
  std::string tokens_file, output;
  std::string prompt;
  bool resume = false, force = false;
};

struct TokenPrompt {
  json id;
  std::string where;  // file:line
};

// {"id": ..., "tokens": [...]} per line; blank lines are skipped. Errors name the line.
std::vector<GenerationRequest> read_token_prompts(const std::string& path,
                                                  std::vector<TokenPrompt>& meta) {
  std::vector<GenerationRequest> requests;
  const InputLimits limits = InputLimits::from_environment();
  for_each_jsonl_line(
      read_text_file(path, limits.max_file_bytes, kInputMaxFileEnv, /*json_text=*/true), path,
      limits, [&](const json& j, const std::string& where) {
        if (!j.is_object()) fail(where, ": expected an object {\"id\": ..., \"tokens\": [...]}");
        if (!j.contains("tokens") || !j["tokens"].is_array()) fail(where, ": no \"tokens\" array");
        GenerationRequest r;
        for (const auto& t : j["tokens"]) {
          if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
            fail(where, ": \"tokens\" must hold non-negative integer token ids, found ", t.dump());
          r.prompt.push_back(static_cast<int32_t>(t.get<int64_t>()));
        }
        r.stream = prompt_stream(r.prompt);
        meta.push_back({j.contains("id") ? j["id"] : json(requests.size()), where});
        requests.push_back(std::move(r));
      });
  if (requests.empty()) fail(path, ": no prompts (the file is empty)");
  return requests;
}

// The generation status line (core/progress.h): prompts done, tokens, tokens per second.
class ProgressLine {
 public:
  explicit ProgressLine(bool show) : line_(show) {}
  void draw(const GenerationStats& s, const std::string& what) {
    if (!line_.due(s.finished == s.total)) return;
    line_.draw(str("generate", what, ": ", s.finished, "/", s.total, " prompts, ",
                   s.generated_tokens, " tokens, ",
                   format_printf("%.1f", s.seconds > 0 ? s.generated_tokens / s.seconds : 0.0),
                   " tok/s"));
  }

 private:
  StatusLine line_;
};

// The model of the options, opened once; refused when it cannot generate.
ModelSource open_generator(const ModelOptions& options) {
  ModelSource source = options.open();
  if (source.config().is_reward_model)
    fail(source.config().architecture,
         " is a reward model: it scores text and cannot generate; use a *ForCausalLM model");
  return source;
}

void run_tokens(GenerateArgs& args) {
  if (args.output.empty()) usage_fail("--tokens-file needs --output");
  std::vector<TokenPrompt> meta;
  const auto requests = read_token_prompts(args.tokens_file, meta);
  args.model.check();
  check_output_target(args.output, true);
  const ModelSource source = open_generator(args.model);
  const ModelConfig& config = source.config();
  uint64_t longest = 0;
  for (const auto& r : requests) longest = std::max<uint64_t>(longest, r.prompt.size());
  args.model.check_memory(source,
                          generation_working_memory(config, args.g.gen, requests.size(), longest),
                          "KV cache and activations");

  ThreadPool pool(args.model.threads);
  const auto loaded = args.model.load(source, pool);
  Transformer model(*loaded);
  args.g.gen.stop_ids =
      default_stop_ids(args.g.stop_ids, args.g.ignore_eos, loaded->config().eos_token_ids, {});
  check_requests(model, requests, args.g.gen, [&](size_t i) { return meta[i].where; });

  // Results go out as each prompt finishes, one flushed line each, so an interruption or a
  // later error loses nothing already generated.
  std::FILE* out = std::fopen(args.output.c_str(), "w");
  if (!out) fail(args.output, ": cannot create");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(out, std::fclose);
  size_t written = 0;
  {
    ProgressLine progress(args.g.show_progress());
    try {
      generate(
          model, requests, args.g.gen, pool,
          [&](GenerationResult&& r) {
            json line{{"id", meta[r.request].id},
                      {"tokens", r.tokens},
                      {"finish_reason", r.finish_reason}};
            const std::string text = line.dump() + "\n";
            if (std::fwrite(text.data(), 1, text.size(), out) != text.size() ||
                std::fflush(out) != 0)
              fail(args.output, ": write failed (disk full?)");
            ++written;
          },
          [&](const GenerationStats& s) { progress.draw(s, ""); });
    } catch (const Error& e) {
      fail(e.what(), " (", written, " of ", requests.size(), " results were written to ",
           args.output, ")");
    }
  }
  if (std::fclose(closer.release()) != 0) fail(args.output, ": write failed");
}

// Text prompts: the chat template (unless --raw), the tokenizer, generation turn by turn
// (MT-Bench's second turn is asked after the first answer), answers decoded. Or the same
// conversations sent to OpenAI-compatible servers (--backend openai).
void run_text(GenerateArgs& args) {
  PromptSet set;
  if (!args.prompt.empty()) {
    set.path = "--prompt";
    set.prompts.push_back(prompt_from_json(json{{"prompt", args.prompt}}, 0, "--prompt"));
  } else {
    set = args.g.read_prompts();
    if (args.output.empty()) usage_fail("--prompts needs --output (the answers file)");
  }
  const AnswerFormat format = args.g.format.empty() ? default_answer_format(set.format)
                                                    : parse_answer_format(args.g.format);
  if (!args.output.empty()) check_output_target(args.output, true);
  const bool remote = args.backend.remote();
  const bool show = args.g.show_progress();

  std::vector<Answer> answers;
  std::string generator;
  size_t done = 0;
  // --prompts with --output: each answer goes to OUT.partial.jsonl as it finishes (with the
  // settings, so that --resume can check them); the final file is written from all of them.
  Fingerprint settings;
  add_version_setting(settings);
  add_prompt_settings(settings, set);
  std::unique_ptr<PartialAnswers> partial;
  AnswerHooks hooks;
  auto open_partial = [&] {
    if (args.output.empty() || !args.prompt.empty()) return;
    partial = std::make_unique<PartialAnswers>(PartialAnswers::path_for(args.output), settings, set,
                                               args.resume, args.force);
    for (const auto& w : partial->warnings()) std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (const size_t n = partial->loaded_count())
      std::fprintf(stderr,
                   "expo generate: %zu of %zu prompts answered in %s; generating the rest\n", n,
                   set.prompts.size(), partial->path().c_str());
    hooks.skip.assign(set.prompts.size(), false);
    for (size_t i = 0; i < set.prompts.size(); ++i)
      hooks.skip[i] = partial->loaded()[i].has_value();
    hooks.on_answer = [&](size_t i) { partial->append(i, answers[i]); };
  };
  // The answers of the earlier run, in their places.
  auto merge_loaded = [&] {
    if (!partial) return;
    if (answers.size() != set.prompts.size()) start_answers(set.prompts, answers);
    for (size_t i = 0; i < set.prompts.size(); ++i)
      if (partial->loaded()[i]) answers[i] = *partial->loaded()[i];
  };
  auto save_finished = [&] {
    if (args.output.empty()) return;
    std::vector<Answer> finished;
    for (const auto& a : answers)
      if (!a.turns.empty() && a.turns.size() == a.prompt.turn_count()) finished.push_back(a);
    AnswerWriteOptions options;
    options.generator = generator;
    options.answer_id_seed = args.g.gen.sampling.seed;
    write_answers(args.output, finished, format, options);
    done = finished.size();
  };

  try {
    if (remote) {
      if (!args.model.model.empty() || !args.model.sft.empty() || !args.model.aligned.empty())
        fail(
            "--model, --sft and --aligned load a model into the built-in engine; with --backend "
            "openai the server holds the model (name it with --model-name)");
      if (args.backend.endpoints.empty()) usage_fail("--backend openai needs --endpoint URL");
      if (args.g.raw)
        usage_fail("--raw needs the built-in engine: a chat server applies its own template");
      OpenAIClient client(args.backend.endpoint_list(),
                          args.backend.client_options(args.g.gen.sampling.seed));
      generator = args.backend.model_name;
      if (generator.empty()) {
        const auto models = client.models();
        if (models.empty())
          fail(args.backend.endpoints[0], "/v1/models lists no model; give --model-name");
        generator = models[0];
      }
      std::string urls;
      for (const auto& e : args.backend.endpoints) {
        if (!urls.empty()) urls += ' ';
        urls += e;
      }
      settings.add("generation", "--endpoint " + urls);
      settings.add("--model-name", generator);
      add_generation_settings(settings, args.g.gen);
      open_partial();
      ProgressLine progress(show);
      const auto start = std::chrono::steady_clock::now();
      generate_answers_remote(
          client, generator, set.prompts, args.g.gen.sampling, args.g.gen.max_new_tokens, answers,
          [&](const RemoteProgress& p) {
            GenerationStats s;
            s.finished = p.done;
            s.total = p.total;
            s.generated_tokens = p.completion_tokens;
            s.seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            progress.draw(s, p.turns > 1 ? str(" (turn ", p.turn + 1, " of ", p.turns, ")") : "");
          },
          hooks);
    } else {
      const ModelSource source = open_generator(args.model);
      const ModelConfig& config = source.config();
      const std::filesystem::path tokenizer_folder =
          args.g.tokenizer.empty() ? source.folder() : std::filesystem::path(args.g.tokenizer);
      if (tokenizer_folder.empty())
        fail(
            "the model is a lone .safetensors file: give --tokenizer DIR (a folder with "
            "tokenizer.json)");
      const PromptEncoder encoder(tokenizer_folder, args.g.template_name);
      // Turn-0 prompts first, to size memory and check everything before loading the model.
      uint64_t longest = 0;
      for (const auto& p : set.prompts) {
        std::vector<int32_t> tokens;
        try {
          tokens = encode_prompt_turn(encoder, p, 0, {}, args.g.raw);
        } catch (const Error& e) {
          fail(set.path.string(), ": prompt ", p.id_text, ": ", e.what());
        }
        longest = std::max<uint64_t>(longest, tokens.size());
      }
      args.model.check_memory(
          source, generation_working_memory(config, args.g.gen, set.prompts.size(), longest),
          "KV cache and activations");
      args.g.gen.stop_ids = default_stop_ids(args.g.stop_ids, args.g.ignore_eos,
                                             config.eos_token_ids, encoder.stop_ids());
      for (const auto& [option, checkpoint] : source.inputs())
        add_checkpoint_setting(settings, option, *checkpoint);
      if (source.expo_pair()) add_adapter_settings(settings, *source.expo_pair());
      if (source.is_pair()) settings.add("--alpha", setting_number(args.model.alpha_value()));
      add_generation_settings(settings, args.g.gen);
      add_tokenizer_setting(settings, "--tokenizer", tokenizer_folder);
      settings.add("--chat-template", args.g.template_name);
      settings.add("--raw", args.g.raw ? "yes" : "no");
      open_partial();
      ThreadPool pool(args.model.threads);
      const auto loaded = args.model.load(source, pool);
      Transformer model(*loaded);
      generator = source.checkpoint().gguf()
                      ? std::filesystem::path(source.checkpoint().spec()).stem().string()
                      : loaded->folder().filename().string();
      std::unique_ptr<ProgressLine> progress;
      size_t current_turn = SIZE_MAX;
      generate_answers(
          model, encoder, set.prompts, args.g.gen, args.g.raw, pool, set.path.string(), answers,
          [&](const TurnProgress& p) {
            if (p.turn != current_turn) {
              progress.reset();
              progress = std::make_unique<ProgressLine>(show);
              current_turn = p.turn;
            }
            progress->draw(p.stats,
                           p.turns > 1 ? str(" (turn ", p.turn + 1, " of ", p.turns, ")") : "");
          },
          hooks);
    }
  } catch (const Error& e) {
    merge_loaded();
    if (args.output.empty() || answers.empty()) throw;
    save_finished();
    fail(e.what(), " (", done, " of ", set.prompts.size(), " answers were written to ", args.output,
         partial ? str("; ", partial->path().string(),
                       " keeps them: run the same command with --resume to generate the rest")
                 : std::string(),
         ")");
  }
  merge_loaded();
  if (!args.prompt.empty() && args.output.empty()) {
    const std::string& text = answers[0].turns[0];
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    return;
  }
  save_finished();
  if (partial) partial->remove();
}

void run(GenerateArgs& args) {
  const int inputs =
      !args.tokens_file.empty() + !args.prompt.empty() + !args.g.prompts_file.empty();
  if (inputs != 1) fail("give exactly one of --prompt TEXT, --prompts FILE and --tokens-file FILE");
  args.g.finish();
  if ((args.resume || args.force) && (args.g.prompts_file.empty() || args.output.empty()))
    fail(args.resume ? "--resume" : "--force",
         " applies to --prompts FILE --output OUT (the answers kept in OUT.partial.jsonl)");
  if (!args.tokens_file.empty()) {
    if (args.backend.remote())
      usage_fail("--tokens-file needs the built-in engine (--backend local)");
    return run_tokens(args);
  }
  run_text(args);
}
}  // namespace

void add_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand(
      "generate",
      "Generate answers with the built-in engine (continuous batching) or an OpenAI-compatible\n"
      "server. Text prompts go through the model's chat template and tokenizer; token prompts\n"
      "(--tokens-file, lines {\"id\", \"tokens\"}) give lines {\"id\", \"tokens\", "
      "\"finish_reason\"},\n"
      "written as each prompt finishes.\n"
      "Examples: expo generate --model ./zephyr --prompt \"Why is the sky blue?\"\n"
      "          expo generate --sft ./sft --aligned ./dpo --alpha 0.3 --prompts alpaca_eval.json "
      "\\\n"
      "              --output model_outputs.json\n"
      "          expo generate --backend openai --endpoint http://127.0.0.1:8000 --prompts q.jsonl "
      "\\\n"
      "              --output answers.jsonl\n"
      "          expo generate --model ./tiny --tokens-file prompts.jsonl --output out.jsonl");
  args->model.add_to(*cmd);
  cmd->add_option("--prompt", args->prompt,
                  "one prompt: its answer is printed (or written to --output)");
  cmd->add_option("--tokens-file", args->tokens_file,
                  "JSONL of token prompts {\"id\", \"tokens\"}");
  cmd->add_option(
      "--output", args->output,
      "answers file (--prompts: AlpacaEval model_outputs.json, MT-Bench answer JSONL or "
      "JSONL, following the prompt set) or generated tokens (--tokens-file)");
  cmd->add_flag("--resume", args->resume,
                "--prompts: finish an interrupted run from OUT.partial.jsonl (the answers it "
                "holds are kept; the settings must be the same)");
  cmd->add_flag("--force", args->force,
                "--prompts: start over, discarding the answers of an interrupted run in "
                "OUT.partial.jsonl");
  args->g.add_to(*cmd, true);
  args->backend.add_to(*cmd, "generation");
  cmd->callback([args] { run(*args); });
}

}  // namespace expo::cli
