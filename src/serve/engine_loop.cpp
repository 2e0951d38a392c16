#include "serve/engine_loop.h"

#include "core/error.h"
#include "model/scorer.h"

namespace expo {

using Clock = std::chrono::steady_clock;

struct EngineLoop::Running {
  GenerationJob job;
  std::unique_ptr<AnswerText> text;       // with stop strings or incremental release
  std::vector<StreamedLogprob> logprobs;  // not yet pushed
  Clock::time_point submitted, last_token;
  uint64_t id = 0;
};

EngineLoop::EngineLoop(Transformer& model, const PromptEncoder& encoder, ThreadPool& pool,
                       const EngineLoopOptions& options)
    : model_(model), encoder_(encoder), pool_(pool), options_(options) {
  batch_ = std::make_unique<ContinuousBatch>(model_, options_.limits);
  thread_ = std::thread([this] { run(); });
}

EngineLoop::~EngineLoop() { stop(); }

void EngineLoop::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<GenerationStream> EngineLoop::submit(GenerationJob job) {
  auto running = std::make_unique<Running>();
  running->job = std::move(job);
  running->submitted = Clock::now();
  std::shared_ptr<GenerationStream> out = running->job.out;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw ServerBusy("the server is shutting down");
    if (queue_.size() >= options_.max_queue)
      throw ServerBusy(str("the server is busy: ", options_.limits.max_batch,
                           " sequences are running and ", queue_.size(),
                           " requests wait (--max-queue); retry later"));
    queue_.push_back(std::move(running));
  }
  wake_.notify_all();
  return out;
}

std::vector<double> EngineLoop::score(std::vector<std::vector<int32_t>> sequences) {
  auto job = std::make_unique<ScoreJob>();
  job->sequences = std::move(sequences);
  std::future<std::vector<double>> result = job->result.get_future();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw ServerBusy("the server is shutting down");
    score_queue_.push_back(std::move(job));
  }
  wake_.notify_all();
  return result.get();
}

void EngineLoop::run_scores(std::vector<std::unique_ptr<ScoreJob>>& jobs) {
  std::vector<std::vector<int32_t>> all;
  for (auto& j : jobs)
    for (auto& s : j->sequences) all.push_back(std::move(s));
  try {
    const auto rows = score_sequences(model_, all, pool_);
    size_t k = 0;
    for (auto& j : jobs) {
      std::vector<double> scores;
      for (size_t i = 0; i < j->sequences.size(); ++i) scores.push_back(rows.at(k++).at(0));
      j->result.set_value(std::move(scores));
    }
  } catch (...) {
    for (auto& j : jobs) j->result.set_exception(std::current_exception());
  }
}

void EngineLoop::admit(std::unique_ptr<Running> r) {
  SequenceSpec spec = r->job.spec;  // the job keeps its copy; the batch gets one with hooks
  if (!r->job.stop.empty() || r->job.incremental) {
    r->text = std::make_unique<AnswerText>(r->job.stop);
    AnswerText* text = r->text.get();
    const PromptEncoder* encoder = &encoder_;
    spec.stop_when = [text, encoder](std::span<const int32_t> generated) {
      return text->update(encoder->decode_answer(generated));
    };
  }
  if (metrics_) metrics_->add_prompt_tokens(spec.prompt.size());
  r->id = batch_->add(std::move(spec));
  running_[r->id] = std::move(r);
}

StreamedLogprob EngineLoop::logprob_text(const TokenLogprobs& l) const {
  auto piece = [&](int32_t id) {
    if (id < 0 || static_cast<size_t>(id) >= encoder_.tokenizer().vocab_size())
      return std::string();
    return encoder_.tokenizer().decode(std::span<const int32_t>(&id, 1), false);
  };
  StreamedLogprob out;
  out.token = piece(l.token);
  out.logprob = l.logprob;
  for (const auto& [id, lp] : l.top) out.top.emplace_back(piece(id), lp);
  return out;
}

