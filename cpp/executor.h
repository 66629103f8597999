// SPDX-License-Identifier: Apache-2.0
// One native thread per model that runs its jobs in order, so that inference never blocks the JS thread nor takes
// a thread of libuv's pool (which sharp, fs and dns need).
//
// A job is made on the JS thread (arguments copied), run on the executor thread (torch work only, no
// N-API), then handed back through a thread-safe function and settled on the JS thread, where its Promise resolves
// or rejects. Lifetimes:
// * While jobs are pending the thread-safe function is ref'd, so Node waits for them; an idle model does not keep
//   the process alive.
// * A final job (dispose) is the last one: the thread ends after it and is joined when it settles.
// * At environment clean-up (process exit, a worker_thread ending) Shutdown() runs from a clean-up hook: the running
//   job finishes, queued jobs are dropped without settling (no JS can run any more) and the thread is joined.
#ifndef SAN_EXECUTOR_H_
#define SAN_EXECUTOR_H_

#include <napi.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "common.h"
#include "tensor_convert.h"

namespace san {

// One call on the model: `work` runs on the executor thread (torch only, no N-API; a throw becomes the job's error),
// then `finish` builds the value to resolve with on the JS thread. Both are deleted with the job, on the JS thread.
class Job {
 public:
  using Work = std::function<void()>;
  using Finish = std::function<Napi::Value(Napi::Env)>;

  // `pins` keeps the JS values the job uses alive until it is deleted. A `final` job is the executor's last.
  Job(Napi::Env env, Work work, Finish finish, Pins pins, bool final)
      : deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        finish_(std::move(finish)),
        pins_(std::move(pins)),
        final_(final) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }
  bool Final() const { return final_; }
  // Executor thread.
  void Run();
  // JS thread: resolves with finish's value or rejects with the error.
  void Settle(Napi::Env env);

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Finish finish_;
  Pins pins_;
  bool final_;
  std::optional<NativeError> error_;
};

class Executor;
// JS thread: settles a job the executor thread posted (a free function: the thread-safe function's type needs it
// before Executor is complete).
void DeliverJob(Napi::Env env, Napi::Function unused, Executor* self, Job* job);

class Executor {
 public:
  // Starts the thread; `threads` is its LibTorch intra-op thread count, `queueLimit` the most jobs pending at once.
  Executor(Napi::Env env, int threads, std::size_t queueLimit);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // JS thread. Queues the job; false when `queueLimit` jobs are already pending (a final job is always taken).
  bool Submit(std::unique_ptr<Job> job);
  // JS thread. Jobs submitted and not yet settled.
  std::size_t Pending() const { return pending_; }

 private:
  friend void DeliverJob(Napi::Env env, Napi::Function unused, Executor* self, Job* job);
  using Tsfn = Napi::TypedThreadSafeFunction<Executor, Job, DeliverJob>;
  static void OnEnvCleanup(void* self);
  void Loop(int threads);
  void Shutdown();
  void ReleaseTsfn();

  Napi::Env env_;
  std::size_t queueLimit_;
  std::size_t pending_ = 0;  // JS thread only
  bool released_ = false;    // JS thread only: the thread-safe function was released
  Tsfn tsfn_;

  std::mutex mutex_;  // guards the three fields below
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> queue_;
  std::vector<std::unique_ptr<Job>> orphans_;  // run but never delivered, freed on the JS thread by Shutdown()
  bool stopping_ = false;

  std::thread thread_;
};

}  // namespace san

#endif  // SAN_EXECUTOR_H_
