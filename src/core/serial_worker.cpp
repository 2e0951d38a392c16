#include "core/serial_worker.h"

#include <system_error>

#include "core/error.h"

namespace expo {

SerialWorker::SerialWorker() {
  try {
    thread_ = std::thread([this] { loop(); });
  } catch (const std::system_error& e) {
    fail("cannot start the background writer thread: ", e.what(),
         " (the system's limit on threads or memory was reached)");
  }
}

SerialWorker::~SerialWorker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    jobs_.clear();
  }
  changed_.notify_all();
  thread_.join();
}

void SerialWorker::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    running_job_ = true;
    lock.unlock();
    std::exception_ptr error;
    if (!error_) {  // after a failure, later jobs are skipped
      try {
        job();
      } catch (...) {
        error = std::current_exception();
      }
    }
    lock.lock();
    if (error && !error_) error_ = error;
    running_job_ = false;
    ++finished_;
    changed_.notify_all();
  }
}

void SerialWorker::rethrow_locked() {
  if (error_) {
    auto error = error_;
    error_ = nullptr;
    std::rethrow_exception(error);
  }
}

uint64_t SerialWorker::submit(std::function<void()> job) {
  std::lock_guard lock(mutex_);
  rethrow_locked();
  jobs_.push_back(std::move(job));
  changed_.notify_all();
  return ++submitted_;
}

void SerialWorker::wait(uint64_t ticket) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return finished_ >= ticket || error_; });
  rethrow_locked();
}

void SerialWorker::abandon() {
  std::unique_lock lock(mutex_);
  finished_ += jobs_.size();
  jobs_.clear();
  changed_.wait(lock, [&] { return !running_job_; });
  error_ = nullptr;
}

}  // namespace expo
