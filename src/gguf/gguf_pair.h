#pragma once
// ExPO on a pair that exists only as GGUF: two files of the same model (architecture, tensor
// names, shapes and tokenizer all equal, each mismatch an error naming it), extrapolated
// tensor by tensor into one GGUF file. Each tensor of each side is dequantized exactly (F32,
// F16, BF16, F64, Q8_0: every value q * d is exact in float64), computed in float64 as
// `expo extrapolate` computes it (aligned + alpha * (aligned - sft), three separately rounded
// operations) and encoded once into the output type. K-quants and the other block types are
// refused with the reason: their values depend on a per-superblock search that expo does not
// reproduce, so the result would not be the exact extrapolation.
//
// The output keeps the aligned file's metadata (its tokenizer, chat template, hyperparameters)
// with general.name, general.file_type and expo's provenance set anew, and its tensors in the
// aligned file's order.
#include <filesystem>
#include <optional>

#include "gguf/gguf_export.h"

namespace expo {

// Writes sft/aligned extrapolated at `alpha` to options.output. options.type: the type of every
// 2-D tensor (1-D tensors stay F32); unset, each tensor keeps the aligned file's type.
GgufExportResult extrapolate_gguf_pair(const std::filesystem::path& sft,
                                       const std::filesystem::path& aligned, double alpha,
                                       const GgufExportOptions& options);

}  // namespace expo
