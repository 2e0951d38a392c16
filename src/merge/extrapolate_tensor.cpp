#include "merge/extrapolate_tensor.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/interrupt.h"
#include "core/units.h"
#include "io/ggml_type.h"
#include "merge/lora_kernel.h"

namespace expo {

namespace {

// Elements per kernel task inside a chunk.
constexpr uint64_t kTaskElements = uint64_t{1} << 16;

// "[row, col]" coordinates of flat element `flat` in `shape`.
std::string element_position(const std::vector<uint64_t>& shape, uint64_t flat) {
  std::vector<uint64_t> coords(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    coords[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  std::string s = "[";
  for (size_t d = 0; d < coords.size(); ++d) s += (d ? ", " : "") + std::to_string(coords[d]);
  return s + "]";
}

// Throws the error for a kernel problem at element st.index of `entry`.
[[noreturn]] void report_extrapolation_problem(const PlanEntry& entry, const KernelStatus& st,
                                               bool extrapolated, double alpha) {
  const CheckpointTensor& a = *entry.aligned;
  const CheckpointTensor* s = extrapolated ? entry.sft : nullptr;
  const std::string where =
      "tensor '" + entry.name() + "' element " + element_position(entry.shape(), st.index);
  const double av = load_as_double(a.data(), a.info->dtype, st.index);
  using Problem = KernelStatus::Problem;
  if (st.problem == Problem::kNonFiniteAligned)
    fail(where, " is ", format_double(av), " in the aligned model (", a.file->path().string(),
         "); pass --allow-nonfinite to carry NaN/Inf through");
  const double sv = s ? load_as_double(s->data(), s->info->dtype, st.index) : av;
  if (st.problem == Problem::kNonFiniteSft)
    fail(where, " is ", format_double(sv), " in the SFT model (", s->file->path().string(),
         "); pass --allow-nonfinite to carry NaN/Inf through");
  const double r = s ? av + alpha * (av - sv) : av;
  fail(where, ": a + alpha * (a - s) = ", format_double(r), " (a = ", format_double(av),
       ", s = ", format_double(sv), ", alpha = ", format_double(alpha), ") overflows ",
       dtype_name(entry.out_dtype), "; use a wider --dtype (f32) or a smaller alpha");
}

// Throws the error for a problem at element st.index of a kLora or kScale entry.
[[noreturn]] void report_lora_problem(const PlanEntry& entry, const KernelStatus& st,
                                      double alpha) {
  const std::string where =
      "tensor '" + entry.name() + "' element " + element_position(entry.shape(), st.index);
  using Problem = KernelStatus::Problem;
  const CheckpointTensor& a = *entry.aligned;
  if (st.problem == Problem::kNonFiniteAligned || st.problem == Problem::kNonFiniteSft) {
    const CheckpointTensor& t = st.problem == Problem::kNonFiniteSft ? *entry.sft : a;
    fail(where, " is ", format_double(load_as_double(t.data(), t.info->dtype, st.index)), " in ",
         t.file->path().string(), "; pass --allow-nonfinite to carry NaN/Inf through");
  }
  if (entry.action == Action::kScale)
    fail(where, ": (1 + alpha) * ",
         format_double(load_as_double(a.data(), a.info->dtype, st.index)),
         " (alpha = ", format_double(alpha), ") overflows ", dtype_name(entry.out_dtype),
         "; use a wider --dtype (f32) or a smaller alpha");
  fail(where, ": the LoRA-extrapolated value (alpha = ", format_double(alpha), ") overflows ",
       dtype_name(entry.out_dtype), "; use a wider --dtype (f32) or a smaller alpha");
}

// The kLora and kScale entries' chunk: computed by the LoRA kernels (merge/lora_kernel.h).
void compute_lora_chunk(const PlanEntry& entry, const EntryChunk& chunk, const ChunkBuffers& buf,
                        std::span<const double> alphas, const LoraUpdate* u1, const LoraUpdate* u0,
                        bool allow_nonfinite, ThreadPool& pool) {
  const size_t out_size = dtype_size(entry.out_dtype);
  const size_t a_size = dtype_size(entry.aligned->info->dtype);
  const bool own_sft = entry.lora_pair && entry.sft != entry.aligned;
  const size_t s_size = own_sft ? dtype_size(entry.sft->info->dtype) : a_size;
  const size_t tasks_per_output = (chunk.count + kTaskElements - 1) / kTaskElements;
  std::vector<KernelStatus> statuses(alphas.size() * tasks_per_output);
  pool.parallel_for(statuses.size(), [&](size_t task) {
    const size_t k = task / tasks_per_output;
    const uint64_t first = (task % tasks_per_output) * kTaskElements;
    const uint64_t count = std::min<uint64_t>(kTaskElements, chunk.count - first);
    void* out = buf.out[k] + first * out_size;
    if (entry.action == Action::kScale) {
      ScaleRun run;
      run.b = buf.aligned + first * a_size;
      run.b_dtype = entry.aligned->info->dtype;
      run.count = count;
      run.alpha = alphas[k];
      run.out = out;
      run.out_dtype = entry.out_dtype;
      run.allow_nonfinite = allow_nonfinite;
      statuses[task] = scale_fast(run);
    } else {
      LoraRun run;
      run.w1 = buf.aligned + first * a_size;
      run.w1_dtype = entry.aligned->info->dtype;
      run.u1 = u1;
      run.w0 = own_sft ? buf.sft + first * s_size : run.w1;
      run.w0_dtype = own_sft ? entry.sft->info->dtype : run.w1_dtype;
      run.u0 = u0;
      run.pair = entry.lora_pair;
      run.start = chunk.start + first;
      run.count = count;
      run.alpha = alphas[k];
      run.out = out;
      run.out_dtype = entry.out_dtype;
      run.allow_nonfinite = allow_nonfinite;
      statuses[task] = lora_fast(run);
    }
    statuses[task].index += chunk.start + first;
  });
  for (size_t task = 0; task < statuses.size(); ++task)
    if (!statuses[task].ok())
      report_lora_problem(entry, statuses[task], alphas[task / tasks_per_output]);
}

// Straight into the destination: a byte copy is read there, anything else is read into
// scratch buffers and computed there.
class MemorySink final : public ChunkSink {
 public:
  MemorySink(const PlanEntry& entry, void* out)
      : entry_(entry), out_(static_cast<uint8_t*>(out)), out_size_(dtype_size(entry.out_dtype)) {}

  ChunkBuffers buffers(const EntryChunk& chunk) override {
    dst_ = out_ + chunk.start * out_size_;
    if (chunk.byte_copy) return {dst_, nullptr, {}};
    aligned_.resize(chunk.count * dtype_size(entry_.aligned->info->dtype));
    if (chunk.extrapolate && entry_.sft)
      sft_.resize(chunk.count * dtype_size(entry_.sft->info->dtype));
    return {aligned_.data(), sft_.data(), std::span<uint8_t* const>(&dst_, 1)};
  }
  void done(const EntryChunk&) override {}

 private:
  const PlanEntry& entry_;
  uint8_t* out_;
  size_t out_size_;
  uint8_t* dst_ = nullptr;
  std::vector<uint8_t> aligned_, sft_;
};

GgmlType ggml_of(DType dtype) {
  const auto type = ggml_of_dtype(dtype);
  if (!type) fail("internal: no ggml type for ", dtype_name(dtype));
  return *type;
}

bool has_q8_0(const PlanEntry& entry) {
  return entry.aligned->info->dtype == DType::Q8_0 || entry.out_dtype == DType::Q8_0 ||
         (entry.sft && entry.sft->info->dtype == DType::Q8_0);
}

// An entry with a Q8_0 side (a GGUF pair's): chunks of whole blocks decoded exactly to float64,
// extrapolated as the kernel does (a + alpha * (a - s)) and encoded once, Q8_0 blocks quantized
// from the float64 values (io/q8_0.h), as `expo extrapolate` writes a GGUF pair.
void extrapolate_blocks_to_memory(const PlanEntry& entry, double alpha, bool allow_nonfinite,
                                  uint8_t* out) {
  if (entry.action != Action::kExtrapolate && entry.action != Action::kCopyAligned)
    fail("tensor '", entry.name(), "': Q8_0 tensors are extrapolated whole (same shapes)");
  const CheckpointTensor& a = *entry.aligned;
  const CheckpointTensor* s = entry.action == Action::kExtrapolate ? entry.sft : nullptr;
  const DType a_dtype = a.info->dtype, out_dtype = entry.out_dtype;
  const DType s_dtype = s ? s->info->dtype : a_dtype;
  const uint64_t n = entry.num_elements();
  const double entry_alpha = entry.alpha_for(alpha);
  std::vector<uint8_t> bytes;
  std::vector<double> av, sv;
  for (uint64_t start = 0; start < n; start += kEntryChunkElements) {  // 2^21: whole blocks
    check_interrupted();
    const uint64_t count = std::min(kEntryChunkElements, n - start);
    bytes.resize(dtype_bytes(a_dtype, count));
    a.file->read(*a.info, dtype_bytes(a_dtype, start), bytes.size(), bytes.data());
    av.resize(count);
    decode_to_double(ggml_of(a_dtype), bytes.data(), count, av.data());
    if (s) {
      bytes.resize(dtype_bytes(s_dtype, count));
      s->file->read(*s->info, dtype_bytes(s_dtype, start), bytes.size(), bytes.data());
      sv.resize(count);
      decode_to_double(ggml_of(s_dtype), bytes.data(), count, sv.data());
      for (uint64_t k = 0; k < count; ++k) {
        if (!allow_nonfinite && !(std::isfinite(av[k]) && std::isfinite(sv[k]))) {
          const bool in_aligned = !std::isfinite(av[k]);
          fail("tensor '", entry.name(), "' element ", start + k, " is ",
               format_double(in_aligned ? av[k] : sv[k]), " in the ",
               in_aligned ? "aligned model (" + a.file->path().string()
                          : "SFT model (" + s->file->path().string(),
               "); pass --allow-nonfinite to carry NaN/Inf through");
        }
        const double d = av[k] - sv[k];
        const double m = entry_alpha * d;
        av[k] = av[k] + m;
      }
    }
    encode_from_double(ggml_of(out_dtype), av.data(), count, out + dtype_bytes(out_dtype, start),
                       "tensor '" + entry.name() + "'", start);
  }
}

}  // namespace

void stream_entry(const PlanEntry& entry, std::span<const double> alphas, bool allow_nonfinite,
                  ChunkSink& sink, ThreadPool& pool) {
  if (has_q8_0(entry))
    fail("tensor '", entry.name(), "' is Q8_0: it is extrapolated in memory or into a GGUF file");
  const CheckpointTensor& a = *entry.aligned;
  const DType a_dtype = a.info->dtype;
  const size_t a_size = dtype_size(a_dtype);
  const size_t out_size = dtype_size(entry.out_dtype);
  const uint64_t n = entry.num_elements();
  uint64_t extrapolated = 0;  // the first `extrapolated` elements are, the rest are copied
  if (entry.action == Action::kExtrapolate) extrapolated = n;
  if (entry.action == Action::kExtrapolateRows)
    extrapolated = entry.shared_rows * (entry.shape()[0] ? n / entry.shape()[0] : 0);
  std::vector<double> entry_alphas;
  for (double alpha : alphas) entry_alphas.push_back(entry.alpha_for(alpha));
  std::vector<KernelStatus> statuses;
  const bool lora = entry.action == Action::kLora || entry.action == Action::kScale;
  if (lora) extrapolated = n;
  // A kLora entry's factors, read once; a pair's theta0 base is read when it is its own tensor.
  std::optional<LoraUpdate> u1, u0;
  if (entry.aligned_lora) u1.emplace(LoraUpdate::read(*entry.aligned_lora, allow_nonfinite));
  if (entry.sft_lora) u0.emplace(LoraUpdate::read(*entry.sft_lora, allow_nonfinite));
  const CheckpointTensor* lora_sft =
      entry.action == Action::kLora && entry.lora_pair && entry.sft != entry.aligned ? entry.sft
                                                                                     : nullptr;

  for (uint64_t start = 0; start < n;) {
    check_interrupted();
    uint64_t end = std::min(n, start + kEntryChunkElements);
    if (start < extrapolated && end > extrapolated) end = extrapolated;  // never straddle
    EntryChunk chunk;
    chunk.start = start;
    chunk.count = end - start;
    chunk.extrapolate = start < extrapolated;
    chunk.byte_copy = !chunk.extrapolate && entry.out_dtype == a_dtype;
    const uint64_t count = chunk.count;
    const CheckpointTensor* s = lora ? lora_sft : chunk.extrapolate ? entry.sft : nullptr;
    const size_t s_size = s ? dtype_size(s->info->dtype) : 0;

    const ChunkBuffers buf = sink.buffers(chunk);
    a.file->read(*a.info, start * a_size, count * a_size, buf.aligned);
    if (s) s->file->read(*s->info, start * s_size, count * s_size, buf.sft);
    // Read-ahead of the next chunk while this one is computed and written.
    const uint64_t ahead = std::min<uint64_t>(kEntryChunkElements, n - end);
    a.file->will_need(*a.info, end * a_size, ahead * a_size);
    if (s) s->file->will_need(*s->info, end * s_size, ahead * s_size);

    if (lora) {
      if (buf.out.size() != entry_alphas.size())
        fail("internal: ", buf.out.size(), " output buffers for ", entry_alphas.size(), " alphas");
      compute_lora_chunk(entry, chunk, buf, entry_alphas, u1 ? &*u1 : nullptr, u0 ? &*u0 : nullptr,
                         allow_nonfinite, pool);
    } else if (!chunk.byte_copy) {
      if (buf.out.size() != entry_alphas.size())
        fail("internal: ", buf.out.size(), " output buffers for ", entry_alphas.size(), " alphas");
      const size_t tasks_per_output = (count + kTaskElements - 1) / kTaskElements;
      statuses.assign(entry_alphas.size() * tasks_per_output, KernelStatus{});
      pool.parallel_for(statuses.size(), [&](size_t task) {
        const size_t k = task / tasks_per_output;
        const uint64_t first = (task % tasks_per_output) * kTaskElements;
        KernelArgs args;
        args.aligned = buf.aligned + first * a_size;
        args.aligned_dtype = a_dtype;
        args.sft = s ? buf.sft + first * s_size : nullptr;
        args.sft_dtype = s ? s->info->dtype : a_dtype;
        args.out = buf.out[k] + first * out_size;
        args.out_dtype = entry.out_dtype;
        args.count = std::min<uint64_t>(kTaskElements, count - first);
        args.alpha = entry_alphas[k];
        args.allow_nonfinite = allow_nonfinite;
        statuses[task] = extrapolate_fast(args);
        statuses[task].index += start + first;
      });
      for (size_t task = 0; task < statuses.size(); ++task)
        if (!statuses[task].ok())
          report_extrapolation_problem(entry, statuses[task], s != nullptr,
                                       entry_alphas[task / tasks_per_output]);
    }
    sink.done(chunk);
    start = end;
  }
}

void extrapolate_entry_to_memory(const PlanEntry& entry, double alpha, bool allow_nonfinite,
                                 void* out, ThreadPool& pool) {
  if (has_q8_0(entry)) {
    extrapolate_blocks_to_memory(entry, alpha, allow_nonfinite, static_cast<uint8_t*>(out));
    return;
  }
  MemorySink sink(entry, out);
  stream_entry(entry, std::span<const double>(&alpha, 1), allow_nonfinite, sink, pool);
}

}  // namespace expo
