// The 32-lane rANS decoder on 256-bit vectors, included by rans_avx2.cc and rans_avx512.cc (which compile
// it with their own flags; everything here has internal linkage). The 32 lanes are four vectors of
// eight u32 states; symbol i is lane i mod 32, so a group of 32 symbols is one step of every lane.
//
// One step of a vector: slot = x & (2^k - 1); the slots moved to general registers and looked up
// with scalar loads, put back into a vector (on Zen 4 these beat vpgatherdd, which runs at about
// 1.3 cycles per element with 21 cycles of latency); y = f * (x >> k) + slot - cum; the lanes
// with y < L take the next words of the payload in lane order, which is the spec's word order, and
// the word pointer moves on by the lane mask's population count. The lookups (see DecodeTable):
//   k <= 12: the packed word of each slot (f, slot - cum and the symbol), one load a lane;
//   k > 12:  the symbol of each slot, then f, cum and the symbol again from one 64-bit entry of
//            the symbol: two dependent loads a lane, from L1 or mostly so (32 KiB + 2 KiB at
//            k = 15, where a per-slot word of f and slot - cum took 128 KiB and came from L2).
//            Taking the output symbols from the entries was measured faster than putting them
//            together from the byte loads in a general register, and that much faster than a
//            vpgatherdd of them (which, though off the chain from state to state, cost a third
//            of the speed at k = 13).
// Two ways to place the words:
//   kShuffle: one vpshufb of the 16 bytes at the pointer, its control from an 8 KiB table indexed
//             by the mask (AVX2);
//   kExpand:  vpexpandd under a mask register (AVX-512 VL only; measured faster than kShuffle on
//             Zen 4 at every k, by 10% or more).
//
// Bounds (spec §10.2): the loop runs only while at least 32 words (64 bytes) are
// left, which covers every load of a group (vector j reads 16 bytes at most 2 * 8 * j bytes past
// the group's first word). The remaining full groups run on a zero-padded copy of the last words,
// each group only when the words it takes are all there; then the scalar tail, continuing from the
// same lane states, decodes what is left and finds exactly the scalar kernel's error, if any.
#pragma once

#include <immintrin.h>

#include <cstring>

#include "rans.h"
#include "rans_kernel_common.h"

namespace qans {

namespace {

enum class YmmRenorm { kShuffle, kExpand };

// For an 8-lane mask m: a vpshufb control that, applied to the 16 bytes at the word pointer in
// both halves of a vector, puts word rank(l) (the number of set bits of m below l) zero-extended
// into each lane l of m, and zero into the other lanes.
struct RkShuffleTable8 {
  alignas(64) uint8_t ctrl[256][32];
  constexpr RkShuffleTable8() : ctrl() {
    for (int m = 0; m < 256; m++) {
      int rank = 0;
      for (int l = 0; l < 8; l++) {
        uint8_t* at = &ctrl[m][4 * l];
        if ((m >> l) & 1) {
          at[0] = static_cast<uint8_t>(2 * rank);
          at[1] = static_cast<uint8_t>(2 * rank + 1);
          rank++;
        } else {
          at[0] = at[1] = 0x80;
        }
        at[2] = at[3] = 0x80;
      }
    }
  }
};

constexpr RkShuffleTable8 kYmmShuffle{};

// Extracts the eight u32 lanes of `v` to at[0..7].
inline void ymm_extract8(__m256i v, uint32_t* at) {
  const __m128i lo = _mm256_castsi256_si128(v);
  const __m128i hi = _mm256_extracti128_si256(v, 1);
  const uint64_t a = static_cast<uint64_t>(_mm_cvtsi128_si64(lo));
  const uint64_t b = static_cast<uint64_t>(_mm_extract_epi64(lo, 1));
  const uint64_t c = static_cast<uint64_t>(_mm_cvtsi128_si64(hi));
  const uint64_t d = static_cast<uint64_t>(_mm_extract_epi64(hi, 1));
  at[0] = static_cast<uint32_t>(a);
  at[1] = static_cast<uint32_t>(a >> 32);
  at[2] = static_cast<uint32_t>(b);
  at[3] = static_cast<uint32_t>(b >> 32);
  at[4] = static_cast<uint32_t>(c);
  at[5] = static_cast<uint32_t>(c >> 32);
  at[6] = static_cast<uint32_t>(d);
  at[7] = static_cast<uint32_t>(d >> 32);
}

// Entries table[at[0..7]] as a vector (the packed words of eight slots).
inline __m256i ymm_gather8(const uint32_t* table, const uint32_t* at) {
  __m128i v0 = _mm_cvtsi32_si128(static_cast<int>(table[at[0]]));
  __m128i v1 = _mm_cvtsi32_si128(static_cast<int>(table[at[4]]));
  v0 = _mm_insert_epi32(v0, static_cast<int>(table[at[1]]), 1);
  v1 = _mm_insert_epi32(v1, static_cast<int>(table[at[5]]), 1);
  v0 = _mm_insert_epi32(v0, static_cast<int>(table[at[2]]), 2);
  v1 = _mm_insert_epi32(v1, static_cast<int>(table[at[6]]), 2);
  v0 = _mm_insert_epi32(v0, static_cast<int>(table[at[3]]), 3);
  v1 = _mm_insert_epi32(v1, static_cast<int>(table[at[7]]), 3);
  return _mm256_inserti128_si256(_mm256_castsi128_si256(v0), v1, 1);
}

// The f, cum and symbol of symbols sym[0..7] (entries of freq_cum_symbol), as three vectors.
inline void ymm_freq_cum8(const uint64_t* table, const uint32_t* sym, __m256i* f, __m256i* cum, __m256i* s) {
  __m128i a0 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(&table[sym[0]]));
  __m128i b0 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(&table[sym[2]]));
  __m128i a1 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(&table[sym[4]]));
  __m128i b1 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(&table[sym[6]]));
  a0 = _mm_insert_epi64(a0, static_cast<long long>(table[sym[1]]), 1);
  b0 = _mm_insert_epi64(b0, static_cast<long long>(table[sym[3]]), 1);
  a1 = _mm_insert_epi64(a1, static_cast<long long>(table[sym[5]]), 1);
  b1 = _mm_insert_epi64(b1, static_cast<long long>(table[sym[7]]), 1);
  const __m256 a = _mm256_castsi256_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(a0), a1, 1));
  const __m256 b = _mm256_castsi256_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(b0), b1, 1));
  *f = _mm256_castps_si256(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
  const __m256i hi = _mm256_castps_si256(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  *cum = _mm256_and_si256(hi, _mm256_set1_epi32(0xffff));
  *s = _mm256_srli_epi32(hi, 16);
}

// 32 symbols (the low bytes of the u32 lanes of s[0..3], lanes in order; without AVX-512 the
// upper bytes must be zero) to out[0, 32).
inline void ymm_store_symbols32(uint8_t* out, const __m256i s[4]) {
#if defined(__AVX512VL__)
  // The zero-masked form, as the plain one passes GCC an undefined vector that -Wall reports.
  const __m128i a = _mm_unpacklo_epi64(_mm256_maskz_cvtepi32_epi8(0xff, s[0]), _mm256_maskz_cvtepi32_epi8(0xff, s[1]));
  const __m128i b = _mm_unpacklo_epi64(_mm256_maskz_cvtepi32_epi8(0xff, s[2]), _mm256_maskz_cvtepi32_epi8(0xff, s[3]));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), a);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), b);
