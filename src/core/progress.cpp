#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace expo {

StatusLine::StatusLine(bool enabled) : enabled_(enabled) {}

StatusLine::~StatusLine() { end(); }

void StatusLine::end() {
  if (drawn_) std::fputc('\n', stderr);
  drawn_ = false;
}

bool StatusLine::stderr_is_terminal() { return isatty(STDERR_FILENO) == 1; }

bool StatusLine::due(bool force) {
  if (!enabled_) return false;
  const auto now = std::chrono::steady_clock::now();
  if (!force && drawn_ && now - last_draw_ < std::chrono::milliseconds(250)) return false;
  last_draw_ = now;
  return true;
}

void StatusLine::draw(const std::string& text) {
  if (!enabled_) return;
  std::fprintf(stderr, "\r\033[K%s", text.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void StatusLine::print_line(const std::string& line) {
  clear();
  std::fprintf(stderr, "%s\n", line.c_str());
}

void StatusLine::clear() {
  if (drawn_) std::fputs("\r\033[K", stderr);
  drawn_ = false;
}

Progress::Progress(std::string label, uint64_t total_items, uint64_t total_bytes, bool enabled,
                   std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_items_(total_items),
      total_bytes_(total_bytes),
      start_(std::chrono::steady_clock::now()),
      line_(enabled) {}

void Progress::add(uint64_t items, uint64_t bytes) {
  std::lock_guard lock(mutex_);
  items_ += items;
  bytes_ += bytes;
  if (line_.due()) draw(false);
}

void Progress::finish() {
  std::lock_guard lock(mutex_);
  if (!line_.enabled() || finished_) return;
  draw(true);
  line_.end();
  finished_ = true;
}

void Progress::draw(bool final_line) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double gb = bytes_ / 1e9;
  const double rate = seconds > 0 ? gb / seconds : 0;
  char text[256];
  if (total_bytes_ > 0) {
    const double left = rate > 0 ? (total_bytes_ / 1e9 - gb) / rate : 0;
    std::snprintf(text, sizeof text, "%s: %llu/%llu %s, %.2f/%.2f GB, %.2f GB/s, ETA %.0fs",
                  label_.c_str(), static_cast<unsigned long long>(items_),
                  static_cast<unsigned long long>(total_items_), unit_.c_str(), gb,
                  total_bytes_ / 1e9, rate, final_line ? 0.0 : left);
  } else {
    const double per_second = seconds > 0 ? items_ / seconds : 0;
    const double left = per_second > 0 ? (total_items_ - items_) / per_second : 0;
    std::snprintf(text, sizeof text, "%s: %llu/%llu %s, %.1f/s, ETA %.0fs", label_.c_str(),
                  static_cast<unsigned long long>(items_),
                  static_cast<unsigned long long>(total_items_), unit_.c_str(), per_second,
                  final_line ? 0.0 : left);
  }
  line_.draw(text);
}

}  // namespace expo
