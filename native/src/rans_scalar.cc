// The scalar kernels: the reference every SIMD kernel is compared with, and the fallback.
#include <cstring>

#include "rans.h"
#include "rans_kernel_common.h"

namespace qans {

namespace {

// The state after renormalising y: (y << 16) | the word at *src when y < L (and then *src moves
// on by 2), else y. The word is read either way. Branch-free: whether a lane takes a word is as
// good as random, so a branch would be mispredicted about as often as it is taken.
inline uint32_t renorm_select(uint32_t y, const uint8_t** src) {
  const uint32_t renormed = (y << 16) | rk_load_u16(*src);
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  // Compilers turn the selects below into a branch; two conditional moves say what is meant.
  const uint8_t* next = *src + 2;
  __asm__("cmpl %[l], %[y]\n\t"
          "cmovb %[renormed], %[y]\n\t"
          "cmovb %[next], %[src]"
          : [y] "+r"(y), [src] "+r"(*src)
          : [renormed] "r"(renormed), [next] "r"(next), [l] "i"(kRansL)
          : "cc");
  return y;
#else
  const uint32_t take = 0u - static_cast<uint32_t>(y < kRansL);
  *src += take & 2;
  return y ^ ((y ^ renormed) & take);
#endif
}

// Whole groups of 32 symbols (one step of every lane) while at least 64 payload bytes are left:
// then each lane's next word can be read before knowing whether the lane takes it (the 32 lanes
// take at most 32 words, so every read stays below p + 64 <= length). No error can occur in these
// groups (the states need no check until the end, and no word is missing), so the symbols are
// those of the spec's loop. Returns the number of symbols decoded and moves *p on.
//
// Lookups: the slot's symbol, then the symbol's f and cum (y = f * (x >> k) + slot - cum), at
// every k: with k <= 12 the one load of packed12 was no faster. Lanes go in batches of eight, all
// eight steps before their renormalisations, which was measured faster than one lane at a time
// and than batches of four or sixteen.
template <uint32_t K>
size_t decode_groups(const uint8_t* payload, size_t length, size_t count, const DecodeTable& table, uint32_t* x, size_t* p,
                     uint8_t* out) {
  constexpr uint32_t kMask = (1u << K) - 1;
  constexpr uint32_t kBatch = 8;
  const uint8_t* symbols = table.symbols.data();
  const RansFreqCum* freq_cum = table.freq_cum.data();
  const uint8_t* src = payload + *p;
  const uint8_t* const end = payload + length;
  // The states in a local array: `x` is a parameter, so the byte stores through `out` (which may
  // alias anything) would force it to be reloaded after each.
  uint32_t st[kRansLanes];
  std::memcpy(st, x, sizeof st);
  size_t i = 0;
  while (count - i >= kRansLanes && static_cast<size_t>(end - src) >= kRansGroupBytes) {
    for (uint32_t l = 0; l < kRansLanes; l += kBatch) {
      uint32_t y[kBatch];
#pragma GCC unroll 8
      for (uint32_t t = 0; t < kBatch; t++) {
        const uint32_t state = st[l + t];
        const uint32_t slot = state & kMask;
        const uint32_t s = symbols[slot];
        y[t] = freq_cum[s].freq * (state >> K) + slot - freq_cum[s].cum;
        out[i + l + t] = static_cast<uint8_t>(s);
      }
#pragma GCC unroll 8
      for (uint32_t t = 0; t < kBatch; t++) st[l + t] = renorm_select(y[t], &src);
    }
    i += kRansLanes;
  }
  std::memcpy(x, st, sizeof st);
  *p = static_cast<size_t>(src - payload);
  return i;
}

// Blocks of fewer than 32 lanes (the reference writer gives them to blocks below 2^15 symbols,
// spec §15): rounds of one step of every lane while at least 2 * lanes payload bytes are left, so
// that, as in decode_groups, each lane's next word can be read before knowing whether the lane
// takes it (a round takes at most `lanes` words, so every read stays below p + 2 * lanes <=
// length) and no error can occur. Returns the number of symbols decoded and moves *p on.
size_t decode_rounds(const uint8_t* payload, size_t length, size_t count, uint32_t lanes, const DecodeTable& table, uint32_t* x,
                     size_t* p, uint8_t* out) {
  const uint32_t k = table.k;
  const uint32_t mask = (1u << k) - 1;
  const uint8_t* symbols = table.symbols.data();
  const RansFreqCum* freq_cum = table.freq_cum.data();
  const uint8_t* src = payload + *p;
  const uint8_t* const end = payload + length;
  const size_t round_bytes = 2 * size_t{lanes};
  // The states in a local array, as in decode_groups.
  uint32_t st[kRansLanes];
  std::memcpy(st, x, 4 * size_t{lanes});
  size_t i = 0;
  while (count - i >= lanes && static_cast<size_t>(end - src) >= round_bytes) {
    for (uint32_t l = 0; l < lanes; l++) {
      const uint32_t state = st[l];
      const uint32_t slot = state & mask;
      const uint32_t s = symbols[slot];
      const uint32_t y = freq_cum[s].freq * (state >> k) + slot - freq_cum[s].cum;
      out[i + l] = static_cast<uint8_t>(s);
      st[l] = renorm_select(y, &src);
    }
    i += lanes;
  }
  std::memcpy(x, st, 4 * size_t{lanes});
  *p = static_cast<size_t>(src - payload);
  return i;
}

}  // namespace

// The spec's loop (§10.2): whole rounds (decode_groups for 32 lanes, decode_rounds for fewer)
// while enough payload is left, then the checked loop of rk_decode_finish for the rest and the
// final checks.
Status rans_decode_scalar(const uint8_t* payload, size_t length, size_t count, uint32_t lanes, const DecodeTable& table, uint8_t* out) {
  if (!rk_decode_table_usable(table) || !rans_lanes_valid(lanes)) return Status::InvalidArgument;
  uint32_t x[kRansLanes];
  const Status status = rk_decode_begin(payload, length, count, lanes, x);
  if (status != Status::Ok) return status;
  size_t p = rans_state_bytes(lanes);
  size_t i = 0;
  if (lanes != kRansLanes) {
    i = decode_rounds(payload, length, count, lanes, table, x, &p, out);
    return rk_decode_finish(payload, length, count, i, p, lanes, x, table, out);
  }
  switch (table.k) {
    case 10: i = decode_groups<10>(payload, length, count, table, x, &p, out); break;
    case 11: i = decode_groups<11>(payload, length, count, table, x, &p, out); break;
    case 12: i = decode_groups<12>(payload, length, count, table, x, &p, out); break;
    case 13: i = decode_groups<13>(payload, length, count, table, x, &p, out); break;
    case 14: i = decode_groups<14>(payload, length, count, table, x, &p, out); break;
    default: i = decode_groups<15>(payload, length, count, table, x, &p, out); break;
  }
  return rk_decode_finish(payload, length, count, i, p, kRansLanes, x, table, out);
}

namespace {

// The division form of the spec's loop on N lanes: the reference arithmetic, used for tiny blocks
// (where building the reciprocal table would cost more than it saves) and for tables that
// rk_encode_table_ok rejects.
template <uint32_t N>
Status encode_dividing(const uint8_t* symbols, size_t count, const EncodeTable& table, uint8_t* out, size_t* length) {
  uint32_t x[N];
  for (uint32_t l = 0; l < N; l++) x[l] = kRansL;
  const uint32_t k = table.k;
  // Words are written backwards from the end of the worst-case buffer, then moved up behind the states.
  uint8_t* end = out + rans_state_bytes(N) + 2 * count;
  uint8_t* w = end;
  for (size_t i = count; i-- > 0;) {
    const uint32_t l = i & (N - 1);
    const uint32_t f = table.freq[symbols[i]];
    if (f == 0) return Status::InvalidArgument;
    uint32_t state = x[l];
    if (state >= (f << (31 - k))) {
      w -= 2;
      rk_store_u16(w, static_cast<uint16_t>(state & 0xffff));
      state >>= 16;
    }
    x[l] = ((state / f) << k) + (state % f) + table.cum[symbols[i]];
  }
  rk_encode_finish(x, count, N, out, w, length);
  return Status::Ok;
}

// The spec's loop on N lanes with the reciprocal division (rans_kernel_common.h).
template <uint32_t N>
Status encode_reciprocal(const uint8_t* symbols, size_t count, const EncodeTable& table, uint8_t* out, size_t* length) {
  RkEncSym enc[256];
  rk_build_enc_syms(table, enc);
  uint32_t x[N];
  for (uint32_t l = 0; l < N; l++) x[l] = kRansL;
  uint8_t* w = out + rans_state_bytes(N) + 2 * count;
  for (size_t i = count; i-- > 0;) {
    const RkEncSym e = enc[symbols[i]];
    if (e.rcp == 0) return Status::InvalidArgument;
    const uint32_t l = i & (N - 1);
    uint32_t state = x[l];
    // Branch-free renormalisation: the word is always stored below w (inside the buffer, since w
    // never goes below the states, which take at least 4 bytes), and w only moves when it is kept.
    const uint32_t emit = (state & ~15u) > e.limit ? 1 : 0;
    rk_store_u16(w - 2, static_cast<uint16_t>(state & 0xffff));
    w -= 2 * emit;
    state >>= 16 * emit;
    const uint32_t q = static_cast<uint32_t>((static_cast<uint64_t>(state) * e.rcp) >> 32) >> (e.limit & 15);
    x[l] = state + (e.bias_cmpl & 0xffff) + q * (e.bias_cmpl >> 16);
  }
  rk_encode_finish(x, count, N, out, w, length);
  return Status::Ok;
}

template <uint32_t N>
Status encode_lanes(const uint8_t* symbols, size_t count, const EncodeTable& table, uint8_t* out, size_t* length) {
  if (count < kRkEncodeMinCount || !rk_encode_table_ok(table)) return encode_dividing<N>(symbols, count, table, out, length);
  return encode_reciprocal<N>(symbols, count, table, out, length);
}

}  // namespace

Status rans_encode_scalar(const uint8_t* symbols, size_t count, uint32_t lanes, const EncodeTable& table, uint8_t* out, size_t* length) {
  switch (lanes) {
    case 32: return encode_lanes<32>(symbols, count, table, out, length);
    case 16: return encode_lanes<16>(symbols, count, table, out, length);
    case 8: return encode_lanes<8>(symbols, count, table, out, length);
    case 4: return encode_lanes<4>(symbols, count, table, out, length);
    case 2: return encode_lanes<2>(symbols, count, table, out, length);
    case 1: return encode_lanes<1>(symbols, count, table, out, length);
    default: return Status::InvalidArgument;
  }
}

}  // namespace qans
