// The whole extrapolation pass through the library: values, shards, index, files, atomicity.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/thread_pool.h"
#include "demo/random_model.h"
#include "io/checkpoint.h"
#include "io/sharding.h"
#include "merge/aux_files.h"
#include "merge/extrapolate.h"
#include "merge/extrapolate_tensor.h"
#include "test_util.h"

namespace expo {
namespace {

using testing::error_of;
using testing::random_tensor;
using testing::TempDir;
using testing::write_model;

RandomLlamaSpec small_spec() { return testing::tiny_llama(3, 32, 48, 4, 2, 64); }

ExtrapolateOptions options_for(const fs::path& out, double alpha, const std::string& text) {
  ExtrapolateOptions o;
  o.outputs.push_back({out, {alpha, text}});
  o.command_line = "expo extrapolate --test";
  return o;
}

// Checks every output element against the scalar definition.
void expect_extrapolated(const Checkpoint& sft, const Checkpoint& aligned, const Checkpoint& out,
                         double alpha) {
  ASSERT_EQ(out.tensors().size(), aligned.tensors().size());
  for (size_t i = 0; i < aligned.tensors().size(); ++i) {
    const auto& a = aligned.tensors()[i];
    const auto& o = out.tensors()[i];
    ASSERT_EQ(o.name(), a.name());  // the aligned model's order
    const auto* s = sft.find(a.name());
    ASSERT_NE(s, nullptr);
    for (uint64_t k = 0; k < a.info->num_elements(); ++k) {
      const double av = load_as_double(a.data(), a.info->dtype, k);
      const double sv = load_as_double(s->data(), s->info->dtype, k);
      const double d = av - sv;
      const double t = alpha * d;
      const double r = av + t;
      const uint64_t expected = round_to_bf16(r).bits;
      uint16_t got;
      std::memcpy(&got, o.data() + 2 * k, 2);
      ASSERT_EQ(got, expected) << a.name() << " element " << k;
    }
  }
}

TEST(Extrapolate, ShardedPairToShardedOutput) {
  TempDir dir;
  auto spec = small_spec();
  spec.max_shard_size = 8000;
  write_random_pair(dir / "sft", dir / "aligned", spec, 7);
  write_text_file(dir / "aligned" / "tokenizer.json", "{}");
  write_text_file(dir / "aligned" / "README.md", "original card");
  write_text_file(dir / "aligned" / "pytorch_model.bin", "not copied");
  const auto sft = Checkpoint::open((dir / "sft").string());
  const auto aligned = Checkpoint::open((dir / "aligned").string());
  const Plan plan = make_plan(sft, aligned, {});
  auto options = options_for(dir / "out", 0.3, "0.3");
  options.max_shard_size = 20000;
  ThreadPool pool(2);
  extrapolate_checkpoints(sft, aligned, plan, options, pool);

  const auto out = Checkpoint::open((dir / "out").string());
  expect_extrapolated(sft, aligned, out, 0.3);
  EXPECT_GT(out.num_files(), 1u);
  const auto index =
      nlohmann::json::parse(read_text_file(dir / "out" / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), plan.out_bytes());
  EXPECT_EQ(index["weight_map"].size(), aligned.tensors().size());
  for (const auto& e : fs::directory_iterator(dir / "out")) {
    const auto name = e.path().filename().string();
    if (!name.ends_with(".safetensors")) continue;
    EXPECT_LE(fs::file_size(e.path()), 20000u + 4096u) << name;  // data <= max, plus header
    SafetensorsFile f(e.path());
    EXPECT_EQ(f.header().metadata.at("format"), "pt");
    EXPECT_EQ(f.header().metadata.at("expo_alpha"), "0.3");
    EXPECT_EQ(f.header().metadata.at("expo_sft"), (dir / "sft").string());
  }
  EXPECT_TRUE(fs::exists(dir / "out" / "config.json"));
  EXPECT_TRUE(fs::exists(dir / "out" / "generation_config.json"));
  EXPECT_TRUE(fs::exists(dir / "out" / "tokenizer.json"));
  EXPECT_FALSE(fs::exists(dir / "out" / "pytorch_model.bin"));
  const std::string card = read_text_file(dir / "out" / "README.md");
  EXPECT_NE(card.find("ExPO"), std::string::npos);
  EXPECT_NE(card.find("alpha: 0.3"), std::string::npos);
  EXPECT_NE(card.find("expo extrapolate --test"), std::string::npos);
  EXPECT_EQ(card.find("original card"), std::string::npos);
  EXPECT_EQ(read_text_file(dir / "out" / "config.json"),
            read_text_file(dir / "aligned" / "config.json"));
}

TEST(Extrapolate, SeveralAlphasFromOneRead) {
  TempDir dir;
  write_random_pair(dir / "sft", dir / "aligned", small_spec(), 3);
  const auto sft = Checkpoint::open((dir / "sft").string());
  const auto aligned = Checkpoint::open((dir / "aligned").string());
  const Plan plan = make_plan(sft, aligned, {});
  ExtrapolateOptions options;
  options.outputs = {{dir / "out-0.5", {0.5, "0.5"}}, {dir / "out-25", {25.0, "25"}}};
  ThreadPool pool(2);
  extrapolate_checkpoints(sft, aligned, plan, options, pool);
  expect_extrapolated(sft, aligned, Checkpoint::open((dir / "out-0.5").string()), 0.5);
  expect_extrapolated(sft, aligned, Checkpoint::open((dir / "out-25").string()), 25.0);
}

TEST(Extrapolate, RefusesExistingOutputUnlessForced) {
  TempDir dir;
  write_random_pair(dir / "sft", dir / "aligned", small_spec(), 3);
  const auto sft = Checkpoint::open((dir / "sft").string());
  const auto aligned = Checkpoint::open((dir / "aligned").string());
  const Plan plan = make_plan(sft, aligned, {});
  fs::create_directories(dir / "out");
  write_text_file(dir / "out" / "keep.txt", "mine");
  ThreadPool pool(1);
  auto options = options_for(dir / "out", 0.3, "0.3");
  EXPECT_NE(
      error_of([&] { extrapolate_checkpoints(sft, aligned, plan, options, pool); }).find("--force"),
      std::string::npos);
  EXPECT_TRUE(fs::exists(dir / "out" / "keep.txt"));
  // --force alone replaces only a folder expo wrote: this one holds the user's file.
  options.force = true;
  EXPECT_CONTAINS(error_of([&] { extrapolate_checkpoints(sft, aligned, plan, options, pool); }),
                  "--force-any-folder");
  EXPECT_TRUE(fs::exists(dir / "out" / "keep.txt"));
  options.force_any = true;
  extrapolate_checkpoints(sft, aligned, plan, options, pool);
  EXPECT_FALSE(fs::exists(dir / "out" / "keep.txt"));
  EXPECT_TRUE(fs::exists(dir / "out" / "model.safetensors"));
  EXPECT_TRUE(is_expo_model_folder(dir / "out"));
  // Now it is expo's model folder: --force alone replaces it.
  options.force_any = false;
  extrapolate_checkpoints(sft, aligned, plan, options, pool);
  EXPECT_TRUE(fs::exists(dir / "out" / "model.safetensors"));
  // Nothing left beside the output: no staging or old folders.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 3u);
}

TEST(Extrapolate, RefusesToOverwriteAnInput) {
  TempDir dir;
  write_random_pair(dir / "sft", dir / "aligned", small_spec(), 3);
  const auto sft = Checkpoint::open((dir / "sft").string());
  const auto aligned = Checkpoint::open((dir / "aligned").string());
  const Plan plan = make_plan(sft, aligned, {});
  ThreadPool pool(1);
  auto options = options_for(dir / "aligned", 0.3, "0.3");
  options.force = true;
  EXPECT_NE(error_of([&] {
              extrapolate_checkpoints(sft, aligned, plan, options, pool);
            }).find("overwrite an input"),
            std::string::npos);
  options = options_for(dir.path(), 0.3, "0.3");
  options.force = true;
  EXPECT_NE(error_of([&] {
              extrapolate_checkpoints(sft, aligned, plan, options, pool);
            }).find("overwrite an input"),
            std::string::npos);
}

TEST(Extrapolate, OverflowLeavesNothing) {
  TempDir dir;
  write_model(dir / "s", {testing::tensor_from_doubles("w", DType::F16, {3}, {0.0, 1.0, 0.0}),
                          random_tensor("v", DType::BF16, {2000}, 1)});
  write_model(dir / "a", {testing::tensor_from_doubles("w", DType::F16, {3}, {0.0, 1.0, 60000}),
                          random_tensor("v", DType::BF16, {2000}, 2)});
  const auto sft = Checkpoint::open((dir / "s").string());
  const auto aligned = Checkpoint::open((dir / "a").string());
  const Plan plan = make_plan(sft, aligned, {});
  ThreadPool pool(2);
  const auto msg = error_of([&] {
    extrapolate_checkpoints(sft, aligned, plan, options_for(dir / "out", 0.5, "0.5"), pool);
  });
  EXPECT_NE(msg.find("tensor 'w' element [2]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("overflows F16"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--dtype"), std::string::npos) << msg;
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 2u);  // s and a only: no output, no temporary folder

