// SPDX-License-Identifier: Apache-2.0
#include "executor.h"

#include <utility>

#include "device.h"

namespace san {

void Job::Run() {
  try {
    work_();
  } catch (...) {
    error_ = CaptureCurrentException();
  }
}

void Job::Settle(Napi::Env env) {
  Napi::HandleScope scope(env);
  if (!error_) {
    try {
      deferred_.Resolve(finish_(env));
      return;
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
      return;
    } catch (...) {
      error_ = CaptureCurrentException();
    }
  }
  deferred_.Reject(MakeJsError(env, *error_).Value());
}

Executor::Executor(Napi::Env env, int threads, std::size_t queueLimit)
    : env_(env), queueLimit_(queueLimit), tsfn_(Tsfn::New(env, "san-node executor", 0, 1, this)) {
  tsfn_.Unref(env);
  // Added after the thread-safe function's own hook, so it runs first: the thread is joined while it can still post.
  NAPI_THROW_IF_FAILED_VOID(env, napi_add_env_cleanup_hook(env, OnEnvCleanup, this));
  thread_ = std::thread(&Executor::Loop, this, threads);
}

Executor::~Executor() {
  Shutdown();
  napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
}

bool Executor::Submit(std::unique_ptr<Job> job) {
  if (pending_ >= queueLimit_ && !job->Final()) return false;
  if (pending_++ == 0) tsfn_.Ref(env_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

void Executor::Loop(int threads) {
  SetThreads(threads);
  while (true) {
    std::unique_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job->Run();
    const bool final = job->Final();
    {
      // Posting under the lock means Shutdown() either sees the job delivered or finds it in orphans_.
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ || tsfn_.NonBlockingCall(job.get()) != napi_ok) {
        orphans_.push_back(std::move(job));
        return;
      }
      job.release();
    }
    if (final) return;
  }
}

void DeliverJob(Napi::Env env, Napi::Function /*unused*/, Executor* self, Job* raw) {
  std::unique_ptr<Job> job(raw);
  // No env: the thread-safe function is being torn down with the environment; nothing can settle any more, and
  // `self` may be gone. Deleting the job frees its tensors; its N-API references go with the environment.
  if (env == nullptr) return;
  // While a worker_thread is being terminated, N-API calls fail (no JS can run) and node-addon-api throws: nothing
  // can be settled then, and no exception may unwind into Node.
  try {
    job->Settle(env);
  } catch (...) {
  }
  // Counted whatever settling did: a job left pending would keep the thread-safe function ref'd, and Node alive.
  if (--self->pending_ == 0) {
    try {
      self->tsfn_.Unref(env);
    } catch (...) {
    }
  }
  if (job->Final()) {
    self->thread_.join();  // it returned right after posting this job
    self->ReleaseTsfn();
  }
}

void Executor::OnEnvCleanup(void* self) { static_cast<Executor*>(self)->Shutdown(); }

void Executor::Shutdown() {
  std::deque<std::unique_ptr<Job>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();  // waits for the running job, if any
  dropped.clear();
  orphans_.clear();
  ReleaseTsfn();
}

void Executor::ReleaseTsfn() {
  if (released_) return;
  released_ = true;
  tsfn_.Release();
}

}  // namespace san
