// SSE4.1 rANS kernels (spec/qans-v1.md §10.2): the 32 lanes are eight vectors of four u32 states
// (blocks of fewer lanes go to the scalar kernels). Also uses SSSE3's pshufb and POPCNT. Output, symbols and statuses are exactly those of
// rans_scalar.cc; rans_kernels_test compares them on valid and corrupt input.
//
// Decoding: rans_decode_xmm.h.
//
// Encoding: SSE4.1 has no per-lane shift for the reciprocal method, so q = floor(x / f) comes from
// double precision instead: q = trunc((x + 0.5) * fl(1/f)). It is exact for x < 2^31 and f < 2^15:
// (x + 0.5) / f lies at least 0.5 / f > 2^-16 from every integer, and the two roundings move it
// by at most (x + 0.5) / f * 2^-52 < 2^-21. rans_kernels_test checks this on the same states as
// the reciprocals.
#include <smmintrin.h>
#include <nmmintrin.h>

#include <cstring>

#include "rans.h"
#include "rans_decode_xmm.h"
#include "rans_kernel_common.h"
#include "rans_simd.h"

namespace qans {

namespace {

// For a 4-lane mask m: a pshufb control taking the low 16 bits of each lane of m, in lane order,
// to the top of the low 8 bytes. Stored 8 bytes below the write pointer, the words end there.
struct CompressTable4 {
  alignas(64) uint8_t ctrl[16][16];
  constexpr CompressTable4() : ctrl() {
    for (int m = 0; m < 16; m++) {
      int count = 0;
      for (int l = 0; l < 4; l++) count += (m >> l) & 1;
      for (int t = 0; t < 16; t++) ctrl[m][t] = 0x80;
      int at = 4 - count;
      for (int l = 0; l < 4; l++) {
        if (!((m >> l) & 1)) continue;
        ctrl[m][2 * at] = static_cast<uint8_t>(4 * l);
        ctrl[m][2 * at + 1] = static_cast<uint8_t>(4 * l + 1);
        at++;
      }
    }
  }
};
constexpr CompressTable4 kCompress4{};

struct Level {
  template <uint32_t K>
  static Status decode(const uint8_t* payload, size_t length, size_t count, const DecodeTable& table, uint8_t* out) {
    return xmm_decode_k<K>(payload, length, count, table, out);
  }
};

// Encoding parameters of one symbol for the double-precision division.
struct EncSymF {
  double rcp;          // fl(1 / f); 0 for a symbol with f = 0
  uint32_t bias_cmpl;  // c | (M - f) << 16
  uint32_t limit;      // (f << (31 - k)) - 1: the state renormalises when x > limit
};

// The parameters of four symbols in lane order: 1/f of lanes 0-1 and 2-3 as doubles, and the
// two u32 fields.
inline void enc_params4(const EncSymF* enc, const uint8_t* sym, __m128d* r01, __m128d* r23, __m128i* bias_cmpl, __m128i* limit) {
  const __m128i e0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&enc[sym[0]]));
  const __m128i e1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&enc[sym[1]]));
  const __m128i e2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&enc[sym[2]]));
  const __m128i e3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&enc[sym[3]]));
  *r01 = _mm_castsi128_pd(_mm_unpacklo_epi64(e0, e1));
  *r23 = _mm_castsi128_pd(_mm_unpacklo_epi64(e2, e3));
  const __m128 h01 = _mm_castsi128_ps(_mm_unpackhi_epi64(e0, e1));
  const __m128 h23 = _mm_castsi128_ps(_mm_unpackhi_epi64(e2, e3));
  *bias_cmpl = _mm_castps_si128(_mm_shuffle_ps(h01, h23, _MM_SHUFFLE(2, 0, 2, 0)));
  *limit = _mm_castps_si128(_mm_shuffle_ps(h01, h23, _MM_SHUFFLE(3, 1, 3, 1)));
}