#else
  const __m256i a = _mm256_packus_epi32(s[0], s[1]);
  const __m256i b = _mm256_packus_epi32(s[2], s[3]);
  const __m256i c = _mm256_packus_epi16(a, b);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permutevar8x32_epi32(c, order));
#endif
}

template <uint32_t K, YmmRenorm R>
struct YmmDecoder {
#if !defined(__AVX512VL__)
  static_assert(R == YmmRenorm::kShuffle, "vpexpandd needs AVX-512 VL");
#endif
  static constexpr bool kPacked = K <= 12;
  static constexpr uint32_t kMask = (1u << K) - 1;
  const uint32_t* packed;  // k <= 12
  const uint8_t* symbols;  // k > 12, with freq_cum_symbol
  const uint64_t* freq_cum_symbol;

  // One decoding step of eight lanes before renormalisation: the new states y, the symbols s (in
  // the low byte of each lane, see ymm_store_symbols32), the mask `keep` of the lanes that keep
  // their state (y >= L) and the complement as bits.
  inline void step(__m256i x, __m256i* y, __m256i* s, __m256i* keep, uint32_t* bits) const {
    const __m256i slot = _mm256_and_si256(x, _mm256_set1_epi32(kMask));
    uint32_t at[8];
    ymm_extract8(slot, at);
    if (kPacked) {
      const __m256i e = ymm_gather8(packed, at);
      const __m256i f = _mm256_and_si256(e, _mm256_set1_epi32(0xfff));
      const __m256i bias = _mm256_and_si256(_mm256_srli_epi32(e, 12), _mm256_set1_epi32(0xfff));
      *s = _mm256_srli_epi32(e, 24);
      *y = _mm256_add_epi32(_mm256_mullo_epi32(f, _mm256_srli_epi32(x, K)), bias);
    } else {
      // The slots' symbols, then their f and cum: y = f * (x >> k) + slot - cum.
      uint32_t sym[8];
      for (int l = 0; l < 8; l++) sym[l] = symbols[at[l]];
      __m256i f, cum;
      ymm_freq_cum8(freq_cum_symbol, sym, &f, &cum, s);
      *y = _mm256_sub_epi32(_mm256_add_epi32(_mm256_mullo_epi32(f, _mm256_srli_epi32(x, K)), slot), cum);
    }
#if defined(__AVX512VL__)
    if (R == YmmRenorm::kExpand) {
      // The mask register straight from the comparison (a mask rebuilt from the bits would add
      // a general-to-mask move to the chain).
      const __mmask8 m = _mm256_cmplt_epu32_mask(*y, _mm256_set1_epi32(kRansL));
      *keep = _mm256_setzero_si256();  // not used by this renormalisation
      *bits = static_cast<uint32_t>(m);
      return;
    }
#endif
    // States stay below 2^31, so y >= L is the signed y > L - 1 (one instruction, where the
    // compiler turns y < L into two).
    *keep = _mm256_cmpgt_epi32(*y, _mm256_set1_epi32(kRansL - 1));
    *bits = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(*keep))) ^ 0xffu;
  }

  // Renormalises the lanes of `bits` with the next words at src, in lane order. Reads src[0, 16).
  static inline __m256i renorm(__m256i y, __m256i keep, uint32_t bits, const uint8_t* src) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
