#pragma once
// One generation in flight inside `expo serve`, between the thread that decodes it (the
// backend's engine thread) and the HTTP handler that answers the client: the engine pushes
// text as it becomes final and ends the stream once; the handler waits, takes what arrived
// and may cancel (its client went away), which the engine sees before its next step.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace expo {

// The server cannot take the request now (its queue is full): answered 503 with Retry-After.
struct ServerBusy : Error {
  using Error::Error;
};

// The log-probability of one generated token and of the most probable alternatives, with
// their text (the token decoded on its own).
struct StreamedLogprob {
  std::string token;
  double logprob = 0;
  std::vector<std::pair<std::string, double>> top;
};

// What arrived since the last take().
struct StreamUpdate {
  std::string text;
  std::vector<StreamedLogprob> logprobs;
  bool finished = false;      // the last update: finish_reason or error is set
  std::string finish_reason;  // "stop" or "length"
  std::string error;          // non-empty: the generation failed with this message
  uint64_t prompt_tokens = 0, completion_tokens = 0;  // with finished
};

class GenerationStream {
 public:
  // Producer side.
  void push(std::string_view text, std::vector<StreamedLogprob> logprobs = {});
  void finish(std::string reason, uint64_t prompt_tokens, uint64_t completion_tokens);
  void fail(std::string message);
  bool cancelled() const;

  // Consumer side. wait() returns true as soon as there is something to take (text,
  // logprobs or the end), false after `timeout` without news.
  bool wait(std::chrono::milliseconds timeout);
  StreamUpdate take();
  void cancel();

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  StreamUpdate pending_;
  bool ended_ = false;      // finish() or fail() was called
  bool delivered_ = false;  // take() returned the end
  bool cancelled_ = false;
};

}  // namespace expo
