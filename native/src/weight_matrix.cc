#include "weight_matrix.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "dot_rows.h"
#include "rans_dispatch.h"
#include "thread_pool.h"

namespace qans {
namespace {

// Products of fewer multiply-adds than this run on the calling thread alone: handing a share to
// the pool and waiting for it costs more than it saves.
constexpr size_t kParallelMultiplyAdds = size_t{1} << 17;

// Weights dequantised at a time: 16 KiB of binary32 for one input (the tile stays in L1 while it
// is used), 64 KiB for several (each tile then serves every input).
constexpr size_t kTileValuesOneInput = 4096;
constexpr size_t kTileValuesInputs = 16384;

// Each thread's buffers: a tile of dequantised weights and one block's decoded symbols. They grow
// to the largest size asked for and are kept, so a product allocates nothing once warm.
struct Scratch {
  std::vector<float> tile;
  std::vector<uint8_t> block;
};

Scratch& thread_scratch() {
  thread_local Scratch scratch;
  return scratch;
}

void run_items(size_t count, bool parallel, const std::function<void(size_t)>& item) {
  if (parallel) {
    parallel_for(count, item);
  } else {
    for (size_t i = 0; i < count; i++) item(i);
  }
}

// Rows [first, first + count) whose symbols start at `symbols`, dequantised a tile at a time (spec
// §8.3, the codec's own kernel) and multiplied with the n inputs.
void symbol_rows_product(const WeightMatrix& m, const uint8_t* symbols, size_t first, size_t count, const double* x, size_t n, float* out,
                         SimdLevel level) {
  const DotRowsFn dot = dot_rows_kernel(level);
  const size_t tile_rows = std::max<size_t>(1, (n > 1 ? kTileValuesInputs : kTileValuesOneInput) / m.cols);
  std::vector<float>& tile = thread_scratch().tile;
  if (tile.size() < tile_rows * m.cols) tile.resize(tile_rows * m.cols);
  for (size_t r = 0; r < count; r += tile_rows) {
    const size_t rows = std::min(tile_rows, count - r);
    dequantize(m.quant, symbols + r * m.cols, (first + r) * m.cols, rows * m.cols, tile.data(), level);
    dot(tile.data(), rows, m.cols, x, n, out + first + r, m.rows);
  }
}

// F32 and Symbols: rows in chunks, a few per thread so that uneven progress balances out.
void resident_product(const WeightMatrix& m, const double* x, size_t n, float* out, SimdLevel level, bool parallel) {
  const size_t per_chunk = std::max<size_t>(8, (m.rows + 4 * thread_count() - 1) / (4 * thread_count()));
  const size_t chunks = (m.rows + per_chunk - 1) / per_chunk;
  run_items(chunks, parallel, [&](size_t c) {
    const size_t first = c * per_chunk;
    const size_t count = std::min(per_chunk, m.rows - first);
    if (m.kind == WeightKind::F32) {
      dot_rows_kernel(level)(m.values + first * m.cols, count, m.cols, x, n, out + first, m.rows);
    } else {
      symbol_rows_product(m, m.symbols + first * m.cols, first, count, x, n, out, level);
    }
  });
}

Status decode_block(const WeightMatrix& m, const WeightBlock& block, uint8_t* out, SimdLevel level) {
  const uint8_t* payload = m.frame + block.payload_offset;
  switch (block.mode) {
    case BlockAction::Const:
      std::memset(out, block.header_param, block.count);
      return Status::Ok;
    case BlockAction::Raw:
      return unpack_bits(payload, block.payload_length, block.count, m.quant.bits, out, level);
    case BlockAction::Rans:
      return rans_decoder(level)(payload, block.payload_length, block.count, rans_lanes_of_code(block.header_param), *m.table, out);
    default:
      return Status::InvalidArgument;
  }
}

// Compressed: one block per item, decoded into the thread's scratch. Rows wholly inside the block
// are multiplied from there; the pieces of a row that crosses a block boundary are copied into
// `pieces` (one row of symbols per crossing row, each piece at its column), and those rows are
// multiplied once every block is done, so each row's sum runs over its columns in order whichever
// threads decoded its pieces.
ProductFailure compressed_product(const WeightMatrix& m, const double* x, size_t n, float* out, SimdLevel level, bool parallel) {
  const size_t cols = m.cols;
  const size_t block_size = size_t{1} << m.log2_block;
  const size_t block_count = m.blocks.size();
  std::vector<size_t> crossing;
  for (size_t b = 1; b < block_count; b++) {
    const size_t start = b * block_size;
    if (start % cols != 0 && (crossing.empty() || crossing.back() != start / cols)) crossing.push_back(start / cols);
  }
  std::vector<uint8_t> pieces(crossing.size() * cols);
  auto piece_of = [&](size_t row, size_t from, const uint8_t* symbols, size_t count) {
    const size_t slot = static_cast<size_t>(std::lower_bound(crossing.begin(), crossing.end(), row) - crossing.begin());
    std::memcpy(pieces.data() + slot * cols + (from - row * cols), symbols, count);
  };
  std::vector<Status> statuses(block_count, Status::Ok);
  run_items(block_count, parallel, [&](size_t b) {
    const WeightBlock& block = m.blocks[b];
    std::vector<uint8_t>& symbols = thread_scratch().block;
    if (symbols.size() < block.count) symbols.resize(block.count);
    const Status status = decode_block(m, block, symbols.data(), level);
    if (status != Status::Ok) {
      statuses[b] = status;
      return;
    }
    const size_t start = b * block_size;
    const size_t end = start + block.count;
    const size_t first_row = start / cols;
    const size_t last_row = (end - 1) / cols;
    size_t whole_first = first_row;
    size_t whole_end = last_row + 1;
    if (start != first_row * cols || end < (first_row + 1) * cols) {
      piece_of(first_row, start, symbols.data(), std::min(end, (first_row + 1) * cols) - start);
      whole_first = first_row + 1;
    }
    if (last_row >= whole_first && end < (last_row + 1) * cols) {
      piece_of(last_row, last_row * cols, symbols.data() + (last_row * cols - start), end - last_row * cols);
      whole_end = last_row;
    }
    if (whole_first < whole_end) {
      symbol_rows_product(m, symbols.data() + (whole_first * cols - start), whole_first, whole_end - whole_first, x, n, out, level);
    }
  });
  for (size_t b = 0; b < block_count; b++) {
    if (statuses[b] != Status::Ok) return {statuses[b], b};
  }
  const bool parallel_rows = parallel && crossing.size() * cols * n >= kParallelMultiplyAdds;
  run_items(crossing.size(), parallel_rows, [&](size_t slot) { symbol_rows_product(m, pieces.data() + slot * cols, crossing[slot], 1, x, n, out, level); });
  return {};
}

}  // namespace

std::string check_weight_matrix(const WeightMatrix& m) {
  if (m.cols != 0 && m.rows > (size_t{1} << 53) / m.cols) return "rows x cols is beyond 2^53";
  const size_t elements = m.rows * m.cols;
  if (m.kind == WeightKind::F32) return m.values == nullptr && elements > 0 ? "no values" : "";
  const DequantParams& q = m.quant;
  if (q.rows != m.rows || q.cols != m.cols) return "the quantisation parameters are for another shape";
  if (q.bits < 2 || q.bits > 8) return "bits must be from 2 to 8";
  if (q.group_size > (uint64_t{1} << 24)) return "group size must be 0 or at most 2^24";
  if (q.deltas == nullptr && elements > 0) return "no deltas";
  if (m.kind == WeightKind::Symbols) return m.symbols == nullptr && elements > 0 ? "no symbols" : "";
  if (m.kind != WeightKind::Compressed) return "unknown kind";
  if (m.log2_block < 12 || m.log2_block > 20) return "log2 of the block size must be from 12 to 20";
  const size_t block_size = size_t{1} << m.log2_block;
  if (m.blocks.size() != (elements + block_size - 1) / block_size) return "the block count does not match the symbol count";
  for (size_t b = 0; b < m.blocks.size(); b++) {
    const WeightBlock& block = m.blocks[b];
    const std::string where = "block " + std::to_string(b) + ": ";
    if (block.count != std::min(block_size, elements - b * block_size)) return where + "wrong symbol count";
    if (block.payload_offset > m.frame_length || block.payload_length > m.frame_length - block.payload_offset) return where + "payload outside the frame";
    switch (block.mode) {
      case BlockAction::Const:
        if ((block.header_param >> q.bits) != 0) return where + "CONST symbol wider than the stream";
        break;
      case BlockAction::Raw:
        break;
      case BlockAction::Rans:
        if (m.table == nullptr) return where + "RANS block without a table";
        if (rans_lanes_of_code(block.header_param) == 0) return where + "lane code above 5";
        break;
      default:
        return where + "mode must be RAW, CONST or RANS";
    }
  }
  return "";
}

ProductFailure weight_product(const WeightMatrix& m, const float* xs, size_t n, float* out, SimdLevel level) {
  if (m.rows == 0 || n == 0) return {};
  if (m.cols == 0) {
    // Empty sums: +0, as the order's partial sums start.
    std::fill(out, out + m.rows * n, 0.0f);
    return {};
  }
  // Every input converted to binary64 once (exactly), rather than once per row.
  thread_local std::vector<double> inputs;
  inputs.resize(n * m.cols);
  for (size_t i = 0; i < n * m.cols; i++) inputs[i] = xs[i];
  const bool parallel = m.rows * m.cols * n >= kParallelMultiplyAdds;
  if (m.kind == WeightKind::Compressed) return compressed_product(m, inputs.data(), n, out, level, parallel);
  resident_product(m, inputs.data(), n, out, level, parallel);
  return {};
}

}  // namespace qans
