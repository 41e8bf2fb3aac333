// Single-thread throughput of the rANS kernels at every level the CPU has, in MB/s of symbols
// (10^6 symbols per second), on 64 MiB of Laplacian int8 symbols (scale 7.8, about 5.4 bits per
// symbol) and Laplacian int4 symbols (scale 1.5), in blocks of 2^17 and 2^20 symbols on 32 lanes,
// for k = 12 to 15. Tables come from the spec's normalisation (§10.4, ported below) of the data's counts.
// Built with -DQANS_BENCH_HTSCODECS, it also times htscodecs' 32x16 order-0 rANS (whose tables
// are 12-bit whatever k is) at the same level on the same bytes, its runs interleaved with each
// row's, as a yardstick while tuning.
//
// usage: rans_bench [MiB=64] [runs=5]
// Environment: RANS_BENCH_ONLY (int8 or int4), RANS_BENCH_LEVELS (e.g. "scalar,avx2"),
// RANS_BENCH_KS (e.g. "12,15"; default 12,13,14,15), RANS_BENCH_BLOCKS (log2 sizes, e.g. "17").
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "../src/rans.h"
#include "../src/rans_dispatch.h"

#if defined(QANS_BENCH_HTSCODECS)
#include <htscodecs/rANS_static4x16.h>
#endif