// One encoding step of four lanes; stores the words of the lanes that renormalise just below *w
// (in lane order) and moves *w down past them. Writes the 8 bytes below *w, which hold nothing yet.
inline __m128i enc_step4(__m128i x, __m128d r01, __m128d r23, __m128i bias_cmpl, __m128i limit, uint8_t** w) {
  const __m128i emit = _mm_cmpgt_epi32(x, limit);
  const uint32_t bits = static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(emit)));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(*w - 8), _mm_shuffle_epi8(x, _mm_load_si128(reinterpret_cast<const __m128i*>(kCompress4.ctrl[bits]))));
  *w -= 2 * static_cast<size_t>(_mm_popcnt_u32(bits));
  x = _mm_blendv_epi8(x, _mm_srli_epi32(x, 16), emit);
  const __m128d half = _mm_set1_pd(0.5);
  const __m128d d01 = _mm_mul_pd(_mm_add_pd(_mm_cvtepi32_pd(x), half), r01);
  const __m128d d23 = _mm_mul_pd(_mm_add_pd(_mm_cvtepi32_pd(_mm_shuffle_epi32(x, _MM_SHUFFLE(3, 2, 3, 2))), half), r23);
  const __m128i q = _mm_unpacklo_epi64(_mm_cvttpd_epi32(d01), _mm_cvttpd_epi32(d23));
  const __m128i bias = _mm_and_si128(bias_cmpl, _mm_set1_epi32(0xffff));
  const __m128i cmpl = _mm_srli_epi32(bias_cmpl, 16);
  return _mm_add_epi32(_mm_add_epi32(x, bias), _mm_mullo_epi32(q, cmpl));
}

}  // namespace

Status rans_decode_sse41(const uint8_t* payload, size_t length, size_t count, uint32_t lanes, const DecodeTable& table, uint8_t* out) {
  return rk_decode_32_lanes<Level>(payload, length, count, lanes, table, out);
}

Status rans_encode_sse41(const uint8_t* symbols, size_t count, uint32_t lanes, const EncodeTable& table, uint8_t* out, size_t* length) {
  if (lanes != kRansLanes || count < kRkEncodeMinCount || !rk_encode_table_ok(table)) {
    return rans_encode_scalar(symbols, count, lanes, table, out, length);
  }
  const uint32_t k = table.k;
  const uint32_t m = 1u << k;
  EncSymF enc[256];
  for (uint32_t s = 0; s < 256; s++) {
    const uint32_t f = table.freq[s];
    if (f == 0) {
      enc[s] = EncSymF{0.0, 0, 0};
      continue;
    }
    enc[s] = EncSymF{1.0 / f, table.cum[s] | ((m - f) << 16), (f << (31 - k)) - 1};
  }
  uint32_t xs[kRansLanes];
  for (uint32_t& v : xs) v = kRansL;
  uint8_t* w = out + kRansStateBytes + 2 * count;
  // The last, partial group first (the encoder runs backwards), with the scalar step.
  const size_t full = count & ~size_t{kRansLanes - 1};
  for (size_t i = count; i-- > full;) {
    const uint32_t s = symbols[i];
    const uint32_t f = table.freq[s];
    if (f == 0) return Status::InvalidArgument;
    uint32_t state = xs[i & (kRansLanes - 1)];
    if (state > enc[s].limit) {
      w -= 2;
      rk_store_u16(w, static_cast<uint16_t>(state & 0xffff));
      state >>= 16;
    }
    xs[i & (kRansLanes - 1)] = ((state / f) << k) + (state % f) + table.cum[s];
  }
  __m128i x[8];
  for (int j = 0; j < 8; j++) x[j] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xs + 4 * j));
  __m128i absent = _mm_setzero_si128();
  for (size_t g = full; g > 0; g -= kRansLanes) {
    const uint8_t* sym = symbols + g - kRansLanes;
    // Lanes 31 down to 0, as the scalar loop meets them.
    for (int j = 7; j >= 0; j--) {
      __m128d r01, r23;
      __m128i bias_cmpl, limit;
      enc_params4(enc, sym + 4 * j, &r01, &r23, &bias_cmpl, &limit);
      absent = _mm_or_si128(absent, _mm_cmpeq_epi32(bias_cmpl, _mm_setzero_si128()));
      x[j] = enc_step4(x[j], r01, r23, bias_cmpl, limit, &w);
    }
  }
  if (!_mm_testz_si128(absent, absent)) return Status::InvalidArgument;
  for (int j = 0; j < 8; j++) _mm_storeu_si128(reinterpret_cast<__m128i*>(xs + 4 * j), x[j]);
  rk_encode_finish(xs, count, kRansLanes, out, w, length);
  return Status::Ok;
}

}  // namespace qans
