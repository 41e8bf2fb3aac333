// Interleaved rANS exactly as spec/qans-v1.md §10.2: N = 32 >> c lanes (c the block's lane code,
// 0..5, §9) of u32 states in [2^15, 2^31), 16-bit little-endian renormalisation words, symbol i on
// lane i mod N, probability scale 2^k (10..15). Every implementation here (scalar and each SIMD
// level) must produce identical bytes, identical symbols and identical statuses; tests compare
// them. The SIMD kernels have their own code for 32 lanes only and hand fewer lanes (which the
// reference writer uses for blocks below 2^15 symbols, §15) to the scalar kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "status.h"

namespace qans {

// The most lanes a block has (lane code 0), and the bytes of their stored final states.
constexpr uint32_t kRansLanes = 32;
constexpr uint32_t kRansL = 1u << 15;
constexpr size_t kRansStateBytes = 4 * kRansLanes;
// The largest lane code (§9): 32 >> 5 = 1 lane.
constexpr uint32_t kRansMaxLaneCode = 5;

// True for the lane counts a block can have: 32, 16, 8, 4, 2 and 1.
constexpr bool rans_lanes_valid(uint32_t lanes) {
  return lanes >= 1 && lanes <= kRansLanes && (lanes & (lanes - 1)) == 0;
}

// Bytes of the stored final states that open a RANS payload of `lanes` lanes.
constexpr size_t rans_state_bytes(uint32_t lanes) {
  return size_t{4} * lanes;
}

// The lanes of lane code `code` (0..5), or 0 for a code above 5.
constexpr uint32_t rans_lanes_of_code(uint32_t code) {
  return code <= kRansMaxLaneCode ? kRansLanes >> code : 0;
}

// The lane code of a valid lane count (rans_lanes_valid).
constexpr uint32_t rans_lane_code(uint32_t lanes) {
  uint32_t code = 0;
  while (code < kRansMaxLaneCode && (kRansLanes >> code) > lanes) code++;
  return code;
}

// Spec §15 step 4: the lanes the reference writer gives a block of `count` symbols,
// 2^min(5, max(0, floor(log2 count) - 10)) (1 for count 0), as referenceLanes in sdk/codec/rans.ts.
constexpr uint32_t rans_reference_lanes(size_t count) {
  uint32_t log2 = 0;
  while (log2 < 63 && (count >> (log2 + 1)) != 0) log2++;
  const uint32_t shift = log2 > 10 ? log2 - 10 : 0;
  return 1u << (shift < 5 ? shift : 5);
}

// The frequency and the cumulative frequency of one symbol.
struct RansFreqCum {
  uint32_t freq;
  uint32_t cum;
};

// Decoding lookups for one frequency table, built once and shared by every block of a stream.
// build_decode_table fills every field but `freq_bias`, and `packed12` only for k <= 12: 2^k + 4
// KiB, plus 2^(k+2) for k <= 12 (36 KiB at k = 15, 24 KiB at k = 12), which keeps the lookups in
// or mostly in a 32 KiB L1.
struct DecodeTable {
  uint32_t k = 0;
  // Per slot (2^k entries): the slot's symbol.
  std::vector<uint8_t> symbols;
  // Per symbol (256 entries): f and cum (both zero for an absent symbol). With s = symbols[slot],
  // a step is x' = f * (x >> k) + slot - cum: two dependent L1 loads. The scalar kernel's lookup
  // (two 32-bit fields, which it takes as memory operands) and the checked tail of every kernel.
  std::vector<RansFreqCum> freq_cum;
  // Per symbol (256 entries): f | cum << 32 | symbol << 48, so that one 64-bit load gives f, cum
  // and the symbol in a vector lane (the SIMD decoders' second lookup for k > 12).
  std::vector<uint64_t> freq_cum_symbol;
  // For k <= 12 only (else empty): per slot f | (slot - cum) << 12 | symbol << 24, so that one
  // 32-bit load gives all three (the SIMD decoders' lookup there; the scalar one uses the two
  // above at every k). f < 2^12 holds because a table never gives one symbol all of 2^k.
  std::vector<uint32_t> packed12;
  // No longer filled (always empty): the per-slot f | (slot - cum) << 16 of earlier versions,
  // 4 bytes a slot (128 KiB at k = 15, out of L1). Kept so that code summing the vectors' sizes
  // still compiles; bytes() gives the table's memory.
  std::vector<uint32_t> freq_bias;

  // Heap bytes held by the table.
  size_t bytes() const {
    return symbols.size() + sizeof(RansFreqCum) * freq_cum.size() + 8 * freq_cum_symbol.size() +
           4 * (packed12.size() + freq_bias.size());
  }
};

// Frequencies of one stream, as the encoder needs them.
struct EncodeTable {
  uint32_t k = 0;
  uint32_t freq[256] = {};
  uint32_t cum[256] = {};
};

// Builds the tables from frequencies of `alphabet` symbols that sum to 2^k (checked: BadFreqTable).
Status build_decode_table(const uint32_t* freqs, uint32_t alphabet, uint32_t k, DecodeTable* table);
Status build_encode_table(const uint32_t* freqs, uint32_t alphabet, uint32_t k, EncodeTable* table);

// Decodes `count` symbols on `lanes` lanes from a RANS payload of `length` bytes into `out`.
// Checks, in the spec's order: the payload length, even and within [4N, 4N + 2 * count]
// (BadBlock), stored states in [L, 2^31) (BadFinalState), no word read past the end
// (BlockOverrun), the word pointer exactly at the end (TrailingData), every lane back at L
// (BadFinalState). Never reads outside payload[0, length) and never writes outside out[0, count).
// A table not of the shape build_decode_table makes (k outside 10..15, `symbols` not of 2^k
// entries or `freq_cum` not of 256), or a lane count that rans_lanes_valid rejects, gives
// InvalidArgument before anything else.
using RansDecodeFn = Status (*)(const uint8_t* payload, size_t length, size_t count, uint32_t lanes, const DecodeTable& table, uint8_t* out);

// Encodes `count` symbols (each with a non-zero frequency) on `lanes` lanes into `out`, which must
// hold rans_state_bytes(lanes) + 2 * count bytes; sets `*length` to the payload length. A lane
// count that rans_lanes_valid rejects gives InvalidArgument, before anything is written.
using RansEncodeFn = Status (*)(const uint8_t* symbols, size_t count, uint32_t lanes, const EncodeTable& table, uint8_t* out, size_t* length);

Status rans_decode_scalar(const uint8_t* payload, size_t length, size_t count, uint32_t lanes, const DecodeTable& table, uint8_t* out);
Status rans_encode_scalar(const uint8_t* symbols, size_t count, uint32_t lanes, const EncodeTable& table, uint8_t* out, size_t* length);

}  // namespace qans
