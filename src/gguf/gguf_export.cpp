#include "gguf/gguf_export.h"

#include <expo/version.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/interrupt.h"
#include "core/serial_worker.h"
#include "core/staging_dir.h"
#include "gguf/gguf_arch.h"
#include "gguf/gguf_vocab.h"
#include "io/gguf_writer.h"
#include "merge/extrapolate_tensor.h"
#include "model/weights.h"

namespace expo {

uint32_t gguf_file_type(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
      return 0;
    case GgmlType::F16:
      return 1;
    case GgmlType::Q8_0:
      return 7;
    case GgmlType::BF16:
      return 32;
    default:
      fail("internal: GGUF output type ", ggml_type_name(t));
  }
}

namespace {

// A plan entry's output, chunk by chunk, in its out_dtype, handed to
// `on_chunk(bytes, start, count)`.
class ChunkWriter : public ChunkSink {
 public:
  using Fn = std::function<void(uint8_t*, uint64_t, uint64_t)>;
  ChunkWriter(const PlanEntry& entry, Fn on_chunk)
      : entry_(entry), on_chunk_(std::move(on_chunk)) {}
  ChunkBuffers buffers(const EntryChunk& chunk) override {
    out_.resize(chunk.count * dtype_size(entry_.out_dtype));
    out_ptr_ = out_.data();
    if (chunk.byte_copy) return {out_ptr_, nullptr, {}};  // read as it is: already the output
    aligned_.resize(chunk.count * dtype_size(entry_.aligned->info->dtype));
    const DType s = entry_.sft ? entry_.sft->info->dtype : DType::F64;
    sft_.resize(chunk.count * dtype_size(s));
    return {aligned_.data(), sft_.data(), std::span<uint8_t* const>(&out_ptr_, 1)};
  }
  void done(const EntryChunk& chunk) override { on_chunk_(out_.data(), chunk.start, chunk.count); }

 private:
  const PlanEntry& entry_;
  Fn on_chunk_;
  std::vector<uint8_t> aligned_, sft_, out_;
  uint8_t* out_ptr_ = nullptr;
};

}  // namespace

void add_gguf_provenance(GgufWriter& writer, const GgufExportOptions& options, uint32_t file_type,
                         bool quantized) {
  writer.add_metadata(
      "general.name",
      GgufValue(options.name.empty() ? options.output.stem().string() : options.name));
  writer.add_metadata("general.file_type", GgufValue(file_type));
  if (quantized) writer.add_metadata("general.quantization_version", uint32_t{2});
  writer.add_metadata("expo.version", GgufValue(std::string(EXPO_VERSION)));
  if (!options.alpha_text.empty()) writer.add_metadata("expo.alpha", GgufValue(options.alpha_text));
  for (const auto& [role, spec] : options.sources)
    writer.add_metadata("expo.source." + role, GgufValue(spec));
}

void publish_gguf(const std::filesystem::path& temp, const GgufExportOptions& options) {
  std::filesystem::rename(temp, options.output);
  sync_folder(options.output.has_parent_path() ? options.output.parent_path() : ".");
}

GgmlType parse_gguf_out_type(const std::string& text) {
  const auto t = parse_ggml_type(text);
  if (!t ||
      (*t != GgmlType::F32 && *t != GgmlType::F16 && *t != GgmlType::BF16 && *t != GgmlType::Q8_0))
    fail("--gguf-type: '", text, "' is not one of f32, f16, bf16, q8_0");
  return *t;
}

void check_gguf_output(const GgufExportOptions& options) {
  if (options.output.extension() != ".gguf")
    fail("--output ", options.output.string(), ": a GGUF output is one file named *.gguf");
  if (std::filesystem::is_directory(options.output))
    fail("--output ", options.output.string(), " is a folder; a GGUF output is one file");
  check_output_target(options.output, options.force);
  check_can_create(options.output, "--output");
}

Plan copy_plan(const Checkpoint& checkpoint) {
  Plan plan;
  for (const auto& t : checkpoint.tensors()) {
    PlanEntry e;
    e.aligned = &t;
    e.action = Action::kCopyAligned;
    e.out_dtype = t.info->dtype;
    plan.entries.push_back(e);
  }
  return plan;
}

