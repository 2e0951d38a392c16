// expo forward: one forward pass over given token ids, logits written as .npy.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "core/units.h"
#include "io/npy.h"
#include "model/generator.h"

namespace expo::cli {

namespace {
struct ForwardArgs {
  ModelOptions model;
  std::string tokens, output;
};

std::vector<int32_t> parse_token_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    char* stop = nullptr;
    const long long v = item.empty() ? -1 : std::strtoll(item.c_str(), &stop, 10);
    if (item.empty() || *stop != '\0' || v < 0 || v > INT32_MAX)
      usage_fail("--tokens: \"", item, "\" (item ", ids.size() + 1, ") is not a token id");
    ids.push_back(static_cast<int32_t>(v));
    pos = end + 1;
  }
  return ids;
}

void run(const ForwardArgs& args) {
  const std::vector<int32_t> tokens = parse_token_list(args.tokens);
  const ModelSource source = args.model.open();
  ThreadPool pool(args.model.threads);
  {
    // KV cache for the tokens plus the activations of one pass.
    const ModelConfig& c = source.config();
    const uint64_t extra = KvCache::bytes_for(c, tokens.size()) +
                           tokens.size() * (activation_bytes_per_token(c) + c.output_size() * 4);
    args.model.check_memory(source, extra, "KV cache and activations");
  }
  const auto loaded = args.model.load(source, pool);
  Transformer model(*loaded);
  if (tokens.size() > model_context_length(model.config()))
    fail("--tokens has ", tokens.size(), " tokens, more than the model's context of ",
         model_context_length(model.config()));
  KvCache cache(model.config(), tokens.size());
  const ForwardItem item{&cache, tokens, true};
  const auto& logits = model.forward(std::span<const ForwardItem>(&item, 1), pool);
  write_npy_f32(args.output, {tokens.size(), model.output_size()}, logits.data());
  std::fprintf(
      stderr, "wrote %s: float32 [%zu, %llu] (%s)\n", args.output.c_str(), tokens.size(),
      static_cast<unsigned long long>(model.output_size()),
      model.config().is_reward_model
          ? "reward model: one row per position; expo score reads the row transformers reads"
          : "logits");
}
}  // namespace

void add_forward_command(CLI::App& app) {
  auto args = std::make_shared<ForwardArgs>();
  auto* cmd = app.add_subcommand(
      "forward",
      "Run the built-in engine over token ids and write the float32 logits [n_tokens, vocab] as "
      ".npy (a reward model: [n_tokens, num_labels], one row per position; `expo score` reads the "
      "last token that is not pad_token_id, or InternLM2ForRewardModel's appended "
      "reward_token_id).\n"
      "Example: expo forward --model ./tiny --tokens 1,2,3 --output logits.npy");
  args->model.add_to(*cmd);
  cmd->add_option("--tokens", args->tokens, "comma-separated token ids, e.g. 1,2,3")->required();
  cmd->add_option("--output", args->output, "where to write the .npy")->required();
  cmd->callback([args] { run(*args); });
}

}  // namespace expo::cli
