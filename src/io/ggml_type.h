#pragma once
// ggml's tensor types as GGUF files store them: the type ids, their names, and the block layout
// that fixes a tensor's size in bytes (a row of ne[0] values is ne[0] / block_size blocks of
// type_size bytes each). Every type llama.cpp defines is listed, so files in any quantization
// parse and list; expo encodes and decodes only F32, F16, BF16, F64 and Q8_0 (io/q8_0.h).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace expo {

// The numeric values are the ids stored in GGUF files (ggml.h's enum ggml_type). Ids 4, 5
// (Q4_2, Q4_3), 31-33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) and 36-38 (IQ4_NL_4_4, _4_8, _8_8) were
// removed from the format and are refused by the reader.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
  Q2_0 = 42,
};

struct GgmlTypeTraits {
  GgmlType type;
  std::string_view name;  // "F32", "Q8_0", "Q4_K", "IQ2_XXS", ... (gguf-py's spelling)
  uint32_t block_size;    // values per block (1 for plain types)
  uint32_t type_size;     // bytes per block
  bool quantized;
};

// The traits of a type id read from a file, or nullptr for an id that is not (or no longer) a
// ggml type.
const GgmlTypeTraits* find_ggml_type(uint32_t id);
// The name of a removed id ("Q4_0_4_4"), or nullptr: lets an error say what the id was.
const char* removed_ggml_type_name(uint32_t id);
const GgmlTypeTraits& ggml_type_traits(GgmlType type);
std::string_view ggml_type_name(GgmlType type);
// Parses a name as ggml_type_name() spells it, case-insensitively ("q8_0" is Q8_0).
std::optional<GgmlType> parse_ggml_type(std::string_view name);
// Every type, in id order.
const std::vector<GgmlTypeTraits>& all_ggml_types();

// The bytes of a tensor of `type` with GGUF dims `ne` (ne[0] varies fastest), or nullopt when
// ne[0] is not a whole number of blocks or the size overflows 64 bits (or the element count
// overflows int64, ggml's index type).
std::optional<uint64_t> ggml_tensor_bytes(GgmlType type, const std::vector<uint64_t>& ne);

// Encoding from float64 and decoding to float64 of the types expo computes with: F32, F16, BF16
// (rounded once from float64, to nearest even: core/dtype.h), F64, and Q8_0 (io/q8_0.h). `count`
// is a number of values (a multiple of 32 for Q8_0); `out` holds ggml_tensor_bytes() of them.
// A value the type cannot hold (overflow, or for Q8_0 a non-finite value or a block whose scale
// overflows F16) throws expo::Error "<what>: element <first_index + i> ...".
bool ggml_type_is_codable(GgmlType type);
// The dtype expo holds each codable type in (Q8_0 as DType::Q8_0), and back; nullopt for the
// others.
std::optional<DType> dtype_of_ggml(GgmlType type);
std::optional<GgmlType> ggml_of_dtype(DType dtype);
void encode_from_double(GgmlType type, const double* values, uint64_t count, uint8_t* out,
                        const std::string& what, uint64_t first_index = 0);
void decode_to_double(GgmlType type, const uint8_t* bytes, uint64_t count, double* out);

}  // namespace expo
