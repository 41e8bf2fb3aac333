// The dot kernel built for the AVX-512 level (512-bit vectors).
#define QANS_DOT_ENTRY kDotRowsAvx512
#define QANS_DOT_LANES 8
#define QANS_DOT_ROWS 2
#define QANS_DOT_INPUTS 4
#include "dot_rows_impl.h"
