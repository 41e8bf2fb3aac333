// The generic source of the non-rANS kernels. kernels_scalar.cc and kernels_<level>.cc each include
// it once, with QANS_KERNEL_TABLE naming the table to define and that level's compiler flags, so
// the compiler vectorises it for each instruction set; the CRC uses the SSE4.2 crc32 instruction
// when the flags allow it. Every level gives identical output (the tests compare them).
//
// Everything here has internal linkage and uses no standard-library templates: a function built
// with AVX-512 flags must never be merged by the linker with the scalar build's copy.
#ifndef QANS_KERNEL_TABLE
#error "define QANS_KERNEL_TABLE before including kernels_impl.h"
#endif

#include <cstdint>
#include <cstring>

#include "kernels.h"

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace qans {

namespace {

inline uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);  // Little-endian hosts only; the build rejects big-endian targets.
  return v;
}

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline void store64(uint8_t* p, uint64_t v) {
  std::memcpy(p, &v, 8);
}

inline size_t min_size(size_t a, size_t b) {
  return a < b ? a : b;
}

// ---- CRC32C (spec §2) ---------------------------------------------------------------------------

#if defined(__SSE4_2__)

// Three independent crc32 chains over adjacent segments hide the instruction's latency; the
// segment CRCs are then joined by advancing the earlier ones over the later segments' lengths.
template <size_t Segment>
inline uint32_t crc_three_way(uint32_t crc, const uint8_t* p, const uint32_t (&zeros)[4][256]) {
  uint64_t c0 = crc, c1 = 0, c2 = 0;
  for (size_t i = 0; i < Segment; i += 8) {
    c0 = _mm_crc32_u64(c0, load64(p + i));
    c1 = _mm_crc32_u64(c1, load64(p + Segment + i));
    c2 = _mm_crc32_u64(c2, load64(p + 2 * Segment + i));
  }
  uint32_t joined = crc_shift(zeros, static_cast<uint32_t>(c0)) ^ static_cast<uint32_t>(c1);
  return crc_shift(zeros, joined) ^ static_cast<uint32_t>(c2);
}

uint32_t crc_update(uint32_t crc, const uint8_t* p, size_t n) {
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    crc = _mm_crc32_u8(crc, *p++);
    n--;
  }
  if (n >= 3 * kCrcShort) {
    const CrcTables& tables = crc_tables();
    for (; n >= 3 * kCrcLong; p += 3 * kCrcLong, n -= 3 * kCrcLong) crc = crc_three_way<kCrcLong>(crc, p, tables.zeros_long);
    for (; n >= 3 * kCrcShort; p += 3 * kCrcShort, n -= 3 * kCrcShort) crc = crc_three_way<kCrcShort>(crc, p, tables.zeros_short);
  }
  uint64_t c = crc;
  for (; n >= 8; p += 8, n -= 8) c = _mm_crc32_u64(c, load64(p));
  crc = static_cast<uint32_t>(c);
  for (; n > 0; n--) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}

#else

// Slicing-by-8, the same lookups as sdk/codec/crc32c.ts.
uint32_t crc_update(uint32_t crc, const uint8_t* p, size_t n) {
  const uint32_t(&t)[8][256] = crc_tables().slice;
  for (; n >= 8; p += 8, n -= 8) {
    const uint32_t a = crc ^ load32(p);
    crc = t[7][a & 0xff] ^ t[6][(a >> 8) & 0xff] ^ t[5][(a >> 16) & 0xff] ^ t[4][a >> 24] ^ t[3][p[4]] ^ t[2][p[5]] ^
          t[1][p[6]] ^ t[0][p[7]];
  }
  for (; n > 0; n--) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
  return crc;
}

#endif

// ---- Histogram ----------------------------------------------------------------------------------

