// The matmul kernels, written once with Highway and compiled by foreach_target.h for each
// target (x86: AVX3 = AVX-512F/BW/DQ/VL; AVX2 + FMA + F16C; SSE4; SSSE3; SCALAR or EMU128 =
// portable C++ for older CPUs; Arm: NEON, see core/highway_config.h); HWY_DYNAMIC_DISPATCH
// calls the best one this CPU supports (src/core/simd_targets.h lists and forces them).
//
// Nothing inside the target namespaces instantiates standard-library templates: those regions
// are compiled with the target's instruction set, and an AVX-512 copy of a std:: template
// could be the one the linker keeps for the whole program (ODR). The splitting over threads,
// with its std::function, lives in matmul.cpp.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/highway_config.h"  // before Highway
#include "model/matmul_simd.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "model/matmul_simd.cpp"
#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace expo {
namespace matmul_detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// The register tile: kRowTile weight rows times kBatchTile activation rows of accumulators,
// plus one converted vector per weight row and one activation vector. AVX-512 has 32 vector
// registers (6 x 4 + 6 + 1 = 31 live; 6 x 4 measured 10-20% faster than 4 x 4 on Zen 5 by
// halving the loads and conversions per FMA); the other x86 targets have 16 (3 x 4 + 3 + 1).
// At batch 1 the tile is kRowTile independent rows, enough FMA chains to cover latency.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr size_t kRowTile = 6;
#else
constexpr size_t kRowTile = 3;
#endif
constexpr size_t kBatchTile = 4;
// Zero-padded tail copies are this many elements: the widest vector holds 16 floats.
constexpr size_t kMaxLanes = 16;

// Each weight type: T, its storage unit, and Row(), where row r of a [rows, cols] matrix starts.
// F32, BF16 and F16 add Load() (Lanes elements widened to float32); Q8_0 is in blocks and has
// its own tile (Q8_0Tile below).
template <typename Element>
struct ElementRows {
  using T = Element;
  static constexpr bool kBlocks = false;
  static HWY_INLINE const T* Row(const void* base, size_t r, size_t cols) {
    return static_cast<const T*>(base) + r * cols;
  }
};

struct F32Weights : ElementRows<float> {
  static HWY_INLINE VF Load(DF d, const T* HWY_RESTRICT p) { return hn::LoadU(d, p); }
};

// BF16 is the high half of a float32: widen the bits to 32 and shift them up (exact, NaN
// payloads included). Highway 1.0.3 has no BF16 PromoteTo on x86, so this is done by hand.
struct BF16Weights : ElementRows<uint16_t> {
  static HWY_INLINE VF Load(DF d, const T* HWY_RESTRICT p) {
    const hn::Rebind<uint16_t, DF> d16;
    const hn::Rebind<uint32_t, DF> d32;
    return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(d32, hn::LoadU(d16, p))));
  }
};

struct F16Weights : ElementRows<uint16_t> {
  static HWY_INLINE VF Load(DF d, const T* HWY_RESTRICT p) {
    return Widen(d, hn::LoadU(hn::Rebind<uint16_t, DF>(), p));
  }
  // F16 bits (one per lane) to float32, exactly.
  static HWY_INLINE VF Widen(DF d, hn::Vec<hn::Rebind<uint16_t, DF>> h16) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    // F16C's vcvtph2ps: exact (a signalling NaN comes back quiet, still a NaN).
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(d, hn::BitCast(dh, h16));
#else
    // Highway 1.0.3 emulates this promotion without the infinities and NaNs, so by hand:
    // the exponent and mantissa moved into float32 position give the value times 2^-112
    // (subnormal halves become subnormal floats), exactly; multiplying by 2^112 is exact too.
    // Exponent 31 (infinity, NaN) maps to exponent 255 with the mantissa kept.
    const hn::Rebind<uint32_t, DF> d32;
    const auto h = hn::PromoteTo(d32, h16);
    const auto magnitude = hn::ShiftLeft<13>(hn::And(h, hn::Set(d32, 0x7fffu)));
    const auto finite = hn::BitCast(
        d32, hn::Mul(hn::BitCast(d, magnitude), hn::Set(d, 5.192296858534828e33f)));  // 2^112
    const auto exp_mask = hn::Set(d32, 0x7c00u);
    const auto special = hn::Or(magnitude, hn::Set(d32, 0x7f800000u));
    const auto bits = hn::IfThenElse(hn::Eq(hn::And(h, exp_mask), exp_mask), special, finite);
    const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(d32, 0x8000u)));
    return hn::BitCast(d, hn::Or(bits, sign));