#if defined(__AVX512VL__)
    if (R == YmmRenorm::kExpand) {
      const __mmask8 m = static_cast<__mmask8>(bits);
      const __m256i w = _mm256_maskz_expand_epi32(m, _mm256_cvtepu16_epi32(raw));
      return _mm256_or_si256(_mm256_mask_slli_epi32(y, m, y, 16), w);
    }
#endif
    const __m256i ctrl = _mm256_load_si256(reinterpret_cast<const __m256i*>(kYmmShuffle.ctrl[bits]));
    const __m256i w = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(raw), ctrl);
    return _mm256_blendv_epi8(_mm256_or_si256(_mm256_slli_epi32(y, 16), w), y, keep);
  }

  Status run(const uint8_t* payload, size_t length, size_t count, const DecodeTable& table, uint8_t* out) {
    uint32_t xs[kRansLanes];
    const Status status = rk_decode_begin(payload, length, count, kRansLanes, xs);
    if (status != Status::Ok) return status;
    packed = table.packed12.data();
    symbols = table.symbols.data();
    freq_cum_symbol = table.freq_cum_symbol.data();
    __m256i x[4];
    for (int j = 0; j < 4; j++) x[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs + 8 * j));
    size_t i = 0;
    size_t p = kRansStateBytes;
    while (count - i >= kRansLanes && length - p >= kRansGroupBytes) {
      __m256i y[4], s[4], keep[4];
      uint32_t bits[4];
      const uint8_t* src = payload + p;
      // Each vector's step one ahead of the previous vector's renormalisation, written out (2%
      // faster on Zen 4 than all steps first; a loop form of it compiled to much slower code).
      step(x[0], &y[0], &s[0], &keep[0], &bits[0]);
      step(x[1], &y[1], &s[1], &keep[1], &bits[1]);
      x[0] = renorm(y[0], keep[0], bits[0], src);
      src += 2 * static_cast<size_t>(_mm_popcnt_u32(bits[0]));
      step(x[2], &y[2], &s[2], &keep[2], &bits[2]);
      x[1] = renorm(y[1], keep[1], bits[1], src);
      src += 2 * static_cast<size_t>(_mm_popcnt_u32(bits[1]));
      step(x[3], &y[3], &s[3], &keep[3], &bits[3]);
      x[2] = renorm(y[2], keep[2], bits[2], src);
      src += 2 * static_cast<size_t>(_mm_popcnt_u32(bits[2]));
      x[3] = renorm(y[3], keep[3], bits[3], src);
      src += 2 * static_cast<size_t>(_mm_popcnt_u32(bits[3]));
      p = static_cast<size_t>(src - payload);
      ymm_store_symbols32(out + i, s);
      i += kRansLanes;
    }
    if (count - i >= kRansLanes) {
      alignas(32) uint8_t buf[2 * kRansGroupBytes] = {};
      const size_t rem = length - p;  // below kRansGroupBytes
      std::memcpy(buf, payload + p, rem);
      size_t off = 0;
      while (count - i >= kRansLanes) {
        __m256i y[4], s[4], keep[4];
        uint32_t bits[4];
        for (int j = 0; j < 4; j++) step(x[j], &y[j], &s[j], &keep[j], &bits[j]);
        const size_t need = 2 * static_cast<size_t>(_mm_popcnt_u32(bits[0] | bits[1] << 8 | bits[2] << 16 | bits[3] << 24));
        if (need > rem - off) break;
        for (int j = 0; j < 4; j++) {
          x[j] = renorm(y[j], keep[j], bits[j], buf + off);
          off += 2 * static_cast<size_t>(_mm_popcnt_u32(bits[j]));
        }
        ymm_store_symbols32(out + i, s);
        i += kRansLanes;
      }
      p += off;
    }
    for (int j = 0; j < 4; j++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(xs + 8 * j), x[j]);
    return rk_decode_finish(payload, length, count, i, p, kRansLanes, xs, table, out);
  }
};

template <uint32_t K, YmmRenorm R>
Status ymm_decode_k(const uint8_t* payload, size_t length, size_t count, const DecodeTable& table, uint8_t* out) {
  YmmDecoder<K, R> decoder;
  return decoder.run(payload, length, count, table, out);
}

}  // namespace

}  // namespace qans
