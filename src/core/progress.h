#pragma once
// Progress of long work on stderr: items, bytes, GB/s and ETA on one line that rewrites itself.
// Silent unless stderr is a terminal (or it is forced on), so logs and pipes stay clean.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace expo {

class Progress {
 public:
  Progress(std::string label, uint64_t total_items, uint64_t total_bytes, bool enabled);
  ~Progress();
  static bool stderr_is_terminal();

  void add(uint64_t items, uint64_t bytes);
  void finish();

 private:
  void draw(bool final_line);

  std::string label_;
  uint64_t total_items_, total_bytes_;
  uint64_t items_ = 0, bytes_ = 0;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::mutex mutex_;
};

}  // namespace expo
