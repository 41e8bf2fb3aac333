#include "memory.h"

#include <cstdint>
#include <cstdlib>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace qans {

#if defined(__linux__)

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// Below this, malloc's own memory serves as well.
constexpr size_t kMinMapped = kHugePage;

}  // namespace

void* allocate_pages(size_t length) {
  if (length < kMinMapped) return std::calloc(length > 0 ? length : 1, 1);
  // Over-map by a huge page and trim, so that the buffer starts on a huge-page boundary.
  const size_t mapped = length + kHugePage;
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = start + mapped;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t page_end = (aligned + length + page - 1) / page * page;
  if (end > page_end) munmap(reinterpret_cast<void*>(page_end), end - page_end);
  // Advice only: without transparent huge pages the buffer is ordinary memory.
  madvise(reinterpret_cast<void*>(aligned), length, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

void free_pages(void* data, size_t length) {
  if (length < kMinMapped) {
    std::free(data);
  } else {
    munmap(data, length);
  }
}

#else

void* allocate_pages(size_t length) {
  return std::calloc(length > 0 ? length : 1, 1);
}

void free_pages(void* data, size_t) {
  std::free(data);
}

#endif

}  // namespace qans