namespace {

using qans::SimdLevel;
using Clock = std::chrono::steady_clock;

struct Level {
  SimdLevel level;
  const char* name;
  int htscodecs;  // rans_set_cpu flags
};

const Level kLevels[] = {
    {SimdLevel::Scalar, "scalar", 0},
    {SimdLevel::Sse41, "sse41", 1 | (1 << 8)},
    {SimdLevel::Avx2, "avx2", 2 | (2 << 8)},
    {SimdLevel::Avx512, "avx512", 4 | (4 << 8)},
};

bool cpu_has(SimdLevel level) {
#if !defined(__x86_64__)
  return level == SimdLevel::Scalar;
#endif
  switch (level) {
    case SimdLevel::Scalar: return true;
    case SimdLevel::Sse41: return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt");
    case SimdLevel::Avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2");
    case SimdLevel::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vbmi");
  }
  return false;
}

uint64_t g_seed = 0x9e3779b97f4a7c15ull;
uint64_t next_u64() {
  uint64_t z = (g_seed += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
double next_unit() {
  return (next_u64() >> 11) * (1.0 / 9007199254740992.0);
}

std::vector<uint8_t> laplacian_symbols(size_t n, double scale, int bits) {
  std::vector<uint8_t> out(n);
  const int mid = 1 << (bits - 1);
  const int top = (1 << bits) - 1;
  for (size_t i = 0; i < n; i++) {
    const double u = next_unit() - 0.5;
    const double v = -scale * (u < 0 ? -1.0 : 1.0) * std::log(1 - 2 * std::fabs(u));
    out[i] = static_cast<uint8_t>(std::max(0, std::min(top, static_cast<int>(std::lround(v)) + mid)));
  }
  return out;
}

// Spec §10.4, the reference normalisation, in exact integer arithmetic.
std::vector<uint32_t> normalize(const std::vector<uint64_t>& counts, uint32_t k) {
  using u128 = unsigned __int128;
  const size_t n = counts.size();
  const uint64_t m = uint64_t{1} << k;
  u128 total = 0;
  for (uint64_t c : counts) total += c;
  std::vector<uint32_t> f(n, 0);
  std::vector<u128> rem(n, 0);
  std::vector<bool> bumped(n, false);
  int64_t d = static_cast<int64_t>(m);
  for (size_t s = 0; s < n; s++) {
    if (!counts[s]) continue;
    const u128 scaled = static_cast<u128>(counts[s]) * m;
    f[s] = static_cast<uint32_t>(scaled / total);
    rem[s] = scaled % total;
    if (f[s] == 0) {
      f[s] = 1;
      bumped[s] = true;
    }
    d -= f[s];
  }
  if (d > 0) {
    std::vector<size_t> order;
    for (size_t s = 0; s < n; s++)
      if (counts[s] && !bumped[s]) order.push_back(s);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rem[a] > rem[b]; });
    for (int64_t t = 0; t < d; t++) f[order[t]]++;
  }
  while (d < 0) {
    size_t best = n;
    for (size_t s = 0; s < n; s++) {
      if (!counts[s] || f[s] <= 1) continue;
      if (best == n || static_cast<u128>(counts[s]) * f[best] < static_cast<u128>(counts[best]) * f[s]) best = s;
    }
    f[best]--;
    d++;
  }
  return f;
}

double entropy_bits(const std::vector<uint64_t>& counts) {
  double total = 0, h = 0;
  for (uint64_t c : counts) total += c;
  for (uint64_t c : counts)
    if (c) h -= c / total * std::log2(c / total);
  return h;
}

double best_seconds(int runs, const std::function<void()>& body) {
  double best = 1e300;
  for (int r = 0; r < runs; r++) {
    const auto start = Clock::now();
    body();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "rans_bench: %s\n", what);
  std::exit(1);
}

// Comma-separated numbers from `text`, or `fallback` when it is unset.
std::vector<uint32_t> number_list(const char* text, std::vector<uint32_t> fallback) {
  if (!text) return fallback;
  std::vector<uint32_t> out;
  for (const char* at = text; *at;) {
    char* next = nullptr;
    const unsigned long v = std::strtoul(at, &next, 10);
    if (next == at) fail("bad number list");
    out.push_back(static_cast<uint32_t>(v));
    at = *next == ',' ? next + 1 : next;
  }
  return out;
}

struct Result {
  double enc = 0, dec = 0, ratio = 0;
};

// One codec on one input: encode and decode every block, as functions so that the runs of
// different codecs can be interleaved (the machine is shared; the best run of each counts).
struct Codec {
  std::function<void()> encode, decode;
  std::function<double()> ratio;
};

Codec qans_codec(const std::vector<uint8_t>& symbols, const qans::EncodeTable& enc, const qans::DecodeTable& dec, size_t block,
                 SimdLevel level, std::vector<uint8_t>* payload, std::vector<size_t>* lengths, std::vector<uint8_t>* out) {
  const size_t n = symbols.size();
  const size_t blocks = (n + block - 1) / block;
  const size_t stride = qans::kRansStateBytes + 2 * block;
  payload->assign(blocks * stride, 0);
  lengths->assign(blocks, 0);
  out->assign(n, 0);
  const auto encode = qans::rans_encoder(level);
  const auto decode = qans::rans_decoder(level);
  Codec c;
  c.encode = [=, &symbols, &enc] {
    for (size_t b = 0; b < blocks; b++) {
      const size_t count = std::min(block, n - b * block);
      if (encode(symbols.data() + b * block, count, qans::kRansLanes, enc, payload->data() + b * stride, &(*lengths)[b]) != qans::Status::Ok) fail("encode");
    }
  };
  c.decode = [=, &dec] {
    for (size_t b = 0; b < blocks; b++) {
      const size_t count = std::min(block, n - b * block);
      if (decode(payload->data() + b * stride, (*lengths)[b], count, qans::kRansLanes, dec, out->data() + b * block) != qans::Status::Ok) fail("decode");
    }
  };
  c.ratio = [=] {
    size_t total = 0;
    for (size_t length : *lengths) total += length;
    return static_cast<double>(total) / n;
  };
  return c;
}

#if defined(QANS_BENCH_HTSCODECS)
Codec hts_codec(const std::vector<uint8_t>& symbols, size_t block, int cpu, std::vector<uint8_t>* payload, std::vector<size_t>* lengths,
                std::vector<uint8_t>* out) {
  const size_t n = symbols.size();
  const size_t blocks = (n + block - 1) / block;
  const int order = RANS_ORDER_X32 | RANS_ORDER_SIMD_AUTO;
  const size_t bound = rans_compress_bound_4x16(static_cast<unsigned>(block), order);
  payload->assign(blocks * bound, 0);
  lengths->assign(blocks, 0);
  out->assign(n, 0);
  uint8_t* in = const_cast<uint8_t*>(symbols.data());
  Codec c;
  c.encode = [=] {
    rans_set_cpu(cpu);
    for (size_t b = 0; b < blocks; b++) {
      unsigned int count = static_cast<unsigned int>(std::min(block, n - b * block));
      unsigned int length = static_cast<unsigned int>(bound);
      if (!rans_compress_to_4x16(in + b * block, count, payload->data() + b * bound, &length, order)) fail("htscodecs encode");
      (*lengths)[b] = length;
    }
  };
  c.decode = [=] {
    rans_set_cpu(cpu);
    for (size_t b = 0; b < blocks; b++) {
      unsigned int count = static_cast<unsigned int>(std::min(block, n - b * block));
      if (!rans_uncompress_to_4x16(payload->data() + b * bound, static_cast<unsigned int>((*lengths)[b]), out->data() + b * block, &count)) {
        fail("htscodecs decode");
      }
    }
  };
  c.ratio = [=] {
    size_t total = 0;
    for (size_t length : *lengths) total += length;
    return static_cast<double>(total) / n;
  };
  return c;
}
#endif

// Best-of-`runs` throughput of each codec (MB/s of symbols), the codecs' runs interleaved.
std::vector<Result> measure(std::vector<Codec>& codecs, size_t n, int runs, const std::vector<const std::vector<uint8_t>*>& outs,
                            const std::vector<uint8_t>& symbols) {
  std::vector<double> enc(codecs.size(), 1e300), dec(codecs.size(), 1e300);
  for (int r = 0; r < runs; r++) {
    for (size_t c = 0; c < codecs.size(); c++) enc[c] = std::min(enc[c], best_seconds(1, codecs[c].encode));
  }
  for (int r = 0; r < runs; r++) {
    for (size_t c = 0; c < codecs.size(); c++) dec[c] = std::min(dec[c], best_seconds(1, codecs[c].decode));
  }
  std::vector<Result> results;
  for (size_t c = 0; c < codecs.size(); c++) {
    if (*outs[c] != symbols) fail("round trip differs");
    results.push_back({n / enc[c] / 1e6, n / dec[c] / 1e6, codecs[c].ratio()});
  }
  return results;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 64;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  const char* only = std::getenv("RANS_BENCH_ONLY");      // optional: "int8" or "int4"
  const char* levels = std::getenv("RANS_BENCH_LEVELS");  // optional: e.g. "avx2,avx512"
  const std::vector<uint32_t> ks = number_list(std::getenv("RANS_BENCH_KS"), {12, 13, 14, 15});
  const std::vector<uint32_t> block_logs = number_list(std::getenv("RANS_BENCH_BLOCKS"), {17, 20});
  const size_t n = mib << 20;
  struct Data {
    const char* name;
    double scale;
    int bits;
  };
  const Data datasets[] = {{"int8", 7.8, 8}, {"int4", 1.5, 4}};
  std::printf("%-5s %-3s %-8s %-7s %9s %9s %8s", "data", "k", "block", "level", "dec MB/s", "enc MB/s", "ratio");
#if defined(QANS_BENCH_HTSCODECS)
  std::printf(" | %13s %13s %8s", "hts dec MB/s", "hts enc MB/s", "hts ratio");
  std::printf("\n# hts: htscodecs 32x16 order 0 (always 12-bit tables), timed beside every row");
#endif
  std::printf("\n");
  for (const Data& data : datasets) {
    if (only && std::strcmp(only, data.name) != 0) continue;
    const std::vector<uint8_t> symbols = laplacian_symbols(n, data.scale, data.bits);
    std::vector<uint64_t> counts(256, 0);
    for (uint8_t s : symbols) counts[s]++;
    std::printf("# %s: %zu symbols, entropy %.3f bits/symbol\n", data.name, n, entropy_bits(counts));
    for (uint32_t k : ks) {
      if (k < 10 || k > 15) fail("RANS_BENCH_KS: k must be 10..15");
      const std::vector<uint32_t> freqs = normalize(counts, k);
      qans::EncodeTable enc;
      qans::DecodeTable dec;
      if (qans::build_encode_table(freqs.data(), 256, k, &enc) != qans::Status::Ok) fail("bad table");
      if (qans::build_decode_table(freqs.data(), 256, k, &dec) != qans::Status::Ok) fail("bad table");
      for (uint32_t block_log : block_logs) {
        if (block_log < 5 || block_log > 24) fail("RANS_BENCH_BLOCKS: log2 sizes must be 5..24");
        const size_t block = size_t{1} << block_log;
        for (const Level& level : kLevels) {
          if (!cpu_has(level.level)) continue;
          if (levels && !std::strstr(levels, level.name)) continue;
          std::vector<uint8_t> payload[2], out[2];
          std::vector<size_t> lengths[2];
          std::vector<Codec> codecs;
          std::vector<const std::vector<uint8_t>*> outs;
          codecs.push_back(qans_codec(symbols, enc, dec, block, level.level, &payload[0], &lengths[0], &out[0]));
          outs.push_back(&out[0]);
#if defined(QANS_BENCH_HTSCODECS)
          {
            codecs.push_back(hts_codec(symbols, block, level.htscodecs, &payload[1], &lengths[1], &out[1]));
            outs.push_back(&out[1]);
          }
#endif
          const std::vector<Result> r = measure(codecs, n, runs, outs, symbols);
          std::printf("%-5s %-3u %-8zu %-7s %9.0f %9.0f %8.4f", data.name, k, block, level.name, r[0].dec, r[0].enc, r[0].ratio);
          if (r.size() > 1) std::printf(" | %13.0f %13.0f %8.4f", r[1].dec, r[1].enc, r[1].ratio);
          std::printf("\n");
          std::fflush(stdout);
        }
      }
    }
  }
  return 0;
}
