#include "io/q8_0.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"

namespace expo {

namespace {

// The block's F16 scale, or a failure naming the element that caused it.
struct Scale {
  uint16_t bits = 0;
  double value = 0;  // dh, exactly
};

Scale block_scale(const double* x, const std::string& what, uint64_t first_index) {
  double amax = 0;
  uint64_t amax_at = 0;
  for (uint64_t i = 0; i < kQ8_0BlockValues; ++i) {
    if (!std::isfinite(x[i]))
      fail(what, ": element ", first_index + i, " is ", x[i], ": Q8_0 holds only finite values");
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      amax_at = i;
    }
  }
  const double d = amax / 127;
  const Rounded r = round_to_f16(d);
  if (r.overflow)
    fail(what, ": element ", first_index + amax_at, " is ", x[amax_at],
         ": its Q8_0 block's scale (max |x| / 127 = ", d,
         ") overflows F16 (largest 65504); use a wider type such as F32 or BF16");
  const auto bits = static_cast<uint16_t>(r.bits);
  return {bits, f16_to_double(bits)};
}

void store_scale(uint8_t* block, uint16_t bits) {
  block[0] = static_cast<uint8_t>(bits & 0xff);
  block[1] = static_cast<uint8_t>(bits >> 8);
}

// The midpoint between k and k + 1 times dh, (2k + 1) * dh / 2: exact in float64 (2k + 1 has at
// most 8 bits, dh 11, and halving a normal or subnormal F16 value stays inside float64's range).
inline double midpoint(int k, double dh) { return (2.0 * k + 1.0) * dh * 0.5; }

// The nearest integer to |x| / dh, ties away from zero, at most 127: found from a first guess
// and corrected by exact comparisons with the midpoints around it.
inline int nearest_magnitude(double a, double dh) {
  double guess = std::round(a / dh);
  int q = guess > 127 ? 127 : static_cast<int>(guess);  // a / dh >= 0, finite (dh > 0)
  while (q > 0 && a < midpoint(q - 1, dh)) --q;
  while (q < 127 && a >= midpoint(q, dh)) ++q;
  return q;
}

void check_count(uint64_t count, const std::string& what) {
  if (count % kQ8_0BlockValues != 0)
    fail(what, ": ", count, " values are not a whole number of Q8_0 blocks of ", kQ8_0BlockValues);
}

}  // namespace

void quantize_q8_0(const double* values, uint64_t count, uint8_t* out, const std::string& what,
                   uint64_t first_index) {
  check_count(count, what);
  for (uint64_t b = 0; b < count / kQ8_0BlockValues; ++b) {
    const double* x = values + b * kQ8_0BlockValues;
    uint8_t* block = out + b * kQ8_0BlockBytes;
    const Scale scale = block_scale(x, what, first_index + b * kQ8_0BlockValues);
    store_scale(block, scale.bits);
    for (uint64_t i = 0; i < kQ8_0BlockValues; ++i) {
      int q = 0;
      if (scale.value != 0) {
        q = nearest_magnitude(std::fabs(x[i]), scale.value);
        if (x[i] < 0) q = -q;
      }
      block[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
  }
}

void quantize_q8_0_reference(const double* values, uint64_t count, uint8_t* out,
                             const std::string& what, uint64_t first_index) {
  check_count(count, what);
  for (uint64_t b = 0; b < count / kQ8_0BlockValues; ++b) {
    const double* x = values + b * kQ8_0BlockValues;
    uint8_t* block = out + b * kQ8_0BlockBytes;
    const Scale scale = block_scale(x, what, first_index + b * kQ8_0BlockValues);
    store_scale(block, scale.bits);
    for (uint64_t i = 0; i < kQ8_0BlockValues; ++i) {
      // q is the number of midpoints (k + 1/2) * dh, k = 0..126, that |x| reaches: the nearest
      // integer with ties away from zero, clamped to 127.
      int q = 0;
      if (scale.value != 0) {
        const double a = std::fabs(x[i]);
        for (int k = 0; k < 127; ++k)
          if (a >= (k + 0.5) * scale.value) q = k + 1;
        if (x[i] < 0) q = -q;
      }
      block[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
  }
}

void dequantize_q8_0(const uint8_t* blocks, uint64_t count, double* out) {
  for (uint64_t b = 0; b < count / kQ8_0BlockValues; ++b) {
    const uint8_t* block = blocks + b * kQ8_0BlockBytes;
    const double d = f16_to_double(static_cast<uint16_t>(block[0] | (block[1] << 8)));
    for (uint64_t i = 0; i < kQ8_0BlockValues; ++i)
      out[b * kQ8_0BlockValues + i] = static_cast<int8_t>(block[2 + i]) * d;
  }
}

void dequantize_q8_0(const uint8_t* blocks, uint64_t count, float* out) {
  for (uint64_t b = 0; b < count / kQ8_0BlockValues; ++b) {
    const uint8_t* block = blocks + b * kQ8_0BlockBytes;
    const double d = f16_to_double(static_cast<uint16_t>(block[0] | (block[1] << 8)));
    for (uint64_t i = 0; i < kQ8_0BlockValues; ++i)  // exact: at most 19 significant bits
      out[b * kQ8_0BlockValues + i] = static_cast<float>(static_cast<int8_t>(block[2 + i]) * d);
  }
}

}  // namespace expo
