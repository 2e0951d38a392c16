#pragma once
// A small explicit thread pool. It is created once by the caller and passed where work is
// split; nothing in expo starts threads behind the caller's back.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace expo {

class ThreadPool {
 public:
  // threads == 0 means one per hardware thread. The calling thread also works, so a pool of
  // n threads starts n - 1 workers. Throws expo::Error when the system refuses a thread.
  explicit ThreadPool(size_t threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size() + 1; }

  // Runs task(i) for i in [0, count), spread over the pool, and returns when all are done.
  // The first exception thrown by a task is rethrown here (the other tasks still finish).
  void parallel_for(size_t count, const std::function<void(size_t)>& task);

 private:
  void worker_loop();
  void stop_workers();  // ends and joins the workers
  void run_tasks();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(size_t)>* task_ = nullptr;
  size_t count_ = 0;
  std::atomic<size_t> next_{0};
  size_t active_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
};

}  // namespace expo
