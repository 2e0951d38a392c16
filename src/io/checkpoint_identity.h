#pragma once
// Which weights a checkpoint holds, cheaply: for run fingerprints (core/fingerprint.h), and to
// notice an SFT/aligned pair that is one model twice (theta1 - theta0 = 0, so every alpha gives
// the aligned model unchanged).
#include <optional>
#include <string>

#include "io/checkpoint.h"

namespace expo {

// The checkpoint's resolved location (its folder, or the lone .safetensors file).
std::string checkpoint_location(const Checkpoint& checkpoint);

// "<location>, content 0123456789abcdef (2 files, 1.2 GB)". The content hash covers each
// weight file's name, size and parsed header (tensor names, dtypes, shapes, offsets,
// metadata), the first and last 64 KiB of its tensor data, and config.json and
// generation_config.json: a few reads, however large the model, that tell apart any two
// checkpoints a user would confuse (a retrained model with the same architecture at the same
// path changes its sampled bytes; a renamed or moved folder changes the location).
std::string checkpoint_identity(const Checkpoint& checkpoint);

// Why `a` and `b` hold the same weights ("both are /x/model", "their weights are byte for byte
// identical"), or nullopt when they differ. Same files: decided from the paths. Otherwise only
// when every tensor has the same name, dtype and shape are the bytes compared: first the head
// of every tensor (a fine-tuned pair differs there, so this stops after a few reads), then all
// of them, streamed in chunks.
std::optional<std::string> same_weights(const Checkpoint& a, const Checkpoint& b);

}  // namespace expo
