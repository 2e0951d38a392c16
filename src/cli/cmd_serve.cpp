// expo serve: an OpenAI-compatible HTTP server over the built-in engine (chat and text
// completions for a causal LM, streamed or whole; /pooling and /classify for a reward model),
// every request in flight sharing one continuous batch.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/option_ranges.h"
#include "core/error.h"
#include "core/units.h"
#include "http/openai_server.h"
#include "model/generator.h"
#include "pipeline/local_answers.h"
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
  uint64_t batch_size = 16;
  uint64_t max_queue = 256;
  std::string max_body_size = "32MiB";
  double header_timeout = 10, body_timeout = 30;
  bool quiet = false;
};

void run(const ServeArgs& args) {
  const uint64_t max_body = parse_size(args.max_body_size, "--max-body-size");
  if (max_body == 0) usage_fail("--max-body-size must be at least 1 byte");
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
    options.max_batch = args.batch_size;
    options.max_queue = args.max_queue;
    const ModelConfig& config = options.model.config();
    const uint64_t model_context = model_context_length(config);
    const uint64_t context =
        args.max_context ? std::min(args.max_context, model_context) : model_context;
    // The worst case: --batch-size sequences, each grown to the whole context (a KV cache
    // takes memory only as its sequence grows).
    GenerationOptions worst;
    worst.max_batch = args.batch_size;
    worst.context_length = context;
    worst.max_new_tokens = context;
    args.model.check_memory(options.model,
                            generation_working_memory(config, worst, args.batch_size, 0),
                            "KV caches and activations");
    backend = std::make_unique<EngineBackend>(options);
  }  // a pair's checkpoints close here: the backend holds the extrapolated weights
  OpenAIServerOptions server_options;
  server_options.host = args.host;
  server_options.port = args.port;
  server_options.max_body_bytes = max_body;
  server_options.head_timeout_seconds = args.header_timeout;
  server_options.body_timeout_seconds = args.body_timeout;
  OpenAIServer server(*backend, server_options);
  if (!args.quiet)
    server.set_request_log(
        [](const std::string& line) { std::fprintf(stderr, "expo serve: %s\n", line.c_str()); });
  server.start();
  std::fprintf(stderr, "expo serve: listening on http://%s:%d (model %s, batch %llu, queue %llu)\n",
               args.host.c_str(), server.port(), backend->model_name().c_str(),
               static_cast<unsigned long long>(args.batch_size),
               static_cast<unsigned long long>(args.max_queue));
  std::fflush(stderr);
  server.run();
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve the built-in engine over an OpenAI-compatible HTTP API: POST /v1/chat/completions\n"
      "and /v1/completions (a causal LM; \"stream\": true for server-sent events), POST /pooling\n"
      "and /classify (a reward model: vLLM's shapes; /pooling gives the raw reward logit),\n"
      "GET /v1/models, /health and /metrics (Prometheus). Requests in flight share one\n"
      "continuous batch of --batch-size sequences; more wait in a queue of --max-queue, beyond\n"
      "which the answer is 503 with Retry-After. Serves until Ctrl-C or SIGTERM.\n"
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
  cmd->add_option("--batch-size", args->batch_size,
                  "sequences decoded together; requests beyond it wait for a slot")
      ->capture_default_str()
      ->check(count_in(1, 4096));
  cmd->add_option("--max-queue", args->max_queue,
                  "requests that may wait for a slot; beyond it: 503 with Retry-After")
      ->capture_default_str()
      ->check(count_in(0, 1000000));
  cmd->add_option("--max-body-size", args->max_body_size,
                  "largest request body, whatever its Content-Type (413 beyond it)")
      ->capture_default_str();
  cmd->add_option("--header-timeout", args->header_timeout,
                  "seconds a client has to send a request's line and headers")
      ->capture_default_str()
      ->check(real_in(0.1, 3600));
  cmd->add_option("--body-timeout", args->body_timeout,
                  "seconds a client has to send a request's body, plus 1 s per MiB")
      ->capture_default_str()
      ->check(real_in(0.1, 3600));
  cmd->add_flag("--quiet", args->quiet, "no line per request on stderr");
  cmd->callback([args] { run(*args); });
}

}  // namespace expo::cli
