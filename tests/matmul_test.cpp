// The fast matmul kernel against its float64 reference on random shapes, for every SIMD target
// this CPU can run; batch invariance (bit-exact); exact dtype conversion for all BF16 and F16
// bit patterns.
#include "model/matmul.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/simd_targets.h"
#include "core/thread_pool.h"
#include "io/q8_0.h"
#include "simd_test_util.h"

namespace expo {
namespace {

// Tolerance of the fast kernel against the float64 reference, as a multiple of
// scale = sum_k |x_k w_k| + |bias|. The kernel accumulates in float32: each lane of an
// L-lane accumulator adds ceil(cols / L) products, the L lanes are summed in log2(L) steps,
// then the bias in one more; each step rounds once (FMA), or twice on targets without FMA
// (SSE4, SSSE3, SCALAR). So to first order
//     |fast - exact| <= 2 (ceil(cols / L) + log2 L + 1) u scale,   u = 2^-24,
// and the reference's own rounding to float32 adds half an ulp of the result, below u scale.
// Random signs make the real errors far smaller; this is the bound, not a guess.
double tolerance(const std::string& target, size_t cols, double scale) {
  constexpr double kUnitRoundoff = 0x1p-24;
  const double lanes = target == "AVX3"                                              ? 16
                       : target == "AVX2"                                            ? 8
                       : target == "SSE4" || target == "SSSE3" || target == "EMU128" ? 4
                                                                                     : 1;
  const double steps = 2 * (std::ceil(cols / lanes) + std::log2(lanes) + 1) + 1;
  return steps * kUnitRoundoff * scale;
}

// Runs fn(target) once per SIMD target this CPU supports, with matmul forced to each in turn.
template <typename Fn>
void for_each_target(Fn&& fn) {
  testing::for_each_simd_target(matmul_target_name, fn);
}

// A weight matrix in its file dtype, `offset` bytes into its buffer so that the kernel sees
// every kind of misalignment (odd bytes included).
struct Weights {
  std::vector<unsigned char> buffer;
  WeightView view;
};

// Normal(0, 0.05) weights; for Q8_0, those values quantized (io/q8_0.h), row after row.
Weights random_weights(DType dtype, size_t rows, size_t cols, size_t offset, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.05);
  Weights w;
  w.buffer.resize(offset + dtype_bytes(dtype, rows * cols) + 1);
  void* data = w.buffer.data() + offset;
  if (dtype == DType::Q8_0) {
    std::vector<double> values(rows * cols);
    for (double& v : values) v = normal(rng);
    quantize_q8_0(values.data(), values.size(), static_cast<uint8_t*>(data), "test weights");
  } else {
    for (size_t i = 0; i < rows * cols; ++i) store_from_double(data, dtype, i, normal(rng));
  }
  w.view = {data, dtype, rows, cols};
  return w;
}

// Every weight of `w` as a double, exactly.
std::vector<double> weights_as_doubles(const WeightView& w) {
  std::vector<double> values(w.rows * w.cols);
  if (w.dtype == DType::Q8_0) {
    dequantize_q8_0(static_cast<const uint8_t*>(w.data), values.size(), values.data());
  } else {
    for (size_t i = 0; i < values.size(); ++i) values[i] = load_as_double(w.data, w.dtype, i);
  }
  return values;
}

std::vector<float> random_floats(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& f : v) f = normal(rng);
  return v;
}

// sum_k |x_k w_k| + |bias| for every output: the scale of its rounding error.
std::vector<double> error_scales(const WeightView& w, const float* bias, const float* x,
                                 size_t batch) {
  const std::vector<double> weights = weights_as_doubles(w);
  std::vector<double> scale(batch * w.rows);
  for (size_t b = 0; b < batch; ++b) {
    for (size_t r = 0; r < w.rows; ++r) {
      double s = bias ? std::fabs(bias[r]) : 0.0;
      for (size_t k = 0; k < w.cols; ++k) {
        s += std::fabs(x[b * w.cols + k] * weights[r * w.cols + k]);
      }
      scale[b * w.rows + r] = s;
    }
  }
  return scale;
}

