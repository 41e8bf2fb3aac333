#include "rans_dispatch.h"

#include "rans_simd.h"

namespace qans {

// A level whose kernels were not compiled into this build (QANS_COMPILED_<LEVEL> unset) falls
// through to the next lower level, as in kernels.cc.

RansDecodeFn rans_decoder(SimdLevel level) {
  switch (level) {
    case SimdLevel::Avx512:
#if defined(QANS_COMPILED_AVX512)
      return rans_decode_avx512;
#endif
      [[fallthrough]];
    case SimdLevel::Avx2:
#if defined(QANS_COMPILED_AVX2)
      return rans_decode_avx2;
#endif
      [[fallthrough]];
    case SimdLevel::Sse41:
#if defined(QANS_COMPILED_SSE41)
      return rans_decode_sse41;
#endif
      [[fallthrough]];
    case SimdLevel::Scalar:
      break;
  }
  return rans_decode_scalar;
}

RansEncodeFn rans_encoder(SimdLevel level) {
  switch (level) {
    case SimdLevel::Avx512:
#if defined(QANS_COMPILED_AVX512)
      return rans_encode_avx512;
#endif
      [[fallthrough]];
    case SimdLevel::Avx2:
#if defined(QANS_COMPILED_AVX2)
      return rans_encode_avx2;
#endif
      [[fallthrough]];
    case SimdLevel::Sse41:
#if defined(QANS_COMPILED_SSE41)
      return rans_encode_sse41;
#endif
      [[fallthrough]];
    case SimdLevel::Scalar:
      break;
  }
  return rans_encode_scalar;
}

}  // namespace qans
