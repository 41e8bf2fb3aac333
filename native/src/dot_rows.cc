// Level selection for the dot kernels of dot_rows_impl.h.
#include "dot_rows.h"

namespace qans {

extern const DotRowsFn kDotRowsScalar;
#if defined(QANS_COMPILED_SSE41)
extern const DotRowsFn kDotRowsSse41;
#endif
#if defined(QANS_COMPILED_AVX2)
extern const DotRowsFn kDotRowsAvx2;
#endif
#if defined(QANS_COMPILED_AVX512)
extern const DotRowsFn kDotRowsAvx512;
#endif

DotRowsFn dot_rows_kernel(SimdLevel level) {
  switch (level) {
    case SimdLevel::Avx512:
#if defined(QANS_COMPILED_AVX512)
      return kDotRowsAvx512;
#endif
      [[fallthrough]];
    case SimdLevel::Avx2:
#if defined(QANS_COMPILED_AVX2)
      return kDotRowsAvx2;
#endif
      [[fallthrough]];
    case SimdLevel::Sse41:
#if defined(QANS_COMPILED_SSE41)
      return kDotRowsSse41;
#endif
      [[fallthrough]];
    case SimdLevel::Scalar:
      break;
  }
  return kDotRowsScalar;
}

}  // namespace qans