#endif
  }
};

// Q8_0 (io/q8_0.h): rows of cols / 32 blocks, each an F16 scale d (little-endian) and 32 int8
// q; weight k of a block is q[k] * d. The kernel multiplies by exactly that value: q widened
// to float32 (exact) times d widened to float32 (exact) is exact too, at most 8 + 11
// significant bits, and far from float32's overflow and underflow (|q * d| <= 128 * 65504; a
// subnormal d times q stays a normal or subnormal float32 exactly). So a Q8_0 product is, bit
// for bit, the product with those values stored as F32, and shares its error analysis.
// Activations stay float32 (llama.cpp quantizes them to Q8 for integer dots; we do not lose
// that accuracy).
struct Q8_0Weights {
  using T = uint8_t;
  static constexpr bool kBlocks = true;
  static constexpr size_t kValues = 32;  // io/q8_0.h's kQ8_0BlockValues
  static constexpr size_t kBytes = 34;   // io/q8_0.h's kQ8_0BlockBytes
  static constexpr size_t kScaleBytes = 2;
  static HWY_INLINE const T* Row(const void* base, size_t r, size_t cols) {
    return static_cast<const T*>(base) + r * (cols / kValues) * kBytes;
  }
  // The block's scale d in every lane, exactly, by F16Weights' widening (vcvtph2ps where the
  // CPU has it: a scalar conversion per block and row cost as much as the block's products).
  static HWY_INLINE VF Scale(DF d, const T* HWY_RESTRICT block) {
    const auto bits = static_cast<uint16_t>(block[0] | (block[1] << 8));  // little-endian
    return F16Weights::Widen(d, hn::Set(hn::Rebind<uint16_t, DF>(), bits));
  }
  // Lanes weights of a block from its q at `q`: q * d, exact (see above).
  static HWY_INLINE VF Load(DF d, const T* HWY_RESTRICT q, VF scale) {
    const hn::Rebind<int8_t, DF> d8;
    const hn::Rebind<int32_t, DF> d32;
    const auto wide = hn::PromoteTo(d32, hn::LoadU(d8, reinterpret_cast<const int8_t*>(q)));
    return hn::Mul(hn::ConvertTo(d, wide), scale);
  }
};
// A block is a whole number of vectors on every target compiled (SVE is disabled,
// core/highway_config.h), so the Q8_0 tile needs no tail and its lanes line up with the other
// types' (lane l adds the products for k = l, l + Lanes, ... in every one).
static_assert(Q8_0Weights::kValues % HWY_LANES(float) == 0, "a Q8_0 block must fill vectors");

// The last `count` (< Lanes) elements of a row, zero-padded, loaded from a copy so that
// nothing past the end of the data is read.
template <class W>
HWY_INLINE VF LoadTail(DF d, const typename W::T* HWY_RESTRICT p, size_t count) {
  alignas(64) typename W::T buf[kMaxLanes];
  memset(buf, 0, sizeof(buf));
  memcpy(buf, p, count * sizeof(typename W::T));
  return W::Load(d, buf);
}

// The end of a tile: each accumulator's lanes summed by the target's fixed SumOfLanes tree,
// then the bias added, into y[j * y_stride + i].
template <size_t RW, size_t BX>
HWY_INLINE void StoreSums(const VF (&acc)[RW][BX], const float* HWY_RESTRICT bias,
                          float* HWY_RESTRICT y, size_t y_stride) {
  const DF d;
#pragma GCC unroll 16
  for (size_t j = 0; j < BX; ++j) {
#pragma GCC unroll 16
    for (size_t i = 0; i < RW; ++i) {
      float sum = hn::GetLane(hn::SumOfLanes(d, acc[i][j]));
      if (bias) sum += bias[i];
      y[j * y_stride + i] = sum;
    }
  }
}

