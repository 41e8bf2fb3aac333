// The codec kernels other than rANS (spec §2, §8.2, §8.3, §9), each byte-identical to the
// TypeScript reference in sdk/codec and sdk/quant. kernels_impl.h holds one generic source that
// kernels_scalar.cc and each kernels_<level>.cc compile with that level's instruction set; this
// header gives the per-level tables and the checked entry points the binding calls.
#pragma once

#include <cstddef>
#include <cstdint>

#include "simd_level.h"
#include "status.h"

namespace qans {

// Element types of the float-planes encoding (spec §8.2).
enum class PlaneType : int { F32 = 0, F16 = 1, BF16 = 2 };

// Planes (streams) per element type: 4, 3, 2; bytes per element: 4, 2, 2. Internal linkage, like
// everything the per-level sources include, so that no copy built for one instruction set can be
// picked by the linker for another.
static inline uint32_t plane_count(PlaneType type) {
  return type == PlaneType::F32 ? 4 : type == PlaneType::F16 ? 3 : 2;
}
static inline uint32_t plane_element_size(PlaneType type) {
  return type == PlaneType::F32 ? 4 : 2;
}

// Parameters of one int-quant tensor (spec §8.3), already checked by the caller.
struct DequantParams {
  uint32_t bits = 8;
  // 0: one group per row.
  uint64_t group_size = 0;
  uint64_t rows = 0;
  uint64_t cols = 0;
  // rows x groups, row-major.
  const float* deltas = nullptr;
  // rows x groups, or null for symmetric parameters (zero point 2^(bits-1)).
  const uint8_t* zero_points = nullptr;
  // cols values, or null.
  const float* input_scale = nullptr;
};

// Function table of one level. `crc` works on the raw register (no pre- or post-inversion).
struct KernelTable {
  uint32_t (*crc32c_update)(uint32_t crc, const uint8_t* data, size_t length);
  // Adds the count of each byte value to counts[0, 256).
  void (*histogram)(const uint8_t* symbols, size_t count, uint64_t* counts);
  // Packs `count` symbols of `width` bits into out[0, ceil(count * width / 8)) and returns the OR of
  // all symbols (a symbol fits when OR >> width == 0; out is then meaningless otherwise).
  uint32_t (*pack_bits)(const uint8_t* symbols, size_t count, uint32_t width, uint8_t* out);
  // Unpacks `count` symbols of `width` bits; payload holds exactly ceil(count * width / 8) bytes.
  void (*unpack_bits)(const uint8_t* payload, size_t count, uint32_t width, uint8_t* out);
  void (*split_planes)(PlaneType type, const uint8_t* bytes, size_t count, uint8_t* const* planes);
  void (*merge_planes)(PlaneType type, const uint8_t* const* planes, size_t count, uint8_t* out);
  // Elements [first, first + count) of the flattened rows x cols matrix.
  void (*dequantize)(const DequantParams& params, const uint8_t* symbols, uint64_t first, size_t count, float* out);
};

// Levels without a table of their own (non-x86 builds) get the best lower one.
const KernelTable& kernel_table(SimdLevel level);

// Tables for the CRC32C kernels, built once on first use.
struct CrcTables {
  // Slicing-by-8: slice[t][b] is the register contribution of byte b followed by t zero bytes.
  uint32_t slice[8][256];
  // Register advance over kCrcLong / kCrcShort zero bytes, as four byte-indexed lookups.
  uint32_t zeros_long[4][256];
  uint32_t zeros_short[4][256];
};
constexpr size_t kCrcLong = 8192;
constexpr size_t kCrcShort = 256;
const CrcTables& crc_tables();
uint32_t crc_shift(const uint32_t (&zeros)[4][256], uint32_t crc);

// Checked entry points for the binding, at the current level unless given one.
uint32_t crc32c(const uint8_t* data, size_t length, uint32_t previous, SimdLevel level);
void histogram(const uint8_t* symbols, size_t count, uint64_t* counts, SimdLevel level);
size_t packed_size(size_t count, uint32_t width);
// InvalidArgument when a symbol does not fit the width.
Status pack_bits(const uint8_t* symbols, size_t count, uint32_t width, uint8_t* out, SimdLevel level);
// BadBlock unless length == packed_size(count, width); NonzeroPadding if a bit after the last symbol
// is set. `out` is untouched when a check fails.
Status unpack_bits(const uint8_t* payload, size_t length, size_t count, uint32_t width, uint8_t* out, SimdLevel level);
void split_planes(PlaneType type, const uint8_t* bytes, size_t count, uint8_t* const* planes, SimdLevel level);
void merge_planes(PlaneType type, const uint8_t* const* planes, size_t count, uint8_t* out, SimdLevel level);
void dequantize(const DequantParams& params, const uint8_t* symbols, uint64_t first, size_t count, float* out, SimdLevel level);

}  // namespace qans
