#pragma once
// Safetensors dtypes and exact conversions between them and IEEE float64.
//
// Rounding from float64 into a narrower float format is done once, directly from the
// float64 bits, to nearest with ties to even. Going through float32 first would round
// twice and can differ from the correctly rounded result, so we never do that.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace expo {

enum class DType : uint8_t {
  BOOL,
  U8,
  I8,
  U16,
  I16,
  U32,
  I32,
  U64,
  I64,
  F8_E4M3,
  F8_E5M2,
  F16,
  BF16,
  F32,
  F64,
  // llama.cpp's Q8_0 (io/q8_0.h): blocks of 32 values in 34 bytes. Not a safetensors dtype
  // (parse_dtype never returns it); it comes from GGUF files, and the engine multiplies by it.
  Q8_0,
};

// Parses the safetensors spelling ("BF16", "F32", ...). Returns nullopt for anything else.
std::optional<DType> parse_dtype(std::string_view name);
// Parses a user's --dtype value: bf16, f16, f32, f64 (case-insensitive, also float16 etc.).
std::optional<DType> parse_user_float_dtype(std::string_view name);
std::string_view dtype_name(DType dtype);
// Bytes per element; 0 for Q8_0, whose elements come in blocks (use dtype_bytes).
size_t dtype_size(DType dtype);
// Bytes of `elements` elements of `dtype`; for Q8_0 `elements` must be a multiple of 32.
uint64_t dtype_bytes(DType dtype, uint64_t elements);
// Float types expo does arithmetic on. F8 types are floating but are passed through: there is
// no agreed rounding for them, so they are treated like integer tensors (copied from aligned).
bool is_arithmetic_float(DType dtype);

// ---- scalar conversions -------------------------------------------------------------------
double bf16_to_double(uint16_t bits);
double f16_to_double(uint16_t bits);

// Result of rounding a float64 into a narrower format.
struct Rounded {
  uint64_t bits;  // the encoded value in the target format (low bits used)
  bool overflow;  // a finite input became infinite
};

// Correctly rounded (nearest, ties to even) conversion of a float64 to a binary format with
// `exp_bits` exponent bits and `mant_bits` stored mantissa bits. The slow, obvious reference.
Rounded round_double_reference(double value, int exp_bits, int mant_bits);
Rounded round_to_bf16(double value);
Rounded round_to_f16(double value);
Rounded round_to_f32(double value);

// Reads element `index` of a buffer of `dtype` as a double (arithmetic float types only).
double load_as_double(const void* data, DType dtype, size_t index);
// Stores `value` rounded into element `index`; returns true on overflow.
bool store_from_double(void* data, DType dtype, size_t index, double value);

}  // namespace expo
