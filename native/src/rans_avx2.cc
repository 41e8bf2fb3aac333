// AVX2 rANS kernels (spec/qans-v1.md §10.2). Output, symbols and statuses are exactly those of
// rans_scalar.cc; rans_kernels_test compares them on valid and corrupt input. Blocks of fewer than
// 32 lanes go to the scalar kernels.
//
// Decoding: rans_decode_ymm.h with the vpshufb renormalisation at every k (for k > 12 it was
// measured faster on Zen 4 than rans_decode_xmm.h, and than two 4-lane controls from a 256-byte
// table instead of the 8 KiB one). Encoding: rans_encode_ymm.h.
#include <immintrin.h>

#include <cstring>

#include "rans.h"
#include "rans_decode_ymm.h"
#include "rans_encode_ymm.h"
#include "rans_kernel_common.h"
#include "rans_simd.h"

namespace qans {

namespace {

struct Level {
  template <uint32_t K>
  static Status decode(const uint8_t* payload, size_t length, size_t count, const DecodeTable& table, uint8_t* out) {
    return ymm_decode_k<K, YmmRenorm::kShuffle>(payload, length, count, table, out);
  }
};

}  // namespace

Status rans_decode_avx2(const uint8_t* payload, size_t length, size_t count, uint32_t lanes, const DecodeTable& table, uint8_t* out) {
  return rk_decode_32_lanes<Level>(payload, length, count, lanes, table, out);
}

Status rans_encode_avx2(const uint8_t* symbols, size_t count, uint32_t lanes, const EncodeTable& table, uint8_t* out, size_t* length) {
  if (lanes != kRansLanes) return rans_encode_scalar(symbols, count, lanes, table, out, length);
  return ymm_encode(symbols, count, table, out, length);
}

}  // namespace qans
