#pragma once
// Splitting a checkpoint into shards the way transformers does: tensors in order, a new shard
// when the next tensor would push the current one past the limit, and a tensor larger than the
// limit alone in its own shard (kept in
// order). Files are named model-00001-of-00003.safetensors, or
// model.safetensors when there is only one, with model.safetensors.index.json beside them.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace expo {

// For tensors of the given byte sizes, in order: the tensor indices of each shard.
std::vector<std::vector<size_t>> plan_shards(const std::vector<uint64_t>& sizes,
                                             uint64_t max_shard_size);
std::string shard_file_name(size_t shard, size_t num_shards);
// model.safetensors.index.json for tensor `names` with their shard numbers (keys sorted, as
// transformers writes them).
nlohmann::json make_shard_index(const std::vector<std::string>& names,
                                const std::vector<size_t>& shard_of_tensor, size_t num_shards,
                                uint64_t total_size);

}  // namespace expo
