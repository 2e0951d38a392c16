// The engine's behaviour beyond the golden numbers: reproducible sampling whatever the batch
// and thread count, extrapolation on load, stop tokens, and clear errors for bad models and
// bad prompts.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "model/generator.h"
#include "model/transformer.h"
#include "test_util.h"

namespace expo {
namespace {

using nlohmann::json;
using testing::error_of;
using testing::TempDir;

RandomLlamaSpec small_spec(DType dtype = DType::F32) {
  RandomLlamaSpec spec = testing::tiny_llama(2, 64, 96, 4, 2, 128);
  spec.dtype = dtype;
  return spec;
}

std::vector<std::vector<int32_t>> run(Transformer& model, ThreadPool& pool,
                                      const std::vector<std::vector<int32_t>>& prompts,
                                      GenerationOptions options,
                                      std::vector<std::string>* reasons = nullptr) {
  std::vector<GenerationRequest> requests;
  for (size_t i = 0; i < prompts.size(); ++i) requests.push_back({prompts[i], i});
  std::vector<std::vector<int32_t>> out(prompts.size());
  if (reasons) reasons->assign(prompts.size(), "");
  generate(model, requests, options, pool, [&](GenerationResult&& r) {
    out[r.request] = r.tokens;
    if (reasons) (*reasons)[r.request] = r.finish_reason;
  });
  return out;
}

std::vector<std::vector<int32_t>> some_prompts(size_t n) {
  std::vector<std::vector<int32_t>> prompts;
  for (size_t k = 0; k < n; ++k) {
    std::vector<int32_t> p;
    for (size_t j = 0; j < 2 + (k * 7) % 19; ++j)
      p.push_back(static_cast<int32_t>((31 * k + 11 * j + 5) % 128));
    prompts.push_back(p);
  }
  return prompts;
}

TEST(Engine, SampledTokensDoNotDependOnBatchOrThreads) {
  TempDir dir;
  write_random_llama(dir / "m", small_spec(DType::BF16), 7);
  ThreadPool two(2), one(1);
  const auto loaded = LoadedModel::load(ModelSource::open((dir / "m").string()), two);
  Transformer model(*loaded);
  GenerationOptions options;
  options.sampling = SamplingParams{1.0, 40, 0.95, 0.01, 0.1, 0.1, 1.1, 42};
  options.max_new_tokens = 20;
  const auto prompts = some_prompts(9);
  options.max_batch = 1;
  const auto alone = run(model, one, prompts, options);
  options.max_batch = 4;
  EXPECT_EQ(run(model, two, prompts, options), alone);
  options.max_batch = 16;
  options.prefill_chunk = 5;  // long prompts in chunks
  EXPECT_EQ(run(model, two, prompts, options), alone);
  // Another seed gives other tokens.
  options.sampling.seed = 43;
  EXPECT_NE(run(model, two, prompts, options), alone);
}

TEST(Engine, ExtrapolationOnLoadAtAlphaZeroIsTheAlignedModel) {
  TempDir dir;
  write_random_pair(dir / "sft", dir / "aligned", small_spec(DType::BF16), 3);
  ThreadPool pool(2);
  const auto aligned = LoadedModel::load(ModelSource::open((dir / "aligned").string()), pool);
  const ModelSource pair =
      ModelSource::open_pair((dir / "sft").string(), (dir / "aligned").string());
  const auto expo0 = LoadedModel::load(pair, 0.0, false, pool);
  const auto expo1 = LoadedModel::load(pair, 1.0, false, pool);
  const std::vector<int32_t> tokens{1, 5, 9, 77, 3};
  auto logits = [&](const LoadedModel& m) {
    Transformer t(m);
    KvCache cache(m.config(), tokens.size());
    const ForwardItem item{&cache, tokens, true};
    return t.forward(std::span<const ForwardItem>(&item, 1), pool);
  };
  EXPECT_EQ(logits(*expo0), logits(*aligned));
  EXPECT_NE(logits(*expo1), logits(*aligned));
  EXPECT_EQ(expo1->bytes(), aligned->bytes());
}

// A pair is opened, checked and planned once; every alpha loads from it, and the views of a
// loaded model keep its checkpoint open after the source is gone.
TEST(Engine, AnOpenedSourceLoadsAtEveryAlpha) {
  TempDir dir;
  write_random_pair(dir / "sft", dir / "aligned", small_spec(DType::BF16), 5);
  ThreadPool pool(2);
  const std::vector<int32_t> tokens{3, 1, 4, 1, 5};
  auto logits = [&](const LoadedModel& m) {
    Transformer t(m);
    KvCache cache(m.config(), tokens.size());
    const ForwardItem item{&cache, tokens, true};
    return t.forward(std::span<const ForwardItem>(&item, 1), pool);
  };
  const ModelSource pair =
      ModelSource::open_pair((dir / "sft").string(), (dir / "aligned").string());
  ASSERT_TRUE(pair.is_pair());
  ASSERT_NE(pair.plan(), nullptr);
  const Checkpoint aligned = Checkpoint::open((dir / "aligned").string());
  EXPECT_EQ(pair.weight_bytes(), aligned.total_bytes());
  EXPECT_EQ(pair.folder(), aligned.folder());
  EXPECT_EQ(pair.config().architecture, "LlamaForCausalLM");

  const auto half = logits(*LoadedModel::load(pair, 0.5, false, pool));
  EXPECT_EQ(logits(*LoadedModel::load(pair, 0.5, false, pool)), half);
  EXPECT_NE(logits(*LoadedModel::load(pair, 1.5, false, pool)), half);
  // The aligned model alone is the aligned checkpoint read as is.
  const ModelSource alone = pair.aligned_only();
  EXPECT_FALSE(alone.is_pair());
  std::unique_ptr<LoadedModel> from_file;
  {
    const ModelSource opened = ModelSource::open((dir / "aligned").string());
    from_file = LoadedModel::load(opened, pool);
  }  // the source is gone; the model's views still point into the open checkpoint
  EXPECT_EQ(logits(*LoadedModel::load(alone, pool)), logits(*from_file));
  // A pair needs an alpha, one checkpoint takes none.
  EXPECT_NE(error_of([&] { LoadedModel::load(pair, pool); }).find("needs an alpha"),
            std::string::npos);
  EXPECT_NE(error_of([&] { LoadedModel::load(alone, 0.5, false, pool); }).find("not a pair"),
            std::string::npos);
}

TEST(Engine, StopsAtStopTokensAndAtTheLengthLimit) {
  TempDir dir;
  write_random_llama(dir / "m", small_spec(), 11);
  ThreadPool pool(2);
  const auto loaded = LoadedModel::load(ModelSource::open((dir / "m").string()), pool);
  Transformer model(*loaded);
  GenerationOptions options;
  options.max_new_tokens = 12;
  const auto prompts = some_prompts(3);
  std::vector<std::string> reasons;
  const auto free_run = run(model, pool, prompts, options, &reasons);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(free_run[i].size(), 12u);
    EXPECT_EQ(reasons[i], "length");
  }
  // Stopping at the first token the first prompt generates a second time.
  size_t k = 1;
  while (k < free_run[0].size() && std::find(free_run[0].begin(), free_run[0].begin() + k,
                                             free_run[0][k]) != free_run[0].begin() + k)
    ++k;
  ASSERT_LT(k, free_run[0].size());
  options.stop_ids = {free_run[0][k]};
  const auto stopped = run(model, pool, prompts, options, &reasons);
  EXPECT_EQ(reasons[0], "stop");
  EXPECT_EQ(stopped[0], std::vector<int32_t>(free_run[0].begin(), free_run[0].begin() + k + 1));
  // A context limit ends generation with "length".
  options.stop_ids.clear();
  options.context_length = prompts[0].size() + 3;
  const auto capped = run(model, pool, {prompts[0]}, options, &reasons);
  EXPECT_EQ(capped[0].size(), 3u);
  EXPECT_EQ(reasons[0], "length");
}

TEST(Engine, BadPromptsAreNamed) {
  TempDir dir;
  write_random_llama(dir / "m", small_spec(), 11);
  ThreadPool pool(1);
  const auto loaded = LoadedModel::load(ModelSource::open((dir / "m").string()), pool);
  Transformer model(*loaded);
  GenerationOptions options;
  auto name = [](size_t i) { return "prompt " + std::to_string(i); };
  std::vector<GenerationRequest> r{{{1, 2}, 0}, {{}, 1}};
  EXPECT_NE(error_of([&] {
              check_requests(model, r, options, name);
            }).find("prompt 1: the prompt has no tokens"),
            std::string::npos);
  r = {{{1, 128}, 0}};
  EXPECT_NE(error_of([&] {
              check_requests(model, r, options, name);
            }).find("token 1 is 128, outside the vocabulary of 128"),
            std::string::npos);
  r = {{std::vector<int32_t>(2048, 3), 0}};
  EXPECT_NE(error_of([&] { check_requests(model, r, options, name); }).find("context is 2048"),
            std::string::npos);
  KvCache cache(model.config(), 4);
  const std::vector<int32_t> bad{3, 999};
  const ForwardItem item{&cache, bad, true};
  EXPECT_NE(error_of([&] {
              model.forward(std::span<const ForwardItem>(&item, 1), pool);
            }).find("token id 999 at position 1 is out of range"),
            std::string::npos);
}

void edit_config(const std::filesystem::path& dir, const std::function<void(json&)>& edit) {
  json c = json::parse(read_text_file(dir / "config.json"));
  edit(c);
  std::filesystem::remove(dir / "config.json");
  write_text_file(dir / "config.json", c.dump());
}

TEST(Engine, BadModelsAreClearErrors) {
  TempDir dir;
  ThreadPool pool(1);
  const auto m = dir / "m";
  write_random_llama(m, small_spec(), 1);
  auto load_error = [&] {
    return error_of([&] { LoadedModel::load(ModelSource::open(m.string()), pool); });
  };

  edit_config(m, [](json& c) { c["architectures"] = {"GPTNeoXForCausalLM"}; });
  std::string e = load_error();
  EXPECT_NE(e.find("GPTNeoXForCausalLM is not supported"), std::string::npos) << e;
  EXPECT_NE(e.find("LlamaForCausalLM"), std::string::npos) << e;

  edit_config(m, [](json& c) {
    c["architectures"] = {"LlamaForCausalLM"};
    c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  });
  e = load_error();
  EXPECT_NE(e.find("\"yarn\" is not supported"), std::string::npos) << e;

  edit_config(m, [](json& c) {
    c.erase("rope_scaling");
    c["hidden_act"] = "relu";
  });
  EXPECT_NE(load_error().find("hidden_act \"relu\" is not supported"), std::string::npos);

  edit_config(m, [](json& c) {
    c["hidden_act"] = "silu";
    c["intermediate_size"] = 100;  // the tensors say 96
  });
  e = load_error();
  EXPECT_NE(e.find("mlp.gate_proj.weight' has shape [96, 64], config.json implies [100, 64]"),
            std::string::npos)
      << e;

  // A missing tensor and a wrong dtype are both listed.
  edit_config(m, [](json& c) { c["intermediate_size"] = 96; });
  std::vector<TensorData> tensors;
  {
    const Checkpoint ck = Checkpoint::open(m.string());
    for (const auto& t : ck.tensors()) {
      if (t.name() == "model.norm.weight") continue;
      TensorData d{{t.name(), t.info->dtype, t.info->shape},
                   std::vector<uint8_t>(t.data(), t.data() + t.info->num_bytes())};
      if (t.name() == "model.layers.0.input_layernorm.weight") d.layout.dtype = DType::I32;
      tensors.push_back(std::move(d));
    }
  }
  std::filesystem::remove(m / "model.safetensors");
  write_safetensors_file((m / "model.safetensors").string(), tensors, {{"format", "pt"}});
  e = load_error();
  EXPECT_NE(e.find("missing tensor 'model.norm.weight'"), std::string::npos) << e;
  EXPECT_NE(e.find("input_layernorm.weight' has dtype I32"), std::string::npos) << e;
}

TEST(Engine, APairOfTwoArchitecturesIsRefusedWhenOpened) {
  TempDir dir;
  write_random_pair(dir / "sft", dir / "aligned", small_spec(), 5);
  edit_config(dir / "sft", [](json& c) { c["architectures"] = {"MistralForCausalLM"}; });
  const std::string e =
      error_of([&] { ModelSource::open_pair((dir / "sft").string(), (dir / "aligned").string()); });
  EXPECT_NE(e.find("the SFT model is MistralForCausalLM but the aligned model is LlamaForCausalLM"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace expo
