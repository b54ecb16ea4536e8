// thread_pool (thread-pool.h): spin-then-park workers, generation-counted jobs.
#include "thread-pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace bitmar {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long an idle thread spins before it parks: long enough to span the serial work between two
// parallel calls of one forward pass, short enough that an idle pool costs no CPU.
constexpr auto kSpin = std::chrono::microseconds(50);

// Spins until pred() or kSpin has passed; returns pred().
template <typename Pred>
bool spin_until(Pred pred) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 1;; i++) {
    if (pred()) return true;
    cpu_relax();
    if ((i & 63) == 0 && std::chrono::steady_clock::now() - t0 > kSpin) return pred();
  }
}

}  // namespace

thread_pool::thread_pool(int threads) {
  const int n = std::max(1, std::min(threads, kPoolMaxThreads));
  workers_.reserve(n - 1);
  for (int i = 1; i < n; i++) workers_.emplace_back([this] { worker_main(); });
}

thread_pool::~thread_pool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true, std::memory_order_release);
  }
  wake_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void thread_pool::drain(uint64_t gen) {
  std::unique_lock<std::mutex> lk(mu_);
  while (gen_.load(std::memory_order_relaxed) == gen && next_ < tasks_) {
    const int i = next_++;
    void (*fn)(void*, int) = fn_;
    void* ctx = ctx_;
    lk.unlock();
    fn(ctx, i);
    lk.lock();
    // The job cannot change before this: the caller waits for every claimed task.
    if (finished_.load(std::memory_order_relaxed) + 1 == tasks_) {
      finished_.store(tasks_, std::memory_order_release);
      done_cv_.notify_one();
    } else {
      finished_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void thread_pool::worker_main() {
  uint64_t seen = 0;
  for (;;) {
    auto ready = [&] { return gen_.load(std::memory_order_acquire) != seen || stop_.load(std::memory_order_acquire); };
    if (!spin_until(ready)) {
      std::unique_lock<std::mutex> lk(mu_);
      wake_cv_.wait(lk, ready);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = gen_.load(std::memory_order_acquire);
    drain(seen);
  }
}

void thread_pool::run(int tasks, void (*fn)(void*, int), void* ctx) {
  if (tasks <= 0) return;
  if (workers_.empty() || tasks == 1) {
    for (int i = 0; i < tasks; i++) fn(ctx, i);
    return;
  }
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lk(mu_);
    tasks_ = tasks;
    fn_ = fn;
    ctx_ = ctx;
    next_ = 0;
    finished_.store(0, std::memory_order_relaxed);
    gen = gen_.load(std::memory_order_relaxed) + 1;
    gen_.store(gen, std::memory_order_release);
  }
  wake_cv_.notify_all();
  drain(gen);
  auto done = [&] { return finished_.load(std::memory_order_acquire) == tasks; };
  if (!spin_until(done)) {
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, done);
  }
}

}  // namespace bitmar
