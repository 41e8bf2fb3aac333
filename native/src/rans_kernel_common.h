// Pieces shared by the rANS kernels of every instruction-set level (rans_scalar.cc and
// rans_<level>.cc): argument and state checks, the checked scalar decoding tail that the SIMD
// decoders finish with, the reciprocal tables of the encoders, and the encoders' scalar prologue.
//
// Each kernel file is compiled with its own target flags, so everything here has internal linkage
// (an anonymous namespace) and uses no standard-library templates: a definition compiled with
// AVX-512 flags must never be merged by the linker with another file's copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rans.h"

namespace qans {

namespace {

inline uint32_t rk_load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);  // Little-endian hosts only; the build rejects big-endian targets.
  return v;
}

inline uint16_t rk_load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

inline void rk_store_u16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}

// ---------------------------------------------------------------------------------------------
// Decoding

// True when every lookup the decoders make in `table` stays inside it: k in 10..15, `symbols` of
// 2^k entries and `freq_cum` of 256 (slots are below 2^k and symbols below 256). The scalar
// kernel decodes with any such table; others give InvalidArgument.
inline bool rk_decode_table_usable(const DecodeTable& table) {
  if (table.k < 10 || table.k > 15) return false;
  return table.symbols.size() == (size_t{1} << table.k) && table.freq_cum.size() == 256;
}

// True when `table` also has the tables the SIMD decoders use, as build_decode_table makes them
// (they rely on the sizes; any other table is handed to the scalar kernel, so that the behaviour
// stays that kernel's).
inline bool rk_decode_table_ok(const DecodeTable& table) {
  if (!rk_decode_table_usable(table) || table.freq_cum_symbol.size() != 256) return false;
  return table.k > 12 || table.packed12.size() == (size_t{1} << table.k);
}

// A SIMD level's decode entry point: 32-lane blocks with a usable table go to
// `Level::template decode<K>` at the table's k, everything else to the scalar kernel.
template <typename Level>
inline Status rk_decode_32_lanes(const uint8_t* payload, size_t length, size_t count, uint32_t lanes, const DecodeTable& table, uint8_t* out) {
  if (lanes != kRansLanes || !rk_decode_table_ok(table)) return rans_decode_scalar(payload, length, count, lanes, table, out);
  switch (table.k) {
    case 10: return Level::template decode<10>(payload, length, count, table, out);
    case 11: return Level::template decode<11>(payload, length, count, table, out);
    case 12: return Level::template decode<12>(payload, length, count, table, out);
    case 13: return Level::template decode<13>(payload, length, count, table, out);
    case 14: return Level::template decode<14>(payload, length, count, table, out);
    default: return Level::template decode<15>(payload, length, count, table, out);
  }
}

// The scalar kernel's first checks, in its order: payload length, then the stored states of the
// block's `lanes` lanes (rans_lanes_valid must hold) into x[0, lanes).
inline Status rk_decode_begin(const uint8_t* payload, size_t length, size_t count, uint32_t lanes, uint32_t* x) {
  const size_t state_bytes = rans_state_bytes(lanes);
  if (length < state_bytes || length % 2 != 0 || length - state_bytes > 2 * count) return Status::BadBlock;
  for (uint32_t l = 0; l < lanes; l++) {
    x[l] = rk_load_u32(payload + 4 * l);
    if (x[l] < kRansL || x[l] >= (1u << 31)) return Status::BadFinalState;
  }
  return Status::Ok;
}

// Decodes symbols i .. count-1 with the spec's checked loop (the scalar kernel's tail too),
// continuing from the states x[0, lanes) and word offset `p` (both as the spec's loop would have
// them after symbol i-1; i need not be a multiple of `lanes`), then makes the final checks. Writes
// out[i ..] only up to the first error, as the spec's loop does. `table` must pass
// rk_decode_table_usable and `lanes` rans_lanes_valid.
inline Status rk_decode_finish(const uint8_t* payload, size_t length, size_t count, size_t i, size_t p, uint32_t lanes, uint32_t* x,
                               const DecodeTable& table, uint8_t* out) {
  const uint32_t k = table.k;
  const uint32_t mask = (1u << k) - 1;
  const uint32_t lane_mask = lanes - 1;
  const uint8_t* symbols = table.symbols.data();
  const RansFreqCum* freq_cum = table.freq_cum.data();
  for (; i < count; i++) {
    const uint32_t l = static_cast<uint32_t>(i) & lane_mask;
    uint32_t state = x[l];
    const uint32_t slot = state & mask;
    const uint32_t s = symbols[slot];
    state = freq_cum[s].freq * (state >> k) + slot - freq_cum[s].cum;
    if (state < kRansL) {
      if (p + 2 > length) return Status::BlockOverrun;
      state = (state << 16) | rk_load_u16(payload + p);
      p += 2;
    }
    x[l] = state;
    out[i] = static_cast<uint8_t>(s);
  }
  if (p != length) return Status::TrailingData;
  for (uint32_t l = 0; l < lanes; l++) {
    if (x[l] != kRansL) return Status::BadFinalState;
  }
  return Status::Ok;
}

// Bytes of payload a SIMD decoder needs left before it may decode 32 symbols with unchecked
// loads: 32 lanes can take one 16-bit word each, and every vector load of words stays inside the
// words those 32 lanes could take.
constexpr size_t kRansGroupBytes = 2 * kRansLanes;

