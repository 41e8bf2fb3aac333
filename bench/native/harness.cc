// Times QANS's rANS kernels at every dispatch level against htscodecs' 32x16 rANS at the same level,
// zstd at levels 3 and 19, and memcpy, in one process on the same bytes.
//
// usage: harness <symbols.bin> <table.txt> <block-size> [<block-size> ...]
//   table.txt: one line "k f0 f1 ... f255": the stream's frequency table (spec §10.4).
// Prints one line of key=value pairs per measurement; bench/native.ts turns them into a table.
#include <htscodecs/rANS_static4x16.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../../native/src/rans_dispatch.h"

using qans::SimdLevel;
using Clock = std::chrono::steady_clock;

namespace {

struct Level {
  SimdLevel qans;
  const char* name;
  const char* cpu;  // __builtin_cpu_supports feature, or nullptr for scalar
  int htscodecs;    // rans_set_cpu flags
};

const Level kLevels[] = {
    {SimdLevel::Scalar, "scalar", nullptr, 0},
    {SimdLevel::Sse41, "sse41", "sse4.1", RANS_CPU_ENC_SSE4 | RANS_CPU_DEC_SSE4},
    {SimdLevel::Avx2, "avx2", "avx2", RANS_CPU_ENC_AVX2 | RANS_CPU_DEC_AVX2},
    {SimdLevel::Avx512, "avx512", "avx512bw", RANS_CPU_ENC_AVX512 | RANS_CPU_DEC_AVX512},
};

bool supported(const Level& level) {
  if (!level.cpu) return true;
  if (std::strcmp(level.cpu, "sse4.1") == 0) return __builtin_cpu_supports("sse4.1");
  if (std::strcmp(level.cpu, "avx2") == 0) return __builtin_cpu_supports("avx2");
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

std::vector<uint8_t> read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path);
    std::exit(2);
  }
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// Best wall time of `runs` calls, in seconds: the least disturbed run on a shared machine.
double best_seconds(int runs, const std::function<void()>& body) {
  double best = 1e300;
  for (int r = 0; r < runs; r++) {
    const auto start = Clock::now();
    body();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

void report(const char* codec, const char* level, size_t block, size_t input, size_t output, double enc_s, double dec_s) {
  std::printf("codec=%s level=%s block=%zu input=%zu output=%zu enc_mbs=%.1f dec_mbs=%.1f\n", codec, level, block, input, output,
              enc_s > 0 ? input / enc_s / 1e6 : 0.0, dec_s > 0 ? input / dec_s / 1e6 : 0.0);
  std::fflush(stdout);
}

void fail(const char* what) {
  std::fprintf(stderr, "harness: %s\n", what);
  std::exit(1);
}

// Runs `body` and lowers `*best` to its wall time in seconds.
void time_into(double* best, const std::function<void()>& body) {
  const auto start = Clock::now();
  body();
  *best = std::min(*best, std::chrono::duration<double>(Clock::now() - start).count());
}

// QANS (full blocks on 32 lanes, as the reference writer codes blocks of 2^15 symbols and more,
// spec §15) and htscodecs at one SIMD level, on the same blocks. The two coders' runs alternate, so
// that a burst of other load on a shared machine lands on both rather than on one.
void bench_level(const std::vector<uint8_t>& symbols, const qans::EncodeTable& enc, const qans::DecodeTable& dec, size_t block,
                 const Level& level, int runs) {
  const size_t n = symbols.size();
  const size_t blocks = (n + block - 1) / block;
  const auto count_of = [&](size_t b) { return std::min(block, n - b * block); };

  std::vector<std::vector<uint8_t>> qans_payloads(blocks, std::vector<uint8_t>(qans::kRansStateBytes + 2 * block));
  std::vector<size_t> qans_lengths(blocks);
  const auto encode = qans::rans_encoder(level.qans);
  const auto decode = qans::rans_decoder(level.qans);
  const auto qans_encode = [&] {
    for (size_t b = 0; b < blocks; b++) {
      if (encode(symbols.data() + b * block, count_of(b), qans::kRansLanes, enc, qans_payloads[b].data(), &qans_lengths[b]) != qans::Status::Ok) fail("qans encode");
    }
  };
  std::vector<uint8_t> qans_out(n);
  const auto qans_decode_blocks = [&](size_t first, size_t last) {
    for (size_t b = first; b < last; b++) {
      if (decode(qans_payloads[b].data(), qans_lengths[b], count_of(b), qans::kRansLanes, dec, qans_out.data() + b * block) != qans::Status::Ok) {
        fail("qans decode");
      }
    }
  };

  rans_set_cpu(level.htscodecs);
  const int order = RANS_ORDER_X32 | RANS_ORDER_SIMD_AUTO;
  std::vector<std::vector<uint8_t>> hts_payloads(blocks, std::vector<uint8_t>(rans_compress_bound_4x16(block, order)));
  std::vector<unsigned int> hts_lengths(blocks);
  uint8_t* in = const_cast<uint8_t*>(symbols.data());
  const auto hts_encode = [&] {
    for (size_t b = 0; b < blocks; b++) {
      hts_lengths[b] = static_cast<unsigned int>(hts_payloads[b].size());
      if (!rans_compress_to_4x16(in + b * block, static_cast<unsigned int>(count_of(b)), hts_payloads[b].data(), &hts_lengths[b], order)) {
        fail("htscodecs encode");
      }
    }
  };
  std::vector<uint8_t> hts_out(n);
  const auto hts_decode = [&] {
    for (size_t b = 0; b < blocks; b++) {
      unsigned int count = static_cast<unsigned int>(count_of(b));
      if (!rans_uncompress_to_4x16(hts_payloads[b].data(), hts_lengths[b], hts_out.data() + b * block, &count)) fail("htscodecs decode");
    }
  };

  double qans_enc = 1e300, qans_dec = 1e300, hts_enc = 1e300, hts_dec = 1e300, qans_dec2 = 1e300;
  for (int r = 0; r < runs; r++) {
    time_into(&qans_enc, qans_encode);
    time_into(&hts_enc, hts_encode);
  }
  for (int r = 0; r < runs; r++) {
    time_into(&qans_dec, [&] { qans_decode_blocks(0, blocks); });
    time_into(&hts_dec, hts_decode);
  }
  if (qans_out != symbols) fail("qans round trip differs");
  if (hts_out != symbols) fail("htscodecs round trip differs");
  size_t qans_total = 0, hts_total = 0;
  for (size_t length : qans_lengths) qans_total += length;
  for (unsigned int length : hts_lengths) hts_total += length;
  report("qans", level.name, block, n, qans_total, qans_enc, qans_dec);
  report("htscodecs", level.name, block, n, hts_total, hts_enc, hts_dec);

  // Two threads over disjoint halves of the blocks: the kernel's scaling, without any scheduling layer.
  for (int r = 0; r < runs; r++) {
    time_into(&qans_dec2, [&] {
      std::thread other(qans_decode_blocks, blocks / 2, blocks);
      qans_decode_blocks(0, blocks / 2);
      other.join();
    });
  }
  report("qans-2threads", level.name, block, n, qans_total, 0, qans_dec2);
}

void bench_zstd(const std::vector<uint8_t>& symbols, int level, int runs) {
  std::vector<uint8_t> packed(ZSTD_compressBound(symbols.size()));
  size_t size = 0;
  // Level 19 takes tens of seconds on 64 MiB; one run measures it well enough.
  const double enc_s = best_seconds(level >= 10 ? 1 : runs, [&] {
    size = ZSTD_compress(packed.data(), packed.size(), symbols.data(), symbols.size(), level);
    if (ZSTD_isError(size)) fail("zstd compress");
  });
  std::vector<uint8_t> out(symbols.size());
  const double dec_s = best_seconds(runs, [&] {
    if (ZSTD_decompress(out.data(), out.size(), packed.data(), size) != symbols.size()) fail("zstd decompress");
  });
  if (out != symbols) fail("zstd round trip differs");
  const std::string name = "zstd-" + std::to_string(level);
  report(name.c_str(), "native", symbols.size(), symbols.size(), size, enc_s, dec_s);
}

void bench_memcpy(const std::vector<uint8_t>& symbols, int runs) {
  std::vector<uint8_t> out(symbols.size());
  const double s = best_seconds(runs, [&] { std::memcpy(out.data(), symbols.data(), symbols.size()); });
  report("memcpy", "native", symbols.size(), symbols.size(), symbols.size(), s, s);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) fail("usage: harness <symbols.bin> <table.txt> <block-size>...");
  const std::vector<uint8_t> symbols = read_file(argv[1]);
  std::ifstream table_in(argv[2]);
  uint32_t k = 0;
  uint32_t freqs[256] = {};
  table_in >> k;
  for (uint32_t& f : freqs) table_in >> f;
  qans::EncodeTable enc;
  qans::DecodeTable dec;
  if (qans::build_encode_table(freqs, 256, k, &enc) != qans::Status::Ok) fail("bad table");
  if (qans::build_decode_table(freqs, 256, k, &dec) != qans::Status::Ok) fail("bad table");
  const int runs = std::getenv("QANS_BENCH_RUNS") ? std::atoi(std::getenv("QANS_BENCH_RUNS")) : 4;
  std::printf("input bytes=%zu k=%u\n", symbols.size(), k);
  bench_memcpy(symbols, runs * 3);
  for (int a = 3; a < argc; a++) {
    const size_t block = std::strtoull(argv[a], nullptr, 10);
    for (const Level& level : kLevels) {
      if (!supported(level)) continue;
      bench_level(symbols, enc, dec, block, level, runs);
    }
  }
  // A rerun of the same bytes with another table (QANS_BENCH_ZSTD=0) need not repeat the slow zstd -19.
  const char* zstd = std::getenv("QANS_BENCH_ZSTD");
  if (!zstd || std::strcmp(zstd, "0") != 0) {
    bench_zstd(symbols, 3, runs);
    bench_zstd(symbols, 19, runs);
  }
  return 0;
}
