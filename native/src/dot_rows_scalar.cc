// The dot kernel built for the baseline instruction set of the target.
#define QANS_DOT_ENTRY kDotRowsScalar
#define QANS_DOT_LANES 2
#define QANS_DOT_ROWS 1
#define QANS_DOT_INPUTS 1
#include "dot_rows_impl.h"