GgufExportResult write_gguf(const Plan& plan, double alpha, const ModelConfig& config,
                            const std::filesystem::path& tokenizer_folder,
                            const GgufExportOptions& options, ThreadPool& pool) {
  check_gguf_output(options);
  std::map<std::string, const PlanEntry*> entries;
  std::vector<std::string> names;
  for (const auto& e : plan.entries) {
    entries[e.name()] = &e;
    names.push_back(e.name());
  }
  GgufModelRecipe recipe = gguf_recipe(config, names);
  GgufVocab vocab =
      gguf_vocab(tokenizer_folder, config.vocab_size, config.bos_token_id, config.eos_token_ids);

  // Every tensor of the model is used, and each source has the shape the recipe expects.
  std::set<std::string> used;
  for (const auto& t : recipe.tensors) {
    const uint64_t cols = t.shape.back();
    for (const auto& s : t.sources) {
      used.insert(s);
      const auto& shape = entries.at(s)->shape();
      if (shape.empty() || shape.back() != cols)
        fail("GGUF: tensor '", s, "' has shape ", TensorInfo{"", DType::F32, shape}.shape_string(),
             "; ", config.architecture, " needs ", cols, " columns for ", t.name);
    }
    // A row: the last dimension, or one value of a 1-D tensor (a q or k bias in rope order).
    const uint64_t row = t.shape.size() == 1 ? 1 : cols;
    uint64_t rows = 0, want = 1;
    for (const auto& s : t.sources) rows += entries.at(s)->num_elements() / row;
    for (uint64_t d : t.shape) want *= d;
    want /= row;
    if (t.sources.empty()) continue;
    if (t.rows.empty() ? rows != want : *std::max_element(t.rows.begin(), t.rows.end()) >= rows)
      fail("GGUF: the tensors of ", t.name, " (", t.sources.front(), "...) hold ", rows,
           " rows; config.json implies ", t.rows.empty() ? want : t.rows.size());
  }
  std::vector<std::string> unused;
  for (const auto& n : names)
    if (!used.count(n) && !is_ignorable_tensor(n, config)) unused.push_back(n);
  if (!unused.empty())
    fail("GGUF: ", config.architecture, " has no tensor named '", unused.front(), "' (",
         unused.size(), " such tensor(s)); nothing in llama.cpp's ", recipe.arch, " reads it");

  // The output type: asked for, else the source's 16-bit type (F16 for F32 sources).
  GgmlType type = GgmlType::F16;
  if (options.type) {
    type = *options.type;
  } else {
    for (const auto& e : plan.entries)
      if (e.shape().size() == 2) {
        type = e.aligned->info->dtype == DType::BF16 ? GgmlType::BF16 : GgmlType::F16;
        break;
      }
  }
  GgufExportResult result;
  result.type = type;
  result.notes = recipe.notes;
  for (const auto& n : vocab.notes) result.notes.push_back(n);

  GgufWriter writer;
  for (const auto& entry : recipe.metadata.entries()) {
    writer.add_metadata(entry.key, entry.value);
    if (entry.key == "general.architecture") {
      add_gguf_provenance(writer, options, gguf_file_type(type), type == GgmlType::Q8_0);
    }
  }
  for (const auto& entry : vocab.metadata.entries()) writer.add_metadata(entry.key, entry.value);
  std::vector<GgmlType> types;
  for (const auto& t : recipe.tensors) {
    GgmlType tt = t.always_f32 ? GgmlType::F32 : type;
    if (tt == GgmlType::Q8_0 && t.shape.back() % 32 != 0) {
      tt = GgmlType::F16;
      result.notes.push_back(t.name + " has rows of " + std::to_string(t.shape.back()) +
                             " values, not a multiple of Q8_0's 32: written as F16");
    }
    types.push_back(tt);
    writer.add_tensor(t.name, tt, t.shape);
  }

  StagingDir staging(options.output);
  const auto temp = staging.path() / options.output.filename();
  OutputFile out(temp, /*direct=*/true);
  writer.start(out);
  // The disk writes run on a background thread, in order, while the next chunk is computed,
  // from three buffers used in turn (memory stays flat; no fresh pages per chunk).
  SerialWorker disk;
  struct Buffer {
    std::vector<uint8_t> bytes;
    uint64_t ticket = 0;  // the write job that reads it
  };
  Buffer buffers[3];
  size_t next_buffer = 0;
  auto submit = [&](std::function<void()> job) { return disk.submit(std::move(job)); };
  auto write_bytes = [&](const uint8_t* data, uint64_t size) {
    Buffer& b = buffers[next_buffer];
    next_buffer = (next_buffer + 1) % 3;
    disk.wait(b.ticket);
    b.bytes.assign(data, data + size);
    b.ticket = disk.submit([&writer, &b] { writer.write(b.bytes.data(), b.bytes.size()); });
  };
  std::vector<uint8_t> encoded;
  for (size_t i = 0; i < recipe.tensors.size(); ++i) {
    check_interrupted();
    const GgufTensorRecipe& t = recipe.tensors[i];
    const GgmlType tt = types[i];
    // What the recipe's rows move: rows, or single values of a 1-D tensor.
    const uint64_t row_bytes = *ggml_tensor_bytes(tt, {t.shape.size() == 1 ? 1 : t.shape.back()});
    // Encodes float64 values (a whole number of rows, or of Q8_0 blocks) into `out`, the pool
    // sharing the work in pieces of 64 blocks.
    auto encode = [&](const double* values, uint64_t count, uint64_t first, uint8_t* out) {
      const uint64_t piece = 2048, piece_bytes = *ggml_tensor_bytes(tt, {piece});
      pool.parallel_for((count + piece - 1) / piece, [&](size_t k) {
        const uint64_t lo = k * piece, n = std::min(piece, count - lo);
        encode_from_double(tt, values + lo, n, out + k * piece_bytes, t.name, first + lo);
      });
    };
    // The plan entry of `source` computed straight into the output dtype (F32, F16, BF16 and
    // no shift: the kernel of `expo extrapolate`), else into float64.
    const bool native = t.add == 0 && tt != GgmlType::Q8_0;
    auto entry_for = [&](const std::string& source) {
      PlanEntry e = *entries.at(source);
      e.out_dtype = !native               ? DType::F64
                    : tt == GgmlType::F32 ? DType::F32
                    : tt == GgmlType::F16 ? DType::F16
                                          : DType::BF16;
      return e;
    };
    auto shift = [&](double* v, uint64_t n) {
      if (t.add != 0)
        for (uint64_t k = 0; k < n; ++k) v[k] += t.add;
    };
    submit([&writer, name = t.name] { writer.begin_tensor(name); });
    if (t.sources.empty()) {
      std::vector<double> v = t.values;
      encoded.resize(*ggml_tensor_bytes(tt, {v.size()}));
      encode(v.data(), v.size(), 0, encoded.data());
      write_bytes(encoded.data(), encoded.size());
    } else if (t.rows.empty()) {
      // Streamed: the sources one after the other, chunk by chunk.
      uint64_t offset = 0;
      for (const auto& s : t.sources) {
        const PlanEntry e = entry_for(s);
        ChunkWriter sink(e, [&](uint8_t* bytes, uint64_t start, uint64_t count) {
          if (native) {
            write_bytes(bytes, count * dtype_size(e.out_dtype));
            return;
          }
          auto* v = reinterpret_cast<double*>(bytes);
          shift(v, count);
          encoded.resize(*ggml_tensor_bytes(tt, {count}));
          encode(v, count, offset + start, encoded.data());
          write_bytes(encoded.data(), encoded.size());
        });
        stream_entry(e, std::span<const double>(&alpha, 1), options.allow_nonfinite, sink, pool);
        offset += e.num_elements();
      }
    } else {
      // Rows rearranged: the source whole, in the output type, then its rows in the recipe's
      // order (a row is a whole number of Q8_0 blocks, so encoded rows move as they are).
      const PlanEntry e = entry_for(t.sources.front());
      const uint64_t n = e.num_elements();
      std::vector<uint8_t> whole(n * dtype_size(e.out_dtype));
      extrapolate_entry_to_memory(e, alpha, options.allow_nonfinite, whole.data(), pool);
      const uint8_t* src = whole.data();
      std::vector<uint8_t> coded;
      if (!native) {
        auto* v = reinterpret_cast<double*>(whole.data());
        shift(v, n);
        coded.resize(*ggml_tensor_bytes(tt, {n}));
        encode(v, n, 0, coded.data());
        src = coded.data();
      }
      encoded.resize(t.rows.size() * row_bytes);
      for (size_t r = 0; r < t.rows.size(); ++r)
        std::memcpy(&encoded[r * row_bytes], src + t.rows[r] * row_bytes, row_bytes);
      write_bytes(encoded.data(), encoded.size());
    }
    submit([&writer] { writer.end_tensor(); });
    result.bytes += writer.tensors()[i].num_bytes;
  }
  disk.wait_all();
  writer.finish();
  out.start_writeback();
  out.close();
  publish_gguf(temp, options);
  result.tensors = recipe.tensors.size();
  return result;
}

}  // namespace expo
