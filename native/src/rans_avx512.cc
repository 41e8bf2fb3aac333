// AVX-512 rANS kernels (spec/qans-v1.md §10.2); they use AVX-512 F, BW and VL on 256-bit vectors.
// Output, symbols and statuses are exactly those of rans_scalar.cc; rans_kernels_test compares
// them on valid and corrupt input. Blocks of fewer than 32 lanes go to the scalar kernels.
//
// Decoding: rans_decode_ymm.h with vpexpandd under a mask register (measured faster on Zen 4 than
// the vpshufb renormalisation at every k). Encoding: rans_encode_ymm.h. Both were measured
// against versions on two 512-bit vectors of sixteen lanes, which were slower on Zen 4: decoding
// is bound by the latency of one lane's step (table lookup, multiply, renormalisation), which
// wider vectors do not shorten (vpgatherdd zmm has 33 cycles of latency there and no more
// throughput than scalar loads, and moving a mask register to a general register for the word
// pointer takes longer than vmovmskps); the 16-lane encoder (parameters by 128-bit inserts,
// vpcompressd and masked word stores) ran at 1.85 GB/s against 2.2 GB/s for the 8-lane one.
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
    return ymm_decode_k<K, YmmRenorm::kExpand>(payload, length, count, table, out);
  }
};

}  // namespace

Status rans_decode_avx512(const uint8_t* payload, size_t length, size_t count, uint32_t lanes, const DecodeTable& table, uint8_t* out) {
  return rk_decode_32_lanes<Level>(payload, length, count, lanes, table, out);
}

Status rans_encode_avx512(const uint8_t* symbols, size_t count, uint32_t lanes, const EncodeTable& table, uint8_t* out, size_t* length) {
  if (lanes != kRansLanes) return rans_encode_scalar(symbols, count, lanes, table, out, length);
  return ymm_encode(symbols, count, table, out, length);
}

}  // namespace qans