// y[j * y_stride + i] = dot(x row j, w row i) (+ bias[i]) for i < RW, j < BX.
//
// Each output is computed by the same operations whatever the tile shape, which is what
// makes the kernel batch invariant: one accumulator vector, lane l adding x[k] * w[k] for
// k = l, l + Lanes, ... in increasing k with a fused multiply-add (a multiply then an add on
// targets without FMA), a zero-padded last vector, the target's fixed SumOfLanes tree, and
// then the bias.
//
// With kPrefetch, the same columns of the next RW weight rows (`next`) are prefetched as this
// tile goes: a tile of a few rows is too short for the hardware prefetcher to ramp up, and
// at batch 1 the kernel would otherwise wait on DRAM latency rather than bandwidth.
template <class W, size_t RW, size_t BX, bool kPrefetch>
HWY_INLINE void Tile(const typename W::T* HWY_RESTRICT w, const typename W::T* next,
                     const float* HWY_RESTRICT x, size_t cols, const float* HWY_RESTRICT bias,
                     float* HWY_RESTRICT y, size_t y_stride) {
  const DF d;
  const size_t lanes = hn::Lanes(d);
  VF acc[RW][BX];
#pragma GCC unroll 16
  for (size_t i = 0; i < RW; ++i) {
#pragma GCC unroll 16
    for (size_t j = 0; j < BX; ++j) acc[i][j] = hn::Zero(d);
  }
  size_t k = 0;
  for (; k + lanes <= cols; k += lanes) {
    if constexpr (kPrefetch) {
#pragma GCC unroll 16
      for (size_t i = 0; i < RW; ++i) hwy::Prefetch(next + i * cols + k);
    }
    VF wv[RW];
#pragma GCC unroll 16
    for (size_t i = 0; i < RW; ++i) wv[i] = W::Load(d, w + i * cols + k);
#pragma GCC unroll 16
    for (size_t j = 0; j < BX; ++j) {
      const VF xv = hn::LoadU(d, x + j * cols + k);
#pragma GCC unroll 16
      for (size_t i = 0; i < RW; ++i) acc[i][j] = hn::MulAdd(wv[i], xv, acc[i][j]);
    }
  }
  if (k < cols) {
    const size_t rest = cols - k;
    VF wv[RW];
#pragma GCC unroll 16
    for (size_t i = 0; i < RW; ++i) wv[i] = LoadTail<W>(d, w + i * cols + k, rest);
#pragma GCC unroll 16
    for (size_t j = 0; j < BX; ++j) {
      const VF xv = LoadTail<F32Weights>(d, x + j * cols + k, rest);
#pragma GCC unroll 16
      for (size_t i = 0; i < RW; ++i) acc[i][j] = hn::MulAdd(wv[i], xv, acc[i][j]);
    }
  }
  StoreSums<RW, BX>(acc, bias, y, y_stride);
}