void EngineLoop::handle(StepEvent& e) {
  auto it = running_.find(e.id);
  if (it == running_.end()) return;
  Running& r = *it->second;
  const auto now = Clock::now();
  if (e.token >= 0) {
    if (metrics_) {
      metrics_->add_generated_tokens(1);
      if (e.first_token)
        metrics_->observe_time_to_first_token(
            std::chrono::duration<double>(now - r.submitted).count());
      else
        metrics_->observe_time_per_output_token(
            std::chrono::duration<double>(now - r.last_token).count());
    }
    r.last_token = now;
    if (r.job.spec.logprobs >= 0) r.logprobs.push_back(logprob_text(e.logprobs));
  }
  if (e.finish_reason.empty()) {
    std::string delta = r.text && r.job.incremental ? r.text->take_released() : std::string();
    if (!delta.empty() || (r.job.incremental && !r.logprobs.empty())) {
      r.job.out->push(delta, std::move(r.logprobs));
      r.logprobs.clear();
    }
    return;
  }
  if (e.finish_reason != "cancelled") {
    std::string rest;
    if (r.text) {
      if (!r.text->stopped()) r.text->update(encoder_.decode_answer(e.tokens));
      rest = r.text->finish();
    } else {
      rest = encoder_.decode_answer(e.tokens);
    }
    r.job.out->push(rest, std::move(r.logprobs));
    r.job.out->finish(e.finish_reason, r.job.spec.prompt.size(), e.tokens.size());
  } else {
    r.job.out->fail("cancelled: the client went away");
  }
  running_.erase(it);
}

void EngineLoop::fail_running(const std::string& message) {
  for (auto& [id, r] : running_) r->job.out->fail(message);
  running_.clear();
  batch_ = std::make_unique<ContinuousBatch>(model_, options_.limits);
}

void EngineLoop::run() {
  std::vector<StepEvent> events;
  for (;;) {
    std::vector<std::unique_ptr<ScoreJob>> scores;
    std::vector<std::unique_ptr<Running>> admitted;
    size_t waiting = 0;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] {
        return stopping_ || !score_queue_.empty() || !running_.empty() || !queue_.empty();
      });
      if (stopping_) break;
      scores.swap(score_queue_);
      size_t free =
          options_.limits.max_batch - std::min<size_t>(running_.size(), options_.limits.max_batch);
      while (free > 0 && !queue_.empty()) {
        std::unique_ptr<Running> r = std::move(queue_.front());
        queue_.pop_front();
        if (r->job.out->cancelled()) {
          r->job.out->fail("cancelled: the client went away");
          continue;
        }
        admitted.push_back(std::move(r));
        --free;
      }
      waiting = queue_.size();
    }
    // Held until the end of this iteration, so that set_metrics() never swaps the counters
    // while this thread writes to them.
    std::lock_guard metrics_lock(metrics_mutex_);
    if (metrics_) metrics_->set_waiting(waiting);
    if (!scores.empty()) run_scores(scores);
    try {
      for (auto& r : admitted) admit(std::move(r));
      for (auto& [id, r] : running_)
        if (r->job.out->cancelled()) batch_->cancel(id);
      if (metrics_) metrics_->set_running(running_.size());
      if (running_.empty()) continue;
      batch_->step(pool_, events);
      for (StepEvent& e : events) handle(e);
    } catch (const std::exception& e) {
      // A failure inside a step (a non-finite logit, memory) ends every sequence of the batch.
      fail_running(e.what());
    }
    if (metrics_) metrics_->set_running(running_.size());
  }
  // Shutting down: nobody will decode what is left.
  std::lock_guard lock(mutex_);
  for (auto& r : queue_) r->job.out->fail("the server is shutting down");
  queue_.clear();
  for (auto& j : score_queue_)
    j->result.set_exception(std::make_exception_ptr(ServerBusy("the server is shutting down")));
  score_queue_.clear();
  for (auto& [id, r] : running_) r->job.out->fail("the server is shutting down");
  running_.clear();
}

}  // namespace expo
