// SPDX-License-Identifier: Apache-2.0
// Stages the next call's inputs while the executor runs the current one: two batches in flight.
//
// The executor runs one model's calls in order on one thread, so without staging a call's upload (host -> GPU) and
// dtype cast happen only after the previous call has finished, in series with the GPU's work. The stager is a
// second thread per model that takes each run() call's tensor arguments as it is submitted and places them the
// way the executor would (ValueToIValue's placement: onto the model's device, floating ones cast to its dtype unless
// the call keeps them as given):
// * on a GPU, on a stream of its own, so the copy overlaps the kernels the executor queued on the default stream;
//   it waits for that stream before handing the tensors over, and records the default stream on them so that the
//   allocator does not reuse their memory while the executor's kernels may still read it. The copy is a plain one
//   from the JS memory: staging through page-locked memory measured slower on an H100 (docs/benchmarks.md).
// * on the CPU there is nothing to upload: only a float16/bfloat16 model's casts move to this thread.
// The executor's job then takes the placed arguments (StagedArgs::Take), and its own placement finds nothing left
// to do. At most kAhead calls are staged and not yet taken, so staged inputs hold a bounded amount of memory.
#ifndef SAN_STAGER_H_
#define SAN_STAGER_H_

#include <memory>
#include <thread>
#include <vector>

#include "value_convert.h"

namespace san {

// One call's arguments on their way through the stager, held by the call's job. A job deleted without running (a
// full queue, a shutdown) releases the call's place.
class StagedArgs {
 public:
  struct Shared;
  struct Ticket;
  StagedArgs(std::shared_ptr<Shared> shared, std::shared_ptr<Ticket> ticket);
  ~StagedArgs();
  StagedArgs(const StagedArgs&) = delete;
  StagedArgs& operator=(const StagedArgs&) = delete;

  // Executor thread: waits until the arguments are placed and returns them, or rethrows what placing them threw.
  std::vector<Value> Take();

 private:
  std::shared_ptr<Shared> shared_;
  std::shared_ptr<Ticket> ticket_;
};

class Stager {
 public:
  // Calls staged and not yet taken by the executor: the next batch, while the current one runs.
  static constexpr int kAhead = 1;

  // Starts the thread; `threads` is its LibTorch intra-op thread count, as the executor's.
  explicit Stager(int threads);
  ~Stager();
  Stager(const Stager&) = delete;
  Stager& operator=(const Stager&) = delete;

  // JS thread, once the model is loaded: where inputs go. Until then arguments pass through unplaced.
  void SetPlacement(const Placement& placement);
  // JS thread. Queues a call's arguments; the executor takes them back, placed, from what this returns. Without
  // `cast` floating tensors keep their dtype (RunRequest::castInputs).
  std::shared_ptr<StagedArgs> Stage(std::vector<Value> args, bool cast);

 private:
  void Loop(int threads);

  std::shared_ptr<StagedArgs::Shared> shared_;
  std::thread thread_;
};

}  // namespace san

#endif  // SAN_STAGER_H_
