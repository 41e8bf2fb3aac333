// The 32-lane rANS decoder on 128-bit vectors, included by rans_sse41.cc (which compiles it with its own
// flags; everything here has internal linkage). The 32 lanes are eight vectors of four u32 states;
// symbol i is lane i mod 32, so a group of 32 symbols is one step of every lane.
//
// One step of a vector: the slots' lookups (scalar loads put into the vector; see DecodeTable):
// for k <= 12 the packed word of each slot, for k > 12 the symbol of each slot and then f and cum
// of each symbol, two dependent loads from L1 (at most 32 KiB + 2 KiB); y = f * (x >> k) + slot
// - cum; and the lanes with y < L take the next words in lane order (the spec's word order) with
// one pshufb whose control is chosen by the 4-bit lane mask; the word pointer moves on by the
// mask's population count.
//
// Bounds (spec §10.2): the loop runs only while at least 32 words (64 bytes) are
// left, which covers every load of a group (vector j reads 8 bytes at most 8 * j bytes past the
// group's first word). The remaining full groups run on a zero-padded copy of the last words,
// each group only when the words it takes are all there; then the scalar tail, continuing from the
// same lane states, decodes what is left and finds exactly the scalar kernel's error, if any.
#pragma once

#include <smmintrin.h>
#include <nmmintrin.h>

#include <cstring>

#include "rans.h"
#include "rans_kernel_common.h"

namespace qans {

namespace {

// For a 4-lane mask m: a pshufb control that, applied to the 8 bytes at the word pointer, puts
// word rank(l) zero-extended into each lane l of m, and zero into the other lanes.
struct RkShuffleTable4 {
  alignas(64) uint8_t ctrl[16][16];
  constexpr RkShuffleTable4() : ctrl() {
    for (int m = 0; m < 16; m++) {
      int rank = 0;
      for (int l = 0; l < 4; l++) {
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
constexpr RkShuffleTable4 kXmmShuffle4{};

// The f, cum and symbol of symbols sym[0..3] (entries of freq_cum_symbol), as three vectors.
inline void xmm_freq_cum4(const uint64_t* table, const uint32_t* sym, __m128i* f, __m128i* cum, __m128i* s) {
  __m128i a = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(&table[sym[0]]));
  __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(&table[sym[2]]));
  a = _mm_insert_epi64(a, static_cast<long long>(table[sym[1]]), 1);
  b = _mm_insert_epi64(b, static_cast<long long>(table[sym[3]]), 1);
  *f = _mm_castps_si128(_mm_shuffle_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b), _MM_SHUFFLE(2, 0, 2, 0)));
  const __m128i hi = _mm_castps_si128(_mm_shuffle_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b), _MM_SHUFFLE(3, 1, 3, 1)));
  *cum = _mm_and_si128(hi, _mm_set1_epi32(0xffff));
  *s = _mm_srli_epi32(hi, 16);
}

// Extracts the four u32 lanes of `v` to at[0..3].
inline void xmm_extract4(__m128i v, uint32_t* at) {
  const uint64_t a = static_cast<uint64_t>(_mm_cvtsi128_si64(v));
  const uint64_t b = static_cast<uint64_t>(_mm_extract_epi64(v, 1));
  at[0] = static_cast<uint32_t>(a);
  at[1] = static_cast<uint32_t>(a >> 32);
  at[2] = static_cast<uint32_t>(b);
  at[3] = static_cast<uint32_t>(b >> 32);
}

// Entries table[at[0..3]] as a vector (the packed words of four slots).
inline __m128i xmm_gather4(const uint32_t* table, const uint32_t* at) {
  __m128i v = _mm_cvtsi32_si128(static_cast<int>(table[at[0]]));
  v = _mm_insert_epi32(v, static_cast<int>(table[at[1]]), 1);
  v = _mm_insert_epi32(v, static_cast<int>(table[at[2]]), 2);
  return _mm_insert_epi32(v, static_cast<int>(table[at[3]]), 3);
}

template <uint32_t K>
struct XmmDecoder {
  static constexpr bool kPacked = K <= 12;
  // Vectors whose steps go before their renormalisations: all eight with the packed table, two
  // with the two-level lookup (each measured fastest on Zen 4; one at a time was slower for both).
  static constexpr int kBatch = kPacked ? 8 : 2;
  static constexpr uint32_t kMask = (1u << K) - 1;
  const uint32_t* packed;  // k <= 12
  const uint8_t* symbols;  // k > 12, with freq_cum_symbol
  const uint64_t* freq_cum_symbol;

