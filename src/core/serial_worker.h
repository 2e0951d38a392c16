#pragma once
// One background thread that runs jobs in the order they were given: the disk writer of the
// streaming pass, so that writing chunk N overlaps computing chunk N + 1. Jobs are numbered;
// wait(ticket) returns when that job and all before it are done. A job's exception is
// rethrown to the caller at the next submit() or wait().
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace expo {

class SerialWorker {
 public:
  SerialWorker();
  // Drops jobs not yet started and joins the thread (after the running job ends).
  ~SerialWorker();
  SerialWorker(const SerialWorker&) = delete;
  SerialWorker& operator=(const SerialWorker&) = delete;

  uint64_t submit(std::function<void()> job);
  void wait(uint64_t ticket);
  void wait_all() { wait(submitted_); }
  // Drops jobs not yet started and waits for the running one; used when unwinding after an
  // error, before the buffers and files the jobs point at go away.
  void abandon();

 private:
  void loop();
  void rethrow_locked();

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> jobs_;
  uint64_t submitted_ = 0;
  uint64_t finished_ = 0;
  bool running_job_ = false;
  bool stopping_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace expo
