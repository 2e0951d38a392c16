#pragma once
// One plan entry extrapolated into memory, for the engine's extrapolation on load: the same
// kernel and the same checks as `expo extrapolate`, without writing a file.
#include <cstdint>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "merge/extrapolate_kernel.h"
#include "merge/plan.h"

namespace expo {

// "[row, col]" coordinates of flat element `flat` in `shape`.
std::string element_position(const std::vector<uint64_t>& shape, uint64_t flat);

// Throws the error for a kernel problem at element st.index of `entry` (a NaN/Inf input or an
// overflow), naming the tensor, the element, the values and what to do.
[[noreturn]] void report_extrapolation_problem(const PlanEntry& entry, const KernelStatus& st,
                                               bool extrapolated, double alpha);

// Writes entry.num_elements() elements of entry.out_dtype to `out`: extrapolated with the
// entry's alpha (its --rule, else `alpha`), or copied where the plan says so. Reads the inputs
// with pread in chunks, so no input page stays mapped in this process.
void extrapolate_entry_to_memory(const PlanEntry& entry, double alpha, bool allow_nonfinite,
                                 void* out, ThreadPool& pool);

}  // namespace expo
