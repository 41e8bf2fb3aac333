// libFuzzer harness for the native codec (native/src): every entry point the addon gives the
// reader, driven with untrusted bytes at every SIMD dispatch level this CPU has, each result
// compared with the other levels and with a plain implementation of the spec written here.
// AddressSanitizer and UndefinedBehaviorSanitizer catch reads and writes out of bounds; a wrong
// status or symbol aborts with a message. Build and run: fuzz/native/run.sh; input format:
// fuzz/README.md ("Native decoder").
//
// Input: byte 0 picks the operation (modulo kOperationCount), the operation's fixed fields follow,
// then its variable-length data. Reading past the end of the input gives zeros, so every input is
// a valid one for some operation.
#include <sanitizer/asan_interface.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "block_jobs.h"
#include "cpu.h"
#include "kernels.h"
#include "memory.h"
#include "rans.h"
#include "rans_dispatch.h"
#include "thread_pool.h"
#include "weight_matrix.h"

namespace {

using namespace qans;

// ---- Limits that keep one execution short (well under a millisecond on average) ------------------

// The largest block of the format (spec §13: 2^20 symbols).
constexpr size_t kMaxSymbols = size_t{1} << 20;
// Elements of a dequantised matrix and entries of its parameters.
constexpr uint32_t kMaxRows = 64;
constexpr uint32_t kMaxCols = 4096;
// Blocks and streams of one block job.
constexpr uint32_t kMaxJobBlocks = 64;
constexpr uint32_t kMaxJobStreams = 4;
// Bytes one allocation of the symbol-buffer pool may ask for.
constexpr size_t kMaxPoolBytes = size_t{8} << 20;
// Weight matrices: rows and columns (a row may span blocks of 2^12), elements of a usual matrix (up
// to three blocks) and of a large one (with 3 inputs or more, past the 2^17 multiply-adds from which
// weight_product hands blocks to the thread pool), inputs per product (the AVX-512 dot kernel takes
// them 4 at a time, then one by one), and threads of the several-thread product.
constexpr uint32_t kMaxWeightRows = 256;
constexpr uint32_t kMaxWeightCols = 16384;
constexpr size_t kMaxWeightElements = size_t{3} << 12;
constexpr size_t kMaxLargeWeightElements = size_t{3} << 14;
constexpr uint32_t kMaxWeightInputs = 5;
constexpr unsigned kWeightProductThreads = 3;

// ---- Reporting ----------------------------------------------------------------------------------

[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::fputs("decode_fuzzer: ", stderr);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
  va_end(args);
  std::abort();
}

const char* level_name(int level) {
  return simd_level_name(static_cast<SimdLevel>(level));
}

int level_count() {
  return static_cast<int>(detected_simd_level()) + 1;
}

// ---- Input --------------------------------------------------------------------------------------

// Fields read front to back, little-endian; zeros past the end of the input.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  uint8_t u8() { return at_ < size_ ? data_[at_++] : (at_++, 0); }
  uint16_t u16() { return static_cast<uint16_t>(u8() | u8() << 8); }
  uint32_t u32() { return u16() | static_cast<uint32_t>(u16()) << 16; }
  float f32() {
    const uint32_t bits = u32();
    float value;
    std::memcpy(&value, &bits, 4);
    return value;
  }

