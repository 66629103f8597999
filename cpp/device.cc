// SPDX-License-Identifier: Apache-2.0
#include "device.h"

#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <sched.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "common.h"

// Defined by binding.gyp when scripts/libtorch.js found the CUDA runtime's headers, which this one includes.
#ifdef SAN_CUDA_ALLOCATOR_STATS
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace san {

namespace {

// LibTorch registers its CUDA hooks when libtorch_cuda is loaded; without them it behaves as a CPU-only build.
bool CudaLoaded() { return at::detail::getCUDAHooks().hasCUDART(); }

const char* kCudaHelp = "see docs/install.md#cuda";

}  // namespace

bool CudaBuilt() {
#ifdef SAN_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int CudaDeviceCount() { return CudaLoaded() ? static_cast<int>(torch::cuda::device_count()) : 0; }

std::string CudaRuntimeVersion() {
  if (!CudaLoaded()) return "";
  const long version = at::detail::getCUDAHooks().versionCUDART();  // e.g. 11080
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

DeviceMemory CudaMemory(int index) {
  DeviceMemory memory;
  if (!CudaBuilt() || !CudaLoaded()) {
    memory.reason = "no CUDA in this LibTorch";
    return memory;
  }
  if (index < 0 || index >= CudaDeviceCount()) {
    memory.reason = "no CUDA device " + std::to_string(index) + " is visible";
    return memory;
  }
#ifdef SAN_CUDA_ALLOCATOR_STATS
  // Index 0 of each statistic is StatType::AGGREGATE (all pools), whose namespace moved between LibTorch versions.
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(index));
  memory.available = true;
  memory.allocatedBytes = stats.allocated_bytes[0].current;
  memory.reservedBytes = stats.reserved_bytes[0].current;
  memory.peakAllocatedBytes = stats.allocated_bytes[0].peak;
#else
  memory.reason = "this build of the addon found no CUDA runtime headers (cuda_runtime_api.h) to read LibTorch's "
                  "CUDA allocator with; " + std::string(kCudaHelp);
#endif
  return memory;
}

c10::Device ResolveDevice(const std::string& request) {
  if (request == "cpu") return c10::kCPU;
  if (request == "auto") return CudaDeviceCount() > 0 ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);

  const std::string asked = "Device '" + request + "' was requested, but ";
  if (!CudaLoaded()) {
    throw SanException(ErrorCode::kDevice,
                       CudaBuilt()
                           ? asked + "LibTorch's CUDA library did not load (libtorch_cuda.so or a CUDA runtime "
                                     "library is missing from the library path); " + kCudaHelp
                           : asked + "the addon is built against a CPU-only LibTorch " TORCH_VERSION
                                     "; rebuild it against a CUDA LibTorch (LIBTORCH_DIR=/path/to/libtorch npm "
                                     "rebuild san-node), " + kCudaHelp);
  }
  const int count = CudaDeviceCount();
  if (count == 0) {
    throw SanException(ErrorCode::kDevice, asked + "no CUDA device is visible (check the driver with nvidia-smi, and "
                                                   "CUDA_VISIBLE_DEVICES); " + kCudaHelp);
  }
  const c10::Device device(request);  // "cuda" or "cuda:N", checked by lib/is.ts
  const int index = device.has_index() ? device.index() : 0;
  if (index >= count) {
    throw SanException(ErrorCode::kDevice, asked + "only " + std::to_string(count) + " CUDA device(s) are visible "
                                                   "(cuda:0 to cuda:" + std::to_string(count - 1) + ")");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::string CpuBf16Missing() {
  const std::string missing = "the AVX512-BF16 or AMX-BF16 instruction set, which this CPU lacks "
                              "(neither avx512_bf16 nor amx_bf16 among its flags)";
  // For tests: the refusal path on a CPU that has the instructions.
  const char* hide = std::getenv("SAN_TEST_HIDE_CPU_BF16");
  if (hide != nullptr && std::string(hide) == "1") return missing;
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  // CPUID leaf 7: sub-leaf 0 EDX bit 22 is AMX-BF16, sub-leaf 1 EAX bit 5 is AVX512-BF16.
  const bool amx = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (edx >> 22 & 1u);
  const bool avx512 = __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax >> 5 & 1u);
  return amx || avx512 ? "" : missing;
#else
  return "the AVX512-BF16 or AMX-BF16 instruction set of an x86-64 CPU";
#endif
}

c10::ScalarType ResolveDtype(const std::string& name, const std::string& deviceRequest, const c10::Device& device) {
  const c10::ScalarType dtype = name == "float16"    ? c10::ScalarType::Half
                                : name == "bfloat16" ? c10::ScalarType::BFloat16
                                                     : c10::ScalarType::Float;
  if (dtype == c10::ScalarType::BFloat16 && !device.is_cuda()) {
    const std::string missing = CpuBf16Missing();
    if (!missing.empty()) {
      throw SanException(ErrorCode::kDtype, "dtype bfloat16 on the CPU needs " + missing + "; device '" +
                                                deviceRequest + "' is the CPU here, so use float32");
    }
  } else if (dtype != c10::ScalarType::Float && !device.is_cuda()) {
    throw SanException(ErrorCode::kDtype, "dtype " + name + " needs a CUDA device, but device '" + deviceRequest +
                                              "' is the CPU here; use float32 on the CPU");
  }
  return dtype;
}

const char* DtypeName(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::ScalarType::Half: return "float16";
    case c10::ScalarType::BFloat16: return "bfloat16";
    default: return "float32";
  }
}

namespace {

thread_local int wantedThreads = 1;
thread_local int currentThreads = 0;  // what at::set_num_threads was last given on this thread

// The cores not taken by a running job, shared by every model of the process (worker_threads included).
struct CoreBudgetState {
  std::mutex mutex;
  std::condition_variable freed;
  int free = CoreBudget();
};

CoreBudgetState& Budget() {
  static auto* state = new CoreBudgetState();  // never destroyed: executor threads may outlive static destructors
  return *state;
}

}  // namespace

int CoreBudget() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

void SetThreads(int threads) {
  // LibTorch initialises a thread's OpenMP count lazily, at its first parallel kernel, to the count last set by ANY
  // thread; done here instead, it cannot later overwrite what this thread's leases set (another model's count
  // would otherwise stick to this executor past the shared budget).
  at::internal::lazy_init_num_threads();
  wantedThreads = std::max(1, threads);
}

ThreadLease::ThreadLease(bool cpu) {
  int threads = wantedThreads;
  if (cpu) {
    CoreBudgetState& budget = Budget();
    std::unique_lock<std::mutex> lock(budget.mutex);
    budget.freed.wait(lock, [&budget] { return budget.free > 0; });
    granted_ = std::min(wantedThreads, budget.free);
    budget.free -= granted_;
    threads = granted_;
  }
  if (threads != currentThreads) {
    at::set_num_threads(threads);
    currentThreads = threads;
  }
}

ThreadLease::~ThreadLease() {
  if (granted_ == 0) return;
  CoreBudgetState& budget = Budget();
  {
    std::lock_guard<std::mutex> lock(budget.mutex);
    budget.free += granted_;
  }
  budget.freed.notify_all();
}

}  // namespace san