// ---------------------------------------------------------------------------------------------
// Encoding
//
// The spec's step x' = floor(x / f) << k + (x mod f) + c equals x + c + q * (M - f) with
// q = floor(x / f). The encoders get q without dividing (Alverson, "Integer division using
// reciprocals", as in ryg_rans): with s = ceil(log2 f) and f >= 2,
//   rcp = ceil(2^(31+s) / f) < 2^32,  q = (x * rcp) >> 32 >> (s - 1).
// Exactness for every x < 2^31: write rcp * f = 2^(31+s) + e with 0 <= e <= f - 1 < 2^s (f <= 2^s).
// Then x * rcp / 2^(31+s) = x / f + x * e / (f * 2^(31+s)), and the last term is below 1/f because
// x * e < 2^31 * 2^s; x / f is at least 1/f below the next integer, so the floor is q. For f = 1,
// rcp = 2^32 - 1 and shift 0 give q' = x - 1 for every x >= 1, and the bias gets M - 1 more to make
// up for it: x + c + M - 1 + (x - 1)(M - 1) = x * M + c. Every x the encoder divides is in
// [1, f << (31 - k)), within both ranges. rans_kernels_test checks this for every f < 2^15 on the
// states around each multiple of f near 2^31 and on the renormalisation bounds.
//
// The renormalisation test x >= f << (31 - k) is done as (x & ~15) > limit with
// limit = (f << (31 - k)) - 16 | shift: f << (31 - k) is a multiple of 2^16, so for x < 2^31 both
// tests agree whatever the low 4 bits of limit hold, and those bits carry the shift.
struct RkEncSym {
  uint32_t rcp;        // 0 marks a symbol with f = 0 (not encodable)
  uint32_t bias_cmpl;  // bias (c, or c + M - 1 for f = 1) | (M - f) << 16
  uint32_t limit;      // ((f << (31 - k)) - 16) | shift
  uint32_t freq;       // f
};

inline RkEncSym rk_enc_sym(uint32_t f, uint32_t c, uint32_t k) {
  RkEncSym e{0, 0, 0, 0};
  if (f == 0) return e;
  const uint32_t m = 1u << k;
  uint32_t shift;
  uint32_t bias = c;
  if (f == 1) {
    e.rcp = 0xffffffffu;
    shift = 0;
    bias += m - 1;
  } else {
    uint32_t s = 0;
    while ((1u << s) < f) s++;
    e.rcp = static_cast<uint32_t>(((uint64_t{1} << (31 + s)) + f - 1) / f);
    shift = s - 1;
  }
  e.bias_cmpl = bias | ((m - f) << 16);
  e.limit = ((f << (31 - k)) - 16) | shift;
  e.freq = f;
  return e;
}

// True when `table` has the properties every table from build_encode_table has and the encoders'
// arithmetic needs: k in 10..15 and, for each symbol with f != 0, f and c below 2^k (so that the
// exactness argument above holds and bias and M - f fit 16 bits). The kernels hand any other table
// to the division loop of rans_encode_scalar, whose behaviour is the reference.
inline bool rk_encode_table_ok(const EncodeTable& table) {
  if (table.k < 10 || table.k > 15) return false;
  const uint32_t m = 1u << table.k;
  for (uint32_t s = 0; s < 256; s++) {
    if (table.freq[s] != 0 && (table.freq[s] >= m || table.cum[s] >= m)) return false;
  }
  return true;
}

// Fills enc[0..255] from `table` (rk_encode_table_ok must hold).
inline void rk_build_enc_syms(const EncodeTable& table, RkEncSym* enc) {
  for (uint32_t s = 0; s < 256; s++) enc[s] = rk_enc_sym(table.freq[s], table.cum[s], table.k);
}

// Below this many symbols the kernels hand over to rans_encode_scalar, whose division loop is then
// faster than building the 256 reciprocals.
constexpr size_t kRkEncodeMinCount = 1024;

// One scalar encoding step of lane state `state` with symbol entry `e` (rcp != 0); moves `*w`
// down by one word when the state renormalises.
inline uint32_t rk_encode_step(uint32_t state, const RkEncSym& e, uint8_t** w) {
  if ((state & ~15u) > e.limit) {
    *w -= 2;
    rk_store_u16(*w, static_cast<uint16_t>(state & 0xffff));
    state >>= 16;
  }
  const uint32_t q = static_cast<uint32_t>((static_cast<uint64_t>(state) * e.rcp) >> 32) >> (e.limit & 15);
  return state + (e.bias_cmpl & 0xffff) + q * (e.bias_cmpl >> 16);
}

// Encodes symbols count-1 down to `from` of a 32-lane block with the scalar step (the SIMD encoders
// use it for the last, partial group, which they meet first). Returns false on a symbol with f = 0.
inline bool rk_encode_range(const uint8_t* symbols, size_t from, size_t count, const RkEncSym* enc, uint32_t* x,
                            uint8_t** w) {
  for (size_t i = count; i-- > from;) {
    const RkEncSym& e = enc[symbols[i]];
    if (e.rcp == 0) return false;
    const uint32_t l = static_cast<uint32_t>(i) & (kRansLanes - 1);
    x[l] = rk_encode_step(x[l], e, w);
  }
  return true;
}

// Moves the words (written backwards, ending at out + rans_state_bytes(lanes) + 2 * count) up
// behind the states x[0, lanes), stores the states and the length: the payload layout of spec §10.2.
inline void rk_encode_finish(const uint32_t* x, size_t count, uint32_t lanes, uint8_t* out, const uint8_t* w, size_t* length) {
  const size_t state_bytes = rans_state_bytes(lanes);
  const uint8_t* end = out + state_bytes + 2 * count;
  const size_t words = static_cast<size_t>(end - w);
  std::memmove(out + state_bytes, w, words);
  std::memcpy(out, x, state_bytes);
  *length = state_bytes + words;
}

}  // namespace

}  // namespace qans
