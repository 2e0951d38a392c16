// expo serve: an OpenAI-compatible HTTP server over the built-in engine (chat completions for a
// causal LM, /pooling and /classify for a reward model), one request at a time.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/option_ranges.h"
#include "core/error.h"
#include "http/openai_server.h"
#include "model/generator.h"
#include "model/kv_cache.h"
#include "serve/engine_backend.h"

namespace expo::cli {

namespace {

struct ServeArgs {
  ModelOptions model;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string model_name, tokenizer, template_name = "default";
  uint64_t max_new_tokens = 0;
  uint64_t max_context = 0;
  bool quiet = false;
};

// What one request needs beyond the weights, for --max-memory: a KV cache as long as the
// context, the workspace of a prefill chunk and a row of logits.
uint64_t working_memory(const ModelConfig& config, uint64_t context) {
  const uint64_t step = std::min<uint64_t>(GenerationOptions{}.prefill_chunk, context);
  const uint64_t floats_per_token =
      4 * config.hidden_size + 3 * config.intermediate_size + config.q_dim() + 2 * config.kv_dim();
  return KvCache::bytes_for(config, context) + step * floats_per_token * 4 +
         config.output_size() * 4;
}

void run(const ServeArgs& args) {
  args.model.check();
  std::unique_ptr<EngineBackend> backend;
  {
    EngineBackendOptions options;
    options.model = args.model.open();
    options.alpha = args.model.alpha_value();
    options.allow_nonfinite = args.model.allow_nonfinite;
    options.tokenizer = args.tokenizer;
    options.chat_template = args.template_name;
    options.model_name = args.model_name;
    options.threads = args.model.threads;
    options.max_new_tokens = args.max_new_tokens;
    options.context_length = args.max_context;
    const ModelConfig& config = options.model.config();
    const uint64_t model_context = model_context_length(config);
    const uint64_t context =
        args.max_context ? std::min(args.max_context, model_context) : model_context;
    args.model.check_memory(options.model, working_memory(config, context),
                            "KV cache and activations");
    backend = std::make_unique<EngineBackend>(options);
  }  // a pair's checkpoints close here: the backend holds the extrapolated weights
  OpenAIServer server(*backend, args.host, args.port);
  if (!args.quiet)
    server.set_request_log(
        [](const std::string& line) { std::fprintf(stderr, "expo serve: %s\n", line.c_str()); });
  server.start();
  std::fprintf(stderr, "expo serve: listening on http://%s:%d (model %s)\n", args.host.c_str(),
               server.port(), backend->model_name().c_str());
  std::fflush(stderr);
  server.run();
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve the built-in engine over an OpenAI-compatible HTTP API: POST /v1/chat/completions\n"
      "(a causal LM), POST /pooling and /classify (a reward model: vLLM's shapes; /pooling gives\n"
      "the raw reward logit), GET /v1/models and /health. Requests are answered one at a time.\n"
      "Serves until Ctrl-C or SIGTERM.\n"
      "Examples: expo serve --model ./zephyr --port 8000\n"
      "          expo serve --sft ./sft --aligned ./dpo --alpha 0.3 --port 0");
  args->model.add_to(*cmd);
  cmd->add_option("--host", args->host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", args->port, "port to listen on (0: a free port)")
      ->capture_default_str()
      ->check(count_in(0, 65535));
  cmd->add_option("--model-name", args->model_name,
                  "the model id served in /v1/models and expected in requests (default: the "
                  "model folder's name)");
  cmd->add_option("--tokenizer", args->tokenizer,
                  "folder with tokenizer.json and the chat template (default: the model's folder)");
  cmd->add_option("--chat-template", args->template_name, "named chat template to use")
      ->capture_default_str();
  cmd->add_option("--max-new-tokens", args->max_new_tokens,
                  "answer length for requests without max_tokens (0: up to the context)")
      ->capture_default_str()
      ->check(count_in(0, kMaxNewTokens));
  cmd->add_option("--max-context", args->max_context,
                  "tokens a sequence may reach, prompt included (default: the model's context)")
      ->check(count_in(1, kMaxContext));
  cmd->add_flag("--quiet", args->quiet, "no line per request on stderr");
  cmd->callback([args] { run(*args); });
}

}  // namespace expo::cli
