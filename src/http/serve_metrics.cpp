#include "http/serve_metrics.h"

#include "core/units.h"

namespace expo {

namespace {

std::string number(double v) { return format_double(v); }

// A label value with Prometheus' escapes (backslash, quote, newline).
std::string label_value(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

void ServeMetrics::count_request(const std::string& route, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
}

void ServeMetrics::add_prompt_tokens(uint64_t n) {
  std::lock_guard lock(mutex_);
  prompt_tokens_ += n;
}

void ServeMetrics::add_generated_tokens(uint64_t n) {
  std::lock_guard lock(mutex_);
  generated_tokens_ += n;
}

void ServeMetrics::set_running(uint64_t n) {
  std::lock_guard lock(mutex_);
  running_ = n;
}

void ServeMetrics::set_waiting(uint64_t n) {
  std::lock_guard lock(mutex_);
  waiting_ = n;
}

void ServeMetrics::observe(Histogram& h, const std::array<double, 14>& bounds, double value) {
  size_t i = 0;
  while (i < bounds.size() && value > bounds[i]) ++i;
  ++h.counts[i];
  h.sum += value;
  ++h.count;
}

void ServeMetrics::observe_time_to_first_token(double seconds) {
  std::lock_guard lock(mutex_);
  observe(ttft_, kTtftBounds, seconds);
}

void ServeMetrics::observe_time_per_output_token(double seconds) {
  std::lock_guard lock(mutex_);
  observe(tpot_, kTpotBounds, seconds);
}

void ServeMetrics::write_histogram(std::string& out, const char* name, const char* help,
                                   const Histogram& h, const std::array<double, 14>& bounds,
                                   const std::string& labels) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += h.counts[i];
    const std::string le = i < bounds.size() ? number(bounds[i]) : "+Inf";
    out += std::string(name) + "_bucket{" + labels + ",le=\"" + le + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  out += std::string(name) + "_sum{" + labels + "} " + number(h.sum) + "\n";
  out += std::string(name) + "_count{" + labels + "} " + std::to_string(h.count) + "\n";
}

std::string ServeMetrics::text(const std::string& model) const {
  std::lock_guard lock(mutex_);
  const std::string labels = "model_name=\"" + label_value(model) + "\"";
  std::string out;
  out +=
      "# HELP expo_requests_total HTTP requests answered, by route and status.\n"
      "# TYPE expo_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += "expo_requests_total{route=\"" + label_value(key.first) + "\",status=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
  auto scalar = [&](const char* name, const char* type, const char* help, uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           name + "{" + labels + "} " + std::to_string(v) + "\n";
  };
  scalar("expo_prompt_tokens_total", "counter", "Prompt tokens prefilled.", prompt_tokens_);
  scalar("expo_generation_tokens_total", "counter", "Tokens generated.", generated_tokens_);
  scalar("expo_num_requests_running", "gauge", "Sequences in the running batch.", running_);
  scalar("expo_num_requests_waiting", "gauge", "Requests queued for a batch slot.", waiting_);
  write_histogram(out, "expo_time_to_first_token_seconds",
                  "Seconds from a request's arrival at the engine to its first generated token.",
                  ttft_, kTtftBounds, labels);
  write_histogram(out, "expo_time_per_output_token_seconds",
                  "Seconds between consecutive generated tokens of a request.", tpot_, kTpotBounds,
                  labels);
  return out;
}

}  // namespace expo
