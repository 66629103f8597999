// SPDX-License-Identifier: Apache-2.0
#include "stager.h"

#include <c10/core/InferenceMode.h>
#include <c10/core/Stream.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <utility>

#include "common.h"
#include "device.h"

namespace san {

struct StagedArgs::Ticket {
  enum class State { kQueued, kPlacing, kStaged, kTaken, kDropped };
  State state = State::kQueued;  // the fields are guarded by Shared::mutex
  std::vector<Value> args;       // as submitted, then as placed
  bool cast = true;              // floating tensors cast to the placement's dtype
  std::exception_ptr error;
};

struct StagedArgs::Shared {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::shared_ptr<Ticket>> queue;  // tickets still kQueued, oldest first
  int ahead = 0;                              // tickets kStaged
  bool stopping = false;
  Placement placement;
};

using State = StagedArgs::Ticket::State;

namespace {

void PlaceValue(Value* value, const Placement& placement, std::vector<at::Tensor>* placed) {
  if (value->kind == Value::Kind::kTensor) {
    value->tensor = PlaceTensor(value->tensor, placement);
    placed->push_back(value->tensor);
  }
  for (auto& item : value->items) PlaceValue(&item, placement, placed);
}

// Places every tensor of `args`. Off the CPU the copies and casts run on `side`, a stream of this thread's own, and
// are complete when this returns.
void PlaceArgs(std::vector<Value>* args, const Placement& placement, std::optional<c10::Stream>* side) {
  std::vector<at::Tensor> placed;
  if (placement.device.is_cpu()) {
    for (auto& arg : *args) PlaceValue(&arg, placement, &placed);
    return;
  }
  const c10::impl::VirtualGuardImpl device(placement.device.type());
  if (!side->has_value() || (*side)->device() != placement.device) {
    *side = device.getStreamFromGlobalPool(placement.device);
  }
  {
    const c10::StreamGuard onSide(**side);
    for (auto& arg : *args) PlaceValue(&arg, placement, &placed);
  }
  // The executor reads them on the device's default stream: their memory is not reused before its work is done.
  const c10::Stream consumer = device.getDefaultStream(placement.device);
  for (auto& tensor : placed) {
    if (tensor.device() == placement.device) tensor.record_stream(consumer);
  }
  (*side)->synchronize();
}

}  // namespace

StagedArgs::StagedArgs(std::shared_ptr<Shared> shared, std::shared_ptr<Ticket> ticket)
    : shared_(std::move(shared)), ticket_(std::move(ticket)) {}

StagedArgs::~StagedArgs() {
  std::vector<Value> released;  // freed outside the lock
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    switch (ticket_->state) {
      case State::kQueued: {
        auto& queue = shared_->queue;
        queue.erase(std::find(queue.begin(), queue.end(), ticket_));
        break;
      }
      case State::kStaged: --shared_->ahead; break;
      case State::kPlacing:  // the stager drops what it placed
      case State::kTaken:
      case State::kDropped: break;
    }
    ticket_->state = State::kDropped;
    released.swap(ticket_->args);
  }
  shared_->changed.notify_all();
}

std::vector<Value> StagedArgs::Take() {
  std::vector<Value> args;
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(shared_->mutex);
    shared_->changed.wait(lock, [this] { return ticket_->state == State::kStaged || shared_->stopping; });
    if (ticket_->state != State::kStaged) {
      throw SanException(ErrorCode::kDisposed, "The model was shut down before this call's inputs were placed");
    }
    ticket_->state = State::kTaken;
    --shared_->ahead;
    args.swap(ticket_->args);
    error = ticket_->error;
  }
  shared_->changed.notify_all();
  if (error) std::rethrow_exception(error);
  return args;
}

Stager::Stager(int threads) : shared_(std::make_shared<StagedArgs::Shared>()) {
  thread_ = std::thread(&Stager::Loop, this, threads);
}

Stager::~Stager() {
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->stopping = true;
  }
  shared_->changed.notify_all();
  thread_.join();
}

void Stager::SetPlacement(const Placement& placement) {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  shared_->placement = placement;
}

std::shared_ptr<StagedArgs> Stager::Stage(std::vector<Value> args, bool cast) {
  auto ticket = std::make_shared<StagedArgs::Ticket>();
  ticket->args = std::move(args);
  ticket->cast = cast;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->queue.push_back(ticket);
  }
  shared_->changed.notify_all();
  return std::make_shared<StagedArgs>(shared_, std::move(ticket));
}

void Stager::Loop(int threads) {
  SetThreads(threads);
  c10::InferenceMode inference;
  std::optional<c10::Stream> side;
  auto& shared = *shared_;
  while (true) {
    std::shared_ptr<StagedArgs::Ticket> ticket;
    std::vector<Value> args;
    Placement placement;
    {
      std::unique_lock<std::mutex> lock(shared.mutex);
      shared.changed.wait(lock, [&] {
        return shared.stopping || (!shared.queue.empty() && shared.ahead < kAhead);
      });
      if (shared.stopping) return;
      ticket = std::move(shared.queue.front());
      shared.queue.pop_front();
      ticket->state = State::kPlacing;
      args.swap(ticket->args);
      placement = shared.placement;
      if (!ticket->cast) placement.castFloating.reset();
    }
    std::exception_ptr error;
    try {
      PlaceArgs(&args, placement, &side);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(shared.mutex);
      if (ticket->state == State::kPlacing) {
        ticket->state = State::kStaged;
        ticket->args.swap(args);
        ticket->error = error;
        ++shared.ahead;
      }
    }
    shared.changed.notify_all();
  }
}

}  // namespace san
