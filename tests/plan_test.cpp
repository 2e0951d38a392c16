// Matching the two models' tensors.
#include <gtest/gtest.h>

#include "io/checkpoint.h"
#include "merge/plan.h"
#include "test_util.h"

namespace expo {
namespace {

using testing::error_of;
using testing::random_tensor;
using testing::TempDir;
using testing::write_model;

const char* kUntied = R"({"architectures":["LlamaForCausalLM"],"tie_word_embeddings":false})";
const char* kTied = R"({"architectures":["LlamaForCausalLM"],"tie_word_embeddings":true})";

TEST(Plan, SameNamesAndShapesExtrapolate) {
  TempDir dir;
  write_model(dir / "s",
              {random_tensor("a", DType::BF16, {4, 4}, 1), random_tensor("b", DType::F32, {3}, 2)});
  write_model(dir / "a",
              {random_tensor("a", DType::BF16, {4, 4}, 3), random_tensor("b", DType::F32, {3}, 4),
               testing::tensor_from_doubles("ids", DType::I64, {2}, {0, 0})});
  // ids is an integer tensor only in aligned: it passes through unchanged.
  auto s = Checkpoint::open((dir / "s").string());
  auto a = Checkpoint::open((dir / "a").string());
  const Plan plan = make_plan(s, a, {});
  ASSERT_EQ(plan.entries.size(), 3u);
  EXPECT_EQ(plan.count(Action::kExtrapolate), 2u);
  EXPECT_EQ(plan.count(Action::kCopyAligned), 1u);
}

TEST(Plan, ListsEveryMismatch) {
  TempDir dir;
  write_model(dir / "s", {random_tensor("shared", DType::BF16, {4}, 1),
                          random_tensor("only_sft", DType::BF16, {4}, 1),
                          random_tensor("reshaped", DType::BF16, {4, 2}, 1)});
  write_model(dir / "a", {random_tensor("shared", DType::BF16, {4}, 1),
                          random_tensor("only_aligned_1", DType::BF16, {4}, 1),
                          random_tensor("only_aligned_2", DType::BF16, {4}, 1),
                          random_tensor("reshaped", DType::BF16, {2, 4}, 1)});
  auto s = Checkpoint::open((dir / "s").string());
  auto a = Checkpoint::open((dir / "a").string());
  const auto msg = error_of([&] { make_plan(s, a, {}); });
  for (const char* name : {"only_sft", "only_aligned_1", "only_aligned_2", "reshaped"})
    EXPECT_NE(msg.find(name), std::string::npos) << name << " missing in: " << msg;
  EXPECT_NE(msg.find("4 tensor(s)"), std::string::npos);
  EXPECT_NE(msg.find("--on-missing copy-aligned"), std::string::npos);

  PlanOptions copy;
  copy.on_missing = OnMissing::kCopyAligned;
  const Plan plan = make_plan(s, a, copy);
  EXPECT_EQ(plan.count(Action::kCopyAligned), 3u);
  EXPECT_EQ(plan.count(Action::kExtrapolate), 1u);
  EXPECT_EQ(plan.warnings.size(), 4u);
}

TEST(Plan, ExtraVocabularyRows) {
  TempDir dir;
  write_model(dir / "s",
              {random_tensor("model.embed_tokens.weight", DType::BF16, {8, 4}, 1),
               random_tensor("lm_head.weight", DType::BF16, {8, 4}, 2)},
              kUntied);
  write_model(dir / "a",
              {random_tensor("model.embed_tokens.weight", DType::BF16, {9, 4}, 1),
               random_tensor("lm_head.weight", DType::BF16, {9, 4}, 2)},
              kUntied);
  auto s = Checkpoint::open((dir / "s").string());
  auto a = Checkpoint::open((dir / "a").string());
  const Plan plan = make_plan(s, a, {});
  ASSERT_EQ(plan.count(Action::kExtrapolateRows), 2u);
  EXPECT_EQ(plan.entries[0].shared_rows, 8u);
  ASSERT_EQ(plan.notes.size(), 2u);
  EXPECT_NE(plan.notes[0].find("1 extra rows"), std::string::npos);
}

TEST(Plan, TiedSftUsesEmbeddingAsHead) {
  TempDir dir;
  write_model(dir / "s", {random_tensor("model.embed_tokens.weight", DType::BF16, {8, 4}, 1)},
              kTied);
  write_model(dir / "a",
              {random_tensor("model.embed_tokens.weight", DType::BF16, {8, 4}, 1),
               random_tensor("lm_head.weight", DType::BF16, {8, 4}, 2)},
              kUntied);
  auto s = Checkpoint::open((dir / "s").string());
  auto a = Checkpoint::open((dir / "a").string());
  const Plan plan = make_plan(s, a, {});
  ASSERT_EQ(plan.entries.size(), 2u);
  EXPECT_EQ(plan.entries[1].name(), "lm_head.weight");
  EXPECT_EQ(plan.entries[1].sft->name(), "model.embed_tokens.weight");
  EXPECT_FALSE(plan.output_tied);
}

TEST(Plan, TiedAlignedStaysTied) {
  TempDir dir;
  write_model(dir / "s",
              {random_tensor("model.embed_tokens.weight", DType::BF16, {8, 4}, 1),
               random_tensor("lm_head.weight", DType::BF16, {8, 4}, 2)},
              kUntied);
  write_model(dir / "a", {random_tensor("model.embed_tokens.weight", DType::BF16, {8, 4}, 1)},
              kTied);
  auto s = Checkpoint::open((dir / "s").string());
  auto a = Checkpoint::open((dir / "a").string());
  const Plan plan = make_plan(s, a, {});
  EXPECT_TRUE(plan.output_tied);
  ASSERT_EQ(plan.entries.size(), 1u);
  EXPECT_EQ(plan.count(Action::kExtrapolate), 1u);
}

TEST(Plan, FirstMatchingRuleWins) {
  TempDir dir;
  write_model(dir / "s", {random_tensor("model.embed_tokens.weight", DType::BF16, {4}, 1),
                          random_tensor("model.layers.0.mlp.up_proj.weight", DType::BF16, {4}, 1),
                          random_tensor("lm_head.weight", DType::BF16, {4}, 1)});
  write_model(dir / "a", {random_tensor("model.embed_tokens.weight", DType::BF16, {4}, 2),
                          random_tensor("model.layers.0.mlp.up_proj.weight", DType::BF16, {4}, 2),
                          random_tensor("lm_head.weight", DType::BF16, {4}, 2)});
  auto s = Checkpoint::open((dir / "s").string());
  auto a = Checkpoint::open((dir / "a").string());
  PlanOptions options;
  options.rules.push_back(parse_alpha_rule("lm_head=2"));
  options.rules.push_back(parse_alpha_rule("embed_tokens|lm_head=0"));
  const Plan plan = make_plan(s, a, options);
  EXPECT_EQ(plan.entries[0].alpha_for(0.3), 0.0);
  EXPECT_EQ(plan.entries[1].alpha_for(0.3), 0.3);
  EXPECT_EQ(plan.entries[2].alpha_for(0.3), 2.0);
}

TEST(AlphaRules, ParseErrors) {
  EXPECT_NE(error_of([] { parse_alpha_rule("noequals"); }).find("REGEX=ALPHA"), std::string::npos);
  EXPECT_NE(error_of([] { parse_alpha_rule("(=1"); }).find("regular expression"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_alpha_rule("x=abc"); }).find("abc"), std::string::npos);
  const auto list = parse_alpha_list("0.1, 0.3,25");
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[1].text, "0.3");
  EXPECT_EQ(list[2].value, 25.0);
  EXPECT_NE(error_of([] { parse_alpha_list("0.1,,0.3"); }).find("empty"), std::string::npos);
  EXPECT_NE(error_of([] { parse_alpha_list("0.1,0.1"); }).find("twice"), std::string::npos);
  EXPECT_NE(error_of([] { parse_alpha_list("nan"); }).find("finite"), std::string::npos);
}

}  // namespace
}  // namespace expo