  // The bytes not read yet; they end where the fuzzer's buffer ends, so a read past them is caught.
  const uint8_t* rest() const { return data_ + (at_ < size_ ? at_ : size_); }
  size_t rest_size() const { return at_ < size_ ? size_ - at_ : 0; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

// A count field: up to `max`, the larger values folded into range.
size_t bounded(uint32_t value, size_t max) {
  return value <= max ? value : value % (max + 1);
}

// A heap copy of `length` bytes whose first byte sits `misalign` bytes into its allocation (0..15):
// the allocation ends with the data, and the bytes before it are poisoned, so that a read on either
// side is reported. Kernels get every alignment this way.
class Buffer {
 public:
  Buffer(const uint8_t* bytes, size_t length, size_t misalign = 0) : pad_(misalign % 16), length_(length) {
    storage_.reset(new uint8_t[pad_ + length_]);
    if (length_ > 0) std::memcpy(storage_.get() + pad_, bytes, length_);
    ASAN_POISON_MEMORY_REGION(storage_.get(), pad_);
  }
  // `length` bytes of `fill`.
  Buffer(size_t length, uint8_t fill) : pad_(0), length_(length) {
    storage_.reset(new uint8_t[length_]);
    std::memset(storage_.get(), fill, length_);
  }
  ~Buffer() { ASAN_UNPOISON_MEMORY_REGION(storage_.get(), pad_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  uint8_t* data() { return storage_.get() + pad_; }
  const uint8_t* data() const { return storage_.get() + pad_; }
  size_t size() const { return length_; }
  bool same(const Buffer& other) const { return length_ == other.length_ && (length_ == 0 || std::memcmp(data(), other.data(), length_) == 0); }

 private:
  size_t pad_;
  size_t length_;
  std::unique_ptr<uint8_t[]> storage_;
};

// ---- Frequency tables ---------------------------------------------------------------------------

// A table as the reader's tensor header gives it to makeDecodeTable: k and 2^w frequencies.
struct Table {
  uint32_t k = 0;
  uint32_t width = 0;
  std::vector<uint32_t> freqs;  // 2^width entries
};

// What build_decode_table and build_encode_table must accept (spec §10.3): k in 10..15, every
// frequency below 2^k, and a sum of exactly 2^k (which leaves at least two symbols present).
bool table_valid(const Table& table) {
  if (table.k < 10 || table.k > 15) return false;
  uint64_t sum = 0;
  for (uint32_t f : table.freqs) {
    if (f >= (1u << table.k)) return false;
    sum += f;
  }
  return sum == (uint64_t{1} << table.k);
}

// Makes any frequencies valid for k (10..15): each reduced below 2^k, then scaled to sum to 2^k,
// at least two symbols present and none given all of 2^k.
void repair_table(Table* table) {
  const uint32_t m = 1u << table->k;
  std::vector<uint32_t>& f = table->freqs;
  const size_t n = f.size();
  uint64_t sum = 0;
  for (uint32_t& v : f) {
    v %= m;
    sum += v;
  }
  if (sum > m) {
    uint64_t scaled = 0;
    for (uint32_t& v : f) {
      v = static_cast<uint32_t>(v * uint64_t{m} / sum);
      scaled += v;
    }
    sum = scaled;
  }
  // Two present symbols at least: the first and the last of the alphabet, if nothing else is there.
  size_t present = 0;
  for (uint32_t v : f) present += v != 0;
  if (present < 2) {
    if (f[0] == 0 && sum < m) f[0] = 1, sum++;
    if (f[n - 1] == 0 && sum < m) f[n - 1] = 1, sum++;
    if (sum == m && (f[0] == 0 || f[n - 1] == 0)) {
      // One symbol held everything: give one slot of it to an absent neighbour.
      size_t full = f[0] != 0 ? 0 : n - 1;
      f[full]--;
      f[full == 0 ? n - 1 : 0]++;
    }
  }
  // The rest of 2^k to the largest frequency, unless that would give it all of 2^k.
  size_t largest = 0;
  for (size_t s = 1; s < n; s++) {
    if (f[s] > f[largest]) largest = s;
  }
  f[largest] += static_cast<uint32_t>(m - sum);
  if (f[largest] == m) {
    f[largest]--;
    f[largest == 0 ? 1 : 0]++;
  }
}

// The table section of an input: k byte, mode byte, then 2^width frequencies (u16, or u32 with mode
// bit 1). A k byte below 0x80 gives k = 10 + byte % 6; above, k = byte & 31 (mostly invalid). Mode
// bit 0 repairs the frequencies into a valid table (when k is valid), so that decoding is reached.
Table read_table(Input& in, uint32_t width) {
  Table table;
  table.width = width;
  const uint8_t k_byte = in.u8();
  table.k = k_byte < 0x80 ? 10 + k_byte % 6 : k_byte & 31u;
  const uint8_t mode = in.u8();
  table.freqs.resize(size_t{1} << width);
  for (uint32_t& f : table.freqs) f = (mode & 2) ? in.u32() : in.u16();
  if ((mode & 1) && table.k >= 10 && table.k <= 15) repair_table(&table);
  return table;
}

uint32_t read_width(Input& in) {
  return 1 + in.u8() % 8;
}

// ---- Reference implementations of the spec ------------------------------------------------------

uint32_t load_u32(const uint8_t* p) {
  return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24;
}

// Spec §10.2's decoding loop, as written there, with §9's payload-length check first.
Status reference_rans_decode(const uint8_t* payload, size_t length, size_t count, uint32_t lanes, const Table& table, uint8_t* out) {
  if (!rans_lanes_valid(lanes)) return Status::InvalidArgument;
  if (length < 4 * size_t{lanes} || length > 4 * size_t{lanes} + 2 * count || length % 2 != 0) return Status::BadBlock;
  const uint32_t m = 1u << table.k;
  std::vector<uint32_t> cum(table.freqs.size() + 1, 0);
  for (size_t s = 0; s < table.freqs.size(); s++) cum[s + 1] = cum[s] + table.freqs[s];
  // The symbol s with c[s] <= slot < c[s] + f[s], for every slot.
  std::vector<uint8_t> symbol_of(m);
  for (uint32_t slot = 0, s = 0; slot < m; slot++) {
    while (!(cum[s] <= slot && slot < cum[s + 1])) s++;
    symbol_of[slot] = static_cast<uint8_t>(s);
  }
  std::vector<uint32_t> x(lanes);
  for (uint32_t l = 0; l < lanes; l++) {
    x[l] = load_u32(payload + 4 * l);
    if (x[l] < kRansL || x[l] >= (1u << 31)) return Status::BadFinalState;
  }
  size_t p = 4 * size_t{lanes};
  for (size_t i = 0; i < count; i++) {
    const uint32_t l = static_cast<uint32_t>(i % lanes);
    const uint32_t slot = x[l] & (m - 1);
    const uint32_t s = symbol_of[slot];
    x[l] = table.freqs[s] * (x[l] >> table.k) + slot - cum[s];
    if (x[l] < kRansL) {
      if (p + 2 > length) return Status::BlockOverrun;
      x[l] = (x[l] << 16) | payload[p] | payload[p + 1] << 8;
      p += 2;
    }
    out[i] = static_cast<uint8_t>(s);
  }
  if (p != length) return Status::TrailingData;
  for (uint32_t l = 0; l < lanes; l++) {
    if (x[l] != kRansL) return Status::BadFinalState;
  }
  return Status::Ok;
}

// Spec §10.2's encoding loop; every symbol must have a non-zero frequency.
std::vector<uint8_t> reference_rans_encode(const uint8_t* symbols, size_t count, uint32_t lanes, const Table& table) {
  std::vector<uint32_t> cum(table.freqs.size() + 1, 0);
  for (size_t s = 0; s < table.freqs.size(); s++) cum[s + 1] = cum[s] + table.freqs[s];
  std::vector<uint32_t> x(lanes, kRansL);
  std::vector<uint16_t> words;
  for (size_t i = count; i-- > 0;) {
    const uint32_t l = static_cast<uint32_t>(i % lanes);
    const uint32_t s = symbols[i];
    const uint32_t f = table.freqs[s];
    if (x[l] >= (f << (31 - table.k))) {
      words.push_back(static_cast<uint16_t>(x[l] & 0xffff));
      x[l] >>= 16;
    }
    x[l] = ((x[l] / f) << table.k) + (x[l] % f) + cum[s];
  }
  std::vector<uint8_t> payload;
  for (uint32_t state : x) {
    for (int b = 0; b < 4; b++) payload.push_back(static_cast<uint8_t>(state >> (8 * b)));
  }
  for (size_t w = words.size(); w-- > 0;) {
    payload.push_back(static_cast<uint8_t>(words[w]));
    payload.push_back(static_cast<uint8_t>(words[w] >> 8));
  }
  return payload;
}

// Spec §9's RAW rules: the payload is ceil(n·w / 8) bytes (BadBlock) and the bits after the last
// symbol are zero (NonzeroPadding); symbol i is bits [i·w, (i+1)·w) of the little-endian bit string.
Status reference_unpack(const uint8_t* payload, size_t length, size_t count, uint32_t width, uint8_t* out) {
  if (width < 1 || width > 8) return Status::InvalidArgument;
  const uint64_t bits = uint64_t{count} * width;
  if (length != (bits + 7) / 8) return Status::BadBlock;
  for (uint64_t t = bits; t < 8 * uint64_t{length}; t++) {
    if ((payload[t / 8] >> (t % 8)) & 1) return Status::NonzeroPadding;
  }
  for (size_t i = 0; i < count; i++) {
    uint32_t symbol = 0;
    for (uint32_t b = 0; b < width; b++) {
      const uint64_t t = uint64_t{i} * width + b;
      symbol |= ((payload[t / 8] >> (t % 8)) & 1u) << b;
    }
    out[i] = static_cast<uint8_t>(symbol);
  }
  return Status::Ok;
}

// CRC-32C bit by bit (spec §2), continuing from a finished CRC `previous` as crc32c() does.
uint32_t reference_crc32c(const uint8_t* data, size_t length, uint32_t previous) {
  uint32_t crc = ~previous;
  for (size_t i = 0; i < length; i++) {
    crc ^= data[i];
    for (int b = 0; b < 8; b++) crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
  }
  return ~crc;
}

// ---- Operations ---------------------------------------------------------------------------------

void expect_status(Status got, Status want, const char* what, int level) {
  if (got != want) fail("%s at level %s: status %s, expected %s", what, level_name(level), status_code(got), status_code(want));
}

// 0: a decode table from frequencies, then a RANS payload decoded at every level.
//    Fields: width byte, table section, lane code byte (6 and 7 give 0 lanes, an invalid count),
//    u32 symbol count; the rest is the payload.
void fuzz_rans_decode(Input& in) {
  const uint32_t width = read_width(in);
  const Table table = read_table(in, width);
  const uint32_t lanes = rans_lanes_of_code(in.u8() % 8);
  const size_t count = bounded(in.u32(), kMaxSymbols);
  const size_t misalign = count % 16;
  const Buffer payload(in.rest(), in.rest_size(), misalign);

  const bool valid = table_valid(table);
  DecodeTable decode_table;
  const Status built = build_decode_table(table.freqs.data(), static_cast<uint32_t>(table.freqs.size()), table.k, &decode_table);
  expect_status(built, valid ? Status::Ok : Status::BadFreqTable, "build_decode_table", 0);
  EncodeTable encode_table;
  const Status built_encode = build_encode_table(table.freqs.data(), static_cast<uint32_t>(table.freqs.size()), table.k, &encode_table);
  expect_status(built_encode, built, "build_encode_table", 0);
  if (!valid) return;

  Buffer expected(count, 0xa5);
  const Status want = reference_rans_decode(payload.data(), payload.size(), count, lanes, table, expected.data());
  for (int level = 0; level < level_count(); level++) {
    Buffer out(count, 0xa5);
    const Status got = rans_decoder(static_cast<SimdLevel>(level))(payload.data(), payload.size(), count, lanes, decode_table, out.data());
    expect_status(got, want, "rANS decode", level);
    if (!out.same(expected)) fail("rANS decode at level %s: symbols differ from the spec's loop (%zu symbols, %u lanes, k %u)", level_name(level), count, lanes, table.k);
  }
}

// 1: RAW bit unpacking at every level, and packing back.
//    Fields: width byte (below 0x80: 1 + byte % 8; else byte & 15, which may be invalid), u32
//    symbol count; the rest is the payload.
void fuzz_unpack(Input& in) {
  const uint8_t width_byte = in.u8();
  const uint32_t width = width_byte < 0x80 ? 1 + width_byte % 8 : width_byte & 15u;
  const size_t count = bounded(in.u32(), kMaxSymbols);
  const Buffer payload(in.rest(), in.rest_size(), width_byte);
  Buffer expected(count, 0xa5);
  const Status want = reference_unpack(payload.data(), payload.size(), count, width, expected.data());
  for (int level = 0; level < level_count(); level++) {
    const SimdLevel simd = static_cast<SimdLevel>(level);
    Buffer out(count, 0xa5);
    expect_status(unpack_bits(payload.data(), payload.size(), count, width, out.data(), simd), want, "unpack_bits", level);
    if (!out.same(expected)) fail("unpack_bits at level %s: symbols differ from the spec's bit string (%zu symbols of %u bits)", level_name(level), count, width);
    if (want != Status::Ok) continue;
    // Every bit past the last symbol is zero, so packing the symbols again gives the payload.
    Buffer packed(packed_size(count, width), 0x5a);
    expect_status(pack_bits(out.data(), count, width, packed.data(), simd), Status::Ok, "pack_bits", level);
    if (!packed.same(payload)) fail("pack_bits at level %s: does not give back the unpacked payload", level_name(level));
  }
}

// The element of spec §8.2's reconstruction from plane symbols s[0..3] (each below 2^width).
uint32_t reference_merge(PlaneType type, const uint8_t* s) {
  switch (type) {
    case PlaneType::BF16: return (s[1] & 0x80u) << 8 | uint32_t{s[0]} << 7 | (s[1] & 0x7fu);
    case PlaneType::F16: return (s[2] & 0x4u) << 13 | uint32_t{s[0]} << 10 | (s[2] & 0x3u) << 8 | s[1];
    case PlaneType::F32: return (s[3] & 0x80u) << 24 | uint32_t{s[0]} << 23 | (s[3] & 0x7fu) << 16 | uint32_t{s[2]} << 8 | s[1];
  }
  return 0;
}

// 2: float planes merged at every level (any symbols), compared with spec §8.2's reconstruction when
//    every symbol fits its plane's width, and split back.
//    Fields: dtype byte (F32, F16, BF16 by byte % 3); the rest is the planes, an equal share each.
void fuzz_float_planes(Input& in) {
  const PlaneType type = static_cast<PlaneType>(in.u8() % 3);
  const uint32_t planes = plane_count(type);
  const uint32_t size = plane_element_size(type);
  // Plane widths (spec §8.2).
  const uint32_t widths[3][4] = {{8, 8, 8, 8}, {5, 8, 3, 0}, {8, 8, 0, 0}};
  const size_t n = in.rest_size() / planes;
  std::vector<std::unique_ptr<Buffer>> plane(planes);
  for (uint32_t p = 0; p < planes; p++) plane[p].reset(new Buffer(in.rest() + p * n, n, p + n));
  const uint8_t* plane_data[4] = {};
  for (uint32_t p = 0; p < planes; p++) plane_data[p] = plane[p]->data();

  bool in_range = true;
  for (uint32_t p = 0; p < planes; p++) {
    for (size_t i = 0; i < n && in_range; i++) in_range = (plane_data[p][i] >> widths[static_cast<int>(type)][p]) == 0;
  }
  Buffer first(n * size, 0xa5);
  for (int level = 0; level < level_count(); level++) {
    const SimdLevel simd = static_cast<SimdLevel>(level);
    Buffer out(n * size, 0xa5);
    merge_planes(type, plane_data, n, out.data(), simd);
    if (level == 0) std::memcpy(first.data(), out.data(), out.size());
    if (!out.same(first)) fail("merge_planes at level %s: differs from the scalar kernel", level_name(level));
    if (!in_range) continue;
    for (size_t i = 0; i < n; i++) {
      uint8_t s[4] = {};
      for (uint32_t p = 0; p < planes; p++) s[p] = plane_data[p][i];
      const uint32_t want = reference_merge(type, s);
      uint32_t got = 0;
      for (uint32_t b = 0; b < size; b++) got |= uint32_t{out.data()[size * i + b]} << (8 * b);
      if (got != want) fail("merge_planes at level %s: element %zu is %08x, spec §8.2 gives %08x", level_name(level), i, got, want);
    }
    std::vector<std::unique_ptr<Buffer>> split(planes);
    uint8_t* split_data[4] = {};
    for (uint32_t p = 0; p < planes; p++) {
      split[p].reset(new Buffer(n, 0x5a));
      split_data[p] = split[p]->data();
    }
    split_planes(type, out.data(), n, split_data, simd);
    for (uint32_t p = 0; p < planes; p++) {
      if (!split[p]->same(*plane[p])) fail("split_planes at level %s: plane %u does not come back", level_name(level), p);
    }
  }
}

// Elements [first, first + count) of spec §8.3's reconstruction, in binary32 as written there.
void reference_dequantize(const DequantParams& q, const uint8_t* symbols, uint64_t first, size_t count, float* out) {
  const uint64_t groups = q.group_size == 0 ? 1 : (q.cols + q.group_size - 1) / q.group_size;
  for (size_t k = 0; k < count; k++) {
    const uint64_t e = first + k;
    const uint64_t i = e / q.cols;
    const uint64_t j = e % q.cols;
    const uint64_t g = q.group_size == 0 ? 0 : j / q.group_size;
    const int32_t z = q.zero_points ? q.zero_points[i * groups + g] : 1 << (q.bits - 1);
    const float a = static_cast<float>(static_cast<int32_t>(symbols[k]) - z);
    float p = a * q.deltas[i * groups + g];
    if (q.input_scale) p = p / q.input_scale[j];
    out[k] = p;
  }
}

bool same_float_bits(float a, float b) {
  uint32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  return x == y;
}

// 3: dequantisation at every level against spec §8.3's binary32 arithmetic, with the parameters the
//    binding accepts (it checks every length; the values are the file's, unchecked here).
//    Fields: bits byte (2 + byte % 7), flags byte (bit 0 asymmetric, bit 1 input scale, bit 2 one
//    group per row), u32 group size, u16 rows, u16 cols, u32 first element, u32 count; then the
//    deltas (f32), zero points (u8) and input scales (f32) in that order, then the symbols.
void fuzz_dequantize(Input& in) {
  DequantParams q;
  q.bits = 2 + in.u8() % 7;
  const uint8_t flags = in.u8();
  const uint32_t group_field = in.u32();
  q.group_size = (flags & 4) ? 0 : 1 + group_field % (1u << 24);
  q.rows = 1 + in.u16() % kMaxRows;
  q.cols = 1 + in.u16() % kMaxCols;
  const uint64_t elements = q.rows * q.cols;
  const uint64_t first = in.u32() % elements;
  const size_t count = static_cast<size_t>(1 + in.u32() % (elements - first));
  const uint64_t groups = q.group_size == 0 ? 1 : (q.cols + q.group_size - 1) / q.group_size;
  std::vector<float> deltas(q.rows * groups);
  for (float& d : deltas) d = in.f32();
  std::vector<uint8_t> zero_points;
  if (flags & 1) {
    zero_points.resize(q.rows * groups);
    for (uint8_t& z : zero_points) z = in.u8();
  }
  std::vector<float> scale;
  if (flags & 2) {
    scale.resize(q.cols);
    for (float& s : scale) s = in.f32();
  }
  std::vector<uint8_t> symbols(count);
  for (uint8_t& u : symbols) u = in.u8();
  q.deltas = deltas.data();
  q.zero_points = zero_points.empty() ? nullptr : zero_points.data();
  q.input_scale = scale.empty() ? nullptr : scale.data();

  std::vector<float> expected(count);
  reference_dequantize(q, symbols.data(), first, count, expected.data());
  for (int level = 0; level < level_count(); level++) {
    std::unique_ptr<float[]> out(new float[count]);
    dequantize(q, symbols.data(), first, count, out.get(), static_cast<SimdLevel>(level));
    for (size_t k = 0; k < count; k++) {
      if (!same_float_bits(out[k], expected[k])) {
        fail("dequantize at level %s: element %llu is %a, spec §8.3 gives %a", level_name(level), static_cast<unsigned long long>(first + k), out[k], expected[k]);
      }
    }
  }
}

// True when [offset, offset + length) lies within [0, limit), without overflow.
bool inside(uint64_t offset, uint64_t length, uint64_t limit) {
  return offset <= limit && length <= limit - offset;
}

// What check_decode_job must accept (block_jobs.h): every block inside the frame, of an existing
// stream, with its symbols inside that stream's output, and (RANS) a table and a lane code up to 5.
bool job_acceptable(const DecodeJob& job) {
  for (const DecodeBlock& block : job.blocks) {
    if (block.stream >= job.streams.size()) return false;
    if (!inside(block.header_offset, 16, job.frame_length) || !inside(block.payload_offset, block.payload_length, job.frame_length)) return false;
    if (block.action == BlockAction::ChecksumOnly) continue;
    const DecodeStream& stream = job.streams[block.stream];
    if (!inside(block.out_offset, block.count, stream.out_length)) return false;
    if (block.action == BlockAction::Rans && (stream.table == nullptr || block.header_param > kRansMaxLaneCode)) return false;
  }
  return true;
}

// Runs `job` at every level into fresh outputs (sizes from the job's streams) and checks that the
// outcomes and outputs agree, that each CRC is the block's, and that each block decoded as its kernel
// decodes it alone. Returns the scalar level's outputs.
std::vector<std::unique_ptr<Buffer>> run_job_at_every_level(DecodeJob job, std::vector<DecodeOutcome>* outcomes) {
  std::vector<std::unique_ptr<Buffer>> first;
  std::vector<DecodeOutcome> first_outcomes;
  for (int level = 0; level < level_count(); level++) {
    std::vector<std::unique_ptr<Buffer>> outs;
    for (DecodeStream& stream : job.streams) {
      outs.emplace_back(new Buffer(stream.out_length, 0xa5));
      stream.out = outs.back()->data();
    }
    job.level = static_cast<SimdLevel>(level);
    std::vector<DecodeOutcome> got(job.blocks.size());
    decode_blocks(job, got.data());
    for (size_t i = 0; i < job.blocks.size(); i++) {
      const DecodeBlock& block = job.blocks[i];
      const uint32_t crc = reference_crc32c(job.frame + block.payload_offset, block.payload_length, reference_crc32c(job.frame + block.header_offset, 12, 0));
      if (got[i].crc != crc) fail("decode_blocks at level %s: block %zu has CRC %08x, expected %08x", level_name(level), i, got[i].crc, crc);
      const bool matches = crc == load_u32(job.frame + block.header_offset + 12);
      if (!matches && got[i].status != Status::ChecksumMismatch) fail("decode_blocks at level %s: block %zu decoded despite a checksum mismatch", level_name(level), i);
      if (matches && got[i].status == Status::ChecksumMismatch) fail("decode_blocks at level %s: block %zu reported a checksum mismatch on a matching checksum", level_name(level), i);
    }
    if (level == 0) {
      first = std::move(outs);
      first_outcomes = got;
      continue;
    }
    for (size_t i = 0; i < got.size(); i++) {
      if (got[i].status != first_outcomes[i].status) {
        fail("decode_blocks at level %s: block %zu gives %s, the scalar level %s", level_name(level), i, status_code(got[i].status), status_code(first_outcomes[i].status));
      }
    }
    for (size_t s = 0; s < outs.size(); s++) {
      if (!outs[s]->same(*first[s])) fail("decode_blocks at level %s: stream %zu differs from the scalar level", level_name(level), s);
    }
  }
  *outcomes = first_outcomes;
  return first;
}

// 4: a block job as the binding builds it from JavaScript numbers: check_decode_job must refuse
//    exactly the jobs job_acceptable refuses, and an accepted job must decode alike at every level.
//    Fields: stream count byte (1 + byte % 4); per stream a width byte, a table byte (bit 0: the
//    stream has a table section, which follows) and a u32 output length; a block count byte
//    (byte % 65); per block a stream byte, u32 header offset, u32 payload offset, u32 payload
//    length, action byte (% 4), header byte 1, u32 symbol count, u32 output offset. The rest is
//    the frame.
void fuzz_block_job(Input& in) {
  const uint32_t stream_count = 1 + in.u8() % kMaxJobStreams;
  std::vector<std::unique_ptr<DecodeTable>> tables;
  DecodeJob job;
  size_t total_out = 0;
  for (uint32_t s = 0; s < stream_count; s++) {
    DecodeStream stream;
    stream.width = read_width(in);
    if (in.u8() & 1) {
      Table table = read_table(in, stream.width);
      tables.emplace_back(new DecodeTable());
      // Only tables the reader could have made reach a job (the binding builds them first).
      if (build_decode_table(table.freqs.data(), static_cast<uint32_t>(table.freqs.size()), table.k, tables.back().get()) == Status::Ok) {
        stream.table = tables.back().get();
      }
    }
    stream.out_length = bounded(in.u32(), kMaxSymbols - total_out);
    total_out += stream.out_length;
    job.streams.push_back(stream);
  }
  const uint32_t block_count = in.u8() % (kMaxJobBlocks + 1);
  for (uint32_t i = 0; i < block_count; i++) {
    DecodeBlock block;
    block.stream = in.u8();
    block.header_offset = in.u32();
    block.payload_offset = in.u32();
    block.payload_length = in.u32();
    block.action = static_cast<BlockAction>(in.u8() % 4);
    block.header_param = in.u8();
    block.count = in.u32();
    block.out_offset = in.u32();
    job.blocks.push_back(block);
  }
  const Buffer frame(in.rest(), in.rest_size(), block_count);
  job.frame = frame.data();
  job.frame_length = frame.size();

  const bool acceptable = job_acceptable(job);
  const std::string problem = check_decode_job(job);
  if (problem.empty() != acceptable) fail("check_decode_job %s a job it should %s: %s", acceptable ? "refuses" : "accepts", acceptable ? "accept" : "refuse", problem.c_str());
  if (!acceptable) return;
  std::vector<DecodeOutcome> outcomes;
  run_job_at_every_level(job, &outcomes);
}

// Counts of the symbols, normalised to a valid table of 2^width entries at k.
Table table_for(const uint8_t* symbols, size_t count, uint32_t width, uint32_t k) {
  Table table;
  table.k = k;
  table.width = width;
  table.freqs.assign(size_t{1} << width, 0);
  for (size_t i = 0; i < count; i++) table.freqs[symbols[i]]++;
  // Scaled counts, each present symbol kept present, then repaired to sum to 2^k.
  uint64_t total = count == 0 ? 1 : count;
  for (uint32_t& f : table.freqs) {
    if (f != 0) f = static_cast<uint32_t>(std::max<uint64_t>(1, f * (uint64_t{1} << k) / total / 2));
  }
  repair_table(&table);
  return table;
}

// 5: symbols rANS-encoded at every level (as the spec's loop encodes them) and decoded back; then
//    encoded as a whole-tensor job (encode_blocks), the blocks laid out in a frame, and decoded
//    by a decode job at every level.
//    Fields: k byte (10 + byte % 6), width byte, lane code byte (% 6), log2 block byte (12 + byte %
//    3); the rest is the symbols, each taken modulo 2^width for the single-block round trip.
void fuzz_encode_round_trip(Input& in) {
  const uint32_t k = 10 + in.u8() % 6;
  const uint32_t width = read_width(in);
  const uint32_t lanes = rans_lanes_of_code(in.u8() % 6);
  const uint32_t log2_block = 12 + in.u8() % 3;
  const size_t count = in.rest_size();
  std::vector<uint8_t> raw(in.rest(), in.rest() + count);
  std::vector<uint8_t> symbols(raw);
  for (uint8_t& s : symbols) s &= static_cast<uint8_t>((1u << width) - 1);
  const Table table = table_for(symbols.data(), count, width, k);
  if (!table_valid(table)) fail("table_for made an invalid table (k %u, width %u)", k, width);
  EncodeTable encode_table;
  DecodeTable decode_table;
  expect_status(build_encode_table(table.freqs.data(), static_cast<uint32_t>(table.freqs.size()), k, &encode_table), Status::Ok, "build_encode_table", 0);
  expect_status(build_decode_table(table.freqs.data(), static_cast<uint32_t>(table.freqs.size()), k, &decode_table), Status::Ok, "build_decode_table", 0);

  const std::vector<uint8_t> want = reference_rans_encode(symbols.data(), count, lanes, table);
  for (int level = 0; level < level_count(); level++) {
    const SimdLevel simd = static_cast<SimdLevel>(level);
    std::unique_ptr<uint8_t[]> encoded(new uint8_t[rans_state_bytes(lanes) + 2 * count]);
    size_t length = 0;
    expect_status(rans_encoder(simd)(symbols.data(), count, lanes, encode_table, encoded.get(), &length), Status::Ok, "rANS encode", level);
    if (length != want.size() || std::memcmp(encoded.get(), want.data(), length) != 0) {
      fail("rANS encode at level %s: payload differs from the spec's loop (%zu symbols, %u lanes, k %u)", level_name(level), count, lanes, k);
    }
    const Buffer payload(encoded.get(), length, count);
    Buffer out(count, 0xa5);
    expect_status(rans_decoder(simd)(payload.data(), payload.size(), count, lanes, decode_table, out.data()), Status::Ok, "rANS decode of an encoded block", level);
    if (count > 0 && std::memcmp(out.data(), symbols.data(), count) != 0) fail("rANS decode at level %s: does not give back the encoded symbols", level_name(level));
  }

  // The whole-tensor job, on the unmasked symbols: a block with a symbol too wide fails.
  EncodeJob encode_job;
  EncodeStream stream;
  stream.symbols = raw.data();
  stream.count = count;
  stream.width = width;
  stream.has_table = true;
  stream.table = encode_table;
  encode_job.streams.push_back(stream);
  encode_job.log2_block = log2_block;
  const size_t blocks = encode_block_count(encode_job);
  std::vector<uint8_t> first_frame;
  DecodeJob decode_job;
  for (int level = 0; level < level_count(); level++) {
    encode_job.level = static_cast<SimdLevel>(level);
    std::vector<EncodedBlock> encoded(blocks);
    encode_blocks(encode_job, encoded.data());
    // The frame: each block header at align64(position + 16) - 16, as spec §9 places it.
    std::vector<uint8_t> frame;
    decode_job = DecodeJob();
    decode_job.streams.push_back(DecodeStream{&decode_table, width, nullptr, count});
    bool failed = false;
    for (size_t b = 0; b < blocks; b++) {
      const size_t first = b << log2_block;
      const size_t n = std::min(count - first, size_t{1} << log2_block);
      const uint8_t* block_symbols = raw.data() + first;
      const bool constant = std::all_of(block_symbols, block_symbols + n, [&](uint8_t s) { return s == block_symbols[0]; });
      const bool too_wide = std::any_of(block_symbols, block_symbols + n, [&](uint8_t s) { return (s >> width) != 0; });
      EncodedBlock& block = encoded[b];
      // As sdk/codec/block-codec.ts encodeBlock: CONST before any width check.
      const EncodeFailure expected = too_wide && !constant ? EncodeFailure::SymbolTooWide : EncodeFailure::None;
      if (block.failure != expected) fail("encode_blocks at level %s: block %zu has failure %d, expected %d", level_name(level), b, static_cast<int>(block.failure), static_cast<int>(expected));
      if (block.failure != EncodeFailure::None) {
        failed = true;
        continue;
      }
      const size_t header_at = (frame.size() + 16 + 63) / 64 * 64 - 16;
      frame.resize(header_at + 16 + block.length, 0);
      uint8_t* header = frame.data() + header_at;
      header[0] = static_cast<uint8_t>(block.mode);
      header[1] = block.header_param;
      for (int byte = 0; byte < 4; byte++) header[4 + byte] = static_cast<uint8_t>(n >> (8 * byte));
      for (int byte = 0; byte < 4; byte++) header[8 + byte] = static_cast<uint8_t>(block.length >> (8 * byte));
      if (block.length > 0) std::memcpy(header + 16, block.payload, block.length);
      const uint32_t crc = reference_crc32c(header + 16, block.length, reference_crc32c(header, 12, 0));
      for (int byte = 0; byte < 4; byte++) header[12 + byte] = static_cast<uint8_t>(crc >> (8 * byte));
      decode_job.blocks.push_back(DecodeBlock{0, header_at, header_at + 16, block.length, block.mode, block.header_param, n, first});
    }
    for (EncodedBlock& block : encoded) std::free(block.payload);
    if (failed) return;
    if (level == 0) first_frame = frame;
    if (frame != first_frame) fail("encode_blocks at level %s: blocks differ from the scalar level", level_name(level));
  }
  // The frames are the same at every level: decoded once, at every level.
  const Buffer frame(first_frame.data(), first_frame.size());
  decode_job.frame = frame.data();
  decode_job.frame_length = frame.size();
  if (!check_decode_job(decode_job).empty()) fail("check_decode_job refuses the job of an encoded frame");
  std::vector<DecodeOutcome> outcomes;
  const std::vector<std::unique_ptr<Buffer>> outs = run_job_at_every_level(decode_job, &outcomes);
  for (size_t b = 0; b < outcomes.size(); b++) {
    if (outcomes[b].status != Status::Ok) fail("decode_blocks: block %zu of an encoded frame fails with %s", b, status_code(outcomes[b].status));
  }
  if (count > 0 && std::memcmp(outs[0]->data(), raw.data(), count) != 0) fail("decode_blocks: an encoded frame does not decode to its symbols");
}

// 6: CRC32C (whole, and in two parts chained) and the histogram at every level, on the input as
//    it lies in the fuzzer's buffer (any alignment).
//    Fields: u32 previous CRC, u32 split point; the rest is the data.
void fuzz_crc_and_histogram(Input& in) {
  const uint32_t previous = in.u32();
  const size_t split = bounded(in.u32(), in.rest_size());
  const uint8_t* data = in.rest();
  const size_t length = in.rest_size();
  const uint32_t want = reference_crc32c(data, length, previous);
  uint64_t want_counts[256] = {};
  for (size_t i = 0; i < length; i++) want_counts[data[i]]++;
  for (int level = 0; level < level_count(); level++) {
    const SimdLevel simd = static_cast<SimdLevel>(level);
    const uint32_t whole = crc32c(data, length, previous, simd);
    if (whole != want) fail("crc32c at level %s: %08x, expected %08x over %zu bytes", level_name(level), whole, want, length);
    const uint32_t chained = crc32c(data + split, length - split, crc32c(data, split, previous, simd), simd);
    if (chained != want) fail("crc32c at level %s: chained at %zu gives %08x, expected %08x", level_name(level), split, chained, want);
    uint64_t counts[256] = {};
    histogram(data, length, counts, simd);
    if (std::memcmp(counts, want_counts, sizeof counts) != 0) fail("histogram at level %s: counts differ", level_name(level));
  }
}

// 7: the decode jobs' output buffers (newSymbolBuffer): a sequence of allocations and frees of
//    sizes the input gives, each buffer filled and checked before it is freed, so that a buffer
//    handed out twice, or too small, shows.
//    Fields: up to 8 steps of (u32 size, u8 how many earlier buffers to free first).
void fuzz_symbol_buffers(Input& in) {
  struct Held {
    uint8_t* data;
    size_t length;
    size_t capacity;
    uint8_t tag;
  };
  std::vector<Held> held;
  const auto release = [](const Held& h) {
    for (size_t i = 0; i < h.length; i += 4093) {
      if (h.data[i] != h.tag) fail("symbol buffer of %zu bytes was overwritten at %zu", h.length, i);
    }
    if (h.length > 0 && h.data[h.length - 1] != h.tag) fail("symbol buffer of %zu bytes was overwritten at its end", h.length);
    free_pages(h.data, h.capacity);
  };
  for (uint8_t step = 0; step < 8 && in.rest_size() > 0; step++) {
    const size_t length = bounded(in.u32(), kMaxPoolBytes);
    for (uint8_t frees = in.u8() % 3; frees > 0 && !held.empty(); frees--) {
      release(held.back());
      held.pop_back();
    }
    size_t capacity = 0;
    uint8_t* data = static_cast<uint8_t*>(allocate_pages(length, &capacity));
    if (data == nullptr) fail("allocate_pages(%zu) failed", length);
    if (length > 0) std::memset(data, step + 1, length);
    held.push_back(Held{data, length, capacity, static_cast<uint8_t>(step + 1)});
  }
  for (size_t i = held.size(); i-- > 0;) release(held[i]);
}

// ---- Weight matrices (operation 8) --------------------------------------------------------------

// Spec §9's RAW payload of `count` symbols of `width` bits: the little-endian bit string, zero after
// the last symbol.
std::vector<uint8_t> reference_pack(const uint8_t* symbols, size_t count, uint32_t width) {
  std::vector<uint8_t> payload((uint64_t{count} * width + 7) / 8, 0);
  for (size_t i = 0; i < count; i++) {
    for (uint32_t b = 0; b < width; b++) {
      const uint64_t t = uint64_t{i} * width + b;
      payload[t / 8] |= static_cast<uint8_t>(((symbols[i] >> b) & 1u) << (t % 8));
    }
  }
  return payload;
}

// What check_weight_matrix must accept (weight_matrix.h, the rules the binding also applies): at most
// 2^53 elements; a value array, or quantisation parameters for the matrix's shape (bits 2..8, group
// size up to 2^24, deltas) and symbols or, compressed, log2 block 12..20 (spec §13) with one block
// per 2^log2 symbols, each of 2^log2 symbols but the last, every payload inside the frame, modes RAW,
// CONST (a symbol that fits the bits) and RANS (a table and a lane code up to 5). Pointers are only
// needed when there are elements.
bool weight_matrix_acceptable(const WeightMatrix& m) {
  const unsigned __int128 product = static_cast<unsigned __int128>(m.rows) * m.cols;
  if (product > (uint64_t{1} << 53)) return false;
  const uint64_t elements = static_cast<uint64_t>(product);
  if (m.kind == WeightKind::F32) return m.values != nullptr || elements == 0;
  const DequantParams& q = m.quant;
  if (q.rows != m.rows || q.cols != m.cols || q.bits < 2 || q.bits > 8 || q.group_size > (uint64_t{1} << 24)) return false;
  if (q.deltas == nullptr && elements > 0) return false;
  if (m.kind == WeightKind::Symbols) return m.symbols != nullptr || elements == 0;
  if (m.kind != WeightKind::Compressed || m.log2_block < 12 || m.log2_block > 20) return false;
  const uint64_t block_size = uint64_t{1} << m.log2_block;
  if (m.blocks.size() != (elements + block_size - 1) / block_size) return false;
  for (size_t b = 0; b < m.blocks.size(); b++) {
    const WeightBlock& block = m.blocks[b];
    if (block.count != std::min(block_size, elements - b * block_size)) return false;
    if (!inside(block.payload_offset, block.payload_length, m.frame_length)) return false;
    switch (block.mode) {
      case BlockAction::Raw: break;
      case BlockAction::Const:
        if (block.header_param >= (1u << q.bits)) return false;
        break;
      case BlockAction::Rans:
        if (m.table == nullptr || block.header_param > kRansMaxLaneCode) return false;
        break;
      default: return false;
    }
  }
  return true;
}

// Every block of an accepted compressed matrix decoded by the spec's rules (§10.2's loop, §9's RAW
// bit string, the CONST fill) into symbols[0, rows x cols): the first block that fails, as
// weight_product reports it.
ProductFailure reference_decode_weight_blocks(const WeightMatrix& m, const Table& table, uint8_t* symbols) {
  const size_t block_size = size_t{1} << m.log2_block;
  for (size_t b = 0; b < m.blocks.size(); b++) {
    const WeightBlock& block = m.blocks[b];
    const uint8_t* payload = m.frame + block.payload_offset;
    uint8_t* out = symbols + b * block_size;
    Status status = Status::Ok;
    switch (block.mode) {
      case BlockAction::Const:
        std::memset(out, block.header_param, block.count);
        break;
      case BlockAction::Raw:
        status = reference_unpack(payload, block.payload_length, block.count, m.quant.bits, out);
        break;
      case BlockAction::Rans:
        status = reference_rans_decode(payload, block.payload_length, block.count, rans_lanes_of_code(block.header_param), table, out);
        break;
      default:
        fail("reference_decode_weight_blocks: block %zu of an accepted matrix has mode %d", b, static_cast<int>(block.mode));
    }
    if (status != Status::Ok) return {status, b};
  }
  return {};
}

// out[i * rows + r]: row r of the dequantised matrix `w` . input i, in dot_rows.h's order: binary64
// products, 16 partial sums over the columns in order, the fixed tree, one rounding to binary32.
std::vector<float> reference_weight_product(const std::vector<float>& w, size_t rows, size_t cols, const float* xs, size_t n) {
  std::vector<float> out(n * rows);
  for (size_t i = 0; i < n; i++) {
    for (size_t r = 0; r < rows; r++) {
      double partial[16] = {};
      for (size_t c = 0; c < cols; c++) partial[c % 16] += static_cast<double>(w[r * cols + c]) * static_cast<double>(xs[i * cols + c]);
      for (size_t step = 8; step >= 1; step /= 2) {
        for (size_t j = 0; j < step; j++) partial[j] += partial[j + step];
      }
      out[i * rows + r] = static_cast<float>(partial[0]);
    }
  }
  return out;
}

// `count` finite binary32 values from a xorshift generator: random signs and mantissas, binary
// exponents within `span` of 0 (down to subnormals when span reaches 127), every 16th value ±0.
std::unique_ptr<float[]> weight_inputs(size_t count, uint32_t seed, uint32_t span) {
  std::unique_ptr<float[]> values(new float[count]);
  uint32_t state = seed | 1;
  for (size_t i = 0; i < count; i++) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    const uint32_t exponent = 127 + state % (2 * span + 1) - span;
    uint32_t bits = (state & 0x80000000u) | (state >> 9 & 0x7fffffu);
    if ((state >> 4) % 16 != 0) bits |= exponent << 23;
    else bits &= 0x80000000u;
    std::memcpy(&values[i], &bits, 4);
  }
  return values;
}

// The products of an accepted compressed matrix at every level and as a symbol matrix at the
// highest, or (`threads`) at the highest level on one thread and on several: the same failure
// (status and block) as the spec's decoding, or every output bit for bit the spec's reconstruction
// multiplied in dot_rows.h's order.
void check_weight_products(const WeightMatrix& m, const Table& table, const float* xs, size_t n, bool threads) {
  const size_t elements = m.rows * m.cols;
  std::vector<uint8_t> symbols(elements);
  const ProductFailure want = reference_decode_weight_blocks(m, table, symbols.data());
  std::vector<float> expected;
  if (want.status == Status::Ok) {
    std::vector<float> weights(elements);
    reference_dequantize(m.quant, symbols.data(), 0, elements, weights.data());
    expected = reference_weight_product(weights, m.rows, m.cols, xs, n);
  }
  const auto check = [&](const WeightMatrix& matrix, int level, const char* how) {
    std::unique_ptr<float[]> out(new float[n * m.rows]);
    std::fill(out.get(), out.get() + n * m.rows, std::nanf(""));
    const ProductFailure got = weight_product(matrix, xs, n, out.get(), static_cast<SimdLevel>(level));
    if (got.status != want.status || got.block != want.block) {
      fail("weight_product%s at level %s: %s at block %zu, the spec's decoding gives %s at block %zu (%zu x %zu, %u bits, %zu blocks)", how, level_name(level),
           status_code(got.status), got.block, status_code(want.status), want.block, m.rows, m.cols, m.quant.bits, m.blocks.size());
    }
    if (want.status != Status::Ok) return;
    for (size_t o = 0; o < n * m.rows; o++) {
      if (!same_float_bits(out[o], expected[o])) {
        fail("weight_product%s at level %s: output %zu (input %zu, row %zu) is %a, the spec and dot_rows.h's order give %a (%zu x %zu, %u bits, group %llu, %zu blocks of 2^%u)",
             how, level_name(level), o, o / m.rows, o % m.rows, out[o], expected[o], m.rows, m.cols, m.quant.bits, static_cast<unsigned long long>(m.quant.group_size),
             m.blocks.size(), m.log2_block);
      }
    }
  };
  const int top = level_count() - 1;
  if (threads) {
    // A large matrix for the thread pool's sake: the levels meet the same code on smaller ones.
    check(m, top, "");
    set_thread_count(kWeightProductThreads);
    check(m, top, " on several threads");
    set_thread_count(1);
    return;
  }
  for (int level = 0; level < level_count(); level++) check(m, level, "");
  if (want.status != Status::Ok) return;
  // The same symbols held decoded: the resident path, which decodes no block.
  WeightMatrix resident;
  resident.kind = WeightKind::Symbols;
  resident.rows = m.rows;
  resident.cols = m.cols;
  resident.symbols = symbols.data();
  resident.quant = m.quant;
  const std::string problem = check_weight_matrix(resident);
  if (!problem.empty()) fail("check_weight_matrix refuses the symbol matrix of an accepted compressed one: %s", problem.c_str());
  check(resident, top, " of the symbols held decoded");
}

// One inconsistency of a matrix that was consistent, picked by `kind`; `value` sizes it. Each makes
// the matrix one that weight_matrix_acceptable refuses, or (by chance) leaves it acceptable, and
// changes nothing that would make the arrays the matrix points to too short for an acceptable one.
void make_inconsistent(WeightMatrix* m, uint8_t kind, uint32_t value) {
  std::vector<WeightBlock>& blocks = m->blocks;
  WeightBlock* block = blocks.empty() ? nullptr : &blocks[value % blocks.size()];
  const uint32_t high = value >> 8;
  switch (kind % 16) {
    case 0:  // A block too few, or one too many.
      if (!blocks.empty() && (value & 1)) blocks.pop_back();
      else blocks.push_back(WeightBlock{0, 0, BlockAction::Const, 0, high % 8192});
      break;
    case 1:  // A wrong symbol count.
      if (block) block->count = high % (size_t{3} << m->log2_block);
      break;
    case 2:  // A payload that starts past the frame, or ends past it, or whose end overflows.
      if (block) block->payload_offset = m->frame_length + high % 3;
      break;
    case 3:
      if (block) block->payload_length = (value & 1) ? SIZE_MAX - high % 4 : m->frame_length - block->payload_offset + 1 + high % 3;
      break;
    case 4:  // A RANS block without a table.
      if (block) block->mode = BlockAction::Rans;
      m->table = nullptr;
      break;
    case 5:  // A lane code above 5.
      if (block) block->mode = BlockAction::Rans, block->header_param = static_cast<uint8_t>(6 + high % 250);
      break;
    case 6:  // A CONST symbol wider than the bits.
      if (block) block->mode = BlockAction::Const, block->header_param = static_cast<uint8_t>(high | (1u << (m->quant.bits % 8)));
      break;
    case 7:  // A mode other than RAW, CONST and RANS.
      if (block) block->mode = static_cast<BlockAction>(3 + high % 253);
      break;
    case 8: {  // Another block size, the blocks cut to it (a size below 2^12 gives many blocks).
      m->log2_block = (value & 1) ? 4 + high % 8 : high % 64;
      const size_t elements = m->rows * m->cols;
      if (m->log2_block >= 4 && m->log2_block <= 11) {
        const size_t size = size_t{1} << m->log2_block;
        const WeightBlock like = blocks.empty() ? WeightBlock{} : blocks[0];
        blocks.assign((elements + size - 1) / size, like);
        for (size_t b = 0; b < blocks.size(); b++) blocks[b].count = std::min(size, elements - b * size);
      }
      break;
    }
    case 9:  // Bits outside 2..8 (or, by chance, other valid bits: the table then has another width).
      m->quant.bits = value % 16;
      break;
    case 10:  // A group size above 2^24.
      m->quant.group_size = (uint64_t{1} << 24) + 1 + high;
      break;
    case 11:  // Parameters for another shape.
      if (value & 1) m->quant.rows += 1 + high % 4;
      else m->quant.cols += 1 + high % 4;
      break;
    case 12:  // No deltas.
      m->quant.deltas = nullptr;
      break;
    case 13:  // More than 2^53 elements.
      if (m->cols > 0) m->rows = m->quant.rows = (uint64_t{1} << 53) / m->cols + 1 + high % 4;
      break;
    case 14:  // Another kind, without its array.
      m->kind = (value & 1) ? WeightKind::F32 : WeightKind::Symbols;
      break;
    case 15:  // An unknown kind.
      m->kind = static_cast<WeightKind>(3 + high % 253);
      break;
  }
}

// 8: a compressed weight matrix as the binding builds it from a file's tensor frame (weight_matrix.h):
//    check_weight_matrix must refuse exactly the matrices weight_matrix_acceptable refuses; an
//    accepted one is multiplied with 1 to 5 inputs (check_weight_products).
//    Fields: bits byte (2 + byte % 7); flags byte (bit 0 asymmetric, bit 1 input scale, bit 2 one
//    group per row, bit 3 the frame encoded here, bit 5 one inconsistency; bits 4 and 6 both set:
//    large, up to 3 x 2^14 elements, multiplied on one thread and on several); u32 group size (bit
//    31 clear: 1 + value % cols, set: 1 + value % 2^24); u16 rows (% 257) and u16 cols (% 16385),
//    rows then lowered to the element limit; log2 block byte (bit 7 clear: 12 + byte % 2, set: 12 +
//    byte % 9); a table section for 2^bits symbols; inputs byte (1 + byte % 5), u32 input seed and
//    exponent span byte (% 128) for weight_inputs; inconsistency byte and u32 value
//    (make_inconsistent); u32 corruption (a non-zero low byte is XORed into frame byte (value >> 8)
//    % length); per block (one per 2^log2 symbols) a mode byte (% 3: RAW, CONST, RANS), header byte
//    1 (below 0xc0 folded into a valid CONST symbol or lane code), u32 payload offset and u32
//    payload length (folded into the frame); then the deltas (f32), zero points (u8) and input
//    scales (f32), any values. The rest is the frame. With flag bit 3 it is instead the symbols
//    (repeated to fill the matrix, masked to the bits; a CONST block's all its own symbol), which
//    are encoded as the blocks' modes say (RANS on the block's lane code, with a table of their
//    counts at the table section's k) into a frame with the blocks placed as spec §9 places them.
void fuzz_weight_product(Input& in) {
  DequantParams q;
  q.bits = 2 + in.u8() % 7;
  const uint8_t flags = in.u8();
  const bool encode = flags & 8, large = (flags & 0x50) == 0x50, inconsistent = flags & 32;
  const uint32_t group_field = in.u32();
  const uint32_t row_field = in.u16() % (kMaxWeightRows + 1);
  const size_t cols = in.u16() % (kMaxWeightCols + 1);
  const size_t max_elements = large ? kMaxLargeWeightElements : kMaxWeightElements;
  const size_t rows = cols == 0 ? row_field : std::min<size_t>(row_field, std::max<size_t>(1, max_elements / cols));
  const size_t elements = rows * cols;
  const uint32_t modulus = (group_field >> 31) ? 1u << 24 : static_cast<uint32_t>(std::max<size_t>(1, cols));
  q.group_size = (flags & 4) ? 0 : 1 + (group_field & 0x7fffffffu) % modulus;
  q.rows = rows;
  q.cols = cols;
  const uint8_t log2_byte = in.u8();
  const uint32_t log2_block = (log2_byte & 0x80) ? 12 + (log2_byte & 0x7f) % 9 : 12 + log2_byte % 2;
  const Table read = read_table(in, q.bits);
  const size_t n = 1 + in.u8() % kMaxWeightInputs;
  const uint32_t input_seed = in.u32();
  const uint32_t span = in.u8() % 128;
  const uint8_t inconsistency = in.u8();
  const uint32_t inconsistency_value = in.u32();
  const uint32_t corruption = in.u32();

  const size_t block_size = size_t{1} << log2_block;
  std::vector<WeightBlock> blocks((elements + block_size - 1) / block_size);
  const uint8_t mask = static_cast<uint8_t>((1u << q.bits) - 1);
  for (size_t b = 0; b < blocks.size(); b++) {
    WeightBlock& block = blocks[b];
    block.mode = static_cast<BlockAction>(in.u8() % 3);
    const uint8_t param = in.u8();
    block.header_param = param >= 0xc0 ? param : block.mode == BlockAction::Rans ? param % (kRansMaxLaneCode + 1) : block.mode == BlockAction::Const ? param & mask : param;
    block.payload_offset = in.u32();
    block.payload_length = in.u32();
    block.count = std::min(block_size, elements - b * block_size);
  }
  const uint64_t groups = q.group_size == 0 ? 1 : (cols + q.group_size - 1) / q.group_size;
  std::vector<float> deltas(rows * groups);
  for (float& d : deltas) d = in.f32();
  std::vector<uint8_t> zero_points;
  if (flags & 1) {
    zero_points.resize(rows * groups);
    for (uint8_t& z : zero_points) z = in.u8();
  }
  std::vector<float> scale;
  if (flags & 2) {
    scale.resize(cols);
    for (float& s : scale) s = in.f32();
  }
  q.deltas = deltas.data();
  q.zero_points = zero_points.empty() ? nullptr : zero_points.data();
  q.input_scale = scale.empty() ? nullptr : scale.data();

  Table table = read;
  std::vector<uint8_t> frame_bytes;
  if (encode) {
    std::vector<uint8_t> symbols(elements, 0);
    for (size_t i = 0; i < elements && in.rest_size() > 0; i++) symbols[i] = in.rest()[i % in.rest_size()] & mask;
    for (size_t b = 0; b < blocks.size(); b++) {
      if (blocks[b].mode == BlockAction::Const) std::memset(symbols.data() + b * block_size, blocks[b].header_param & mask, blocks[b].count);
    }
    table = table_for(symbols.data(), elements, q.bits, read.k >= 10 && read.k <= 15 ? read.k : 10 + read.k % 6);
    for (size_t b = 0; b < blocks.size(); b++) {
      WeightBlock& block = blocks[b];
      const uint8_t* block_symbols = symbols.data() + b * block_size;
      std::vector<uint8_t> payload;
      if (block.mode == BlockAction::Const) {
        block.header_param &= mask;
      } else if (block.mode == BlockAction::Raw) {
        payload = reference_pack(block_symbols, block.count, q.bits);
      } else {
        block.header_param %= kRansMaxLaneCode + 1;
        payload = reference_rans_encode(block_symbols, block.count, rans_lanes_of_code(block.header_param), table);
      }
      // The block header at align64(position + 16) - 16 (left zero: products do not read it).
      block.payload_offset = (frame_bytes.size() + 16 + 63) / 64 * 64;
      block.payload_length = payload.size();
      frame_bytes.resize(block.payload_offset);
      frame_bytes.insert(frame_bytes.end(), payload.begin(), payload.end());
    }
  } else {
    frame_bytes.assign(in.rest(), in.rest() + in.rest_size());
    for (WeightBlock& block : blocks) {
      block.payload_offset = bounded(static_cast<uint32_t>(block.payload_offset), frame_bytes.size());
      block.payload_length = bounded(static_cast<uint32_t>(block.payload_length), frame_bytes.size() - block.payload_offset);
    }
  }
  if ((corruption & 0xff) != 0 && !frame_bytes.empty()) frame_bytes[(corruption >> 8) % frame_bytes.size()] ^= static_cast<uint8_t>(corruption);
  const Buffer frame(frame_bytes.data(), frame_bytes.size(), corruption >> 4);

  DecodeTable decode_table;
  const Status built = build_decode_table(table.freqs.data(), static_cast<uint32_t>(table.freqs.size()), table.k, &decode_table);
  expect_status(built, table_valid(table) ? Status::Ok : Status::BadFreqTable, "build_decode_table", 0);

  WeightMatrix m;
  m.kind = WeightKind::Compressed;
  m.rows = rows;
  m.cols = cols;
  m.quant = q;
  m.frame = frame.data();
  m.frame_length = frame.size();
  m.log2_block = log2_block;
  m.blocks = std::move(blocks);
  // As the binding: the table only when a block is RANS, and a table that does not build refuses
  // the matrix (here: no table, which check_weight_matrix must then refuse).
  const bool rans = std::any_of(m.blocks.begin(), m.blocks.end(), [](const WeightBlock& block) { return block.mode == BlockAction::Rans; });
  m.table = rans && built == Status::Ok ? &decode_table : nullptr;
  if (inconsistent) make_inconsistent(&m, inconsistency, inconsistency_value);

  const bool acceptable = weight_matrix_acceptable(m);
  const std::string problem = check_weight_matrix(m);
  if (problem.empty() != acceptable) {
    fail("check_weight_matrix %s a matrix it should %s: %s", acceptable ? "refuses" : "accepts", acceptable ? "accept" : "refuse", problem.empty() ? "(accepted)" : problem.c_str());
  }
  if (!acceptable || m.kind != WeightKind::Compressed) return;
  const std::unique_ptr<float[]> xs = weight_inputs(n * cols, input_seed, span);
  check_weight_products(m, table, xs.get(), n, large);
}

using Operation = void (*)(Input&);
constexpr Operation kOperations[] = {
    fuzz_rans_decode, fuzz_unpack, fuzz_float_planes, fuzz_dequantize, fuzz_block_job, fuzz_encode_round_trip, fuzz_crc_and_histogram, fuzz_symbol_buffers,
    fuzz_weight_product,
};
constexpr size_t kOperationCount = sizeof kOperations / sizeof kOperations[0];

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // One thread: block jobs then run their blocks in order, so outcomes are deterministic and a
  // crash reproduces; the pool itself is not what this harness tests.
  qans::set_thread_count(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Input in(data + 1, size - 1);
  kOperations[data[0] % kOperationCount](in);
  return 0;
}

