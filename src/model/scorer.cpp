#include "model/scorer.h"

#include <memory>

#include "core/error.h"
#include "core/interrupt.h"
#include "model/generator.h"

namespace expo {

std::vector<int32_t> reward_model_input(const ModelConfig& config, std::vector<int32_t> tokens) {
  if (config.reward_head == RewardHead::kValue && config.reward_token_id) {
    tokens.push_back(*config.reward_token_id);
  } else if (config.reward_head == RewardHead::kScore && config.pad_token_id) {
    size_t last = 0;
    for (size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i] != *config.pad_token_id) last = i;
    if (!tokens.empty()) tokens.resize(last + 1);
  }
  return tokens;
}

std::vector<std::vector<float>> score_sequences(Transformer& model,
                                                std::span<const std::vector<int32_t>> inputs,
                                                ThreadPool& pool, const ScoreOptions& options,
                                                const std::function<void(size_t)>& on_progress) {
  const uint64_t context = model_context_length(model.config());
  std::vector<std::vector<int32_t>> sequences;
  sequences.reserve(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].empty()) fail("sequence ", i, " to score has no tokens");
    sequences.push_back(reward_model_input(model.config(), inputs[i]));
    if (sequences[i].size() > context)
      fail("sequence ", i, " to score has ", sequences[i].size(),
           " tokens, more than the model's context of ", context);
  }
  const uint64_t width = model.output_size();
  std::vector<std::vector<float>> out(sequences.size());
  size_t next = 0;
  while (next < sequences.size()) {
    check_interrupted();
    std::vector<std::unique_ptr<KvCache>> caches;
    std::vector<ForwardItem> items;
    uint64_t tokens = 0;
    const size_t first = next;
    while (next < sequences.size() &&
           (items.empty() || tokens + sequences[next].size() <= options.batch_tokens)) {
      caches.push_back(std::make_unique<KvCache>(model.config(), sequences[next].size()));
      items.push_back({caches.back().get(), sequences[next], false});
      tokens += sequences[next].size();
      ++next;
    }
    const std::vector<float>& rows = model.forward(items, pool);
    for (size_t i = 0; i < items.size(); ++i)
      out[first + i].assign(rows.begin() + i * width, rows.begin() + (i + 1) * width);
    if (on_progress) on_progress(next);
  }
  return out;
}

}  // namespace expo
