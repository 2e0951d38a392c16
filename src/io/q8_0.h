#pragma once
// Q8_0, llama.cpp's 8-bit block quantization: blocks of 32 values, each stored as 34 bytes, an
// F16 scale `d` (little-endian) followed by 32 int8 `q`; value i of a block is q[i] * d.
//
// Quantization here starts from float64 values, block by block:
//   amax = max |x_i| over the block
//   dh   = amax / 127 rounded once to F16, to nearest even (core/dtype.h's exact rounding; the
//          float64 quotient cannot land on an F16 rounding boundary unless the exact quotient
//          does, so this is the correctly rounded F16 of the exact amax / 127)
//   q_i  = clamp(nearest integer to x_i / dh, ties away from zero, -127, 127); all 0 if dh == 0
// The nearest integer is decided exactly (comparisons against the midpoints (k + 1/2) * dh,
// which float64 represents exactly), not by rounding a rounded quotient.
//
// The one difference from llama.cpp's quantize_row_q8_0_ref: it computes x_i * (1 / d) in
// float32 with the unrounded d, while we divide by the stored scale dh. So every dequantized
// value q_i * dh is the multiple of dh nearest x_i (within dh / 2 whenever dh is a normal F16:
// |x_i| / dh <= 127 / (1 - 2^-11) < 127.5, so the clamp never cuts), which llama.cpp's values
// are not always. Both give the same dh; the q_i can differ by one where x_i / dh is near a
// half-integer. Dequantization (q_i * dh) is exact in float64 and in float32 (at most 19
// significant bits), as llama.cpp's dequantize_row_q8_0 computes it.
#include <cstddef>
#include <cstdint>
#include <string>

namespace expo {

inline constexpr uint64_t kQ8_0BlockValues = 32;
inline constexpr uint64_t kQ8_0BlockBytes = 34;

// Quantizes `count` values (a multiple of 32) into count / 32 blocks at `out`. A non-finite
// value, or a block whose scale overflows F16 (amax >= 127 * 65520), throws expo::Error
// "<what>: element <first_index + i> is <value>: ..." naming the first such element.
void quantize_q8_0(const double* values, uint64_t count, uint8_t* out, const std::string& what,
                   uint64_t first_index = 0);
// The slow, obvious reference of the same function (each q found by comparing |x| with all 127
// midpoints); quantize_q8_0 is tested bit for bit against it.
void quantize_q8_0_reference(const double* values, uint64_t count, uint8_t* out,
                             const std::string& what, uint64_t first_index = 0);

// Exact dequantization of count / 32 blocks (q * d, as llama.cpp's dequantize_row_q8_0).
void dequantize_q8_0(const uint8_t* blocks, uint64_t count, double* out);
void dequantize_q8_0(const uint8_t* blocks, uint64_t count, float* out);

}  // namespace expo
