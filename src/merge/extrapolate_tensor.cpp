#include "merge/extrapolate_tensor.h"

#include <algorithm>

#include "core/error.h"
#include "core/interrupt.h"
#include "core/units.h"

namespace expo {

namespace {
constexpr uint64_t kChunkElements = uint64_t{1} << 20;
constexpr uint64_t kTaskElements = uint64_t{1} << 16;
}  // namespace

std::string element_position(const std::vector<uint64_t>& shape, uint64_t flat) {
  std::vector<uint64_t> coords(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    coords[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  std::string s = "[";
  for (size_t d = 0; d < coords.size(); ++d) s += (d ? ", " : "") + std::to_string(coords[d]);
  return s + "]";
}

void report_extrapolation_problem(const PlanEntry& entry, const KernelStatus& st,
                                  bool extrapolated, double alpha) {
  const CheckpointTensor& a = *entry.aligned;
  const CheckpointTensor* s = extrapolated ? entry.sft : nullptr;
  const std::string where =
      "tensor '" + entry.name() + "' element " + element_position(entry.shape(), st.index);
  const double av = load_as_double(a.data(), a.info->dtype, st.index);
  using Problem = KernelStatus::Problem;
  if (st.problem == Problem::kNonFiniteAligned)
    fail(where, " is ", format_double(av), " in the aligned model (", a.file->path().string(),
         "); pass --allow-nonfinite to carry NaN/Inf through");
  const double sv = s ? load_as_double(s->data(), s->info->dtype, st.index) : av;
  if (st.problem == Problem::kNonFiniteSft)
    fail(where, " is ", format_double(sv), " in the SFT model (", s->file->path().string(),
         "); pass --allow-nonfinite to carry NaN/Inf through");
  const double r = s ? av + alpha * (av - sv) : av;
  fail(where, ": a + alpha * (a - s) = ", format_double(r), " (a = ", format_double(av),
       ", s = ", format_double(sv), ", alpha = ", format_double(alpha), ") overflows ",
       dtype_name(entry.out_dtype), "; use a wider --dtype (f32) or a smaller alpha");
}

void extrapolate_entry_to_memory(const PlanEntry& entry, double alpha, bool allow_nonfinite,
                                 void* out, ThreadPool& pool) {
  const CheckpointTensor& a = *entry.aligned;
  const DType a_dtype = a.info->dtype;
  const size_t a_size = dtype_size(a_dtype);
  const size_t out_size = dtype_size(entry.out_dtype);
  const uint64_t n = entry.num_elements();
  const double entry_alpha = entry.alpha_for(alpha);
  uint64_t extrapolated = 0;
  if (entry.action == Action::kExtrapolate) extrapolated = n;
  if (entry.action == Action::kExtrapolateRows)
    extrapolated = entry.shared_rows * (entry.shape()[0] ? n / entry.shape()[0] : 0);
  uint8_t* dst = static_cast<uint8_t*>(out);
  std::vector<uint8_t> a_buf, s_buf;

  for (uint64_t start = 0; start < n;) {
    check_interrupted();
    uint64_t end = std::min(n, start + kChunkElements);
    if (start < extrapolated && end > extrapolated) end = extrapolated;  // never straddle
    const uint64_t count = end - start;
    const bool extrapolate = start < extrapolated;
    if (!extrapolate && entry.out_dtype == a_dtype) {
      a.file->read(*a.info, start * a_size, count * a_size, dst + start * out_size);
      start = end;
      continue;
    }
    const CheckpointTensor* s = extrapolate ? entry.sft : nullptr;
    const size_t s_size = s ? dtype_size(s->info->dtype) : 0;
    a_buf.resize(count * a_size);
    a.file->read(*a.info, start * a_size, count * a_size, a_buf.data());
    if (s) {
      s_buf.resize(count * s_size);
      s->file->read(*s->info, start * s_size, count * s_size, s_buf.data());
    }
    const size_t tasks = (count + kTaskElements - 1) / kTaskElements;
    std::vector<KernelStatus> statuses(tasks);
    pool.parallel_for(tasks, [&](size_t t) {
      const uint64_t first = t * kTaskElements;
      KernelArgs args;
      args.aligned = a_buf.data() + first * a_size;
      args.aligned_dtype = a_dtype;
      args.sft = s ? s_buf.data() + first * s_size : nullptr;
      args.sft_dtype = s ? s->info->dtype : a_dtype;
      args.out = dst + (start + first) * out_size;
      args.out_dtype = entry.out_dtype;
      args.count = std::min<uint64_t>(kTaskElements, count - first);
      args.alpha = entry_alpha;
      args.allow_nonfinite = allow_nonfinite;
      statuses[t] = extrapolate_fast(args);
      statuses[t].index += start + first;
    });
    for (const auto& st : statuses)
      if (!st.ok()) report_extrapolation_problem(entry, st, s != nullptr, entry_alpha);
    start = end;
  }
}

}  // namespace expo
