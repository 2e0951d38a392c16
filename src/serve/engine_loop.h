#pragma once
// The engine thread of `expo serve`: every request in flight shares one continuous batch
// (model/continuous_batch.h). Requests wait in a bounded queue until a batch slot is free,
// join between steps, and leave when they finish or their client goes away (cancelled before
// the next step). Each step's new tokens are decoded and pushed to the request's
// GenerationStream as soon as they are final (serve/answer_text.h). Reward-model requests
// queued meanwhile are scored together, in shared forward passes.
//
// A sequence's tokens depend only on its prompt, options and seed (the batch is
// batch-invariant and each sequence's random stream is prompt_stream(prompt)), so an answer
// is the same whatever else is in flight, and the same as `expo generate` gives.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "http/generation_stream.h"
#include "http/serve_metrics.h"
#include "model/continuous_batch.h"
#include "model/transformer.h"
#include "serve/answer_text.h"
#include "text/prompt_encoder.h"

namespace expo {

struct EngineLoopOptions {
  BatchLimits limits;      // max_batch: sequences in flight
  size_t max_queue = 256;  // requests waiting for a slot; beyond it submit() throws ServerBusy
};

// One generation request, ready for the batch.
struct GenerationJob {
  SequenceSpec spec;              // prompt, sampling, length, stop ids, logprobs
  std::vector<std::string> stop;  // stop strings
  bool incremental = false;       // release text after every token (streaming)
  std::shared_ptr<GenerationStream> out = std::make_shared<GenerationStream>();
};

class EngineLoop {
 public:
  EngineLoop(Transformer& model, const PromptEncoder& encoder, ThreadPool& pool,
             const EngineLoopOptions& options);
  ~EngineLoop();  // stop()
  EngineLoop(const EngineLoop&) = delete;
  EngineLoop& operator=(const EngineLoop&) = delete;

  // Queues a generation; its stream receives the text. ServerBusy when the queue is full.
  std::shared_ptr<GenerationStream> submit(GenerationJob job);
  // Scores checked sequences (one reward per sequence), packed with other requests' sequences
  // waiting at the same time; blocks until done. expo::Error on failure.
  std::vector<double> score(std::vector<std::vector<int32_t>> sequences);
  // Ends the thread: queued and running generations end with an error.
  void stop();
  // Where tokens, queue lengths and latencies are reported (nullptr: nowhere); waits for the
  // engine thread's current step, so the previous counters may be destroyed on return.
  void set_metrics(ServeMetrics* metrics) {
    std::lock_guard lock(metrics_mutex_);
    metrics_ = metrics;
  }

 private:
  struct Running;
  struct ScoreJob {
    std::vector<std::vector<int32_t>> sequences;
    std::promise<std::vector<double>> result;
  };
  void run();
  void admit(std::unique_ptr<Running> job);
  void run_scores(std::vector<std::unique_ptr<ScoreJob>>& jobs);
  void handle(StepEvent& event);
  void fail_running(const std::string& message);
  StreamedLogprob logprob_text(const TokenLogprobs& l) const;

  Transformer& model_;
  const PromptEncoder& encoder_;
  ThreadPool& pool_;
  EngineLoopOptions options_;
  std::mutex metrics_mutex_;
  ServeMetrics* metrics_ = nullptr;  // guarded by metrics_mutex_

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Running>> queue_;
  std::vector<std::unique_ptr<ScoreJob>> score_queue_;
  bool stopping_ = false;

  // The engine thread's own.
  std::unique_ptr<ContinuousBatch> batch_;
  std::map<uint64_t, std::unique_ptr<Running>> running_;
  std::thread thread_;
};

}  // namespace expo