// Four interleaved tables break the store-to-load chain between equal neighbours; chunks below
// 2^32 symbols per table keep the 32-bit counters from overflowing before they are flushed.
void histogram_impl(const uint8_t* symbols, size_t count, uint64_t* counts) {
  uint32_t sub[4][256];
  const size_t chunk = size_t{1} << 30;
  for (size_t start = 0; start < count; start += chunk) {
    std::memset(sub, 0, sizeof sub);
    const size_t stop = min_size(count, start + chunk);
    size_t i = start;
    for (; i + 8 <= stop; i += 8) {
      const uint64_t v = load64(symbols + i);
      sub[0][v & 0xff]++;
      sub[1][(v >> 8) & 0xff]++;
      sub[2][(v >> 16) & 0xff]++;
      sub[3][(v >> 24) & 0xff]++;
      sub[0][(v >> 32) & 0xff]++;
      sub[1][(v >> 40) & 0xff]++;
      sub[2][(v >> 48) & 0xff]++;
      sub[3][v >> 56]++;
    }
    for (; i < stop; i++) sub[0][symbols[i]]++;
    for (int s = 0; s < 256; s++) counts[s] += uint64_t{sub[0][s]} + sub[1][s] + sub[2][s] + sub[3][s];
  }
}

// ---- Bit packing (spec §9) ----------------------------------------------------------------------

uint32_t or_all(const uint8_t* symbols, size_t count) {
  uint8_t seen = 0;
  for (size_t i = 0; i < count; i++) seen |= symbols[i];
  return seen;
}

// Eight symbols fill exactly W bytes: whole groups are built in a 64-bit word and stored with one
// 8-byte write (the bytes past W are overwritten by the next group), while 8 bytes fit.
template <uint32_t W>
void pack_fixed(const uint8_t* symbols, size_t count, uint8_t* out) {
  const size_t size = (count * W + 7) / 8;
  size_t i = 0, o = 0;
  for (; i + 8 <= count && o + 8 <= size; i += 8, o += W) {
    uint64_t acc = 0;
    for (uint32_t j = 0; j < 8; j++) acc |= static_cast<uint64_t>(symbols[i + j]) << (j * W);
    store64(out + o, acc);
  }
  uint32_t acc = 0, bits = 0;
  for (; i < count; i++) {
    acc |= static_cast<uint32_t>(symbols[i]) << bits;
    bits += W;
    if (bits >= 8) {
      out[o++] = static_cast<uint8_t>(acc);
      acc >>= 8;
      bits -= 8;
    }
  }
  if (bits > 0) out[o] = static_cast<uint8_t>(acc);
}

void pack_nibbles(const uint8_t* symbols, size_t count, uint8_t* out) {
  const size_t pairs = count / 2;
  for (size_t j = 0; j < pairs; j++) out[j] = static_cast<uint8_t>(symbols[2 * j] | (symbols[2 * j + 1] << 4));
  if (count & 1) out[pairs] = symbols[count - 1];
}

uint32_t pack_impl(const uint8_t* symbols, size_t count, uint32_t width, uint8_t* out) {
  switch (width) {
    case 1: pack_fixed<1>(symbols, count, out); break;
    case 2: pack_fixed<2>(symbols, count, out); break;
    case 3: pack_fixed<3>(symbols, count, out); break;
    case 4: pack_nibbles(symbols, count, out); break;
    case 5: pack_fixed<5>(symbols, count, out); break;
    case 6: pack_fixed<6>(symbols, count, out); break;
    case 7: pack_fixed<7>(symbols, count, out); break;
    default:
      if (count > 0) std::memcpy(out, symbols, count);
      break;
  }
  return or_all(symbols, count);
}

template <uint32_t W>
void unpack_fixed(const uint8_t* payload, size_t count, uint8_t* out) {
  const size_t size = (count * W + 7) / 8;
  constexpr uint64_t mask = (uint64_t{1} << W) - 1;
  size_t i = 0, o = 0;
  for (; i + 8 <= count && o + 8 <= size; i += 8, o += W) {
    const uint64_t v = load64(payload + o);
    for (uint32_t j = 0; j < 8; j++) out[i + j] = static_cast<uint8_t>((v >> (j * W)) & mask);
  }
  uint32_t acc = 0, bits = 0;
  for (; i < count; i++) {
    if (bits < W) {
      acc |= static_cast<uint32_t>(payload[o++]) << bits;
      bits += 8;
    }
    out[i] = static_cast<uint8_t>(acc & mask);
    acc >>= W;
    bits -= W;
  }
}

