#pragma once
// One plan entry, chunk by chunk: the loop that `expo extrapolate` (the file writer,
// merge/extrapolate.cpp) and the engine's extrapolation on load (into memory) share. Each chunk
// is read with pread (never through a memory map, so no input page stays mapped), computed by
// the ExPO kernel for every requested alpha, and checked, with errors that name the tensor and
// the element; where the chunk's inputs are read into and its outputs go is the caller's
// (a ChunkSink).
#include <cstdint>
#include <span>

#include "core/thread_pool.h"
#include "merge/extrapolate_kernel.h"
#include "merge/plan.h"

namespace expo {

// Elements per chunk (4 MB of BF16): large enough to keep the disk busy, small enough that
// memory stays flat whatever the model size.
constexpr uint64_t kEntryChunkElements = uint64_t{1} << 21;

// A run of at most kEntryChunkElements elements of an entry. A chunk never straddles the end of
// the shared rows of Action::kExtrapolateRows: it is either extrapolated (the SFT side is read)
// or copied from aligned (into the output dtype).
struct EntryChunk {
  uint64_t start = 0, count = 0;  // in elements of the entry
  bool extrapolate = false;
  // A copy in the aligned dtype: the aligned bytes read are the output, the kernel does not run.
  bool byte_copy = false;
};

// Where a chunk is read into and computed to.
struct ChunkBuffers {
  uint8_t* aligned = nullptr;  // count elements in the aligned dtype (for a byte copy: the output)
  uint8_t* sft = nullptr;      // count elements in the SFT dtype (read when extrapolating)
  std::span<uint8_t* const> out;  // per alpha, count elements in the output dtype
};

class ChunkSink {
 public:
  virtual ~ChunkSink() = default;
  // Buffers for `chunk`, valid until done(chunk).
  virtual ChunkBuffers buffers(const EntryChunk& chunk) = 0;
  // The chunk is in the buffers (computed, or read for a byte copy) and checked.
  virtual void done(const EntryChunk& chunk) = 0;
};

// Streams `entry` through `sink` chunk by chunk, in order: for output k, elements extrapolated
// with alpha entry.alpha_for(alphas[k]) (its --rule, else alphas[k]) or copied where the plan
// says so. Throws at the first problem (by output, then element: a NaN/Inf input or an overflow),
// naming the tensor, the element, the values and what to do; stops at Ctrl-C
// (check_interrupted).
void stream_entry(const PlanEntry& entry, std::span<const double> alphas, bool allow_nonfinite,
                  ChunkSink& sink, ThreadPool& pool);

// Writes entry.num_elements() elements of entry.out_dtype to `out`: stream_entry with one alpha,
// for the engine's extrapolation on load.
void extrapolate_entry_to_memory(const PlanEntry& entry, double alpha, bool allow_nonfinite,
                                 void* out, ThreadPool& pool);

}  // namespace expo
