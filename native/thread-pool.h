// A small persistent pool for intra-op parallelism (config `model.threads`): `threads − 1` worker
// std::threads plus the calling thread. One pool per addon instance (per Node environment), so each
// worker_thread that loads the addon has its own; the addon's destructor (environment cleanup) stops
// and joins the workers. No Node-API here. Work is split so that every output element is computed by
// the same code in the same order as with one thread: results are bit-identical for any thread count.
//
// Hand-off: the caller publishes a job (a generation counter, under a mutex), and then it and the
// workers claim tasks one at a time under the mutex until none is left; the caller returns when every
// claimed task has finished. A worker that wakes late (a busy machine) finds nothing left and goes
// back to waiting, so the caller never waits for a worker that has not started: at worst the call runs
// at one-thread speed. Idle workers spin about 50 µs (back-to-back layer calls find them awake), then
// park on a condition variable, so an idle pool costs no CPU.
#pragma once
#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace bitmar {

// A condition variable on pthread_cond_t. Why not std::condition_variable: since GCC 11 its wait()
// is the symbol GLIBCXX_3.4.30, newer than the libstdc++ of JetPack 5 (Ubuntu 20.04), and the prebuilt
// addon (tools/build-prebuilds.mjs) must load there. std::mutex is a pthread mutex underneath.
class pthread_condvar {
 public:
  pthread_condvar() { pthread_cond_init(&cond_, nullptr); }
  ~pthread_condvar() { pthread_cond_destroy(&cond_); }
  pthread_condvar(const pthread_condvar&) = delete;
  pthread_condvar& operator=(const pthread_condvar&) = delete;
  template <typename Pred>
  void wait(std::unique_lock<std::mutex>& lk, Pred ready) {
    while (!ready()) pthread_cond_wait(&cond_, lk.mutex()->native_handle());
  }
  void notify_one() { pthread_cond_signal(&cond_); }
  void notify_all() { pthread_cond_broadcast(&cond_); }

 private:
  pthread_cond_t cond_;
};

constexpr int kPoolMaxThreads = 64;  // the config's limit (src/config/schema.ts model.threads)

class thread_pool {
 public:
  // threads: total, the caller included (1 = no workers, run() calls inline), clamped to [1, 64].
  explicit thread_pool(int threads);
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  // Runs fn(ctx, i) for every i in [0, tasks), tasks taken in order by whichever thread is free;
  // returns when all have finished. Not reentrant: call from one thread at a time (the JS thread).
  void run(int tasks, void (*fn)(void*, int), void* ctx);
  template <typename F>
  void for_each(int tasks, F f) {
    run(tasks, [](void* c, int i) { (*static_cast<F*>(c))(i); }, &f);
  }

 private:
  void worker_main();
  // Claims and runs tasks of job `gen` until none is left (or another job has started).
  void drain(uint64_t gen);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  pthread_condvar wake_cv_;  // workers park here
  pthread_condvar done_cv_;  // the caller parks here
  std::atomic<uint64_t> gen_{0};     // job generation, bumped under mu_
  std::atomic<bool> stop_{false};
  int next_ = 0;                     // next task index to claim (under mu_)
  std::atomic<int> finished_{0};     // tasks finished (written under mu_)
  int tasks_ = 0;
  void (*fn_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
};

// Inline when pool is null or single-threaded.
template <typename F>
inline void pool_for_each(thread_pool* pool, int tasks, F f) {
  if (pool && pool->threads() > 1 && tasks > 1) {
    pool->for_each(tasks, f);
  } else {
    for (int i = 0; i < tasks; i++) f(i);
  }
}

}  // namespace bitmar