// The Q8_0 tile: the same operations as Tile on the weights q * d. Block by block, each
// row's scale is widened once, then each vector of the block is widened and multiplied by it
// (exact), and lane l accumulates x[k] * (q[k] * d) for k = l, l + Lanes, ... in increasing k
// with one fused multiply-add per product (a multiply then an add on targets without FMA);
// then the same SumOfLanes tree and bias as Tile. cols is a multiple of 32 (checked in
// matmul.cpp), so there is no tail. Batch 1 and batched tiles differ only in BX, so every
// output gets this one sequence whatever the batch (matmul.h, batch invariance).
//
// With kPrefetch, the same block of the next RW rows (`next`) is prefetched: 34 bytes per
// row per block, about as dense as Tile's prefetches of 16 BF16 weights.
template <size_t RW, size_t BX, bool kPrefetch>
HWY_INLINE void Q8_0Tile(const uint8_t* HWY_RESTRICT w, const uint8_t* next,
                         const float* HWY_RESTRICT x, size_t cols, const float* HWY_RESTRICT bias,
                         float* HWY_RESTRICT y, size_t y_stride) {
  using W = Q8_0Weights;
  const DF d;
  const size_t lanes = hn::Lanes(d);
  const size_t row_bytes = cols / W::kValues * W::kBytes;
  VF acc[RW][BX];
#pragma GCC unroll 16
  for (size_t i = 0; i < RW; ++i) {
#pragma GCC unroll 16
    for (size_t j = 0; j < BX; ++j) acc[i][j] = hn::Zero(d);
  }
  for (size_t k = 0, at = 0; k < cols; k += W::kValues, at += W::kBytes) {
    if constexpr (kPrefetch) {
#pragma GCC unroll 16
      for (size_t i = 0; i < RW; ++i) hwy::Prefetch(next + i * row_bytes + at);
    }
    VF scale[RW];
#pragma GCC unroll 16
    for (size_t i = 0; i < RW; ++i) scale[i] = W::Scale(d, w + i * row_bytes + at);
    for (size_t v = 0; v < W::kValues; v += lanes) {
      VF wv[RW];
#pragma GCC unroll 16
      for (size_t i = 0; i < RW; ++i) {
        wv[i] = W::Load(d, w + i * row_bytes + at + W::kScaleBytes + v, scale[i]);
      }
#pragma GCC unroll 16
      for (size_t j = 0; j < BX; ++j) {
        const VF xv = hn::LoadU(d, x + j * cols + k + v);
#pragma GCC unroll 16
        for (size_t i = 0; i < RW; ++i) acc[i][j] = hn::MulAdd(wv[i], xv, acc[i][j]);
      }
    }
  }
  StoreSums<RW, BX>(acc, bias, y, y_stride);
}

template <size_t kRows>
struct BatchTile {
  static constexpr size_t value = kRows;
};

// Calls tile(BatchTile<rest>(), ...) for a run-time rest < kBatchTile.
template <size_t kRest, class TileFn>
HWY_INLINE void RemainderTile(const TileFn& tile, size_t b, size_t rest, bool prefetch) {
  if constexpr (kRest > 0) {
    if (rest == kRest) return tile(BatchTile<kRest>(), b, prefetch);
    RemainderTile<kRest - 1>(tile, b, rest, prefetch);
  }
}

template <class W>
HWY_INLINE void Convert(const void* data, size_t count, float* HWY_RESTRICT out) {
  const DF d;
  const size_t lanes = hn::Lanes(d);
  const auto* src = static_cast<const typename W::T*>(data);
  size_t i = 0;
  for (; i + lanes <= count; i += lanes) hn::StoreU(W::Load(d, src + i), d, out + i);
  if (i < count) {
    alignas(64) float buf[kMaxLanes];
    hn::Store(LoadTail<W>(d, src + i, count - i), d, buf);
    memcpy(out + i, buf, (count - i) * sizeof(float));
  }
}

// count / 32 Q8_0 blocks to float32: q * d, exact (as Q8_0Weights::Load).
HWY_INLINE void ConvertQ8_0(const void* data, size_t count, float* HWY_RESTRICT out) {
  using W = Q8_0Weights;
  const DF d;
  const size_t lanes = hn::Lanes(d);
  const auto* block = static_cast<const uint8_t*>(data);
  for (size_t k = 0; k < count; k += W::kValues, block += W::kBytes) {
    const VF scale = W::Scale(d, block);
    for (size_t v = 0; v < W::kValues; v += lanes) {
      hn::StoreU(W::Load(d, block + W::kScaleBytes + v, scale), d, out + k + v);
    }
  }
}

