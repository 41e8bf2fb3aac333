// 32-lane interleaved rANS exactly as spec/qans-v1.md §10.2: u32 states in [2^15, 2^31), 16-bit
// little-endian renormalisation words, symbol i on lane i mod 32, probability scale 2^k (10..15).
// Every implementation here (scalar and each SIMD level) must produce identical bytes, identical
// symbols and identical statuses; tests compare them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "status.h"

namespace qans {

constexpr uint32_t kRansLanes = 32;
constexpr uint32_t kRansL = 1u << 15;
constexpr size_t kRansStateBytes = 4 * kRansLanes;

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

// Decodes `count` symbols from a RANS payload of `length` bytes into `out`. Checks, in the spec's
// order: stored states in [L, 2^31) (BadFinalState), no word read past the end (BlockOverrun), the
// word pointer exactly at the end (TrailingData), every lane back at L (BadFinalState). Never reads
// outside payload[0, length) and never writes outside out[0, count). A table not of the shape
// build_decode_table makes (k outside 10..15, `symbols` not of 2^k entries or `freq_cum` not of
// 256) gives InvalidArgument before anything else.
using RansDecodeFn = Status (*)(const uint8_t* payload, size_t length, size_t count, const DecodeTable& table, uint8_t* out);

// Encodes `count` symbols (each with a non-zero frequency) into `out`, which must hold
// kRansStateBytes + 2 * count bytes; sets `*length` to the payload length.
using RansEncodeFn = Status (*)(const uint8_t* symbols, size_t count, const EncodeTable& table, uint8_t* out, size_t* length);

Status rans_decode_scalar(const uint8_t* payload, size_t length, size_t count, const DecodeTable& table, uint8_t* out);
Status rans_encode_scalar(const uint8_t* symbols, size_t count, const EncodeTable& table, uint8_t* out, size_t* length);

}  // namespace qans
