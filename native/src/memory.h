// Large result buffers that threads fill in parallel. Fresh memory costs a page fault per page on
// first write, and faults from several threads into one mapping scale poorly; on Linux these
// buffers ask for transparent huge pages, which cut the faults 512-fold.
#pragma once

#include <cstddef>

namespace qans {

// Zeroed memory of `length` bytes (at least one byte is mapped), or null. Free with free_pages.
void* allocate_pages(size_t length);
void free_pages(void* data, size_t length);

}  // namespace qans
