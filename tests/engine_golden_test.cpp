// The engine against golden files from an independent PyTorch implementation
// (tests/golden/engine/make_goldens.py): logits of one forward pass, 32 greedy tokens with a
// KV cache, rewards of reward models, and extrapolation on load.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "io/npy.h"
#include "model/generator.h"
#include "model/scorer.h"
#include "model/transformer.h"

namespace expo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kGoldenDir = fs::path(EXPO_GOLDEN_DIR) / "engine";

// The case folders whose golden.json has `key` (every case: "logits_file").
std::vector<std::string> golden_cases(const std::string& key) {
  std::vector<std::string> names;
  if (fs::is_directory(kGoldenDir))
    for (const auto& e : fs::directory_iterator(kGoldenDir))
      if (fs::exists(e.path() / "golden.json") &&
          json::parse(read_text_file(e.path() / "golden.json")).contains(key))
        names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

struct Golden {
  json spec;
  fs::path dir;
  // The model of the case: its folder, or its pair extrapolated on load at its alpha.
  std::unique_ptr<LoadedModel> load(ThreadPool& pool) const {
    if (!spec.contains("alpha")) return LoadedModel::load(ModelSource::open(dir.string()), pool);
    const ModelSource pair =
        ModelSource::open_pair((dir / "sft").string(), (dir / "aligned").string());
    return LoadedModel::load(pair, spec["alpha"].get<double>(), false, pool);
  }
};

Golden load_golden(const std::string& name) {
  Golden g;
  g.dir = kGoldenDir / name;
  g.spec = json::parse(read_text_file(g.dir / "golden.json"));
  return g;
}

std::vector<int32_t> ids(const json& j) { return j.get<std::vector<int32_t>>(); }

std::vector<int32_t> greedy(Transformer& model, ThreadPool& pool,
                            const std::vector<std::vector<int32_t>>& prompts, size_t max_batch,
                            size_t which, uint64_t n) {
  std::vector<GenerationRequest> requests;
  for (size_t i = 0; i < prompts.size(); ++i) requests.push_back({prompts[i], i});
  GenerationOptions options;
  options.max_new_tokens = n;
  options.max_batch = max_batch;
  // The reference generates past a dynamic-rope model's nominal context; allow it.
  for (const auto& p : prompts)
    options.context_length = std::max<uint64_t>(options.context_length, p.size() + n);
  std::vector<std::vector<int32_t>> out(prompts.size());
  generate(model, requests, options, pool,
           [&](GenerationResult&& r) { out[r.request] = r.tokens; });
  return out[which];
}

class EngineGolden : public ::testing::TestWithParam<std::string> {};
class EngineGoldenReward : public ::testing::TestWithParam<std::string> {};
class EngineGoldenGreedy : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineGolden, LogitsMatchReference) {
  const Golden g = load_golden(GetParam());
  ThreadPool pool(2);
  const auto loaded = g.load(pool);
  Transformer model(*loaded);
  const auto prompt = ids(g.spec["prompt"]);
  KvCache cache(model.config(), prompt.size());
  const ForwardItem item{&cache, prompt, true};
  const std::vector<float>& logits = model.forward(std::span<const ForwardItem>(&item, 1), pool);
  const NpyArray want = read_npy_f32(g.dir / g.spec["logits_file"].get<std::string>());
  ASSERT_EQ(want.shape, (std::vector<uint64_t>{prompt.size(), model.output_size()}));
  const std::string kind = g.spec["tolerance"]["kind"];
  const double tol = g.spec["tolerance"]["value"];
  if (kind == "abs") {
    double worst = 0;
    for (size_t i = 0; i < want.data.size(); ++i)
      worst = std::max(worst, std::abs(static_cast<double>(logits[i]) - want.data[i]));
    EXPECT_LE(worst, tol) << "largest |logit - reference|";
  } else {
    ASSERT_EQ(kind, "nmse");
    double err = 0, norm = 0;
    for (size_t i = 0; i < want.data.size(); ++i) {
      err += std::pow(static_cast<double>(logits[i]) - want.data[i], 2);
      norm += std::pow(static_cast<double>(want.data[i]), 2);
    }
    EXPECT_LT(err / norm, tol) << "normalised MSE of the logits";
  }
  if (g.spec.contains("reward")) {
    // The row transformers reads the reward from (the last token that is not pad).
    const auto reward = g.spec["reward"].get<std::vector<double>>();
    ASSERT_EQ(reward.size(), model.output_size());
    const size_t at = g.spec["reward_index"].get<size_t>() * model.output_size();
    for (size_t j = 0; j < reward.size(); ++j)
      EXPECT_NEAR(logits[at + j], reward[j], 1e-4) << "reward label " << j;
  }
}

