// Core pieces: direct-I/O output files, the serial background worker, the thread pool, sizes,
// the status line, child processes and the strict JSON reader.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <random>

#include "core/error.h"
#include "core/fingerprint.h"
#include "core/folder_lock.h"
#include "core/fs.h"
#include "core/json_reader.h"
#include "core/process.h"
#include "core/progress.h"
#include "core/serial_worker.h"
#include "core/thread_pool.h"
#include "core/units.h"
#include "test_util.h"

namespace expo {
namespace {

TEST(Fingerprint, ListsEachDifferenceWithOldAndNewValues) {
  Fingerprint before, after;
  before.add("--max-new-tokens", "64");
  before.add("--seed", "42");
  before.add("--top-p", "0.9");
  after.add("--max-new-tokens", "32");
  after.add("--seed", "42");
  after.add("--min-p", "0.1");
  EXPECT_EQ(after.differences_from(before),
            (std::vector<std::string>{"--max-new-tokens: was 64, now 32",
                                      "--min-p: was (not recorded), now 0.1",
                                      "--top-p: was 0.9, now (not recorded)"}));
  EXPECT_TRUE(before.differences_from(before).empty());
  try {
    check_same_settings(before, after, "--resume: the search in D", "how");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\n  --max-new-tokens: was 64, now 32\n"),
              std::string::npos)
        << e.what();
  }
}

TEST(Fingerprint, RoundTripsThroughItsFile) {
  testing::TempDir dir;
  Fingerprint f;
  f.add("--sft", "/x/sft, content 0123456789abcdef (2 files, 1 MB)");
  f.add("--temperature", "0.7");
  write_fingerprint(dir / "fingerprint.json", f);
  const auto back = read_fingerprint(dir / "fingerprint.json");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->settings(), f.settings());
  EXPECT_FALSE(read_fingerprint(dir / "absent.json"));
  write_text_file(dir / "bad.json", "{\"settings\": 3}");
  EXPECT_THROW(read_fingerprint(dir / "bad.json"), Error);
}

TEST(ContentHash, FieldsDoNotRunTogether) {
  EXPECT_NE(ContentHash().add_field("ab").add_field("c").hex(),
            ContentHash().add_field("a").add_field("bc").hex());
  EXPECT_EQ(ContentHash().add("abc").hex(), ContentHash().add("abc").hex());
  EXPECT_EQ(ContentHash().hex().size(), 16u);
}

TEST(FolderLock, ASecondHolderIsRefusedUntilTheFirstLetsGo) {
  testing::TempDir dir;
  {
    FolderLock first(dir / ".lock", "--output-dir D", "expo search");
    try {
      FolderLock second(dir / ".lock", "--output-dir D", "expo search");
      FAIL() << "locked twice";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--output-dir D is in use: another expo search (PID " +
                                           std::to_string(::getpid()) + ")"),
                std::string::npos)
          << e.what();
    }
  }
  FolderLock again(dir / ".lock", "--output-dir D", "expo search");
}

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

TEST(StatusLine, DisabledPrintsOnlyWholeLines) {
  ::testing::internal::CaptureStderr();
  {
    StatusLine line(false);
    EXPECT_FALSE(line.due(/*force=*/true));
    line.draw("hidden");
    line.print_line("shown");
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "shown\n");
}

TEST(StatusLine, RedrawsInPlaceAndPrintsLinesAboveIt) {
  ::testing::internal::CaptureStderr();
  {
    StatusLine line(true);
    EXPECT_TRUE(line.due());
    line.draw("1/2");
    EXPECT_FALSE(line.due());  // within 250 ms of the last draw
    EXPECT_TRUE(line.due(/*force=*/true));
    line.print_line("alpha 0 done");
    line.draw("2/2");
  }  // the last state stays, ended by a newline
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "\r\033[K1/2\r\033[Kalpha 0 done\n\r\033[K2/2\n");
}

TEST(Progress, CountsItemsWithoutBytes) {
  ::testing::internal::CaptureStderr();
  {
    Progress progress("score", 4, 0, true, "answers");
    progress.add(4, 0);
    progress.finish();
  }
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_CONTAINS(out, "score: 4/4 answers");
  EXPECT_EQ(out.find("GB"), std::string::npos);
  EXPECT_EQ(out.back(), '\n');
}

TEST(ChildProcess, ExitStatusOutputAndStop) {
  testing::TempDir dir;
  EXPECT_EQ(run_quietly({"/bin/sh", "-c", "exit 3"}), 3);
  EXPECT_EQ(run_quietly({"/bin/sh", "-c", "echo hidden"}), 0);
  EXPECT_EQ(run_quietly({(dir / "no-such-program").string()}), 127);
  {
    ChildProcess child({"/bin/sh", "-c", "echo out; echo err >&2"}, {dir / "log", false});
    EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(child.exit_description(), "exit status 0");
  }
  EXPECT_EQ(read_text_file(dir / "log"), "out\nerr\n");
  // A shell and its child in their own group: stop() ends both.
  ChildProcess group({"/bin/sh", "-c", "sleep 30 & sleep 30; wait"}, {dir / "log2", true});
  EXPECT_TRUE(group.running());
  group.stop(/*grace_s=*/5);
  EXPECT_FALSE(group.running());
  EXPECT_EQ(group.exit_description(), "killed by signal 15");
  EXPECT_TRUE(find_on_path("sh").has_value());
  EXPECT_FALSE(find_on_path("expo-no-such-program").has_value());
}

TEST(JsonReader, NamesFileAndPath) {
  const JsonReader reader("config.json");
  const Json j = Json::parse(R"({"n": 0, "x": "a", "f": 1.5, "b": null})");
  EXPECT_ERROR(reader.get_int(j, "", "n", 1, INT64_MAX),
               "config.json: n: must be at least 1, found 0");
  EXPECT_ERROR(reader.get_int(j, "model", "n", 1, 9),
               "config.json: model.n: value 0 is outside [1, 9]");
  EXPECT_ERROR(reader.get_number(j, "", "x"), "config.json: x: expected a number, found \"a\"");
  EXPECT_EQ(reader.get_number(j, "", "f"), 1.5);
  EXPECT_EQ(reader.get_number(j, "", "b", 2.0), 2.0);  // null with a fallback: the fallback
  EXPECT_ERROR(reader.get_number(j, "", "missing"), "config.json: missing: missing");
}

}  // namespace
}  // namespace expo
