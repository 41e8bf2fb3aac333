#include "memory.h"

#include <cstdint>
#include <cstdlib>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>

#include <mutex>
#include <vector>
#endif

namespace qans {

#if defined(__linux__)

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// Below this, malloc serves as well (capacity 0 marks its memory).
constexpr size_t kMinMapped = kHugePage;

// Freed buffers kept for reuse: at most this many, holding at most this much together.
constexpr size_t kCachedBuffers = 2;
constexpr size_t kCachedBytes = size_t{256} << 20;

struct Mapping {
  void* data;
  size_t capacity;
};

std::mutex g_mutex;
std::vector<Mapping>* g_cache = new std::vector<Mapping>();  // Never destroyed: freed at exit by the OS.
size_t g_cached_bytes = 0;

size_t page_size() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

// A new mapping of `capacity` bytes (a multiple of the page size) that starts on a huge-page boundary.
void* map(size_t capacity) {
  const size_t mapped = capacity + kHugePage;
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = aligned + capacity;
  if (start + mapped > end) munmap(reinterpret_cast<void*>(end), start + mapped - end);
  // Advice only: without transparent huge pages the buffer is ordinary memory.
  madvise(reinterpret_cast<void*>(aligned), capacity, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

}  // namespace

void* allocate_pages(size_t length, size_t* capacity) {
  if (length < kMinMapped) {
    *capacity = 0;
    return std::calloc(length > 0 ? length : 1, 1);
  }
  const size_t needed = (length + page_size() - 1) / page_size() * page_size();
  {
    // The smallest cached buffer that fits without wasting more than a quarter.
    std::lock_guard<std::mutex> lock(g_mutex);
    size_t best = g_cache->size();
    for (size_t i = 0; i < g_cache->size(); i++) {
      const size_t c = (*g_cache)[i].capacity;
      if (c >= needed && c - needed <= needed / 4 && (best == g_cache->size() || c < (*g_cache)[best].capacity)) best = i;
    }
    if (best < g_cache->size()) {
      const Mapping found = (*g_cache)[best];
      g_cache->erase(g_cache->begin() + static_cast<std::ptrdiff_t>(best));
      g_cached_bytes -= found.capacity;
      *capacity = found.capacity;
      return found.data;
    }
  }
  *capacity = needed;
  return map(needed);
}

void free_pages(void* data, size_t capacity) {
  if (capacity == 0) return std::free(data);
  std::vector<Mapping> evicted;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (capacity <= kCachedBytes) {
      g_cache->push_back({data, capacity});
      g_cached_bytes += capacity;
      data = nullptr;
      // The oldest go first.
      while (g_cache->size() > kCachedBuffers || g_cached_bytes > kCachedBytes) {
        evicted.push_back(g_cache->front());
        g_cached_bytes -= g_cache->front().capacity;
        g_cache->erase(g_cache->begin());
      }
    }
  }
  if (data != nullptr) munmap(data, capacity);
  for (const Mapping& mapping : evicted) munmap(mapping.data, mapping.capacity);
}

#else

void* allocate_pages(size_t length, size_t* capacity) {
  *capacity = 0;
  return std::calloc(length > 0 ? length : 1, 1);
}

void free_pages(void* data, size_t) {
  std::free(data);
}

#endif

}  // namespace qans