void unpack_nibbles(const uint8_t* payload, size_t count, uint8_t* out) {
  const size_t pairs = count / 2;
  for (size_t j = 0; j < pairs; j++) {
    const uint8_t b = payload[j];
    out[2 * j] = b & 0x0f;
    out[2 * j + 1] = b >> 4;
  }
  if (count & 1) out[count - 1] = payload[pairs] & 0x0f;
}

void unpack_impl(const uint8_t* payload, size_t count, uint32_t width, uint8_t* out) {
  switch (width) {
    case 1: unpack_fixed<1>(payload, count, out); break;
    case 2: unpack_fixed<2>(payload, count, out); break;
    case 3: unpack_fixed<3>(payload, count, out); break;
    case 4: unpack_nibbles(payload, count, out); break;
    case 5: unpack_fixed<5>(payload, count, out); break;
    case 6: unpack_fixed<6>(payload, count, out); break;
    case 7: unpack_fixed<7>(payload, count, out); break;
    default:
      if (count > 0) std::memcpy(out, payload, count);
      break;
  }
}

// ---- Float planes (spec §8.2) -------------------------------------------------------------------

// Each element is loaded whole, so the compiler vectorises with 16- or 32-bit lanes and narrows
// each plane's byte out of them (byte-wise loads with stride 2 or 4 vectorise poorly).
inline uint16_t load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void split_impl(PlaneType type, const uint8_t* bytes, size_t n, uint8_t* const* planes) {
  switch (type) {
    case PlaneType::BF16: {
      uint8_t* __restrict p0 = planes[0];
      uint8_t* __restrict p1 = planes[1];
      for (size_t i = 0; i < n; i++) {
        const uint32_t v = load16(bytes + 2 * i);
        p0[i] = static_cast<uint8_t>(v >> 7);
        p1[i] = static_cast<uint8_t>(((v >> 8) & 0x80) | (v & 0x7f));
      }
      return;
    }
    case PlaneType::F16: {
      uint8_t* __restrict p0 = planes[0];
      uint8_t* __restrict p1 = planes[1];
      uint8_t* __restrict p2 = planes[2];
      for (size_t i = 0; i < n; i++) {
        const uint32_t v = load16(bytes + 2 * i);
        p0[i] = static_cast<uint8_t>((v >> 10) & 0x1f);
        p1[i] = static_cast<uint8_t>(v);
        p2[i] = static_cast<uint8_t>(((v >> 13) & 0x4) | ((v >> 8) & 0x3));
      }
      return;
    }
    case PlaneType::F32: {
      uint8_t* __restrict p0 = planes[0];
      uint8_t* __restrict p1 = planes[1];
      uint8_t* __restrict p2 = planes[2];
      uint8_t* __restrict p3 = planes[3];
      for (size_t i = 0; i < n; i++) {
        const uint32_t v = load32(bytes + 4 * i);
        p0[i] = static_cast<uint8_t>(v >> 23);
        p1[i] = static_cast<uint8_t>(v);
        p2[i] = static_cast<uint8_t>(v >> 8);
        p3[i] = static_cast<uint8_t>(((v >> 24) & 0x80) | ((v >> 16) & 0x7f));
      }
      return;
    }
  }
}

