#pragma once
// NumPy .npy files of float32 arrays: enough to hand activations and logits to numpy and back
// (reference checks, debugging dumps).
//
// The writer produces what numpy 1.24 (np.save) writes for a C-order float32 array, byte for
// byte: format version 1.0, the dict {'descr': '<f4', 'fortran_order': False, 'shape': (...), }
// with numpy's spare room after it, padded with spaces and ended by '\n' so that the data
// starts at a multiple of 64 bytes. The file appears complete or not at all: it is written
// beside the target under a temporary name and renamed into place.
//
// The reader trusts nothing: it checks the magic, the version (1.0, 2.0 or 3.0), the header
// length against the file's size, parses the header dict strictly (exactly the keys descr,
// fortran_order and shape), accepts descr '<f4' (and '<f8', rounded to float32), C order only,
// and requires the shape's element count (overflow checked) to match the bytes that follow
// exactly. Every error names the file and what is wrong with it.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace expo {

struct NpyArray {
  std::vector<uint64_t> shape;  // empty: a 0-d array (one element)
  std::vector<float> data;      // C order
};

// `data` holds product(shape) floats (it may be null when that product is 0). An existing file
// at `path` is replaced.
void write_npy_f32(const std::filesystem::path& path, const std::vector<uint64_t>& shape,
                   const float* data);

NpyArray read_npy_f32(const std::filesystem::path& path);

// The bytes write_npy_f32 puts before the data: magic, version, length, dict and padding.
std::string npy_header_f32(const std::vector<uint64_t>& shape);

}  // namespace expo