// Weight rows [r, r + RW) against activation rows [b0, b1): full batch tiles, then the rest.
// The first tile reads the weights from memory and prefetches `next` (if not null); the
// others find them in L1.
template <class W, size_t RW>
HWY_INLINE void RowTile(const MatmulProblem& p, size_t r, size_t b0, size_t b1,
                        const typename W::T* next) {
  const auto* w = W::Row(p.w, r, p.cols);
  const float* bias = p.bias ? p.bias + r : nullptr;
  const size_t cols = p.cols;
  const auto tile = [&](auto batch_tile, size_t b, bool prefetch) HWY_ATTR {
    constexpr size_t kBX = decltype(batch_tile)::value;
    const float* x = p.x + b * cols;
    float* y = p.y + b * p.rows + r;
    if constexpr (W::kBlocks) {
      if (prefetch) {
        Q8_0Tile<RW, kBX, true>(w, next, x, cols, bias, y, p.rows);
      } else {
        Q8_0Tile<RW, kBX, false>(w, next, x, cols, bias, y, p.rows);
      }
    } else if (prefetch) {
      Tile<W, RW, kBX, true>(w, next, x, cols, bias, y, p.rows);
    } else {
      Tile<W, RW, kBX, false>(w, next, x, cols, bias, y, p.rows);
    }
  };
  bool prefetch = next != nullptr;
  size_t b = b0;
  for (; b + kBatchTile <= b1; b += kBatchTile) {
    tile(BatchTile<kBatchTile>(), b, prefetch);
    prefetch = false;
  }
  RemainderTile<kBatchTile - 1>(tile, b, b1 - b, prefetch);
}

// Weight-row tiles outside, activation tiles inside: a tile's few weight rows stay in L1
// while the block's activation rows (sized by the caller to sit in L2) stream past them.
template <class W>
HWY_NOINLINE void Block(const MatmulProblem& p, size_t r0, size_t r1, size_t b0, size_t b1) {
  size_t r = r0;
  for (; r + kRowTile <= r1; r += kRowTile) {
    const bool has_next = r + 2 * kRowTile <= r1;
    RowTile<W, kRowTile>(p, r, b0, b1, has_next ? W::Row(p.w, r + kRowTile, p.cols) : nullptr);
  }
  for (; r < r1; ++r) RowTile<W, 1>(p, r, b0, b1, nullptr);
}

void MatmulBlock(const MatmulProblem& p, size_t r0, size_t r1, size_t b0, size_t b1) {
  switch (p.dtype) {
    case DType::F32:
      return Block<F32Weights>(p, r0, r1, b0, b1);
    case DType::BF16:
      return Block<BF16Weights>(p, r0, r1, b0, b1);
    case DType::F16:
      return Block<F16Weights>(p, r0, r1, b0, b1);
    case DType::Q8_0:
      return Block<Q8_0Weights>(p, r0, r1, b0, b1);
    default:
      return;  // matmul() has checked the dtype
  }
}

TileShape MatmulTileShape() { return TileShape{kRowTile, kBatchTile}; }

void ConvertToF32(const void* data, DType dtype, size_t count, float* out) {
  switch (dtype) {
    case DType::F32:
      return Convert<F32Weights>(data, count, out);
    case DType::BF16:
      return Convert<BF16Weights>(data, count, out);
    case DType::F16:
      return Convert<F16Weights>(data, count, out);
    case DType::Q8_0:
      return ConvertQ8_0(data, count, out);
    default:
      return;  // convert_row_to_f32() has checked the dtype
  }
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace matmul_detail
}  // namespace expo
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace expo::matmul_detail {

HWY_EXPORT(MatmulBlock);
HWY_EXPORT(MatmulTileShape);
HWY_EXPORT(ConvertToF32);
HWY_EXPORT(TargetName);

void matmul_block(const MatmulProblem& p, size_t r0, size_t r1, size_t b0, size_t b1) {
  HWY_DYNAMIC_DISPATCH(MatmulBlock)(p, r0, r1, b0, b1);
}

TileShape matmul_tile_shape() { return HWY_DYNAMIC_DISPATCH(MatmulTileShape)(); }

void convert_to_f32(const void* data, DType dtype, size_t count, float* out) {
  HWY_DYNAMIC_DISPATCH(ConvertToF32)(data, dtype, count, out);
}

const char* simd_target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace expo::matmul_detail
#endif  // HWY_ONCE
