// Core pieces: direct-I/O output files, the serial background worker, the thread pool, sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "core/serial_worker.h"
#include "core/thread_pool.h"
#include "core/units.h"
#include "test_util.h"

namespace expo {
namespace {

TEST(OutputFile, DirectModeWritesExactBytesAndLength) {
  testing::TempDir dir;
  std::mt19937 rng(5);
  for (size_t total : {size_t{0}, size_t{1}, size_t{4095}, size_t{4097}, size_t{9} << 20,
                       (size_t{16} << 20) + 123}) {
    std::vector<uint8_t> expected(total);
    for (auto& b : expected) b = static_cast<uint8_t>(rng());
    const auto path = dir / ("f" + std::to_string(total));
    OutputFile out(path, /*direct=*/true);
    size_t at = 0;
    while (at < total) {  // uneven pieces, as tensors come
      const size_t n = std::min<size_t>(total - at, 1 + rng() % 3'000'000);
      out.write(expected.data() + at, n);
      at += n;
    }
    out.close();
    EXPECT_EQ(fs::file_size(path), total);
    const std::string got = read_text_file(path);
    ASSERT_EQ(got.size(), total);
    EXPECT_TRUE(
        std::equal(expected.begin(), expected.end(), reinterpret_cast<const uint8_t*>(got.data())))
        << total;
  }
}

TEST(OutputFile, RefusesToOverwrite) {
  testing::TempDir dir;
  write_text_file(dir / "x", "keep");
  EXPECT_NE(testing::error_of([&] { OutputFile f(dir / "x"); }).find("cannot create"),
            std::string::npos);
  EXPECT_EQ(read_text_file(dir / "x"), "keep");
}

TEST(SerialWorker, RunsInOrderAndReportsErrors) {
  SerialWorker worker;
  std::vector<int> seen;
  uint64_t last = 0;
  for (int i = 0; i < 100; ++i) last = worker.submit([&seen, i] { seen.push_back(i); });
  worker.wait(last);
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], i);
  const uint64_t bad = worker.submit([] { fail("disk on fire"); });
  EXPECT_NE(testing::error_of([&] { worker.wait(bad); }).find("disk on fire"), std::string::npos);
  worker.abandon();
  std::atomic<int> after{0};
  worker.wait(worker.submit([&] { after = 1; }));
  EXPECT_EQ(after, 1);
}

TEST(ThreadPool, RunsEveryTaskOnceAndRethrows) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(1000);
  pool.parallel_for(hits.size(), [&](size_t i) { hits[i]++; });
  for (auto& h : hits) EXPECT_EQ(h, 1);
  EXPECT_NE(testing::error_of([&] {
              pool.parallel_for(10, [](size_t i) {
                if (i == 7) fail("task 7 failed");
              });
            }).find("task 7"),
            std::string::npos);
}

TEST(Units, Sizes) {
  EXPECT_EQ(parse_size("5GB", "x"), 5'000'000'000u);
  EXPECT_EQ(parse_size("500MB", "x"), 500'000'000u);
  EXPECT_EQ(parse_size("2GiB", "x"), 2ull << 30);
  EXPECT_EQ(parse_size("1.5 kB", "x"), 1500u);
  EXPECT_EQ(parse_size("1024", "x"), 1024u);
  EXPECT_NE(
      testing::error_of([] { parse_size("5XB", "--max-shard-size"); }).find("--max-shard-size"),
      std::string::npos);
  EXPECT_NE(testing::error_of([] { parse_size("-1", "x"); }).find("not a size"), std::string::npos);
  EXPECT_EQ(format_double(0.3), "0.3");
  EXPECT_EQ(format_double(25), "25");
}

}  // namespace
}  // namespace expo
