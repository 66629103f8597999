// SPDX-License-Identifier: Apache-2.0
#include "allocator.h"

#include <c10/core/Allocator.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace san {

namespace {

// Below this, glibc serves blocks from its arenas without new mappings; caching them would only add a lock.
constexpr std::size_t kMinCached = 64 << 10;
// LibTorch's own CPU alignment (c10::gAlignment), which vectorised kernels rely on.
constexpr std::size_t kAlignment = 64;
// Blocks of at least this many bytes are mapped 2 MiB-aligned and marked for transparent huge pages, which cuts the
// page faults of first use by up to 512 times where the kernel allows it (THP "madvise" or "always").
constexpr std::size_t kHugePage = 2 << 20;
constexpr int64_t kDefaultLimitCap = int64_t{4} << 30;

// Sizes are rounded up so that nearby requests share a bucket: to 4 KiB, then to 1/16 of the size's power of two
// (at most 6.25 % more than asked).
std::size_t RoundSize(std::size_t n) {
  std::size_t step = 4096;
  for (std::size_t power = 1; power <= n / 16; power <<= 1) step = std::max(step, power);
  return (n + step - 1) / step * step;
}

void* MapBlock(std::size_t size) {
  if (size < kHugePage) {
    void* ptr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return ptr == MAP_FAILED ? nullptr : ptr;
  }
  // Over-map by one huge page and trim both ends, so the block starts on a huge-page boundary.
  const std::size_t span = size + kHugePage;
  char* raw = static_cast<char*>(mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (raw == MAP_FAILED) return nullptr;
  const auto address = reinterpret_cast<std::uintptr_t>(raw);
  char* aligned = raw + ((kHugePage - address % kHugePage) % kHugePage);
  if (aligned > raw) munmap(raw, aligned - raw);
  const std::size_t tail = (raw + span) - (aligned + size);
  if (tail > 0) munmap(aligned + size, tail);
  madvise(aligned, size, MADV_HUGEPAGE);  // advice only: refused where THP is off
  return aligned;
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  CachingCpuAllocator() {
    const char* env = std::getenv("SAN_CPU_CACHE_BYTES");
    limit_ = DefaultCpuCacheLimit();
    if (env != nullptr && *env != '\0') {
      char* end = nullptr;
      const long long parsed = std::strtoll(env, &end, 10);
      if (end != nullptr && *end == '\0' && parsed >= 0) limit_ = parsed;
    }
  }

  c10::DataPtr allocate(std::size_t n) const override {
    auto* self = const_cast<CachingCpuAllocator*>(this);  // c10::Allocator::allocate is const
    if (n < kMinCached) {
      void* ptr = nullptr;
      // posix_memalign of 0 bytes may return null; ask for one byte so that every tensor has a distinct pointer.
      if (posix_memalign(&ptr, kAlignment, std::max<std::size_t>(n, 1)) != 0) ptr = nullptr;
      TORCH_CHECK(ptr != nullptr, "DefaultCPUAllocator: can't allocate memory: you tried to allocate ", n, " bytes.");
      return {ptr, ptr, &Deallocate, c10::Device(c10::DeviceType::CPU)};
    }
    void* ptr = self->Take(RoundSize(n));
    TORCH_CHECK(ptr != nullptr, "DefaultCPUAllocator: can't allocate memory: you tried to allocate ", n, " bytes.");
    return {ptr, ptr, &Deallocate, c10::Device(c10::DeviceType::CPU)};
  }

  // One deleter for every block, as raw_allocate's users (oneDNN's scratch buffers) require.
  c10::DeleterFnPtr raw_deleter() const override { return &Deallocate; }

  void SetLimit(int64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
    EvictUntil(limit_);
  }

  CpuCacheStats Stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    CpuCacheStats stats;
    stats.cachedBytes = cached_;
    stats.limitBytes = limit_;
    stats.inUseBytes = inUse_;
    stats.hits = hits_;
    stats.misses = misses_;
    return stats;
  }

 private:
  struct Free {
    void* ptr;
    std::size_t size;
    std::multimap<std::size_t, std::list<Free>::iterator>::iterator bySize;
  };

  // The deleter of every block; tensors may die on any thread (V8's garbage collector included).
  static void Deallocate(void* ptr);

  void* Take(std::size_t size) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // The smallest cached block that fits, if it wastes at most one bucket step (1/8 of the size).
      auto found = bySize_.lower_bound(size);
      if (found != bySize_.end() && found->first <= size + size / 8) {
        const auto entry = found->second;
        void* ptr = entry->ptr;
        live_[ptr] = entry->size;
        cached_ -= entry->size;
        inUse_ += entry->size;
        ++hits_;
        bySize_.erase(found);
        lru_.erase(entry);
        return ptr;
      }
      ++misses_;
    }
    void* ptr = MapBlock(size);
    if (ptr == nullptr) {
      // Out of address space or memory: give the cache back to the system and try once more.
      {
        std::lock_guard<std::mutex> lock(mutex_);
        EvictUntil(0);
      }
      ptr = MapBlock(size);
      if (ptr == nullptr) return nullptr;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    live_[ptr] = size;
    inUse_ += size;
    return ptr;
  }

  void Release(void* ptr) {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto found = live_.find(ptr);
    if (found == live_.end()) {  // a small block, from posix_memalign
      lock.unlock();
      std::free(ptr);
      return;
    }
    const std::size_t size = found->second;
    live_.erase(found);
    inUse_ -= size;
    if (static_cast<int64_t>(size) > limit_) {
      lock.unlock();
      munmap(ptr, size);
      return;
    }
    EvictUntil(limit_ - static_cast<int64_t>(size));
    const auto entry = lru_.insert(lru_.end(), Free{ptr, size, {}});
    entry->bySize = bySize_.emplace(size, entry);
    cached_ += size;
  }

  // Frees the least recently released blocks until at most `bytes` are cached. Called with mutex_ held.
  void EvictUntil(int64_t bytes) {
    while (cached_ > std::max<int64_t>(bytes, 0) && !lru_.empty()) {
      Free& oldest = lru_.front();
      munmap(oldest.ptr, oldest.size);
      cached_ -= oldest.size;
      bySize_.erase(oldest.bySize);
      lru_.pop_front();
    }
  }

  std::mutex mutex_;
  std::list<Free> lru_;  // least recently released first
  std::multimap<std::size_t, std::list<Free>::iterator> bySize_;
  std::unordered_map<void*, std::size_t> live_;
  int64_t cached_ = 0;
  int64_t inUse_ = 0;
  int64_t limit_ = 0;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

// Never destroyed: tensors freed during process exit still return their blocks to it.
CachingCpuAllocator& Instance() {
  static auto* instance = new CachingCpuAllocator();
  return *instance;
}

void CachingCpuAllocator::Deallocate(void* ptr) {
  if (ptr != nullptr) Instance().Release(ptr);
}

}  // namespace

int64_t DefaultCpuCacheLimit() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long pageSize = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || pageSize <= 0) return kDefaultLimitCap;
  return std::min<int64_t>(kDefaultLimitCap, static_cast<int64_t>(pages) * pageSize / 4);
}

void InstallCpuAllocator() {
  static std::once_flag once;
  // Priority 1: above LibTorch's own registration (0), so nothing registered statically later replaces it.
  std::call_once(once, [] { c10::SetAllocator(c10::DeviceType::CPU, &Instance(), 1); });
}

void SetCpuCacheLimit(int64_t bytes) { Instance().SetLimit(bytes); }

CpuCacheStats GetCpuCacheStats() { return Instance().Stats(); }

}  // namespace san
