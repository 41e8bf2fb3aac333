#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace qans {
namespace {

unsigned default_thread_count() {
  const unsigned hardware = std::thread::hardware_concurrency();
  return std::max(1u, std::min(hardware == 0 ? 1u : hardware, kDefaultMaxThreads));
}

std::atomic<unsigned> g_thread_count{default_thread_count()};

// One parallel_for call. Shared by the caller and every queue entry that refers to it, so that a
// pool thread that picks up an entry after the work is done still finds valid (finished) state.
struct Batch {
  Batch(size_t n, const std::function<void(size_t)>* fn) : count(n), item(fn) {}

  const size_t count;
  // Only called for an index below `count`, all of which are taken before the caller returns.
  const std::function<void(size_t)>* const item;
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::mutex mutex;
  std::condition_variable finished;

  void run() {
    for (;;) {
      const size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= count) return;
      (*item)(i);
      if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == count) {
        std::lock_guard<std::mutex> lock(mutex);
        finished.notify_all();
      }
    }
  }

  void wait() {
    std::unique_lock<std::mutex> lock(mutex);
    finished.wait(lock, [this] { return done.load(std::memory_order_acquire) == count; });
  }
};

class ThreadPool {
 public:
  // Queues `helpers` entries for `batch`, starting threads as needed; returns how many were queued.
  size_t submit(const std::shared_ptr<Batch>& batch, size_t helpers) {
    std::lock_guard<std::mutex> lock(mutex_);
    while (threads_ < helpers) {
      try {
        std::thread(&ThreadPool::work, this).detach();
      } catch (const std::system_error&) {
        break;  // No more threads: the ones there are (and the caller) do the work.
      }
      threads_++;
    }
    helpers = std::min(helpers, threads_);
    for (size_t h = 0; h < helpers; h++) queue_.push_back(batch);
    if (helpers == 1) {
      wake_.notify_one();
    } else if (helpers > 1) {
      wake_.notify_all();
    }
    return helpers;
  }

  // Drops the entries of a finished batch that no thread has picked up yet.
  void withdraw(const std::shared_ptr<Batch>& batch) {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.erase(std::remove(queue_.begin(), queue_.end(), batch), queue_.end());
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Batch>> queue_;
  size_t threads_ = 0;

  void work() {
    for (;;) {
      std::shared_ptr<Batch> batch;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return !queue_.empty(); });
        batch = std::move(queue_.front());
        queue_.pop_front();
      }
      batch->run();
    }
  }
};

// Never destroyed: its threads wait for work until the process exits, and no exit-time destructor
// has to stop or join them.
ThreadPool& pool() {
  static ThreadPool* instance = new ThreadPool();
  return *instance;
}

}  // namespace

unsigned thread_count() {
  return g_thread_count.load(std::memory_order_relaxed);
}

unsigned set_thread_count(unsigned count) {
  count = std::max(1u, std::min(count, kMaxThreads));
  g_thread_count.store(count, std::memory_order_relaxed);
  return count;
}

bool apply_thread_environment() {
  const char* value = std::getenv("QANS_THREADS");
  if (value == nullptr || *value == '\0') return true;
  char* end = nullptr;
  const unsigned long count = std::strtoul(value, &end, 10);
  if (*end != '\0' || value[0] < '0' || value[0] > '9' || count < 1 || count > kMaxThreads) return false;
  set_thread_count(static_cast<unsigned>(count));
  return true;
}

void parallel_for(size_t count, const std::function<void(size_t)>& item) {
  if (count == 0) return;
  const size_t helpers = std::min<size_t>(thread_count() - 1, count - 1);
  if (helpers == 0) {
    for (size_t i = 0; i < count; i++) item(i);
    return;
  }
  auto batch = std::make_shared<Batch>(count, &item);
  pool().submit(batch, helpers);
  batch->run();
  batch->wait();
  pool().withdraw(batch);
}

}  // namespace qans
