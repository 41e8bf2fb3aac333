// The 32-lane rANS encoder on 256-bit vectors, included by rans_avx2.cc and rans_avx512.cc (which
// compile it with their own flags; everything here has internal linkage). Four vectors of eight
// lanes run backwards over the groups of 32 symbols (the last, partial group first, with the
// scalar step);
// within a group, vector 3 (lanes 24-31) goes first, so that the words land in memory as the
// scalar loop writes them: below the previous ones, in lane order within a vector.
//
// Per vector: the symbols' parameters (RkEncSym, see rans_kernel_common.h) by eight 16-byte loads
// and a 4x4 transpose (cheaper than three vpgatherdd on Zen 4), the renormalisation test, the words
// of the renormalising lanes compressed by one vpshufb and stored just below the write pointer,
// and q = floor(x / f) by reciprocal multiplication, exact for every state (see the proof there).
#pragma once

#include <immintrin.h>

#include <cstring>

#include "rans.h"
#include "rans_kernel_common.h"

namespace qans {

namespace {

// For an 8-lane mask m: a vpshufb control moving the 16-bit word of each lane l of m (word l of
// the source) to the top of a 16-byte vector, in lane order; the other bytes are don't-cares.
// Stored 16 bytes below the write pointer, the words of m end exactly at the pointer.
struct RkCompressTable8 {
  alignas(64) uint8_t ctrl[256][16];
  constexpr RkCompressTable8() : ctrl() {
    for (int m = 0; m < 256; m++) {
      int count = 0;
      for (int l = 0; l < 8; l++) count += (m >> l) & 1;
      int at = 8 - count;
      for (int t = 0; t < 16; t++) ctrl[m][t] = 0x80;
      for (int l = 0; l < 8; l++) {
        if (!((m >> l) & 1)) continue;
        ctrl[m][2 * at] = static_cast<uint8_t>(2 * l);
        ctrl[m][2 * at + 1] = static_cast<uint8_t>(2 * l + 1);
        at++;
      }
    }
  }
};
constexpr RkCompressTable8 kYmmCompress{};

// The encoding parameters (RkEncSym: rcp, bias | (M - f) << 16, limit | shift) of eight symbols,
// as three vectors in lane order: four 16-byte loads per half and a 4x4 transpose.
inline void ymm_enc_params8(const RkEncSym* enc, const uint8_t* sym, __m256i* rcp, __m256i* bias_cmpl, __m256i* limit) {
  __m256i r[4];
  for (int l = 0; l < 4; l++) {
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&enc[sym[l]]));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&enc[sym[l + 4]]));
    r[l] = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
  }
  const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]);
  const __m256i t1 = _mm256_unpacklo_epi32(r[2], r[3]);
  const __m256i t2 = _mm256_unpackhi_epi32(r[0], r[1]);
  const __m256i t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  *rcp = _mm256_unpacklo_epi64(t0, t1);
  *bias_cmpl = _mm256_unpackhi_epi64(t0, t1);
  *limit = _mm256_unpacklo_epi64(t2, t3);
}

// One encoding step of eight lanes with states x and the symbols' parameters; stores the words of
// the lanes that renormalise just below *w (in lane order) and moves *w down past them. Writes the
// 16 bytes below *w, which hold nothing yet (the states' 128 bytes at least lie below).
inline __m256i ymm_enc_step8(__m256i x, __m256i rcp, __m256i bias_cmpl, __m256i limit, uint8_t** w) {
  const __m256i emit = _mm256_cmpgt_epi32(_mm256_andnot_si256(_mm256_set1_epi32(15), x), limit);
  const uint32_t bits = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(emit)));
  // Low 16 bits of each lane, packed into the low 128 bits in lane order.
  const __m256i pack = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1,
                                        -1, -1, -1, -1, -1);
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(x, pack), 0x08);
  const __m128i words = _mm_shuffle_epi8(_mm256_castsi256_si128(packed), _mm_load_si128(reinterpret_cast<const __m128i*>(kYmmCompress.ctrl[bits])));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(*w - 16), words);
  *w -= 2 * static_cast<size_t>(_mm_popcnt_u32(bits));
  x = _mm256_blendv_epi8(x, _mm256_srli_epi32(x, 16), emit);
  // q = floor(x / f) = ((x * rcp) >> 32) >> shift, the 64-bit products of even and odd lanes.
  const __m256i even = _mm256_srli_epi64(_mm256_mul_epu32(x, rcp), 32);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(rcp, 32));
  const __m256i hi = _mm256_blend_epi32(even, odd, 0xaa);
  const __m256i q = _mm256_srlv_epi32(hi, _mm256_and_si256(limit, _mm256_set1_epi32(15)));
  const __m256i bias = _mm256_and_si256(bias_cmpl, _mm256_set1_epi32(0xffff));
  const __m256i cmpl = _mm256_srli_epi32(bias_cmpl, 16);
  return _mm256_add_epi32(_mm256_add_epi32(x, bias), _mm256_mullo_epi32(q, cmpl));
}

inline Status ymm_encode(const uint8_t* symbols, size_t count, const EncodeTable& table, uint8_t* out, size_t* length) {
  if (count < kRkEncodeMinCount || !rk_encode_table_ok(table)) return rans_encode_scalar(symbols, count, kRansLanes, table, out, length);
  RkEncSym enc[256];
  rk_build_enc_syms(table, enc);
  uint32_t xs[kRansLanes];
  for (uint32_t& v : xs) v = kRansL;
  uint8_t* w = out + kRansStateBytes + 2 * count;
  // The last, partial group first (the encoder runs backwards), then whole groups.
  const size_t full = count & ~size_t{kRansLanes - 1};
  if (!rk_encode_range(symbols, full, count, enc, xs, &w)) return Status::InvalidArgument;
  __m256i x[4];
  for (int j = 0; j < 4; j++) x[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs + 8 * j));
  __m256i absent = _mm256_setzero_si256();
  for (size_t g = full; g > 0; g -= kRansLanes) {
    const uint8_t* sym = symbols + g - kRansLanes;
    // Lanes 31 down to 0, as the scalar loop meets them.
    for (int j = 3; j >= 0; j--) {
      __m256i rcp, bias_cmpl, limit;
      ymm_enc_params8(enc, sym + 8 * j, &rcp, &bias_cmpl, &limit);
      absent = _mm256_or_si256(absent, _mm256_cmpeq_epi32(rcp, _mm256_setzero_si256()));
      x[j] = ymm_enc_step8(x[j], rcp, bias_cmpl, limit, &w);
    }
  }
  if (!_mm256_testz_si256(absent, absent)) return Status::InvalidArgument;
  for (int j = 0; j < 4; j++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(xs + 8 * j), x[j]);
  rk_encode_finish(xs, count, kRansLanes, out, w, length);
  return Status::Ok;
}

}  // namespace

}  // namespace qans
