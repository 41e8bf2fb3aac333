// Weight matrices as the inference engine holds them, and their products with input vectors
// (sdk/infer/linear-*.ts): decoded binary32 values, int-quant symbols dequantised row by row as
// they are used, or a tensor frame's encoded blocks decoded one block at a time into a small
// scratch buffer, so that a compressed matrix never exists decoded as a whole. All three compute
// every output with dot_rows.h's order from the same binary32 weights (spec §8.3), so their
// products are identical, bit for bit, at every dispatch level and however rows are spread over
// threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "block_jobs.h"
#include "kernels.h"
#include "rans.h"
#include "simd_level.h"
#include "status.h"

namespace qans {

enum class WeightKind : uint8_t { F32 = 0, Symbols = 1, Compressed = 2 };

// One block of a compressed matrix's single stream (spec §9): RAW, CONST or RANS.
struct WeightBlock {
  // Within the frame bytes.
  size_t payload_offset = 0;
  size_t payload_length = 0;
  BlockAction mode = BlockAction::Raw;
  // Byte 1 of the block header: the CONST symbol or the RANS lane code.
  uint8_t header_param = 0;
  size_t count = 0;
};

struct WeightMatrix {
  WeightKind kind = WeightKind::F32;
  size_t rows = 0;
  size_t cols = 0;
  // F32: rows x cols values.
  const float* values = nullptr;
  // Symbols: rows x cols symbols.
  const uint8_t* symbols = nullptr;
  // Symbols and Compressed: the int-quant parameters (rows and cols as above).
  DequantParams quant;
  // Compressed: the tensor frame as read from the file, and its blocks in order, each of
  // 2^log2_block symbols but the last. `table` is null when no block is RANS.
  const uint8_t* frame = nullptr;
  size_t frame_length = 0;
  uint32_t log2_block = 17;
  std::vector<WeightBlock> blocks;
  const DecodeTable* table = nullptr;
};

// Empty when the matrix's fields are consistent (lengths are the caller's: every pointer must hold
// what the fields say); otherwise what is wrong. Run before weight_product.
std::string check_weight_matrix(const WeightMatrix& matrix);

// The first block that failed to decode, for the error message.
struct ProductFailure {
  Status status = Status::Ok;
  size_t block = 0;
};

// out[i * rows + r] = row r of the matrix . input i, for the n inputs xs[i * cols, (i + 1) * cols),
// on this thread and the pool's (one thread for small products). A compressed matrix's blocks are
// decoded on the way; a block that fails gives its status (out is then unspecified).
ProductFailure weight_product(const WeightMatrix& matrix, const float* xs, size_t n, float* out, SimdLevel level);

}  // namespace qans
