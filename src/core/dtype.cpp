#include "core/dtype.h"

#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace expo {

namespace {
struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::BOOL, "BOOL", 1},       {DType::U8, "U8", 1},           {DType::I8, "I8", 1},
    {DType::U16, "U16", 2},         {DType::I16, "I16", 2},         {DType::U32, "U32", 4},
    {DType::I32, "I32", 4},         {DType::U64, "U64", 8},         {DType::I64, "I64", 8},
    {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},       {DType::F32, "F32", 4},         {DType::F64, "F64", 8},
};
}  // namespace

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& info : kDTypes)
    if (info.name == name) return info.dtype;
  return std::nullopt;
}

std::optional<DType> parse_user_float_dtype(std::string_view name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "bf16" || lower == "bfloat16") return DType::BF16;
  if (lower == "f16" || lower == "fp16" || lower == "float16" || lower == "half") return DType::F16;
  if (lower == "f32" || lower == "fp32" || lower == "float32" || lower == "float")
    return DType::F32;
  if (lower == "f64" || lower == "fp64" || lower == "float64" || lower == "double")
    return DType::F64;
  return std::nullopt;
}

std::string_view dtype_name(DType dtype) {
  if (dtype == DType::Q8_0) return "Q8_0";
  for (const auto& info : kDTypes)
    if (info.dtype == dtype) return info.name;
  return "?";
}

size_t dtype_size(DType dtype) {
  for (const auto& info : kDTypes)
    if (info.dtype == dtype) return info.size;
  return 0;
}

uint64_t dtype_bytes(DType dtype, uint64_t elements) {
  if (dtype == DType::Q8_0) {
    if (elements % 32 != 0) fail("internal: ", elements, " Q8_0 values are not whole blocks of 32");
    return elements / 32 * 34;
  }
  return elements * dtype_size(dtype);
}

bool is_arithmetic_float(DType dtype) {
  return dtype == DType::F16 || dtype == DType::BF16 || dtype == DType::F32 || dtype == DType::F64;
}

double bf16_to_double(uint16_t bits) {
  return static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(bits) << 16));
}

double f16_to_double(uint16_t bits) {
  const bool negative = bits & 0x8000;
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  double magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<double>(mantissa), -24);  // subnormal or zero
  } else if (exponent == 31) {
    magnitude = mantissa ? std::numeric_limits<double>::quiet_NaN()
                         : std::numeric_limits<double>::infinity();
  } else {
    magnitude = std::ldexp(static_cast<double>(mantissa | 0x400), exponent - 25);
  }
  return negative ? -magnitude : magnitude;
}

Rounded round_double_reference(double value, int exp_bits, int mant_bits) {
  const uint64_t bits = std::bit_cast<uint64_t>(value);
  const uint64_t sign = bits >> 63;
  const int biased = static_cast<int>((bits >> 52) & 0x7ff);
  const uint64_t fraction = bits & ((uint64_t{1} << 52) - 1);
  const int target_bias = (1 << (exp_bits - 1)) - 1;
  const uint64_t target_max_exp = (uint64_t{1} << exp_bits) - 1;
  const uint64_t sign_out = sign << (exp_bits + mant_bits);
  const uint64_t inf_out = target_max_exp << mant_bits;

  if (biased == 0x7ff) {  // infinity or NaN stays what it is
    if (fraction == 0) return {sign_out | inf_out, false};
    return {sign_out | inf_out | (uint64_t{1} << (mant_bits - 1)), false};  // quiet NaN
  }
  if (biased == 0) return {sign_out, false};  // zero, or a float64 subnormal: far below any target

  // value = significand * 2^(exponent - 52), significand has its leading 1 at bit 52.
  const uint64_t significand = fraction | (uint64_t{1} << 52);
  const int exponent = biased - 1023;
  const int min_normal_exponent = 1 - target_bias;
  int shift = 52 - mant_bits;
  if (exponent < min_normal_exponent) shift += min_normal_exponent - exponent;  // subnormal result
  if (shift > 53) return {sign_out, false};  // below half the smallest subnormal: rounds to zero

  uint64_t kept = significand >> shift;
  const uint64_t rest = significand & ((uint64_t{1} << shift) - 1);
  const uint64_t half = uint64_t{1} << (shift - 1);
  if (rest > half || (rest == half && (kept & 1))) ++kept;

  uint64_t magnitude;
  if (exponent < min_normal_exponent) {
    magnitude = kept;  // a carry into bit mant_bits makes it the smallest normal, as it should
  } else {
    // kept holds the implicit leading 1 at bit mant_bits; adding it onto (biased - 1) lets a
    // rounding carry bump the exponent.
    const uint64_t target_biased = static_cast<uint64_t>(exponent + target_bias);
    magnitude = ((target_biased - 1) << mant_bits) + kept;
  }
  if (magnitude >= inf_out) return {sign_out | inf_out, true};
  return {sign_out | magnitude, false};
}

Rounded round_to_bf16(double value) { return round_double_reference(value, 8, 7); }
Rounded round_to_f16(double value) { return round_double_reference(value, 5, 10); }
Rounded round_to_f32(double value) {
  const float narrowed = static_cast<float>(value);  // IEEE conversion: round to nearest even
  const bool overflow = std::isinf(narrowed) && std::isfinite(value);
  return {std::bit_cast<uint32_t>(narrowed), overflow};
}

double load_as_double(const void* data, DType dtype, size_t index) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  switch (dtype) {
    case DType::BF16: {
      uint16_t v;
      std::memcpy(&v, bytes + index * 2, 2);
      return bf16_to_double(v);
    }
    case DType::F16: {
      uint16_t v;
      std::memcpy(&v, bytes + index * 2, 2);
      return f16_to_double(v);
    }
    case DType::F32: {
      float v;
      std::memcpy(&v, bytes + index * 4, 4);
      return v;
    }
    case DType::F64: {
      double v;
      std::memcpy(&v, bytes + index * 8, 8);
      return v;
    }
    default:
      fail("internal: load_as_double on non-float dtype ", dtype_name(dtype));
  }
}

bool store_from_double(void* data, DType dtype, size_t index, double value) {
  auto* bytes = static_cast<unsigned char*>(data);
  switch (dtype) {
    case DType::BF16:
    case DType::F16: {
      const Rounded r = dtype == DType::BF16 ? round_to_bf16(value) : round_to_f16(value);
      const auto v = static_cast<uint16_t>(r.bits);
      std::memcpy(bytes + index * 2, &v, 2);
      return r.overflow;
    }
    case DType::F32: {
      const Rounded r = round_to_f32(value);
      const auto v = static_cast<uint32_t>(r.bits);
      std::memcpy(bytes + index * 4, &v, 4);
      return r.overflow;
    }
    case DType::F64:
      std::memcpy(bytes + index * 8, &value, 8);
      return false;
    default:
      fail("internal: store_from_double on non-float dtype ", dtype_name(dtype));
  }
}

}  // namespace expo
