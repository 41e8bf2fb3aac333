// The dot kernel built for the AVX2 level (256-bit vectors).
#define QANS_DOT_ENTRY kDotRowsAvx2
#define QANS_DOT_LANES 4
#define QANS_DOT_ROWS 1
#define QANS_DOT_INPUTS 1
#include "dot_rows_impl.h"