  // A wider dtype holds the value.
  PlanOptions f32;
  f32.dtype = DType::F32;
  auto options = options_for(dir / "out", 0.5, "0.5");
  options.dtype = DType::F32;
  extrapolate_checkpoints(sft, aligned, make_plan(sft, aligned, f32), options, pool);
  const auto out = Checkpoint::open((dir / "out").string());
  EXPECT_EQ(out.find("w")->info->dtype, DType::F32);
}

TEST(Extrapolate, NonFiniteInputIsAnErrorUnlessAllowed) {
  TempDir dir;
  const double nan = std::nan("");
  write_model(dir / "s", {testing::tensor_from_doubles("w", DType::F32, {2, 2}, {0, 0, 0, 0})});
  write_model(dir / "a", {testing::tensor_from_doubles("w", DType::F32, {2, 2}, {0, 0, nan, 0})});
  const auto sft = Checkpoint::open((dir / "s").string());
  const auto aligned = Checkpoint::open((dir / "a").string());
  const Plan plan = make_plan(sft, aligned, {});
  ThreadPool pool(1);
  const auto msg = error_of([&] {
    extrapolate_checkpoints(sft, aligned, plan, options_for(dir / "out", 0.5, "0.5"), pool);
  });
  EXPECT_NE(msg.find("tensor 'w' element [1, 0]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--allow-nonfinite"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir / "out"));
  auto options = options_for(dir / "out", 0.5, "0.5");
  options.allow_nonfinite = true;
  extrapolate_checkpoints(sft, aligned, plan, options, pool);
  const auto out = Checkpoint::open((dir / "out").string());
  EXPECT_TRUE(std::isnan(load_as_double(out.find("w")->data(), DType::F32, 2)));
}

TEST(Extrapolate, RowsTiesAndDtypeOverride) {
  TempDir dir;
  const char* tied =
      R"({"architectures":["LlamaForCausalLM"],"tie_word_embeddings":true,"torch_dtype":"bfloat16"})";
  write_model(dir / "s",
              {random_tensor("model.embed_tokens.weight", DType::BF16, {6, 4}, 1),
               random_tensor("model.norm.weight", DType::BF16, {4}, 2)},
              tied);
  write_model(dir / "a",
              {random_tensor("model.embed_tokens.weight", DType::BF16, {7, 4}, 3),
               random_tensor("model.norm.weight", DType::BF16, {4}, 4)},
              tied);
  const auto sft = Checkpoint::open((dir / "s").string());
  const auto aligned = Checkpoint::open((dir / "a").string());
  PlanOptions plan_options;
  plan_options.dtype = DType::F32;
  const Plan plan = make_plan(sft, aligned, plan_options);
  EXPECT_TRUE(plan.output_tied);
  auto options = options_for(dir / "out", 2.0, "2");
  options.dtype = DType::F32;
  ThreadPool pool(2);
  extrapolate_checkpoints(sft, aligned, plan, options, pool);
  const auto out = Checkpoint::open((dir / "out").string());
  EXPECT_EQ(out.find("lm_head.weight"), nullptr);  // still tied
  const auto* e = out.find("model.embed_tokens.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->info->dtype, DType::F32);
  EXPECT_EQ(e->info->shape, (std::vector<uint64_t>{7, 4}));
  const auto* ea = aligned.find("model.embed_tokens.weight");
  const auto* es = sft.find("model.embed_tokens.weight");
  for (uint64_t k = 0; k < 28; ++k) {
    const double av = load_as_double(ea->data(), DType::BF16, k);
    const double expected =
        k < 24 ? static_cast<float>(av + 2.0 * (av - load_as_double(es->data(), DType::BF16, k)))
               : av;  // the 7th row is copied from aligned
    EXPECT_EQ(load_as_double(e->data(), DType::F32, k), expected) << k;
  }
  const auto config = nlohmann::json::parse(read_text_file(dir / "out" / "config.json"));
  EXPECT_EQ(config["torch_dtype"], "float32");
  EXPECT_EQ(config["tie_word_embeddings"], true);
}

// The file writer and the engine's extrapolation on load share one chunked loop: both give the
// same bytes across chunk boundaries, at the end of the shared rows (not on a chunk boundary),
// for a copy in the aligned dtype and for one into a wider dtype.
TEST(Extrapolate, InMemoryEqualsTheFileAcrossChunks) {
  TempDir dir;
  const uint64_t cols = 1024, sft_rows = 2100, rows = 2200;  // 2.25 chunks, 2.05 of them shared
  static_assert(sft_rows * cols > kEntryChunkElements &&
                sft_rows * cols % kEntryChunkElements != 0);
  write_model(dir / "s",
              {random_tensor("model.embed_tokens.weight", DType::BF16, {sft_rows, cols}, 1),
               random_tensor("w", DType::BF16, {rows, cols}, 2)});
  write_model(dir / "a", {random_tensor("model.embed_tokens.weight", DType::BF16, {rows, cols}, 3),
                          random_tensor("w", DType::BF16, {rows, cols}, 4)});
  const auto sft = Checkpoint::open((dir / "s").string());
  const auto aligned = Checkpoint::open((dir / "a").string());
  ThreadPool pool(2);
  for (const std::optional<DType> dtype :
       {std::optional<DType>{}, std::optional<DType>{DType::F32}}) {
    PlanOptions plan_options;
    plan_options.dtype = dtype;
    const Plan plan = make_plan(sft, aligned, plan_options);
    ASSERT_EQ(plan.entries[0].action, Action::kExtrapolateRows);
    const fs::path out = dir / (dtype ? "out-f32" : "out");
    auto options = options_for(out, 0.7, "0.7");
    options.dtype = dtype;
    extrapolate_checkpoints(sft, aligned, plan, options, pool);
    const auto written = Checkpoint::open(out.string());
    for (const auto& entry : plan.entries) {
      std::vector<uint8_t> memory(entry.out_bytes());
      extrapolate_entry_to_memory(entry, 0.7, false, memory.data(), pool);
      const auto* t = written.find(entry.name());
      ASSERT_NE(t, nullptr);
      ASSERT_EQ(t->info->num_bytes(), memory.size());
      EXPECT_EQ(std::memcmp(t->data(), memory.data(), memory.size()), 0) << entry.name();
    }
    // Every element against the scalar definition; the aligned model's extra rows are copied.
    for (const std::string name : {"model.embed_tokens.weight", "w"}) {
      const auto* o = written.find(name);
      const auto* a = aligned.find(name);
      const auto* s = sft.find(name);
      const uint64_t shared = s->info->num_elements();
      for (uint64_t k = 0; k < a->info->num_elements(); ++k) {
        const double av = load_as_double(a->data(), DType::BF16, k);
        double expected = av;
        if (k < shared) {
          const double r = av + 0.7 * (av - load_as_double(s->data(), DType::BF16, k));
          expected = dtype ? static_cast<float>(r)
                           : bf16_to_double(static_cast<uint16_t>(round_to_bf16(r).bits));
        }
        ASSERT_EQ(load_as_double(o->data(), o->info->dtype, k), expected)
            << name << " element " << k;
      }
    }
  }
}

TEST(Extrapolate, DescribePlanForDryRun) {
  TempDir dir;
  write_random_pair(dir / "sft", dir / "aligned", small_spec(), 3);
  const auto sft = Checkpoint::open((dir / "sft").string());
  const auto aligned = Checkpoint::open((dir / "aligned").string());
  const Plan plan = make_plan(sft, aligned, {});
  auto options = options_for(dir / "out", 0.3, "0.3");
  options.max_shard_size = 30000;
  const std::string text = describe_plan(sft, aligned, plan, options);
  EXPECT_NE(text.find("nothing is written"), std::string::npos);
  EXPECT_NE(text.find("30 extrapolated"), std::string::npos) << text;
  EXPECT_NE(text.find("model-00001-of-"), std::string::npos);
  EXPECT_NE(text.find("bytes to write"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(Sharding, FollowsTransformers) {
  const auto shards = plan_shards({4, 4, 10, 3, 3, 3}, 8);
  ASSERT_EQ(shards.size(), 4u);
  EXPECT_EQ(shards[0], (std::vector<size_t>{0, 1}));
  EXPECT_EQ(shards[1], (std::vector<size_t>{2}));  // larger than the limit: alone
  EXPECT_EQ(shards[2], (std::vector<size_t>{3, 4}));
  EXPECT_EQ(shards[3], (std::vector<size_t>{5}));
  EXPECT_EQ(shard_file_name(0, 1), "model.safetensors");
  EXPECT_EQ(shard_file_name(1, 3), "model-00002-of-00003.safetensors");
}

}  // namespace
}  // namespace expo
