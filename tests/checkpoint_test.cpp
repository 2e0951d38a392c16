// Finding a checkpoint's tensors: single file, folder, sharded folder, Hugging Face cache.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "core/fs.h"
#include "demo/random_model.h"
#include "io/checkpoint.h"
#include "io/hf_cache.h"
#include "test_util.h"

namespace expo {
namespace {

using testing::error_of;
using testing::TempDir;

RandomLlamaSpec small_spec() { return testing::tiny_llama(2, 16, 24, 2, 1, 32); }

TEST(Checkpoint, OpensFolderFileAndShards) {
  TempDir dir;
  auto spec = small_spec();
  write_random_llama(dir / "single", spec, 1);
  spec.max_shard_size = 3000;
  write_random_llama(dir / "sharded", spec, 1);

  const auto single = Checkpoint::open((dir / "single").string());
  const auto sharded = Checkpoint::open((dir / "sharded").string());
  EXPECT_EQ(single.num_files(), 1u);
  EXPECT_GT(sharded.num_files(), 2u);
  ASSERT_EQ(single.tensors().size(), sharded.tensors().size());
  for (size_t i = 0; i < single.tensors().size(); ++i)
    EXPECT_EQ(single.tensors()[i].name(), sharded.tensors()[i].name());  // model order kept
  EXPECT_EQ(single.architecture(), "LlamaForCausalLM");
  EXPECT_FALSE(single.ties_embeddings());

  const auto file = Checkpoint::open((dir / "single" / "model.safetensors").string());
  EXPECT_TRUE(file.folder().empty());
  EXPECT_EQ(file.tensors().size(), single.tensors().size());
  const auto via_index =
      Checkpoint::open((dir / "sharded" / "model.safetensors.index.json").string());
  EXPECT_EQ(via_index.tensors().size(), single.tensors().size());
}

TEST(Checkpoint, IndexErrorsNameTheProblem) {
  TempDir dir;
  auto spec = small_spec();
  spec.max_shard_size = 3000;
  write_random_llama(dir / "m", spec, 1);
  const fs::path index = dir / "m" / "model.safetensors.index.json";
  const std::string original = read_text_file(index);

  fs::remove(index);
  write_text_file(index, R"({"weight_map": {"a.weight": "model-00009-of-00009.safetensors"}})");
  auto msg = error_of([&] { Checkpoint::open((dir / "m").string()); });
  EXPECT_NE(msg.find("model-00009-of-00009.safetensors"), std::string::npos);
  EXPECT_NE(msg.find("does not exist"), std::string::npos);

  fs::remove(index);
  std::string first_shard;
  for (const auto& e : fs::directory_iterator(dir / "m"))
    if (e.path().filename().string().starts_with("model-00001-of-"))
      first_shard = e.path().filename().string();
  write_text_file(index, R"({"weight_map": {"ghost.weight": ")" + first_shard + R"("}})");
  msg = error_of([&] { Checkpoint::open((dir / "m").string()); });
  EXPECT_NE(msg.find("ghost.weight"), std::string::npos);

  fs::remove(index);
  write_text_file(index, R"({"weight_map": )");
  msg = error_of([&] { Checkpoint::open((dir / "m").string()); });
  EXPECT_NE(msg.find("invalid JSON"), std::string::npos);
  EXPECT_NE(msg.find("model.safetensors.index.json"), std::string::npos);

  fs::remove(index);
  write_text_file(index, R"({"weight_map": {"a": "../../etc/passwd"}})");
  msg = error_of([&] { Checkpoint::open((dir / "m").string()); });
  EXPECT_NE(msg.find("leaves the folder"), std::string::npos);
}

TEST(Checkpoint, FolderWithoutSafetensors) {
  TempDir dir;
  fs::create_directories(dir / "m");
  write_text_file(dir / "m" / "pytorch_model.bin", "x");
  const auto msg = error_of([&] { Checkpoint::open((dir / "m").string()); });
  EXPECT_NE(msg.find("pytorch_model.bin"), std::string::npos);
  EXPECT_NE(error_of([&] { Checkpoint::open((dir / "nothing-here").string()); }).find("no such"),
            std::string::npos);
}

TEST(Checkpoint, HuggingFaceCache) {
  TempDir dir;
  const fs::path repo = dir / "hub" / "models--org--tiny";
  write_random_llama(repo / "snapshots" / "aaaa1111", small_spec(), 1);
  auto spec = small_spec();
  spec.layers = 3;
  write_random_llama(repo / "snapshots" / "bbbb2222", spec, 2);
  fs::create_directories(repo / "refs");
  write_text_file(repo / "refs" / "v1", "aaaa1111\n");
  // Make bbbb2222 clearly the newest.
  fs::last_write_time(repo / "snapshots" / "aaaa1111",
                      fs::file_time_type::clock::now() - std::chrono::hours(1));
  ::setenv("HF_HUB_CACHE", (dir / "hub").c_str(), 1);

  EXPECT_TRUE(looks_like_repo_id("org/tiny"));
  EXPECT_FALSE(looks_like_repo_id("./org/tiny/x"));
  const auto newest = Checkpoint::open("org/tiny");
  EXPECT_NE(newest.find("model.layers.2.mlp.up_proj.weight"), nullptr);
  const auto by_ref = Checkpoint::open("org/tiny", "v1");
  EXPECT_EQ(by_ref.find("model.layers.2.mlp.up_proj.weight"), nullptr);
  const auto by_commit = Checkpoint::open("org/tiny", "aaaa");
  EXPECT_EQ(by_commit.folder().filename(), "aaaa1111");
  EXPECT_NE(error_of([] { Checkpoint::open("org/tiny", "v9"); }).find("v9"), std::string::npos);
  EXPECT_NE(error_of([] { Checkpoint::open("org/missing"); }).find("Hugging Face cache"),
            std::string::npos);
  ::unsetenv("HF_HUB_CACHE");
}

}  // namespace
}  // namespace expo
