// The LoRA kernels. The product's inner loops (a row of p over a run of columns) are compiled
// by Highway's foreach_target.h once per CPU target and dispatched to the best one, as the
// ExPO kernel is (merge/extrapolate_kernel.cpp): plain loops the compiler vectorizes with the
// target's instruction set, the same IEEE operations per element on every target (multiply,
// then add, in ascending k; no FMA under -ffp-contract=off). Nothing in the target namespaces
// instantiates standard-library templates. The rest is ordinary code below HWY_ONCE.
#include <stddef.h>
#include <stdint.h>

#include "core/highway_config.h"  // before Highway
#include "merge/lora_kernel.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "merge/lora_kernel.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace expo {
namespace lora_simd {
namespace HWY_NAMESPACE {

// p[j] = sum_k l[k] * right[k * cols + col + j] for j < n, ascending k from the first product.
// Tiles of kTile columns keep their sums in registers over all k.
void RowProduct(const double* HWY_RESTRICT l, const double* HWY_RESTRICT right, uint64_t cols,
                uint64_t rank, uint64_t col, uint64_t n, double* HWY_RESTRICT out) {
  constexpr uint64_t kTile = 32;
  uint64_t j = 0;
  for (; j + kTile <= n; j += kTile) {
    double acc[kTile];
    const double* r0 = right + col + j;
    const double l0 = l[0];
    for (uint64_t t = 0; t < kTile; ++t) acc[t] = l0 * r0[t];
    for (uint64_t k = 1; k < rank; ++k) {
      const double lk = l[k];
      const double* rk = right + k * cols + col + j;
      for (uint64_t t = 0; t < kTile; ++t) {
        const double term = lk * rk[t];
        acc[t] = acc[t] + term;
      }
    }
    for (uint64_t t = 0; t < kTile; ++t) out[j + t] = acc[t];
  }
  const uint64_t rest = n - j;
  if (rest == 0) return;
  double* o = out + j;
  const double* r0 = right + col + j;
  for (uint64_t t = 0; t < rest; ++t) o[t] = l[0] * r0[t];
  for (uint64_t k = 1; k < rank; ++k) {
    const double lk = l[k];
    const double* rk = right + k * cols + col + j;
    for (uint64_t t = 0; t < rest; ++t) {
      const double term = lk * rk[t];
      o[t] = o[t] + term;
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace lora_simd
}  // namespace expo
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/units.h"

namespace expo {

namespace lora_simd {
HWY_EXPORT(RowProduct);

void row_product(const double* l, const double* right, uint64_t cols, uint64_t rank, uint64_t col,
                 uint64_t n, double* out) {
  HWY_DYNAMIC_DISPATCH(RowProduct)(l, right, cols, rank, col, n, out);
}
}  // namespace lora_simd

using Problem = KernelStatus::Problem;

LoraUpdate::LoraUpdate(std::vector<double> left, std::vector<double> right, uint64_t rows,
                       uint64_t cols, uint64_t rank, double scale)
    : left_(std::move(left)),
      right_(std::move(right)),
      rows_(rows),
      cols_(cols),
      rank_(rank),
      scale_(scale) {
  if (rank_ == 0 || left_.size() != rows_ * rank_ || right_.size() != rank_ * cols_)
    fail("internal: LoRA factors of ", left_.size(), " and ", right_.size(), " values for rows ",
         rows_, ", cols ", cols_, ", rank ", rank_);
}

LoraUpdate LoraUpdate::read(const LoraModule& m, bool allow_nonfinite) {
  auto read_matrix = [&](const CheckpointTensor& t) {
    const uint64_t n = t.info->num_elements();
    std::vector<uint8_t> bytes(t.info->num_bytes());
    t.file->read(*t.info, 0, bytes.size(), bytes.data());
    std::vector<double> values(n);
    for (uint64_t i = 0; i < n; ++i) {
      values[i] = load_as_double(bytes.data(), t.info->dtype, i);
      if (!allow_nonfinite && !std::isfinite(values[i]))
        fail("tensor '", t.name(), "' element [", i / t.info->shape[1], ", ", i % t.info->shape[1],
             "] is ", format_double(values[i]), " in the adapter (", t.file->path().string(),
             "); pass --allow-nonfinite to carry NaN/Inf through");
    }
    t.file->release(*t.info, 0, t.info->num_bytes());
    return values;
  };
  const std::vector<double> a = read_matrix(*m.a);  // [r, a_cols]
  const std::vector<double> b = read_matrix(*m.b);  // [b_rows, r]
  const uint64_t r = m.rank, a_cols = m.a->info->shape[1], b_rows = m.b->info->shape[0];
  std::vector<double> left, right;
  if (!m.transposed) {  // L = B [b_rows, r], R = A [r, a_cols]
    left = b;
    right = a;
  } else {  // L = A^T [a_cols, r], R = B^T [r, b_rows]
    left.resize(a_cols * r);
    for (uint64_t k = 0; k < r; ++k)
      for (uint64_t i = 0; i < a_cols; ++i) left[i * r + k] = a[k * a_cols + i];
    right.resize(r * b_rows);
    for (uint64_t j = 0; j < b_rows; ++j)
      for (uint64_t k = 0; k < r; ++k) right[k * b_rows + j] = b[j * r + k];
  }
  return LoraUpdate(std::move(left), std::move(right), m.rows(), m.cols(), r, m.scale);
}

double LoraUpdate::product_reference(uint64_t row, uint64_t col) const {
  double p = left_[row * rank_] * right_[col];
  for (uint64_t k = 1; k < rank_; ++k) {
    const double term = left_[row * rank_ + k] * right_[k * cols_ + col];
    p = p + term;
  }
  return p;
}

void LoraUpdate::product(uint64_t start, uint64_t count, double* p) const {
  // Row by row, over the columns of the run within the row (merge/lora_kernel.cpp's
  // per-target RowProduct).
  uint64_t done = 0;
  while (done < count) {
    const uint64_t flat = start + done;
    const uint64_t row = flat / cols_, col = flat % cols_;
    const uint64_t n = std::min(cols_ - col, count - done);
    lora_simd::row_product(left_.data() + row * rank_, right_.data(), cols_, rank_, col, n,
                           p + done);
    done += n;
  }
}

namespace {

// The formulas, spelled out so that the compiler cannot reassociate or fuse them.
inline double with_update(double w, double scale, double p) {
  const double delta = scale * p;
  return w + delta;
}
inline double expo_step(double t1, double t0, double alpha) {
  const double d = t1 - t0;
  const double step = alpha * d;
  return t1 + step;
}

// Elements per block of the fast path's float64 scratch.
constexpr uint64_t kBlock = 4096;

// Decodes `count` elements of `in` into float64 through the SIMD ExPO kernel (a copy).
KernelStatus decode(const void* in, DType dtype, uint64_t count, double* out,
                    bool allow_nonfinite) {
  KernelArgs args;
  args.aligned = in;
  args.aligned_dtype = dtype;
  args.sft = nullptr;
  args.sft_dtype = dtype;
  args.out = out;
  args.out_dtype = DType::F64;
  args.count = count;
  args.alpha = 0;
  args.allow_nonfinite = allow_nonfinite;
  return extrapolate_fast(args);
}

// Rounds `count` float64 results into `out`; a non-finite result of finite inputs is an
// overflow.
KernelStatus encode(const double* r, uint64_t count, void* out, DType out_dtype,
                    bool allow_nonfinite) {
  KernelArgs args;
  args.aligned = r;
  args.aligned_dtype = DType::F64;
  args.sft = nullptr;
  args.sft_dtype = DType::F64;
  args.out = out;
  args.out_dtype = out_dtype;
  args.count = count;
  args.alpha = 0;
  args.allow_nonfinite = allow_nonfinite;
  KernelStatus st = extrapolate_fast(args);
  if (st.problem == Problem::kNonFiniteAligned) st.problem = Problem::kOverflow;
  return st;
}

}  // namespace

KernelStatus lora_reference(const LoraRun& run) {
  const double c = run.pair ? 0 : (1 + run.alpha) * (run.u1 ? run.u1->scale() : 0);
  for (uint64_t i = 0; i < run.count; ++i) {
    const uint64_t flat = run.start + i;
    const double w1 = load_as_double(run.w1, run.w1_dtype, i);
    if (!run.allow_nonfinite && !std::isfinite(w1)) return {Problem::kNonFiniteAligned, i};
    double r;
    if (!run.pair) {
      const double p = run.u1->product_reference(flat / run.u1->cols(), flat % run.u1->cols());
      r = with_update(w1, c, p);
    } else {
      const double w0 = load_as_double(run.w0, run.w0_dtype, i);
      if (!run.allow_nonfinite && !std::isfinite(w0)) return {Problem::kNonFiniteSft, i};
      double t1 = w1, t0 = w0;
      if (run.u1)
        t1 = with_update(w1, run.u1->scale(),
                         run.u1->product_reference(flat / run.u1->cols(), flat % run.u1->cols()));
      if (run.u0)
        t0 = with_update(w0, run.u0->scale(),
                         run.u0->product_reference(flat / run.u0->cols(), flat % run.u0->cols()));
      r = expo_step(t1, t0, run.alpha);
    }
    const bool rounded_to_infinity = store_from_double(run.out, run.out_dtype, i, r);
    if ((std::isfinite(r) && rounded_to_infinity) || (!run.allow_nonfinite && !std::isfinite(r)))
      return {Problem::kOverflow, i};
  }
  return {};
}

KernelStatus lora_fast(const LoraRun& run) {
  const double c = run.pair ? 0 : (1 + run.alpha) * (run.u1 ? run.u1->scale() : 0);
  const size_t w1_size = dtype_size(run.w1_dtype), w0_size = dtype_size(run.w0_dtype);
  const size_t out_size = dtype_size(run.out_dtype);
  std::vector<double> w1(kBlock), w0, p1(kBlock), p0, r(kBlock);
  if (run.pair) {
    w0.resize(kBlock);
    p0.resize(kBlock);
  }
  for (uint64_t at = 0; at < run.count; at += kBlock) {
    const uint64_t n = std::min(kBlock, run.count - at);
    auto shifted = [at](KernelStatus st) {
      st.index += at;
      return st;
    };
    KernelStatus st = decode(static_cast<const uint8_t*>(run.w1) + at * w1_size, run.w1_dtype, n,
                             w1.data(), run.allow_nonfinite);
    if (!st.ok()) return shifted(st);
    if (!run.pair) {
      run.u1->product(run.start + at, n, p1.data());
      for (uint64_t i = 0; i < n; ++i) r[i] = with_update(w1[i], c, p1[i]);
    } else {
      st = decode(static_cast<const uint8_t*>(run.w0) + at * w0_size, run.w0_dtype, n, w0.data(),
                  run.allow_nonfinite);
      if (!st.ok()) {
        st.problem = Problem::kNonFiniteSft;
        return shifted(st);
      }
      if (run.u1) {
        run.u1->product(run.start + at, n, p1.data());
        for (uint64_t i = 0; i < n; ++i) w1[i] = with_update(w1[i], run.u1->scale(), p1[i]);
      }
      if (run.u0) {
        run.u0->product(run.start + at, n, p0.data());
        for (uint64_t i = 0; i < n; ++i) w0[i] = with_update(w0[i], run.u0->scale(), p0[i]);
      }
      for (uint64_t i = 0; i < n; ++i) r[i] = expo_step(w1[i], w0[i], run.alpha);
    }
    st = encode(r.data(), n, static_cast<uint8_t*>(run.out) + at * out_size, run.out_dtype,
                run.allow_nonfinite);
    if (!st.ok()) return shifted(st);
  }
  return {};
}

KernelStatus scale_reference(const ScaleRun& run) {
  const double c = 1 + run.alpha;
  for (uint64_t i = 0; i < run.count; ++i) {
    const double b = load_as_double(run.b, run.b_dtype, i);
    if (!run.allow_nonfinite && !std::isfinite(b)) return {Problem::kNonFiniteAligned, i};
    const double r = c * b;
    const bool rounded_to_infinity = store_from_double(run.out, run.out_dtype, i, r);
    if ((std::isfinite(r) && rounded_to_infinity) || (!run.allow_nonfinite && !std::isfinite(r)))
      return {Problem::kOverflow, i};
  }
  return {};
}

KernelStatus scale_fast(const ScaleRun& run) {
  const double c = 1 + run.alpha;
  const size_t b_size = dtype_size(run.b_dtype), out_size = dtype_size(run.out_dtype);
  std::vector<double> r(kBlock);
  for (uint64_t at = 0; at < run.count; at += kBlock) {
    const uint64_t n = std::min(kBlock, run.count - at);
    KernelStatus st = decode(static_cast<const uint8_t*>(run.b) + at * b_size, run.b_dtype, n,
                             r.data(), run.allow_nonfinite);
    if (st.ok()) {
      for (uint64_t i = 0; i < n; ++i) r[i] = c * r[i];
      st = encode(r.data(), n, static_cast<uint8_t*>(run.out) + at * out_size, run.out_dtype,
                  run.allow_nonfinite);
    }
    if (!st.ok()) {
      st.index += at;
      return st;
    }
  }
  return {};
}

}  // namespace expo
#endif  // HWY_ONCE
