// SPDX-License-Identifier: Apache-2.0
// A caching CPU allocator that the addon installs in place of LibTorch's, process-wide.
//
// LibTorch's default CPU allocator hands every tensor to malloc, and glibc maps each large block afresh and unmaps it
// on free. A SAN forward on a 640×640 image allocates about 2 GB of such short-lived blocks, so every call pays
// hundreds of thousands of minor page faults (zeroing the pages included), the largest single cost on a small VM.
// This allocator keeps freed large blocks, bucketed by size, and hands them back to the next request of that size,
// so a steady stream of same-shaped calls touches memory that is already mapped. The cache is bounded (least
// recently freed blocks go first), so RSS stays flat when shapes change.
#ifndef SAN_ALLOCATOR_H_
#define SAN_ALLOCATOR_H_

#include <cstdint>

namespace san {

struct CpuCacheStats {
  int64_t cachedBytes = 0;   // free blocks held for reuse
  int64_t limitBytes = 0;    // the most cachedBytes may reach
  int64_t inUseBytes = 0;    // large blocks held by live tensors
  int64_t hits = 0;          // large allocations served from the cache
  int64_t misses = 0;        // large allocations that mapped new memory
};

// Makes the caching allocator LibTorch's CPU allocator. Idempotent and safe from several addon instances
// (worker_threads); call it before any executor thread starts. The cache limit starts at SAN_CPU_CACHE_BYTES when
// that is set, else at DefaultCpuCacheLimit().
void InstallCpuAllocator();

// A quarter of physical memory, at most 4 GiB. A ViT-B/16 at 640×640 reuses about 0.75 GB of blocks a call at
// batch 1, so the default holds batch 4.
int64_t DefaultCpuCacheLimit();

// Sets the cache's limit, freeing the least recently used blocks above it (0 turns caching off).
void SetCpuCacheLimit(int64_t bytes);

CpuCacheStats GetCpuCacheStats();

}  // namespace san

#endif  // SAN_ALLOCATOR_H_
