#include "io/sharding.h"

#include <cstdio>

namespace expo {

std::vector<std::vector<size_t>> plan_shards(const std::vector<uint64_t>& sizes,
                                             uint64_t max_shard_size) {
  std::vector<std::vector<size_t>> shards;
  std::vector<size_t> current;
  uint64_t current_size = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] > max_shard_size) {  // too big for any shard: alone in its own
      // (huggingface_hub emits such a shard ahead of the one being filled; closing the current
      // shard first keeps the files in the model's order, which loaders do not mind either way)
      if (!current.empty()) shards.push_back(std::move(current));
      current.clear();
      current_size = 0;
      shards.push_back({i});
      continue;
    }
    if (!current.empty() && current_size + sizes[i] > max_shard_size) {
      shards.push_back(std::move(current));
      current.clear();
      current_size = 0;
    }
    current.push_back(i);
    current_size += sizes[i];
  }
  if (!current.empty() || shards.empty()) shards.push_back(std::move(current));
  return shards;
}

std::string shard_file_name(size_t shard, size_t num_shards) {
  if (num_shards == 1) return "model.safetensors";
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", shard + 1, num_shards);
  return buf;
}

nlohmann::json make_shard_index(const std::vector<std::string>& names,
                                const std::vector<size_t>& shard_of_tensor, size_t num_shards,
                                uint64_t total_size) {
  nlohmann::json index;
  index["metadata"] = {{"total_size", total_size}};
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t i = 0; i < names.size(); ++i)
    weight_map[names[i]] = shard_file_name(shard_of_tensor[i], num_shards);
  index["weight_map"] = weight_map;
  return index;
}

}  // namespace expo
