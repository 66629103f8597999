// SPDX-License-Identifier: Apache-2.0
// Devices, dtypes and threads: what the user asked for, checked against what this LibTorch can do.
#ifndef SAN_DEVICE_H_
#define SAN_DEVICE_H_

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace san {

// "cpu", "cuda", "cuda:N" or "auto" (the first CUDA device when LibTorch sees one, else the CPU). Executor thread:
// the first CUDA query initialises the driver, which takes a while. Throws SanException ERR_SAN_DEVICE with the
// reason (a CPU-only LibTorch, no visible GPU, no such index).
c10::Device ResolveDevice(const std::string& request);

// "float32", "float16" or "bfloat16": float16 only on CUDA, bfloat16 on CUDA or on a CPU with AVX512-BF16 or
// AMX-BF16 (ERR_SAN_DTYPE otherwise, naming what is missing).
c10::ScalarType ResolveDtype(const std::string& name, const std::string& deviceRequest, const c10::Device& device);

const char* DtypeName(c10::ScalarType dtype);

// Empty when this CPU runs bfloat16 matrix products natively (AVX512-BF16 or AMX-BF16, read with CPUID), else
// what is missing. SAN_TEST_HIDE_CPU_BF16=1 makes it report them missing, for tests of the refusal.
std::string CpuBf16Missing();

// The intra-op threads the calling (executor) thread wants for its jobs; each job then takes them from the
// process's budget through a ThreadLease.
void SetThreads(int threads);

// The machine's cores available to this process (its CPU affinity): the process-wide intra-op thread budget.
int CoreBudget();

// For one CPU job on an executor thread: takes up to the threads given to SetThreads from the process-wide budget of
// CoreBudget() threads (waiting while another model holds all of them) and sets LibTorch's intra-op threads to what
// it got, so models running at once share the cores instead of oversubscribing them. Gives them back when destroyed.
class ThreadLease {
 public:
  explicit ThreadLease(bool cpu);
  ~ThreadLease();
  ThreadLease(const ThreadLease&) = delete;
  ThreadLease& operator=(const ThreadLease&) = delete;

 private:
  int granted_ = 0;
};

// Whether the addon was linked against a CUDA LibTorch (decided at build time by scripts/libtorch.js).
bool CudaBuilt();

// CUDA devices LibTorch can use now: 0 on a CPU-only LibTorch or when no GPU is visible.
int CudaDeviceCount();

// The CUDA runtime LibTorch was built with ("11.8"), or "" when its CUDA library is not loaded.
std::string CudaRuntimeVersion();

// One GPU's memory as LibTorch's caching allocator sees it, in bytes: what tensors hold now (allocated), what the
// allocator holds from the driver, tensors or cached for reuse (reserved), and the most allocated since start.
// `reason` instead says why it cannot be read: a CPU-only LibTorch, no such GPU, or a build without CUDA headers.
struct DeviceMemory {
  bool available = false;
  std::string reason;
  int64_t allocatedBytes = 0;
  int64_t reservedBytes = 0;
  int64_t peakAllocatedBytes = 0;
};
DeviceMemory CudaMemory(int index);

}  // namespace san

#endif  // SAN_DEVICE_H_