const DType kWeightDTypes[] = {DType::F32, DType::BF16, DType::F16, DType::Q8_0};

// Column counts to test: every tail length for the float types; Q8_0 rows are whole blocks of
// 32 (one block, two, three, and a model's 4096 less one block so the count is not a power of
// two).
std::vector<size_t> test_cols(DType dtype, bool large) {
  if (dtype == DType::Q8_0)
    return large ? std::vector<size_t>{64, 1024} : std::vector<size_t>{32, 64, 96, 4064};
  return large ? std::vector<size_t>{65, 1000} : std::vector<size_t>{1, 3, 17, 63, 65, 1000};
}

TEST(MatmulTest, MatchesReferenceOnRandomShapes) {
  ThreadPool pool1(1), pool2(2);
  ThreadPool* pools[] = {&pool1, &pool2};
  uint64_t seed = 1;
  size_t case_index = 0;
  for (DType dtype : kWeightDTypes) {
    for (size_t cols : test_cols(dtype, false)) {
      for (size_t rows : {1, 5, 33}) {
        for (size_t batch : {1, 2, 3, 7, 16, 17, 33}) {
          for (bool with_bias : {false, true}) {
            ++case_index;
            SCOPED_TRACE(::testing::Message()
                         << dtype_name(dtype) << " rows " << rows << " cols " << cols << " batch "
                         << batch << " bias " << with_bias);
            // Misalignment: W at an odd byte now and then (Q8_0 blocks too), x and y off a
            // vector boundary.
            const size_t w_offset = case_index % 5;
            const size_t x_offset = case_index % 3;
            const size_t y_offset = (case_index / 3) % 3;
            const Weights w = random_weights(dtype, rows, cols, w_offset, ++seed);
            const std::vector<float> x_buffer = random_floats(x_offset + batch * cols, ++seed);
            const std::vector<float> bias = random_floats(rows, ++seed);
            const float* x = x_buffer.data() + x_offset;
            const float* b = with_bias ? bias.data() : nullptr;

            std::vector<float> ref(batch * rows);
            matmul_reference(w.view, b, x, batch, ref.data());
            const std::vector<double> scale = error_scales(w.view, b, x, batch);

            for_each_target([&](const std::string& target) {
              for (ThreadPool* pool : pools) {
                std::vector<float> y_buffer(y_offset + batch * rows + 1, -7.0f);
                float* y = y_buffer.data() + y_offset;
                matmul(w.view, b, x, batch, y, *pool);
                for (size_t i = 0; i < batch * rows; ++i) {
                  ASSERT_LE(std::fabs(double{y[i]} - ref[i]), tolerance(target, cols, scale[i]))
                      << "output " << i << " fast " << y[i] << " reference " << ref[i]
                      << " threads " << pool->size();
                }
                EXPECT_EQ(y_buffer.back(), -7.0f) << "wrote past the end of y";
                if (y_offset > 0) {
                  EXPECT_EQ(y_buffer[y_offset - 1], -7.0f);
                }
              }
            });
          }
        }
      }
    }
  }
}

