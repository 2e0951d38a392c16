#include "http/generation_stream.h"

namespace expo {

void GenerationStream::push(std::string_view text, std::vector<StreamedLogprob> logprobs) {
  if (text.empty() && logprobs.empty()) return;
  {
    std::lock_guard lock(mutex_);
    if (ended_) return;
    pending_.text.append(text);
    for (auto& l : logprobs) pending_.logprobs.push_back(std::move(l));
  }
  changed_.notify_all();
}

void GenerationStream::finish(std::string reason, uint64_t prompt_tokens,
                              uint64_t completion_tokens) {
  {
    std::lock_guard lock(mutex_);
    if (ended_) return;
    ended_ = true;
    pending_.finished = true;
    pending_.finish_reason = std::move(reason);
    pending_.prompt_tokens = prompt_tokens;
    pending_.completion_tokens = completion_tokens;
  }
  changed_.notify_all();
}

void GenerationStream::fail(std::string message) {
  {
    std::lock_guard lock(mutex_);
    if (ended_) return;
    ended_ = true;
    pending_.finished = true;
    pending_.error = message.empty() ? std::string("the generation failed") : std::move(message);
  }
  changed_.notify_all();
}

bool GenerationStream::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

bool GenerationStream::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  auto news = [&] {
    return !pending_.text.empty() || !pending_.logprobs.empty() || (ended_ && !delivered_);
  };
  return changed_.wait_for(lock, timeout, news);
}

StreamUpdate GenerationStream::take() {
  std::lock_guard lock(mutex_);
  StreamUpdate out = std::move(pending_);
  pending_ = StreamUpdate{};
  if (out.finished) delivered_ = true;
  return out;
}

void GenerationStream::cancel() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
}

}  // namespace expo
