#include "model/scorer.h"

#include <memory>

#include "core/error.h"
#include "core/interrupt.h"
#include "model/generator.h"

namespace expo {

std::vector<std::vector<float>> score_sequences(Transformer& model,
                                                std::span<const std::vector<int32_t>> sequences,
                                                ThreadPool& pool, const ScoreOptions& options,
                                                const std::function<void(size_t)>& on_progress) {
  const uint64_t context = model_context_length(model.config());
  for (size_t i = 0; i < sequences.size(); ++i) {
    if (sequences[i].empty()) fail("sequence ", i, " to score has no tokens");
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
