#include "io/safetensors.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "core/error.h"

namespace expo {

using nlohmann::json;

uint64_t TensorInfo::num_elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;  // validated against overflow when parsed
  return n;
}

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace {

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint64_t as_count(const json& value, const std::string& label, const std::string& tensor,
                  const char* field) {
  if (!value.is_number_unsigned())
    fail(label, ": tensor '", tensor, "': ", field, " must hold non-negative integers, got ",
         value.dump());
  return value.get<uint64_t>();
}

TensorInfo parse_entry(const std::string& name, const json& entry, const std::string& label) {
  if (!entry.is_object()) fail(label, ": tensor '", name, "': entry is not a JSON object");
  TensorInfo t;
  t.name = name;

  const auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end() || !dtype_it->is_string())
    fail(label, ": tensor '", name, "': missing or non-string \"dtype\"");
  const auto dtype = parse_dtype(dtype_it->get<std::string>());
  if (!dtype)
    fail(label, ": tensor '", name, "': unknown dtype '", dtype_it->get<std::string>(),
         "' (known: BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F8_E4M3, F8_E5M2, F16, BF16, "
         "F32, F64)");
  t.dtype = *dtype;

  const auto shape_it = entry.find("shape");
  if (shape_it == entry.end() || !shape_it->is_array())
    fail(label, ": tensor '", name, "': missing or non-array \"shape\"");
  uint64_t elements = 1;
  for (const auto& d : *shape_it) {
    const uint64_t dim = as_count(d, label, name, "shape");
    t.shape.push_back(dim);
    if (__builtin_mul_overflow(elements, dim, &elements))
      fail(label, ": tensor '", name, "': shape ", shape_it->dump(), " overflows 64 bits");
  }
  uint64_t expected_bytes;
  if (__builtin_mul_overflow(elements, dtype_size(t.dtype), &expected_bytes))
    fail(label, ": tensor '", name, "': shape ", shape_it->dump(), " overflows 64 bits");

  const auto offsets_it = entry.find("data_offsets");
  if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2)
    fail(label, ": tensor '", name, "': \"data_offsets\" must be an array [begin, end]");
  t.begin = as_count((*offsets_it)[0], label, name, "data_offsets");
  t.end = as_count((*offsets_it)[1], label, name, "data_offsets");
  if (t.end < t.begin)
    fail(label, ": tensor '", name, "': data_offsets [", t.begin, ", ", t.end,
         "] end before they begin");
  if (t.end - t.begin != expected_bytes)
    fail(label, ": tensor '", name, "': shape ", t.shape_string(), " x ", dtype_name(t.dtype),
         " is ", expected_bytes, " bytes but data_offsets [", t.begin, ", ", t.end, "] hold ",
         t.end - t.begin);
  return t;
}

}  // namespace

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, uint64_t available,
                                           uint64_t file_size, const std::string& label) {
  if (file_size < 8 || available < 8)
    fail(label, ": truncated: ", file_size, " bytes, too short for a safetensors header");
  const uint64_t header_len = read_u64_le(bytes);
  if (header_len > kMaxSafetensorsHeader)
    fail(label, ": header length ", header_len,
         " is over the 100 MB limit; not a safetensors file?");
  if (header_len > file_size - 8)
    fail(label, ": header length ", header_len, " runs past the end of the file (", file_size,
         " bytes); the file is truncated or not safetensors");
  if (header_len > available - 8) fail(label, ": truncated header");

  SafetensorsHeader header;
  header.data_start = 8 + header_len;
  const uint64_t data_size = file_size - header.data_start;

  // Duplicate names would silently shadow each other in a JSON object: refuse them.
  std::unordered_set<std::string> seen_keys;
  std::string duplicate;
  json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && parsed.is_string()) {
      if (!seen_keys.insert(parsed.get<std::string>()).second && duplicate.empty())
        duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json root;
  try {
    const char* begin = reinterpret_cast<const char*>(bytes + 8);
    root = json::parse(begin, begin + header_len, on_event);
  } catch (const json::exception& e) {
    fail(label, ": header is not valid JSON: ", e.what());
  }
  if (!duplicate.empty()) fail(label, ": tensor '", duplicate, "' appears twice in the header");
  if (!root.is_object()) fail(label, ": header is not a JSON object");

  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(label, ": __metadata__ is not a JSON object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) fail(label, ": __metadata__ value of '", key, "' is not a string");
        header.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    header.tensors.push_back(parse_entry(name, entry, label));
  }

  // The byte ranges must tile [0, data_size) exactly. Sort by (begin, end) so zero-length
  // tensors sit before the tensor that starts at the same offset.
  std::sort(header.tensors.begin(), header.tensors.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected_begin = 0;
  const TensorInfo* previous = nullptr;
  for (const auto& t : header.tensors) {
    if (t.end > data_size)
      fail(label, ": tensor '", t.name, "': data_offsets [", t.begin, ", ", t.end,
           "] run past the end of the data (", data_size, " bytes); the file is truncated");
    if (t.begin < expected_begin)
      fail(label, ": tensor '", t.name, "': data_offsets [", t.begin, ", ", t.end,
           "] overlap tensor '", previous->name, "'");
    if (t.begin > expected_begin)
      fail(label, ": tensor '", t.name, "': data_offsets begin at ", t.begin, " leaving a gap of ",
           t.begin - expected_begin, " bytes after ",
           previous ? "tensor '" + previous->name + "'" : std::string("the header"));
    expected_begin = t.end;
    previous = &t;
  }
  if (expected_begin != data_size)
    fail(label, ": ", data_size - expected_begin, " bytes after the last tensor",
         previous ? " '" + previous->name + "'" : std::string(),
         " are not described by the header; the file is corrupted");
  return header;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path)
    : file_(std::make_unique<MappedFile>(path)) {
  header_ = parse_safetensors_header(file_->data(), file_->size(), file_->size(), path.string());
  for (size_t i = 0; i < header_.tensors.size(); ++i) by_name_[header_.tensors[i].name] = i;
}

SafetensorsFile::SafetensorsFile(std::unique_ptr<MappedFile> file, SafetensorsHeader header)
    : file_(std::move(file)), header_(std::move(header)) {
  for (size_t i = 0; i < header_.tensors.size(); ++i) {
    const TensorInfo& t = header_.tensors[i];
    if (t.end < t.begin || header_.data_start + t.end > file_->size())
      fail("internal: ", file_->path().string(), ": tensor '", t.name, "' lies outside the file");
    by_name_[t.name] = i;
  }
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &header_.tensors[it->second];
}

}  // namespace expo
