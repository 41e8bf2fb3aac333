// The non-rANS kernels built for the AVX-512 level (512-bit vectors).
#define QANS_KERNEL_TABLE kKernelsAvx512
#include "kernels_impl.h"