  // One decoding step of four lanes before renormalisation: the new states y, the symbols s (u32
  // lanes), the mask `keep` of the lanes with y >= L and the complement as bits.
  inline void step(__m128i x, __m128i* y, __m128i* s, __m128i* keep, uint32_t* bits) const {
    const __m128i slot = _mm_and_si128(x, _mm_set1_epi32(kMask));
    uint32_t at[4];
    xmm_extract4(slot, at);
    if (kPacked) {
      const __m128i e = xmm_gather4(packed, at);
      const __m128i f = _mm_and_si128(e, _mm_set1_epi32(0xfff));
      const __m128i bias = _mm_and_si128(_mm_srli_epi32(e, 12), _mm_set1_epi32(0xfff));
      *s = _mm_srli_epi32(e, 24);
      *y = _mm_add_epi32(_mm_mullo_epi32(f, _mm_srli_epi32(x, K)), bias);
    } else {
      // The slots' symbols, then their f and cum: y = f * (x >> k) + slot - cum.
      uint32_t sym[4];
      for (int l = 0; l < 4; l++) sym[l] = symbols[at[l]];
      __m128i f, cum;
      xmm_freq_cum4(freq_cum_symbol, sym, &f, &cum, s);
      *y = _mm_sub_epi32(_mm_add_epi32(_mm_mullo_epi32(f, _mm_srli_epi32(x, K)), slot), cum);
    }
    // States stay below 2^31, so y >= L is the signed y > L - 1.
    *keep = _mm_cmpgt_epi32(*y, _mm_set1_epi32(kRansL - 1));
    *bits = static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(*keep))) ^ 0xfu;
  }

  // Renormalises the lanes of `bits` with the next words at src, in lane order. Reads src[0, 8).
  static inline __m128i renorm(__m128i y, __m128i keep, uint32_t bits, const uint8_t* src) {
    const __m128i w = _mm_shuffle_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src)),
                                       _mm_load_si128(reinterpret_cast<const __m128i*>(kXmmShuffle4.ctrl[bits])));
    return _mm_blendv_epi8(_mm_or_si128(_mm_slli_epi32(y, 16), w), y, keep);
  }

  // 32 symbols of one group (the u32 lanes of s[0..7], below 256) to out[0, 32).
  static inline void store_symbols(uint8_t* out, const __m128i* s) {
    for (int h = 0; h < 2; h++) {
      const __m128i a = _mm_packus_epi32(s[4 * h], s[4 * h + 1]);
      const __m128i b = _mm_packus_epi32(s[4 * h + 2], s[4 * h + 3]);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * h), _mm_packus_epi16(a, b));
    }
  }

  Status run(const uint8_t* payload, size_t length, size_t count, const DecodeTable& table, uint8_t* out) {
    uint32_t xs[kRansLanes];
    const Status status = rk_decode_begin(payload, length, count, kRansLanes, xs);
    if (status != Status::Ok) return status;
    packed = table.packed12.data();
    symbols = table.symbols.data();
    freq_cum_symbol = table.freq_cum_symbol.data();
    __m128i x[8];
    for (int j = 0; j < 8; j++) x[j] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xs + 4 * j));
    size_t i = 0;
    size_t p = kRansStateBytes;
    while (count - i >= kRansLanes && length - p >= kRansGroupBytes) {
      const uint8_t* src = payload + p;
      __m128i s[8];
      for (int h = 0; h < 8; h += kBatch) {
        __m128i y[kBatch], keep[kBatch];
        uint32_t bits[kBatch];
        for (int j = 0; j < kBatch; j++) step(x[h + j], &y[j], &s[h + j], &keep[j], &bits[j]);
        for (int j = 0; j < kBatch; j++) {
          x[h + j] = renorm(y[j], keep[j], bits[j], src);
          src += 2 * static_cast<size_t>(_mm_popcnt_u32(bits[j]));
        }
      }
      p = static_cast<size_t>(src - payload);
      store_symbols(out + i, s);
      i += kRansLanes;
    }
    if (count - i >= kRansLanes) {
      alignas(16) uint8_t buf[2 * kRansGroupBytes] = {};
      const size_t rem = length - p;  // below kRansGroupBytes
      std::memcpy(buf, payload + p, rem);
      size_t off = 0;
      while (count - i >= kRansLanes) {
        __m128i y[8], s[8], keep[8];
        uint32_t bits[8];
        uint32_t all = 0;
        for (int j = 0; j < 8; j++) {
          step(x[j], &y[j], &s[j], &keep[j], &bits[j]);
          all |= bits[j] << (4 * j);
        }
        const size_t need = 2 * static_cast<size_t>(_mm_popcnt_u32(all));
        if (need > rem - off) break;
        for (int j = 0; j < 8; j++) {
          x[j] = renorm(y[j], keep[j], bits[j], buf + off);
          off += 2 * static_cast<size_t>(_mm_popcnt_u32(bits[j]));
        }
        store_symbols(out + i, s);
        i += kRansLanes;
      }
      p += off;
    }
    for (int j = 0; j < 8; j++) _mm_storeu_si128(reinterpret_cast<__m128i*>(xs + 4 * j), x[j]);
    return rk_decode_finish(payload, length, count, i, p, kRansLanes, xs, table, out);
  }
};

template <uint32_t K>
Status xmm_decode_k(const uint8_t* payload, size_t length, size_t count, const DecodeTable& table, uint8_t* out) {
  XmmDecoder<K> decoder;
  return decoder.run(payload, length, count, table, out);
}

}  // namespace

}  // namespace qans
