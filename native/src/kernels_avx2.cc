// The non-rANS kernels built for the AVX2 level (256-bit vectors).
#define QANS_KERNEL_TABLE kKernelsAvx2
#include "kernels_impl.h"
