#include "io/ggml_type.h"

#include <cctype>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "io/q8_0.h"

namespace expo {

namespace {

// Block sizes and bytes per block from ggml's type traits (ggml.c) and block layouts
// (ggml-common.h); QK_K is 256.
const std::vector<GgmlTypeTraits> kTypes = {
    {GgmlType::F32, "F32", 1, 4, false},
    {GgmlType::F16, "F16", 1, 2, false},
    {GgmlType::Q4_0, "Q4_0", 32, 18, true},
    {GgmlType::Q4_1, "Q4_1", 32, 20, true},
    {GgmlType::Q5_0, "Q5_0", 32, 22, true},
    {GgmlType::Q5_1, "Q5_1", 32, 24, true},
    {GgmlType::Q8_0, "Q8_0", 32, 34, true},
    {GgmlType::Q8_1, "Q8_1", 32, 36, true},
    {GgmlType::Q2_K, "Q2_K", 256, 84, true},
    {GgmlType::Q3_K, "Q3_K", 256, 110, true},
    {GgmlType::Q4_K, "Q4_K", 256, 144, true},
    {GgmlType::Q5_K, "Q5_K", 256, 176, true},
    {GgmlType::Q6_K, "Q6_K", 256, 210, true},
    {GgmlType::Q8_K, "Q8_K", 256, 292, true},
    {GgmlType::IQ2_XXS, "IQ2_XXS", 256, 66, true},
    {GgmlType::IQ2_XS, "IQ2_XS", 256, 74, true},
    {GgmlType::IQ3_XXS, "IQ3_XXS", 256, 98, true},
    {GgmlType::IQ1_S, "IQ1_S", 256, 50, true},
    {GgmlType::IQ4_NL, "IQ4_NL", 32, 18, true},
    {GgmlType::IQ3_S, "IQ3_S", 256, 110, true},
    {GgmlType::IQ2_S, "IQ2_S", 256, 82, true},
    {GgmlType::IQ4_XS, "IQ4_XS", 256, 136, true},
    {GgmlType::I8, "I8", 1, 1, false},
    {GgmlType::I16, "I16", 1, 2, false},
    {GgmlType::I32, "I32", 1, 4, false},
    {GgmlType::I64, "I64", 1, 8, false},
    {GgmlType::F64, "F64", 1, 8, false},
    {GgmlType::IQ1_M, "IQ1_M", 256, 56, true},
    {GgmlType::BF16, "BF16", 1, 2, false},
    {GgmlType::TQ1_0, "TQ1_0", 256, 54, true},
    {GgmlType::TQ2_0, "TQ2_0", 256, 66, true},
    {GgmlType::MXFP4, "MXFP4", 32, 17, true},
    {GgmlType::NVFP4, "NVFP4", 64, 36, true},
    {GgmlType::Q1_0, "Q1_0", 128, 18, true},
    {GgmlType::Q2_0, "Q2_0", 64, 18, true},
};

struct RemovedType {
  uint32_t id;
  const char* name;
};
constexpr RemovedType kRemoved[] = {{4, "Q4_2"},        {5, "Q4_3"},       {31, "Q4_0_4_4"},
                                    {32, "Q4_0_4_8"},   {33, "Q4_0_8_8"},  {36, "IQ4_NL_4_4"},
                                    {37, "IQ4_NL_4_8"}, {38, "IQ4_NL_8_8"}};

}  // namespace

const GgmlTypeTraits* find_ggml_type(uint32_t id) {
  for (const auto& t : kTypes)
    if (static_cast<uint32_t>(t.type) == id) return &t;
  return nullptr;
}

const char* removed_ggml_type_name(uint32_t id) {
  for (const auto& r : kRemoved)
    if (r.id == id) return r.name;
  return nullptr;
}

const GgmlTypeTraits& ggml_type_traits(GgmlType type) {
  const GgmlTypeTraits* t = find_ggml_type(static_cast<uint32_t>(type));
  if (!t) fail("internal: ggml type id ", static_cast<uint32_t>(type), " is not a ggml type");
  return *t;
}

std::string_view ggml_type_name(GgmlType type) {
  const GgmlTypeTraits* t = find_ggml_type(static_cast<uint32_t>(type));
  return t ? t->name : std::string_view("?");
}

std::optional<GgmlType> parse_ggml_type(std::string_view name) {
  for (const auto& t : kTypes) {
    if (t.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i)
      same = std::toupper(static_cast<unsigned char>(name[i])) ==
             std::toupper(static_cast<unsigned char>(t.name[i]));
    if (same) return t.type;
  }
  return std::nullopt;
}

const std::vector<GgmlTypeTraits>& all_ggml_types() { return kTypes; }

std::optional<uint64_t> ggml_tensor_bytes(GgmlType type, const std::vector<uint64_t>& ne) {
  const GgmlTypeTraits* t = find_ggml_type(static_cast<uint32_t>(type));
  if (!t || ne.empty() || ne[0] % t->block_size != 0) return std::nullopt;
  uint64_t elements = 1;
  for (uint64_t d : ne)
    if (__builtin_mul_overflow(elements, d, &elements)) return std::nullopt;
  if (elements > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  uint64_t bytes;
  if (__builtin_mul_overflow(elements / t->block_size, uint64_t{t->type_size}, &bytes))
    return std::nullopt;
  return bytes;
}

bool ggml_type_is_codable(GgmlType type) {
  return type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16 ||
         type == GgmlType::F64 || type == GgmlType::Q8_0;
}

std::optional<DType> dtype_of_ggml(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
      return DType::F32;
    case GgmlType::F16:
      return DType::F16;
    case GgmlType::BF16:
      return DType::BF16;
    case GgmlType::F64:
      return DType::F64;
    case GgmlType::Q8_0:
      return DType::Q8_0;
    default:
      return std::nullopt;
  }
}

std::optional<GgmlType> ggml_of_dtype(DType dtype) {
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::F64, GgmlType::Q8_0})
    if (dtype_of_ggml(t) == dtype) return t;
  return std::nullopt;
}

namespace {
// The element-wise types (Q8_0 is coded in blocks, apart).
DType plain_dtype(GgmlType type) {
  const auto dtype = dtype_of_ggml(type);
  if (!dtype || *dtype == DType::Q8_0)
    fail("internal: expo does not encode or decode ggml type ", ggml_type_name(type));
  return *dtype;
}
}  // namespace

void encode_from_double(GgmlType type, const double* values, uint64_t count, uint8_t* out,
                        const std::string& what, uint64_t first_index) {
  if (type == GgmlType::Q8_0) return quantize_q8_0(values, count, out, what, first_index);
  const DType dtype = plain_dtype(type);
  for (uint64_t i = 0; i < count; ++i)
    if (store_from_double(out, dtype, i, values[i]))
      fail(what, ": element ", first_index + i, " is ", values[i], ": it overflows ",
           ggml_type_name(type), "; use a wider type");
}

void decode_to_double(GgmlType type, const uint8_t* bytes, uint64_t count, double* out) {
  if (type == GgmlType::Q8_0) return dequantize_q8_0(bytes, count, out);
  const DType dtype = plain_dtype(type);
  for (uint64_t i = 0; i < count; ++i) out[i] = load_as_double(bytes, dtype, i);
}

}  // namespace expo
