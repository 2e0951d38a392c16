#pragma once
// The counters behind `expo serve`'s GET /metrics, in Prometheus' text exposition format
// (version 0.0.4): requests by route and status, prompt and generated tokens, sequences
// running and waiting, and histograms of the time to first token and of the time per output
// token. The HTTP server counts requests; the backend's engine thread reports tokens and
// latencies. Thread-safe.
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace expo {

class ServeMetrics {
 public:
  void count_request(const std::string& route, int status);
  void add_prompt_tokens(uint64_t n);
  void add_generated_tokens(uint64_t n);
  void set_running(uint64_t n);
  void set_waiting(uint64_t n);
  void observe_time_to_first_token(double seconds);
  void observe_time_per_output_token(double seconds);
  // The exposition text; `model` labels the engine's series.
  std::string text(const std::string& model) const;

 private:
  // Bucket bounds in seconds (vLLM's, trimmed); +Inf is implied.
  static constexpr std::array<double, 14> kTtftBounds = {
      0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0};
  static constexpr std::array<double, 14> kTpotBounds = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5};
  struct Histogram {
    std::array<uint64_t, 15> counts{};  // per bucket, the last one +Inf (not cumulative)
    double sum = 0;
    uint64_t count = 0;
  };
  static void observe(Histogram& h, const std::array<double, 14>& bounds, double value);
  static void write_histogram(std::string& out, const char* name, const char* help,
                              const Histogram& h, const std::array<double, 14>& bounds,
                              const std::string& labels);

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0, running_ = 0, waiting_ = 0;
  Histogram ttft_, tpot_;
};

}  // namespace expo