// Shapes big enough to be split into several row blocks and activation blocks over threads.
TEST(MatmulTest, MatchesReferenceWhenSplitOverThreads) {
  ThreadPool pool(2);
  struct Shape {
    size_t rows, cols, batch;
  };
  uint64_t seed = 100;
  for (const Shape shape :
       {Shape{300, 1000, 1}, Shape{300, 1000, 70}, Shape{37, 4100, 20}, Shape{1031, 129, 3}}) {
    for (DType dtype : kWeightDTypes) {
      Shape s = shape;
      if (dtype == DType::Q8_0) s.cols = s.cols / 32 * 32;  // whole blocks: 992, 4096, 128
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " rows " << s.rows << " cols "
                                        << s.cols << " batch " << s.batch);
      const Weights w = random_weights(dtype, s.rows, s.cols, 0, ++seed);
      const std::vector<float> x = random_floats(s.batch * s.cols, ++seed);
      const std::vector<float> bias = random_floats(s.rows, ++seed);
      std::vector<float> ref(s.batch * s.rows), y(s.batch * s.rows);
      matmul_reference(w.view, bias.data(), x.data(), s.batch, ref.data());
      matmul(w.view, bias.data(), x.data(), s.batch, y.data(), pool);
      const std::vector<double> scale = error_scales(w.view, bias.data(), x.data(), s.batch);
      for (size_t i = 0; i < y.size(); ++i) {
        ASSERT_LE(std::fabs(double{y[i]} - ref[i]),
                  tolerance(matmul_target_name(), s.cols, scale[i]))
            << "output " << i;
      }
    }
  }
}

// Every y[b, r] must come out bit for bit the same whatever else shares the batch, where the
// row sits in it and how many threads run (matmul.h, batch invariance).
TEST(MatmulTest, BatchInvariant) {
  ThreadPool pool1(1), pool2(2);
  uint64_t seed = 200;
  for (DType dtype : kWeightDTypes) {
    for (size_t cols : test_cols(dtype, true)) {
      const size_t rows = 133, batch = 37;
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " cols " << cols);
      const Weights w = random_weights(dtype, rows, cols, 1, ++seed);
      const std::vector<float> x = random_floats(batch * cols, ++seed);
      const std::vector<float> bias = random_floats(rows, ++seed);
      for_each_target([&](const std::string&) {
        std::vector<float> full(batch * rows);
        matmul(w.view, bias.data(), x.data(), batch, full.data(), pool2);
        // Each row alone (decode), on one thread.
        std::vector<float> one(rows);
        for (size_t b = 0; b < batch; ++b) {
          matmul(w.view, bias.data(), x.data() + b * cols, 1, one.data(), pool1);
          ASSERT_EQ(0, std::memcmp(one.data(), full.data() + b * rows, rows * sizeof(float)))
              << "batch row " << b << " alone differs from its value in a batch of " << batch;
        }
        // Sub-batches at every offset mod the tile, of every size mod the tile.
        for (size_t start : {1, 2, 3, 5}) {
          for (size_t count : {2, 3, 5, 6, 17}) {
            std::vector<float> part(count * rows);
            matmul(w.view, bias.data(), x.data() + start * cols, count, part.data(), pool2);
            ASSERT_EQ(0, std::memcmp(part.data(), full.data() + start * rows, part.size() * 4))
                << "batch rows " << start << ".." << start + count - 1;
          }
        }
      });
    }
  }
}

// With small integers every product and partial sum is exact in float32, so the fast kernel
// must agree with the reference exactly, whatever the order of its additions.
TEST(MatmulTest, ExactOnSmallIntegers) {
  ThreadPool pool(2);
  std::mt19937_64 rng(300);
  std::uniform_int_distribution<int> small(-3, 3);
  const size_t rows = 19, cols = 77, batch = 9;
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    SCOPED_TRACE(dtype_name(dtype));
    std::vector<unsigned char> data(rows * cols * dtype_size(dtype));
    for (size_t i = 0; i < rows * cols; ++i) store_from_double(data.data(), dtype, i, small(rng));
    std::vector<float> x(batch * cols), bias(rows);
    for (auto& v : x) v = static_cast<float>(small(rng));
    for (auto& v : bias) v = static_cast<float>(small(rng));
    const WeightView w{data.data(), dtype, rows, cols};
    std::vector<float> ref(batch * rows);
    matmul_reference(w, bias.data(), x.data(), batch, ref.data());
    for_each_target([&](const std::string&) {
      std::vector<float> y(batch * rows);
      matmul(w, bias.data(), x.data(), batch, y.data(), pool);
      EXPECT_EQ(y, ref);
    });
  }
}

