#pragma once
// Progress of long work on stderr: one status line that rewrites itself (at most four times a
// second), with whole lines printed above it. Silent unless stderr is a terminal or progress is
// forced on, so logs and pipes stay clean. StatusLine is the one printer; Progress is the
// items/bytes/GB/s/ETA line of the passes over tensors (extrapolate, diff).
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace expo {

class StatusLine {
 public:
  explicit StatusLine(bool enabled);
  ~StatusLine();  // ends a drawn line with a newline, so its last state stays readable
  StatusLine(const StatusLine&) = delete;
  StatusLine& operator=(const StatusLine&) = delete;

  static bool stderr_is_terminal();
  bool enabled() const { return enabled_; }

  // Whether a redraw is due: enabled and 250 ms since the last one (always when `force`).
  bool due(bool force = false);
  // Replaces the line with `text`.
  void draw(const std::string& text);
  // Prints `line` and a newline above the status line (also when disabled).
  void print_line(const std::string& line);
  // Erases the status line.
  void clear();
  // Keeps the status line as drawn and moves below it.
  void end();

 private:
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_;
};

class Progress {
 public:
  // "LABEL: 3/10 UNIT, 1.20/4.00 GB, 0.80 GB/s, ETA 4s" (the bytes only when total_bytes > 0).
  Progress(std::string label, uint64_t total_items, uint64_t total_bytes, bool enabled,
           std::string unit = "tensors");

  void add(uint64_t items, uint64_t bytes);
  void finish();

 private:
  void draw(bool final_line);

  std::string label_, unit_;
  uint64_t total_items_, total_bytes_;
  uint64_t items_ = 0, bytes_ = 0;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  StatusLine line_;
  std::mutex mutex_;
};

}  // namespace expo