void merge_impl(PlaneType type, const uint8_t* const* planes, size_t n, uint8_t* out) {
  switch (type) {
    case PlaneType::BF16: {
      const uint8_t* __restrict p0 = planes[0];
      const uint8_t* __restrict p1 = planes[1];
      uint8_t* __restrict o = out;
      for (size_t i = 0; i < n; i++) {
        const uint8_t s0 = p0[i];
        const uint8_t s1 = p1[i];
        o[2 * i] = static_cast<uint8_t>(((s0 & 1) << 7) | (s1 & 0x7f));
        o[2 * i + 1] = static_cast<uint8_t>((s1 & 0x80) | (s0 >> 1));
      }
      return;
    }
    case PlaneType::F16: {
      const uint8_t* __restrict p0 = planes[0];
      const uint8_t* __restrict p1 = planes[1];
      const uint8_t* __restrict p2 = planes[2];
      uint8_t* __restrict o = out;
      for (size_t i = 0; i < n; i++) {
        const uint8_t s2 = p2[i];
        o[2 * i] = p1[i];
        o[2 * i + 1] = static_cast<uint8_t>(((s2 & 0x4) << 5) | ((p0[i] & 0x1f) << 2) | (s2 & 0x3));
      }
      return;
    }
    case PlaneType::F32: {
      const uint8_t* __restrict p0 = planes[0];
      const uint8_t* __restrict p1 = planes[1];
      const uint8_t* __restrict p2 = planes[2];
      const uint8_t* __restrict p3 = planes[3];
      uint8_t* __restrict o = out;
      for (size_t i = 0; i < n; i++) {
        const uint8_t s0 = p0[i];
        const uint8_t s3 = p3[i];
        o[4 * i] = p1[i];
        o[4 * i + 1] = p2[i];
        o[4 * i + 2] = static_cast<uint8_t>(((s0 & 1) << 7) | (s3 & 0x7f));
        o[4 * i + 3] = static_cast<uint8_t>((s3 & 0x80) | (s0 >> 1));
      }
      return;
    }
  }
}

// ---- Dequantisation (spec §8.3) -----------------------------------------------------------------

// p = (float)(u - z) * delta, then p / s[j]: binary32 multiply and divide, never fused (the build
// passes -ffp-contract=off) and never a reciprocal.
void dequantize_run(const uint8_t* __restrict symbols, size_t n, int32_t zero, float delta, float* __restrict out) {
  for (size_t i = 0; i < n; i++) out[i] = static_cast<float>(static_cast<int32_t>(symbols[i]) - zero) * delta;
}

void dequantize_run_scaled(const uint8_t* __restrict symbols, size_t n, int32_t zero, float delta, const float* __restrict scale,
                           float* __restrict out) {
  for (size_t i = 0; i < n; i++) {
    const float p = static_cast<float>(static_cast<int32_t>(symbols[i]) - zero) * delta;
    out[i] = p / scale[i];
  }
}

void dequantize_impl(const DequantParams& q, const uint8_t* symbols, uint64_t first, size_t count, float* out) {
  if (count == 0) return;
  const uint64_t cols = q.cols;
  const uint64_t groups = q.group_size == 0 ? 1 : (cols + q.group_size - 1) / q.group_size;
  const uint64_t width = q.group_size == 0 ? cols : q.group_size;
  const int32_t symmetric_zero = int32_t{1} << (q.bits - 1);
  uint64_t row = first / cols;
  uint64_t j = first - row * cols;
  size_t k = 0;
  while (k < count) {
    const uint64_t g = j / width;
    uint64_t boundary = (g + 1) * width;
    if (boundary > cols) boundary = cols;
    const size_t run = static_cast<size_t>(boundary - j < count - k ? boundary - j : count - k);
    const uint64_t at = row * groups + g;
    const float delta = q.deltas[at];
    const int32_t zero = q.zero_points ? static_cast<int32_t>(q.zero_points[at]) : symmetric_zero;
    if (q.input_scale == nullptr) {
      dequantize_run(symbols + k, run, zero, delta, out + k);
    } else {
      dequantize_run_scaled(symbols + k, run, zero, delta, q.input_scale + j, out + k);
    }
    k += run;
    j += run;
    if (j == cols) {
      j = 0;
      row++;
    }
  }
}

}  // namespace

extern const KernelTable QANS_KERNEL_TABLE;
const KernelTable QANS_KERNEL_TABLE = {
    crc_update, histogram_impl, pack_impl, unpack_impl, split_impl, merge_impl, dequantize_impl,
};

}  // namespace qans