TEST(MatmulTest, EmptyShapes) {
  ThreadPool pool(2);
  const float bias[3] = {1.5f, -2.0f, 0.25f};
  const float x[2] = {0, 0};
  float y[6] = {9, 9, 9, 9, 9, 9};
  // No columns: every output is its bias (or zero).
  const WeightView no_cols{nullptr, DType::BF16, 3, 0};
  matmul(no_cols, bias, x, 2, y, pool);
  EXPECT_EQ(std::vector<float>(y, y + 6),
            (std::vector<float>{1.5f, -2.0f, 0.25f, 1.5f, -2.0f, 0.25f}));
  matmul(no_cols, nullptr, x, 1, y, pool);
  EXPECT_EQ(std::vector<float>(y, y + 3), (std::vector<float>{0, 0, 0}));
  // No rows or no batch: nothing is written.
  float untouched[2] = {9, 9};
  matmul(WeightView{nullptr, DType::F32, 0, 5}, nullptr, x, 1, untouched, pool);
  matmul(WeightView{x, DType::F32, 1, 2}, nullptr, x, 0, untouched, pool);
  EXPECT_EQ(untouched[0], 9.0f);
  EXPECT_EQ(untouched[1], 9.0f);
}

TEST(MatmulTest, RejectsNonFloatWeights) {
  ThreadPool pool(1);
  const int32_t data[4] = {1, 2, 3, 4};
  const float x[2] = {1, 1};
  float y[2];
  const WeightView w{data, DType::I32, 2, 2};
  try {
    matmul(w, nullptr, x, 1, y, pool);
    ADD_FAILURE() << "expected an expo::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("I32"), std::string::npos) << e.what();
  }
  EXPECT_THROW(matmul_reference(w, nullptr, x, 1, y), Error);
  EXPECT_THROW(convert_row_to_f32(data, DType::I32, 0, 2, y), Error);
}

// Q8_0 blocks of random bytes: every int8 q (-128 included) and every finite F16 scale
// (subnormal, negative, signed zero, up to 65504), not just what quantize_q8_0 makes.
std::vector<uint8_t> random_q8_0_blocks(size_t blocks, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> bytes(blocks * kQ8_0BlockBytes);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  for (size_t i = 0; i < blocks; ++i) {
    uint8_t* d = bytes.data() + i * kQ8_0BlockBytes;
    if ((d[1] & 0x7c) == 0x7c) d[1] &= 0xbf;  // exponent 31 (inf, NaN) to 15
  }
  return bytes;
}

// The fast kernel multiplies by q * d, exact in float32, in the same order as for F32 weights
// (matmul.h), so a Q8_0 product must equal bit for bit the product with the dequantized
// weights stored as F32, on every target, at every batch size and thread count.
TEST(MatmulTest, Q8_0IsBitForBitF32OfItsValues) {
  ThreadPool pool1(1), pool2(2);
  uint64_t seed = 400;
  for (size_t cols : {32, 96, 2048}) {
    for (size_t rows : {1, 7, 61}) {
      SCOPED_TRACE(::testing::Message() << "rows " << rows << " cols " << cols);
      const size_t blocks = rows * cols / kQ8_0BlockValues;
      std::vector<uint8_t> q8 = random_q8_0_blocks(blocks, ++seed);
      std::vector<float> f32(rows * cols);
      dequantize_q8_0(q8.data(), f32.size(), f32.data());
      const size_t batch = 17;
      const std::vector<float> x = random_floats(batch * cols, ++seed);
      const std::vector<float> bias = random_floats(rows, ++seed);
      // At an odd byte, to be sure no alignment is assumed.
      std::vector<uint8_t> odd(q8.size() + 1);
      std::memcpy(odd.data() + 1, q8.data(), q8.size());
      const WeightView wq{odd.data() + 1, DType::Q8_0, rows, cols};
      const WeightView wf{f32.data(), DType::F32, rows, cols};
      for_each_target([&](const std::string&) {
        for (ThreadPool* pool : {&pool1, &pool2}) {
          for (size_t b : {size_t{1}, size_t{4}, batch}) {
            std::vector<float> yq(b * rows), yf(b * rows);
            matmul(wq, bias.data(), x.data(), b, yq.data(), *pool);
            matmul(wf, bias.data(), x.data(), b, yf.data(), *pool);
            ASSERT_EQ(0, std::memcmp(yq.data(), yf.data(), yq.size() * sizeof(float)))
                << "batch " << b << " threads " << pool->size();
          }
        }
      });
    }
  }
}

