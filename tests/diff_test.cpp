#include <gtest/gtest.h>

#include <cmath>

#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "merge/diff.h"
#include "test_util.h"

namespace expo {
namespace {

using testing::TempDir;
using testing::tensor_from_doubles;
using testing::write_model;

TEST(Diff, NormsRelativeAndCosine) {
  TempDir dir;
  write_model(dir / "s", {tensor_from_doubles("model.layers.0.w", DType::F32, {2}, {1, 0}),
                          tensor_from_doubles("model.layers.0.v", DType::F32, {1}, {2}),
                          tensor_from_doubles("model.norm.weight", DType::F32, {1}, {1})});
  write_model(dir / "a", {tensor_from_doubles("model.layers.0.w", DType::F32, {2}, {0, 1}),
                          tensor_from_doubles("model.layers.0.v", DType::F32, {1}, {2}),
                          tensor_from_doubles("model.norm.weight", DType::F32, {1}, {3})});
  const auto s = Checkpoint::open((dir / "s").string());
  const auto a = Checkpoint::open((dir / "a").string());
  ThreadPool pool(2);
  const auto report = diff_checkpoints(make_plan(s, a, {}), pool, false);
  ASSERT_EQ(report.tensors.size(), 3u);
  EXPECT_DOUBLE_EQ(report.tensors[0].sums.delta_norm(), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(report.tensors[0].sums.relative(), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(report.tensors[0].sums.cosine(), 0.0);
  EXPECT_DOUBLE_EQ(report.tensors[1].sums.cosine(), 1.0);
  ASSERT_EQ(report.groups.size(), 2u);
  EXPECT_EQ(report.groups[0].group, "layer 0");
  EXPECT_DOUBLE_EQ(report.groups[0].sums.delta_norm(), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(report.groups[0].sums.relative(), std::sqrt(2.0) / std::sqrt(5.0));
  EXPECT_DOUBLE_EQ(report.groups[1].sums.delta_norm(), 2.0);
  EXPECT_DOUBLE_EQ(report.total.delta_sq, 6.0);
  const std::string json = format_diff_json(report, "s", "a");
  EXPECT_NE(json.find("\"layers\""), std::string::npos);
  EXPECT_NE(format_diff_table(report).find("layer 0"), std::string::npos);
}

TEST(Diff, LayerGroups) {
  EXPECT_EQ(layer_group("model.layers.12.mlp.up_proj.weight"), "layer 12");
  EXPECT_EQ(layer_group("transformer.h.3.attn.c_attn.weight"), "layer 3");
  EXPECT_EQ(layer_group("lm_head.weight"), "(outside layers)");
}

}  // namespace
}  // namespace expo
