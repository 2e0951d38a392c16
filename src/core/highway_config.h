#pragma once
// Included before any Highway header by every file that uses Highway (the SIMD kernels and
// src/core/simd_targets.cpp), so that they all compile the same set of targets and one forced
// target reaches every kernel.
//
// On Arm that set is NEON and the portable fallback, without SVE: matmul's register tiles
// (src/model/matmul_simd.cpp) are arrays of vectors, and SVE's vectors, whose size is only
// known at run time, cannot be array elements. (x86 is unaffected: those are Arm targets.)
#ifdef HIGHWAY_HWY_DETECT_TARGETS_H_
#error "include core/highway_config.h before any Highway header"
#endif
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128)
#endif
