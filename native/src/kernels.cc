// Level selection and the argument-independent checks around the kernels of kernels_impl.h.
#include "kernels.h"

#include <cstring>

namespace qans {

extern const KernelTable kKernelsScalar;
#if defined(QANS_COMPILED_SSE41)
extern const KernelTable kKernelsSse41;
#endif
#if defined(QANS_COMPILED_AVX2)
extern const KernelTable kKernelsAvx2;
#endif
#if defined(QANS_COMPILED_AVX512)
extern const KernelTable kKernelsAvx512;
#endif

const KernelTable& kernel_table(SimdLevel level) {
  switch (level) {
    case SimdLevel::Avx512:
#if defined(QANS_COMPILED_AVX512)
      return kKernelsAvx512;
#endif
      [[fallthrough]];
    case SimdLevel::Avx2:
#if defined(QANS_COMPILED_AVX2)
      return kKernelsAvx2;
#endif
      [[fallthrough]];
    case SimdLevel::Sse41:
#if defined(QANS_COMPILED_SSE41)
      return kKernelsSse41;
#endif
      [[fallthrough]];
    case SimdLevel::Scalar:
      break;
  }
  return kKernelsScalar;
}

namespace {

constexpr uint32_t kCrcPoly = 0x82f63b78u;  // CRC-32C, reflected.

// The register after `zeros` zero bytes, starting from `crc`, one table lookup per byte.
uint32_t advance_over_zeros(const uint32_t (&byte_table)[256], uint32_t crc, size_t zeros) {
  for (size_t i = 0; i < zeros; i++) crc = (crc >> 8) ^ byte_table[crc & 0xff];
  return crc;
}

// Advancing over zero bytes is linear in the register, so it is fixed by its effect on each of the
// 32 register bits; byte b of the register selects the XOR of its bits' images.
void build_zeros_table(const uint32_t (&byte_table)[256], size_t zeros, uint32_t (&out)[4][256]) {
  uint32_t image[32];
  for (int bit = 0; bit < 32; bit++) image[bit] = advance_over_zeros(byte_table, 1u << bit, zeros);
  for (int t = 0; t < 4; t++) {
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t v = 0;
      for (int i = 0; i < 8; i++) {
        if ((b >> i) & 1) v ^= image[8 * t + i];
      }
      out[t][b] = v;
    }
  }
}

CrcTables* build_crc_tables() {
  static CrcTables tables;
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int b = 0; b < 8; b++) c = (c & 1) ? (c >> 1) ^ kCrcPoly : c >> 1;
    tables.slice[0][n] = c;
  }
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = tables.slice[0][n];
    for (int s = 1; s < 8; s++) {
      c = (c >> 8) ^ tables.slice[0][c & 0xff];
      tables.slice[s][n] = c;
    }
  }
  build_zeros_table(tables.slice[0], kCrcLong, tables.zeros_long);
  build_zeros_table(tables.slice[0], kCrcShort, tables.zeros_short);
  return &tables;
}

}  // namespace

const CrcTables& crc_tables() {
  static const CrcTables* tables = build_crc_tables();
  return *tables;
}

uint32_t crc_shift(const uint32_t (&zeros)[4][256], uint32_t crc) {
  return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

uint32_t crc32c(const uint8_t* data, size_t length, uint32_t previous, SimdLevel level) {
  return ~kernel_table(level).crc32c_update(~previous, data, length);
}

void histogram(const uint8_t* symbols, size_t count, uint64_t* counts, SimdLevel level) {
  kernel_table(level).histogram(symbols, count, counts);
}

size_t packed_size(size_t count, uint32_t width) {
  // count * width / 8 without overflowing for any count below 2^61.
  return (count / 8) * width + ((count % 8) * width + 7) / 8;
}

Status pack_bits(const uint8_t* symbols, size_t count, uint32_t width, uint8_t* out, SimdLevel level) {
  if (width < 1 || width > 8) return Status::InvalidArgument;
  const uint32_t seen = kernel_table(level).pack_bits(symbols, count, width, out);
  return (seen >> width) == 0 ? Status::Ok : Status::InvalidArgument;
}

Status unpack_bits(const uint8_t* payload, size_t length, size_t count, uint32_t width, uint8_t* out, SimdLevel level) {
  if (width < 1 || width > 8) return Status::InvalidArgument;
  const size_t size = packed_size(count, width);
  if (length != size) return Status::BadBlock;
  const uint32_t used = static_cast<uint32_t>((count % 8) * width % 8);
  if (used != 0 && (payload[size - 1] >> used) != 0) return Status::NonzeroPadding;
  kernel_table(level).unpack_bits(payload, count, width, out);
  return Status::Ok;
}

void split_planes(PlaneType type, const uint8_t* bytes, size_t count, uint8_t* const* planes, SimdLevel level) {
  kernel_table(level).split_planes(type, bytes, count, planes);
}

void merge_planes(PlaneType type, const uint8_t* const* planes, size_t count, uint8_t* out, SimdLevel level) {
  kernel_table(level).merge_planes(type, planes, count, out);
}

void dequantize(const DequantParams& params, const uint8_t* symbols, uint64_t first, size_t count, float* out, SimdLevel level) {
  kernel_table(level).dequantize(params, symbols, first, count, out);
}

}  // namespace qans
