// The non-rANS kernels built for the SSE4.1/SSE4.2 level (crc32 instruction, 128-bit vectors).
#define QANS_KERNEL_TABLE kKernelsSse41
#include "kernels_impl.h"