TEST_P(EngineGoldenReward, RewardOfPackedSequencesMatchesReference) {
  const Golden g = load_golden(GetParam());
  ThreadPool pool(2);
  const auto loaded = g.load(pool);
  Transformer model(*loaded);
  const auto prompt = ids(g.spec["prompt"]);
  const auto reward = g.spec["reward"].get<std::vector<double>>();
  // The golden prompt between two others, packed into one pass and one at a time. The scorer
  // reads where transformers reads: the last token that is not pad, or, for
  // InternLM2ForRewardModel, the reward_token_id it appends (the golden prompt ends with it:
  // the conversation is the prompt without it).
  std::vector<int32_t> conversation = prompt;
  if (model.config().reward_head == RewardHead::kValue) {
    ASSERT_EQ(conversation.back(), *model.config().reward_token_id);
    conversation.pop_back();
  }
  EXPECT_EQ(reward_model_input(model.config(), conversation).size(),
            g.spec["reward_index"].get<size_t>() + 1);
  std::vector<std::vector<int32_t>> seqs{{1, 5, 7}, conversation, {1, 2}};
  for (uint64_t budget : {uint64_t{4096}, uint64_t{1}}) {
    const auto rows = score_sequences(model, seqs, pool, ScoreOptions{budget});
    ASSERT_EQ(rows.size(), 3u);
    for (size_t j = 0; j < reward.size(); ++j) EXPECT_NEAR(rows[1][j], reward[j], 1e-4);
  }
}

TEST_P(EngineGoldenGreedy, GreedyTokensMatchReference) {
  const Golden g = load_golden(GetParam());
  const auto prompt = ids(g.spec["greedy_prompt"]);
  const auto want = ids(g.spec["greedy"]);
  ThreadPool pool(2);
  const auto loaded = g.load(pool);
  Transformer model(*loaded);
  EXPECT_EQ(greedy(model, pool, {prompt}, 1, 0, want.size()), want);
  // The same prompt among others, batched, and on one thread: the same tokens.
  std::vector<std::vector<int32_t>> prompts;
  for (int k = 0; k < 5; ++k) {
    std::vector<int32_t> p;
    for (int j = 0; j < 3 + 4 * k; ++j) p.push_back((17 * k + 5 * j + 3) % 90);
    prompts.push_back(p);
  }
  prompts.insert(prompts.begin() + 2, prompt);
  EXPECT_EQ(greedy(model, pool, prompts, 4, 2, want.size()), want) << "batched";
  ThreadPool one(1);
  EXPECT_EQ(greedy(model, one, prompts, 3, 2, want.size()), want) << "batched, one thread";
}

const auto kName = [](const auto& info) { return info.param; };
INSTANTIATE_TEST_SUITE_P(Cases, EngineGolden, ::testing::ValuesIn(golden_cases("logits_file")),
                         kName);
INSTANTIATE_TEST_SUITE_P(Cases, EngineGoldenReward, ::testing::ValuesIn(golden_cases("reward")),
                         kName);
INSTANTIATE_TEST_SUITE_P(Cases, EngineGoldenGreedy, ::testing::ValuesIn(golden_cases("greedy")),
                         kName);

}  // namespace
}  // namespace expo