TEST(MatmulTest, Q8_0RejectsColsNotWholeBlocks) {
  ThreadPool pool(1);
  std::vector<uint8_t> data(2 * kQ8_0BlockBytes * 2);
  std::vector<float> x(2 * 48), y(2);
  const WeightView w{data.data(), DType::Q8_0, 2, 48};
  for (int which = 0; which < 2; ++which) {
    try {
      if (which == 0) {
        matmul(w, nullptr, x.data(), 1, y.data(), pool);
      } else {
        matmul_reference(w, nullptr, x.data(), 1, y.data());
      }
      ADD_FAILURE() << "expected an expo::Error";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("2 x 48"), std::string::npos) << message;
      EXPECT_NE(message.find("multiple of 32"), std::string::npos) << message;
    }
  }
  std::vector<float> out(64);
  EXPECT_THROW(convert_row_to_f32(data.data(), DType::Q8_0, 16, 32, out.data()), Error);
  EXPECT_THROW(convert_row_to_f32(data.data(), DType::Q8_0, 0, 48, out.data()), Error);
}

TEST(MatmulTest, TargetName) {
  const std::string name = matmul_target_name();
  EXPECT_FALSE(name.empty());
  EXPECT_EQ(name, simd_available_targets().front()) << "the best target should be chosen";
}

// All 65536 bit patterns of a 16-bit float, converted exactly: the same float32 as the
// reference decoder's float64 (bit for bit, signed zeros included), NaN staying NaN.
void expect_all_patterns_exact(DType dtype, double (*decode)(uint16_t)) {
  std::vector<uint16_t> bits(65536 + 3);
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = static_cast<uint16_t>(i);
  for_each_target([&](const std::string&) {
    // Start at element 3 of the buffer and at an odd byte, with a count that leaves a tail.
    std::vector<unsigned char> odd(bits.size() * 2 + 1);
    std::memcpy(odd.data() + 1, bits.data(), bits.size() * 2);
    for (const void* base :
         {static_cast<const void*>(bits.data()), static_cast<const void*>(odd.data() + 1)}) {
      std::vector<float> out(65536 + 1, -1.0f);
      convert_row_to_f32(base, dtype, 0, 65536, out.data());
      EXPECT_EQ(out.back(), -1.0f) << "wrote past the end";
      std::vector<float> tail(13);
      convert_row_to_f32(base, dtype, 65536 - 10, 13, tail.data());
      for (uint32_t i = 0; i < 65536; ++i) {
        const double expected = decode(static_cast<uint16_t>(i));
        if (std::isnan(expected)) {
          ASSERT_TRUE(std::isnan(out[i])) << "pattern " << i;
        } else {
          ASSERT_EQ(std::bit_cast<uint32_t>(out[i]),
                    std::bit_cast<uint32_t>(static_cast<float>(expected)))
              << "pattern " << i;
        }
      }
      for (size_t i = 0; i < tail.size(); ++i) {
        const double expected = decode(static_cast<uint16_t>((65536 - 10 + i) & 0xffff));
        if (!std::isnan(expected)) {
          ASSERT_EQ(std::bit_cast<uint32_t>(tail[i]),
                    std::bit_cast<uint32_t>(static_cast<float>(expected)))
              << "tail element " << i;
        }
      }
    }
  });
}

