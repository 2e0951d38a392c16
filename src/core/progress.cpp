#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace expo {

Progress::Progress(std::string label, uint64_t total_items, uint64_t total_bytes, bool enabled)
    : label_(std::move(label)),
      total_items_(total_items),
      total_bytes_(total_bytes),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (enabled_ && !finished_) std::fputc('\n', stderr);
}

bool Progress::stderr_is_terminal() { return isatty(STDERR_FILENO) == 1; }

void Progress::add(uint64_t items, uint64_t bytes) {
  std::lock_guard lock(mutex_);
  items_ += items;
  bytes_ += bytes;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  draw(false);
}

void Progress::finish() {
  std::lock_guard lock(mutex_);
  if (!enabled_ || finished_) return;
  draw(true);
  finished_ = true;
}

void Progress::draw(bool final_line) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double gb = bytes_ / 1e9;
  const double rate = seconds > 0 ? gb / seconds : 0;
  const double left = rate > 0 ? (total_bytes_ / 1e9 - gb) / rate : 0;
  std::fprintf(stderr, "\r%s: %llu/%llu tensors, %.2f/%.2f GB, %.2f GB/s, ETA %.0fs   %s",
               label_.c_str(), static_cast<unsigned long long>(items_),
               static_cast<unsigned long long>(total_items_), gb, total_bytes_ / 1e9, rate,
               final_line ? 0.0 : left, final_line ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace expo
