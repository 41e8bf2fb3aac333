// The dot kernel built for the SSE4.1 level (128-bit vectors).
#define QANS_DOT_ENTRY kDotRowsSse41
#define QANS_DOT_LANES 2
#define QANS_DOT_ROWS 1
#define QANS_DOT_INPUTS 1
#include "dot_rows_impl.h"