TEST(ConvertRowToF32Test, AllBF16PatternsExact) {
  expect_all_patterns_exact(DType::BF16, bf16_to_double);
}

TEST(ConvertRowToF32Test, AllF16PatternsExact) {
  expect_all_patterns_exact(DType::F16, f16_to_double);
}

TEST(ConvertRowToF32Test, F32IsCopiedBitForBit) {
  std::mt19937 rng(5);
  std::vector<uint32_t> bits(1001);
  for (auto& b : bits) b = rng();
  bits[0] = 0x7f800001u;  // a signalling NaN
  bits[1] = 0x80000000u;  // -0
  for_each_target([&](const std::string&) {
    std::vector<uint32_t> out(bits.size() - 2);
    convert_row_to_f32(bits.data(), DType::F32, 2, out.size(),
                       reinterpret_cast<float*>(out.data()));
    EXPECT_TRUE(std::equal(out.begin(), out.end(), bits.begin() + 2));
    uint32_t first_two[2];
    convert_row_to_f32(bits.data(), DType::F32, 0, 2, reinterpret_cast<float*>(first_two));
    EXPECT_EQ(first_two[0], bits[0]);
    EXPECT_EQ(first_two[1], bits[1]);
  });
}

// Q8_0 rows (embedding lookups) convert exactly: the same float32 as io/q8_0.h's dequantizer
// and as its float64 one, bit for bit, from any block of a row, at any byte alignment.
TEST(ConvertRowToF32Test, Q8_0Exact) {
  const size_t blocks = 41;
  std::vector<uint8_t> q8 = random_q8_0_blocks(blocks, 500);
  // The extremes: a subnormal scale, the largest scale with q = -128 and 127, signed zero.
  const uint16_t scales[] = {0x0001, 0x7bff, 0x8000, 0xfbff};
  for (size_t i = 0; i < 4; ++i) {
    q8[i * kQ8_0BlockBytes] = static_cast<uint8_t>(scales[i] & 0xff);
    q8[i * kQ8_0BlockBytes + 1] = static_cast<uint8_t>(scales[i] >> 8);
    q8[i * kQ8_0BlockBytes + 2] = 0x80;  // -128
    q8[i * kQ8_0BlockBytes + 3] = 0x7f;  // 127
  }
  std::vector<float> expected(blocks * kQ8_0BlockValues);
  std::vector<double> exact(expected.size());
  dequantize_q8_0(q8.data(), expected.size(), expected.data());
  dequantize_q8_0(q8.data(), exact.size(), exact.data());
  std::vector<uint8_t> odd(q8.size() + 3);
  std::memcpy(odd.data() + 3, q8.data(), q8.size());
  for_each_target([&](const std::string&) {
    for (const uint8_t* base :
         {static_cast<const uint8_t*>(q8.data()), static_cast<const uint8_t*>(odd.data() + 3)}) {
      for (size_t first_block : {size_t{0}, size_t{3}}) {
        const size_t first = first_block * kQ8_0BlockValues;
        const size_t count = expected.size() - first;
        std::vector<float> out(count + 1, -1.0f);
        convert_row_to_f32(base, DType::Q8_0, first, count, out.data());
        EXPECT_EQ(out.back(), -1.0f) << "wrote past the end";
        for (size_t i = 0; i < count; ++i) {
          ASSERT_EQ(std::bit_cast<uint32_t>(out[i]), std::bit_cast<uint32_t>(expected[first + i]))
              << "element " << first + i;
          ASSERT_EQ(double{out[i]}, exact[first + i]) << "element " << first + i;
        }
      }
    }
  });
}

}  // namespace
}  // namespace expo
