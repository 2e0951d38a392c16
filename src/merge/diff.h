#pragma once
// Where alignment changed a model: per tensor, and summed per layer, the norm of the delta
// (aligned - sft), that norm relative to the aligned weights, and the cosine between the two
// models' weights. Sums run in float64 over the tensors streamed from their memory maps.
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "merge/plan.h"

namespace expo {

struct DeltaSums {
  double delta_sq = 0, aligned_sq = 0, sft_sq = 0, dot = 0;
  uint64_t elements = 0;
  void add(const DeltaSums& o);
  double delta_norm() const;
  double relative() const;  // |a - s| / |a|
  double cosine() const;    // <a, s> / (|a| |s|)
};

struct TensorDelta {
  std::string name;
  std::string group;  // "layer 12" or the tensor's own name outside the layers
  DeltaSums sums;
};

struct GroupDelta {
  std::string group;
  DeltaSums sums;
};

struct DiffReport {
  std::vector<TensorDelta> tensors;
  std::vector<GroupDelta> groups;  // in first-seen order
  DeltaSums total;
  std::vector<std::string> skipped;  // tensors not compared, with why
};

// The layer group of a tensor name: "layer N" for *.layers.N.*, *.h.N.*, *.blocks.N.*,
// else "(outside layers)".
std::string layer_group(const std::string& name);

DeltaSums delta_sums_reference(const void* a, DType a_dtype, const void* s, DType s_dtype,
                               uint64_t count);
DiffReport diff_checkpoints(const Plan& plan, ThreadPool& pool, bool progress);

std::string format_diff_table(const DiffReport& report);
std::string format_diff_json(const DiffReport& report, const std::string& sft,
                             const std::string& aligned);

}  // namespace expo
