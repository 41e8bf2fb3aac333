// Large buffers that the pool's threads fill, for decode jobs' outputs. Fresh memory costs the
// kernel a page fault and a page of zeroes per page on first write: on a 64 MiB tensor about a
// sixth of the decode, and it does not scale with threads (it is bound by memory bandwidth). So on
// Linux these buffers are mapped with transparent huge pages (512 times fewer faults), and a freed
// buffer is kept for the next one of about its size, up to a small bound (tensors of equal shape
// are common in a model: their reads reuse one buffer).
#pragma once

#include <cstddef>

namespace qans {

// Memory for `length` bytes, or null. Its contents are unspecified: a reused buffer holds what it
// last held. `*capacity` receives what free_pages needs back.
void* allocate_pages(size_t length, size_t* capacity);
void free_pages(void* data, size_t capacity);

}  // namespace qans
