// Tests of the weight-matrix products (src/weight_matrix.h, src/dot_rows.h): for F32 values, int-quant
// symbols and compressed blocks, at every SIMD level the CPU has and on 1 and 2 threads, every
// output must equal, byte for byte, a direct transcription of the product order (dot_rows.h) over
// weights dequantised as spec/qans-v1.md §8.3 prescribes:
// - shapes with a row shorter than, equal to and longer than a 16-column run, rows that cross block
//   boundaries, rows longer than a block, a partial last block, one row, one column;
// - every bit width 2..8, one group per row and groups of 7 and 64 columns, symmetric and
//   asymmetric zero points, with and without a per-input-channel scale;
// - RAW, CONST and RANS blocks (RANS on the reference lane count and on fewer lanes);
// - 1, 3 and 64 inputs;
// - a corrupt RANS block reports its status and its index.
//
//   weight_matrix_test            the tests
//   weight_matrix_test --bench    time each holder on a 2048 x 768 int8 matrix, 1 and 64 inputs, one thread
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "../src/cpu.h"
#include "../src/dot_rows.h"
#include "../src/kernels.h"
#include "../src/rans.h"
#include "../src/rans_dispatch.h"
#include "../src/thread_pool.h"
#include "../src/weight_matrix.h"

namespace {

using namespace qans;

int g_passed = 0;
int g_failed = 0;

void expect(bool ok, const std::string& what) {
  if (ok) {
    g_passed++;
  } else {
    g_failed++;
    if (g_failed <= 20) std::printf("FAIL %s\n", what.c_str());
  }
}

// The product order of dot_rows.h, written out.
float reference_dot(const float* w, const float* x, size_t cols) {
  double partial[16] = {};
  for (size_t c = 0; c < cols; c++) partial[c % 16] += static_cast<double>(w[c]) * static_cast<double>(x[c]);
  for (size_t step = 8; step >= 1; step /= 2) {
    for (size_t j = 0; j < step; j++) partial[j] += partial[j + step];
  }
  return static_cast<float>(partial[0]);
}

// Spec §8.3, operation by operation.
std::vector<float> reference_dequantize(const DequantParams& q, const std::vector<uint8_t>& symbols) {
  std::vector<float> out(symbols.size());
  const size_t groups = q.group_size == 0 ? 1 : (q.cols + q.group_size - 1) / q.group_size;
  for (size_t i = 0; i < q.rows; i++) {
    for (size_t j = 0; j < q.cols; j++) {
      const size_t k = i * groups + (q.group_size == 0 ? 0 : j / q.group_size);
      const int32_t z = q.zero_points ? q.zero_points[k] : (1 << (q.bits - 1));
      const float a = static_cast<float>(static_cast<int32_t>(symbols[i * q.cols + j]) - z);
      float p = a * q.deltas[k];
      if (q.input_scale) p = p / q.input_scale[j];
      out[i * q.cols + j] = p;
    }
  }
  return out;
}

// Frequencies summing to 2^k, every present symbol at least 1, from counts (at least two present).
std::vector<uint32_t> normalise(const std::vector<uint64_t>& counts, uint32_t k) {
  const uint64_t total = [&] {
    uint64_t t = 0;
    for (uint64_t c : counts) t += c;
    return t;
  }();
  std::vector<uint32_t> freqs(counts.size());
  int64_t sum = 0;
  for (size_t s = 0; s < counts.size(); s++) {
    if (counts[s] == 0) continue;
    freqs[s] = std::max<uint32_t>(1, static_cast<uint32_t>((counts[s] << k) / total));
    sum += freqs[s];
  }
  // Settle the difference on the most frequent symbol.
  const size_t top = static_cast<size_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
  freqs[top] = static_cast<uint32_t>(static_cast<int64_t>(freqs[top]) + (int64_t{1} << k) - sum);
  return freqs;
}

// A random int-quant matrix with its dequantisation parameters and compressed blocks.
struct Case {
  std::string label;
  size_t rows = 0, cols = 0;
  uint32_t bits = 8, log2_block = 12;
  std::vector<uint8_t> symbols;
  std::vector<float> deltas;
  std::vector<uint8_t> zero_points;
  std::vector<float> input_scale;
  DequantParams quant;
  std::vector<uint8_t> frame;
  std::vector<WeightBlock> blocks;
  DecodeTable table;
  bool has_table = false;
};

// `modes`: the block modes to use in turn (a CONST block gets one repeated symbol); `lanes`: 0 for
// the reference lane count.
void build_case(Case& c, std::mt19937& random, uint64_t group, bool asymmetric, bool scaled, const std::vector<BlockAction>& modes, uint32_t lanes) {
  const size_t n = c.rows * c.cols;
  const uint32_t alphabet = 1u << c.bits;
  const size_t block_size = size_t{1} << c.log2_block;
  // Symbols peaked around the middle, as quantised weights are.
  std::normal_distribution<double> normal(alphabet / 2.0, std::max(1.0, alphabet / 8.0));
  c.symbols.resize(n);
  for (size_t i = 0; i < n; i++) c.symbols[i] = static_cast<uint8_t>(std::clamp<long>(std::lround(normal(random)), 0, alphabet - 1));
  for (size_t b = 0; b * block_size < n; b++) {
    if (modes[b % modes.size()] == BlockAction::Const) {
      const uint8_t symbol = static_cast<uint8_t>(random() % alphabet);
      std::fill(c.symbols.begin() + b * block_size, c.symbols.begin() + std::min(n, (b + 1) * block_size), symbol);
    }
  }
  const size_t groups = group == 0 ? 1 : (c.cols + group - 1) / group;
  std::uniform_real_distribution<float> delta(0.001f, 0.1f), scale(0.25f, 4.0f);
  c.deltas.resize(c.rows * groups);
  for (float& d : c.deltas) d = delta(random);
  if (asymmetric) {
    c.zero_points.resize(c.rows * groups);
    for (uint8_t& z : c.zero_points) z = static_cast<uint8_t>(random() % alphabet);
  }
  if (scaled) {
    c.input_scale.resize(c.cols);
    for (float& s : c.input_scale) s = scale(random);
  }
  c.quant.bits = c.bits;
  c.quant.group_size = group;
  c.quant.rows = c.rows;
  c.quant.cols = c.cols;
  c.quant.deltas = c.deltas.data();
  c.quant.zero_points = asymmetric ? c.zero_points.data() : nullptr;
  c.quant.input_scale = scaled ? c.input_scale.data() : nullptr;

  std::vector<uint64_t> counts(alphabet, 1);  // every symbol present, so any block codes
  for (uint8_t s : c.symbols) counts[s]++;
  const uint32_t k = 12;
  const std::vector<uint32_t> freqs = normalise(counts, k);
  EncodeTable encode;
  c.has_table = build_encode_table(freqs.data(), alphabet, k, &encode) == Status::Ok && build_decode_table(freqs.data(), alphabet, k, &c.table) == Status::Ok;
  expect(c.has_table, c.label + ": tables build");
  for (size_t b = 0; b * block_size < n; b++) {
    const size_t start = b * block_size;
    const size_t count = std::min(block_size, n - start);
    WeightBlock block;
    block.mode = modes[b % modes.size()];
    block.count = count;
    // Odd padding between payloads, so that no payload happens to be aligned.
    c.frame.resize(c.frame.size() + 3);
    block.payload_offset = c.frame.size();
    if (block.mode == BlockAction::Const) {
      block.header_param = c.symbols[start];
    } else if (block.mode == BlockAction::Raw) {
      c.frame.resize(block.payload_offset + packed_size(count, c.bits));
      pack_bits(c.symbols.data() + start, count, c.bits, c.frame.data() + block.payload_offset, SimdLevel::Scalar);
    } else {
      const uint32_t block_lanes = lanes == 0 ? rans_reference_lanes(count) : lanes;
      block.header_param = static_cast<uint8_t>(rans_lane_code(block_lanes));
      c.frame.resize(block.payload_offset + rans_state_bytes(block_lanes) + 2 * count);
      size_t length = 0;
      expect(rans_encode_scalar(c.symbols.data() + start, count, block_lanes, encode, c.frame.data() + block.payload_offset, &length) == Status::Ok, c.label + ": encode");
      c.frame.resize(block.payload_offset + length);
    }
    block.payload_length = c.frame.size() - block.payload_offset;
    c.blocks.push_back(block);
  }
}

WeightMatrix matrix_of(const Case& c, WeightKind kind, const std::vector<float>& values) {
  WeightMatrix m;
  m.kind = kind;
  m.rows = c.rows;
  m.cols = c.cols;
  m.values = values.data();
  m.symbols = c.symbols.data();
  m.quant = c.quant;
  m.frame = c.frame.data();
  m.frame_length = c.frame.size();
  m.log2_block = c.log2_block;
  m.blocks = c.blocks;
  m.table = c.has_table ? &c.table : nullptr;
  return m;
}

void check_case(const Case& c, std::mt19937& random) {
  const std::vector<float> weights = reference_dequantize(c.quant, c.symbols);
  for (size_t n : {size_t{1}, size_t{3}, size_t{64}}) {
    std::vector<float> x(n * c.cols);
    std::uniform_real_distribution<float> value(-2.0f, 2.0f);
    for (float& v : x) v = value(random);
    std::vector<float> expected(n * c.rows);
    for (size_t i = 0; i < n; i++) {
      for (size_t r = 0; r < c.rows; r++) expected[i * c.rows + r] = reference_dot(weights.data() + r * c.cols, x.data() + i * c.cols, c.cols);
    }
    for (WeightKind kind : {WeightKind::F32, WeightKind::Symbols, WeightKind::Compressed}) {
      const WeightMatrix m = matrix_of(c, kind, weights);
      const std::string problem = check_weight_matrix(m);
      expect(problem.empty(), c.label + ": matrix checks (" + problem + ")");
      for (int level = 0; level <= static_cast<int>(detected_simd_level()); level++) {
        for (unsigned threads : {1u, 2u}) {
          set_thread_count(threads);
          std::vector<float> out(n * c.rows, std::nanf(""));
          const ProductFailure failure = weight_product(m, x.data(), n, out.data(), static_cast<SimdLevel>(level));
          const std::string what = c.label + " kind " + std::to_string(static_cast<int>(kind)) + " level " + simd_level_name(static_cast<SimdLevel>(level)) +
                                   " threads " + std::to_string(threads) + " n " + std::to_string(n);
          expect(failure.status == Status::Ok, what + ": status");
          expect(std::memcmp(out.data(), expected.data(), out.size() * sizeof(float)) == 0, what + ": outputs equal the reference");
        }
      }
    }
  }
}

void run_tests() {
  std::mt19937 random(12345);
  const std::vector<BlockAction> mixed = {BlockAction::Rans, BlockAction::Raw, BlockAction::Const};
  struct Shape {
    size_t rows, cols;
  };
  const Shape shapes[] = {{1, 1}, {5, 17}, {300, 100}, {3, 5000}, {64, 64}, {257, 33}, {40, 768}, {2, 16}, {7, 15}};
  for (const Shape& shape : shapes) {
    for (uint32_t bits = 2; bits <= 8; bits++) {
      Case c;
      c.rows = shape.rows;
      c.cols = shape.cols;
      c.bits = bits;
      const uint64_t group = bits % 3 == 0 ? 0 : bits % 3 == 1 ? 7 : 64;
      const bool asymmetric = bits % 2 == 1;
      const bool scaled = bits >= 6;
      c.label = std::to_string(shape.rows) + "x" + std::to_string(shape.cols) + " bits " + std::to_string(bits) + " group " + std::to_string(group) +
                (asymmetric ? " asymmetric" : "") + (scaled ? " scaled" : "");
      build_case(c, random, group, asymmetric, scaled, mixed, bits == 5 ? 4 : 0);
      check_case(c, random);
    }
  }
  // Only RANS blocks, and only CONST blocks (no table needed).
  for (const auto& modes : {std::vector<BlockAction>{BlockAction::Rans}, std::vector<BlockAction>{BlockAction::Const}}) {
    Case c;
    c.rows = 100;
    c.cols = 300;
    c.label = modes[0] == BlockAction::Rans ? "all RANS" : "all CONST";
    build_case(c, random, 0, false, false, modes, 0);
    check_case(c, random);
  }
  // A corrupt RANS block: its status and index, on any level and thread count.
  Case c;
  c.rows = 100;
  c.cols = 300;
  c.label = "corrupt";
  build_case(c, random, 0, false, false, {BlockAction::Rans}, 0);
  c.frame[c.blocks[3].payload_offset + c.blocks[3].payload_length - 1] ^= 0x5a;
  const std::vector<float> weights = reference_dequantize(c.quant, c.symbols);
  const WeightMatrix m = matrix_of(c, WeightKind::Compressed, weights);
  std::vector<float> x(c.cols, 1.0f), out(c.rows);
  for (unsigned threads : {1u, 2u}) {
    set_thread_count(threads);
    const ProductFailure failure = weight_product(m, x.data(), 1, out.data(), detected_simd_level());
    expect(failure.status != Status::Ok && failure.block == 3, "a corrupt block 3 fails as block 3");
  }
  // Inconsistent matrices are refused before any product.
  WeightMatrix bad = matrix_of(c, WeightKind::Compressed, weights);
  bad.blocks.pop_back();
  expect(!check_weight_matrix(bad).empty(), "a missing block is refused");
  bad = matrix_of(c, WeightKind::Compressed, weights);
  bad.blocks[1].payload_length = c.frame.size();
  expect(!check_weight_matrix(bad).empty(), "a payload past the frame is refused");
  bad = matrix_of(c, WeightKind::Compressed, weights);
  bad.table = nullptr;
  expect(!check_weight_matrix(bad).empty(), "a RANS block without a table is refused");
}

double thread_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

void run_bench() {
  std::mt19937 random(1);
  Case c;
  c.rows = 2048;
  c.cols = 768;
  c.log2_block = 17;
  c.label = "bench";
  build_case(c, random, 0, false, false, {BlockAction::Rans}, 0);
  const std::vector<float> weights = reference_dequantize(c.quant, c.symbols);
  set_thread_count(1);
  for (size_t n : {size_t{1}, size_t{64}}) {
    std::vector<float> x(n * c.cols, 0.5f), out(n * c.rows);
    for (WeightKind kind : {WeightKind::F32, WeightKind::Symbols, WeightKind::Compressed}) {
      const WeightMatrix m = matrix_of(c, kind, weights);
      double best = 1e9;
      for (int run = 0; run < (n == 1 ? 50 : 5); run++) {
        const double start = thread_seconds();
        weight_product(m, x.data(), n, out.data(), detected_simd_level());
        best = std::min(best, thread_seconds() - start);
      }
      std::printf("kind %d n %3zu: %8.3f ms CPU, %.2f G multiply-adds/s\n", static_cast<int>(kind), n, best * 1e3, c.rows * c.cols * n / best / 1e9);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--bench") == 0) {
    run_bench();
    return 0;
  }
  run_tests();
  std::printf("weight_matrix_test: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
