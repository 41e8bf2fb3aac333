// A process-wide pool of worker threads for the block jobs (block_jobs.h). A job runs on the thread
// that submits it plus up to thread_count() - 1 pool threads, which take its items one at a time,
// so that uneven items balance out. The pool's threads never touch V8.
#pragma once

#include <cstddef>
#include <functional>

namespace qans {

// Threads a job may use, counting the submitting thread: 1 to kMaxThreads.
constexpr unsigned kMaxThreads = 64;
// The default: the hardware's concurrency, at most this many.
constexpr unsigned kDefaultMaxThreads = 8;

unsigned thread_count();

// Sets the count, clamped to 1..kMaxThreads, and returns it. Jobs already running keep theirs.
unsigned set_thread_count(unsigned count);

// Applies QANS_THREADS, if set, as the count. Returns false when the variable is set to something
// other than an integer from 1 to kMaxThreads (the count is then left at its default).
bool apply_thread_environment();

// Runs item(i) for every i in [0, count) and returns when all have finished. Items run on the
// calling thread and on up to thread_count() - 1 pool threads, in no particular order; `item` must
// not throw. Callable from any number of threads at once (each call gets its own share of the pool).
void parallel_for(size_t count, const std::function<void(size_t)>& item);

}  // namespace qans
