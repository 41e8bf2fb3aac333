// The non-rANS kernels built for the baseline instruction set of the target.
#define QANS_KERNEL_TABLE kKernelsScalar
#include "kernels_impl.h"
