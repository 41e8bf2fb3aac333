// Tests of the rANS kernels: every SIMD level the CPU has against the scalar kernels, and the
// scalar kernels against direct transcriptions of spec/qans-v1.md §10.2 (the encoder with its
// division, the decoder with its symbol search and checks), at every lane count N (32, 16, 8, 4,
// 2 and 1).
//
// - encoding: identical payload bytes and length for alphabets of 2..256 symbols, tables random,
//   skewed, dominated by one symbol and sparse, symbol streams drawn from the table, uniform, all
//   rare (a word per symbol) and all frequent (hardly any words), every k from 10 to 15, counts
//   0, 1, 31, 32, 33, 63, 64, 65, 4095, 4096, 4097, 2^17 and 2^20 + 7 on 32 lanes, and on fewer
//   lanes 0, 1, N - 1, N, N + 1, 2N - 1, 2N + 1, 200, 1023, 1024, 4097 and a few large blocks; a
//   symbol of frequency 0 gives INVALID_ARGUMENT everywhere;
// - decoding: identical symbols and status (the scalar kernel against the spec's decoder, every
//   level against the scalar kernel), on valid payloads and on corrupt ones: a stored state
//   below L or at 2^31 and above, flipped payload bits (anywhere, and near the end where the vector
//   loops hand over to the scalar tail), an extra trailing word, a missing last word, every length
//   cut from 4N bytes to the whole payload of a small block, wrong symbol counts, the payload
//   decoded with another lane count, and random payloads. On error the symbols written before the
//   error must match too (outputs start from the same fill pattern). Tables not of
//   build_decode_table's shape, and lane counts other than the six, give INVALID_ARGUMENT;
// - the lane rules of rans.h (spec §9 lane codes, §15 step 4 reference lanes).
// - the encoders' division by reciprocal multiplication (and the SSE4.1 encoder's division in
//   double precision), for every f < 2^15, on the states around the multiples of f near 2^31 and
//   near each renormalisation bound f << (31 - k); every state for two frequencies.
//
// Payloads and outputs live in heap buffers of exactly their size, so the sanitizer build
// (run.sh) catches any read or write outside them.
//
// usage: rans_kernels_test [--quick]   (--quick: fewer large blocks, for the sanitizer build)
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../src/rans.h"
#include "../src/rans_dispatch.h"
#include "../src/rans_kernel_common.h"
#include "../src/rans_simd.h"

namespace {

using qans::DecodeTable;
using qans::EncodeTable;
using qans::kRansL;
using qans::kRansLanes;
using qans::kRansStateBytes;
using qans::rans_state_bytes;
using qans::Status;

// Every lane count a block can have, 32 first.
const uint32_t kAllLanes[] = {32, 16, 8, 4, 2, 1};

int g_passed = 0;
int g_failed = 0;

void expect(bool ok, const std::string& what) {
  if (ok) {
    g_passed++;
    return;
  }
  g_failed++;
  if (g_failed <= 40) std::printf("FAIL: %s\n", what.c_str());
}

// ---------------------------------------------------------------------------------------------
// Random numbers (deterministic)

uint64_t g_rng = 0x243f6a8885a308d3ull;
uint64_t rnd() {
  uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
uint32_t rnd_below(uint32_t n) {
  return static_cast<uint32_t>(rnd() % n);
}

// ---------------------------------------------------------------------------------------------
// Kernels under test

struct Kernels {
  const char* name;
  qans::RansDecodeFn decode;
  qans::RansEncodeFn encode;
};

std::vector<Kernels> levels_to_test() {
  std::vector<Kernels> out;
#if defined(QANS_COMPILED_SSE41)
  if (__builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt")) {
    out.push_back({"sse41", qans::rans_decode_sse41, qans::rans_encode_sse41});
  }
#endif
#if defined(QANS_COMPILED_AVX2)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2")) {
    out.push_back({"avx2", qans::rans_decode_avx2, qans::rans_encode_avx2});
  }
#endif
#if defined(QANS_COMPILED_AVX512)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vbmi")) {
    out.push_back({"avx512", qans::rans_decode_avx512, qans::rans_encode_avx512});
  }
#endif
  return out;
}

std::vector<Kernels> g_levels;

// ---------------------------------------------------------------------------------------------
// The spec's encoder, literally (§10.2), on N lanes, as the reference for the scalar encoder.

std::vector<uint8_t> spec_encode(const std::vector<uint8_t>& sym, const uint32_t* f, const uint32_t* c, uint32_t k, uint32_t N) {
  std::vector<uint32_t> x(N, kRansL);
  std::vector<uint16_t> words;
  for (size_t i = sym.size(); i-- > 0;) {
    const uint32_t l = i % N;
    const uint32_t s = sym[i];
    if (x[l] >= (f[s] << (31 - k))) {
      words.push_back(static_cast<uint16_t>(x[l] & 0xffff));
      x[l] >>= 16;
    }
    x[l] = ((x[l] / f[s]) << k) + (x[l] % f[s]) + c[s];
  }
  std::vector<uint8_t> payload(4 * N + 2 * words.size());
  for (uint32_t l = 0; l < N; l++) std::memcpy(&payload[4 * l], &x[l], 4);
  for (size_t t = 0; t < words.size(); t++) std::memcpy(&payload[4 * N + 2 * t], &words[words.size() - 1 - t], 2);
  return payload;
}

// The spec's decoder on N lanes, literally (§10.2), with §9's payload length check for a RANS
// block before it, as the reference for the scalar decoder. "The symbol with c[s] <= slot < c[s]
// + f[s]" is looked up in a map filled from that definition. Writes sym[i] as the spec's loop
// does, so that on error the symbols before it can be compared too.
Status spec_decode(const std::vector<uint8_t>& payload, size_t n, uint32_t N, const uint32_t* f, uint32_t k, uint8_t* sym) {
  const size_t P = payload.size();
  if (P < 4 * N || P > 4 * N + 2 * n || P % 2 != 0) return Status::BadBlock;
  const uint32_t M = 1u << k;
  uint32_t c[256];
  for (uint32_t s = 0, cum = 0; s < 256; s++) {
    c[s] = cum;
    cum += f[s];
  }
  std::vector<uint32_t> owner(M, 256);
  for (uint32_t s = 0; s < 256; s++) {
    for (uint32_t slot = c[s]; slot < c[s] + f[s]; slot++) owner[slot] = s;
  }
  std::vector<uint32_t> x(N);
  for (uint32_t l = 0; l < N; l++) {
    std::memcpy(&x[l], &payload[4 * l], 4);
    if (!(kRansL <= x[l] && x[l] < (1u << 31))) return Status::BadFinalState;
  }
  size_t p = 4 * N;
  for (size_t i = 0; i < n; i++) {
    const uint32_t l = i % N;
    const uint32_t slot = x[l] & (M - 1);
    const uint32_t s = owner[slot];
    if (s == 256) std::abort();  // frequencies that do not sum to M: not a table under test
    x[l] = f[s] * (x[l] >> k) + slot - c[s];
    if (x[l] < kRansL) {
      if (p + 2 > P) return Status::BlockOverrun;
      uint16_t word;
      std::memcpy(&word, &payload[p], 2);
      x[l] = (x[l] << 16) | word;
      p = p + 2;
    }
    sym[i] = static_cast<uint8_t>(s);
  }
  if (p != P) return Status::TrailingData;
  for (uint32_t l = 0; l < N; l++) {
    if (x[l] != kRansL) return Status::BadFinalState;
  }
  return Status::Ok;
}

// A decode table with the frequencies it was built from (256 of them), for the spec's decoder.
struct RefTable {
  DecodeTable dec;
  std::vector<uint32_t> f;
};

// ---------------------------------------------------------------------------------------------
// Tables and symbol streams

// Frequencies summing to 2^k for `present` symbols placed at `where` (size 256, f = 0 elsewhere).
std::vector<uint32_t> make_freqs(const std::vector<uint32_t>& weights, uint32_t k) {
  // Every present symbol gets 1, the rest of 2^k is shared in proportion to the weights.
  const uint32_t m = 1u << k;
  std::vector<uint32_t> f(256, 0);
  uint64_t total = 0;
  uint32_t present = 0;
  for (uint32_t w : weights) {
    total += w;
    present += w ? 1 : 0;
  }
  uint32_t left = m - present;
  uint32_t given = 0;
  int last = -1;
  for (int s = 0; s < 256; s++) {
    if (!weights[s]) continue;
    const uint32_t extra = static_cast<uint32_t>(static_cast<uint64_t>(left) * weights[s] / total);
    f[s] = 1 + extra;
    given += f[s];
    last = s;
  }
  // The rounding remainder goes to the heaviest symbol.
  int heaviest = last;
  for (int s = 0; s < 256; s++)
    if (weights[s] > weights[heaviest]) heaviest = s;
  f[heaviest] += m - given;
  return f;
}

enum class TableKind { Random, Skewed, Dominant, Sparse };
const char* table_name(TableKind t) {
  switch (t) {
    case TableKind::Random: return "random";
    case TableKind::Skewed: return "skewed";
    case TableKind::Dominant: return "dominant";
    case TableKind::Sparse: return "sparse";
  }
  return "?";
}

std::vector<uint32_t> make_table(TableKind kind, uint32_t alphabet, uint32_t k) {
  std::vector<uint32_t> w(256, 0);
  switch (kind) {
    case TableKind::Random:
      for (uint32_t s = 0; s < alphabet; s++) w[s] = 1 + rnd_below(1000);
      break;
    case TableKind::Skewed:
      // Roughly geometric: a Laplacian-like peak in the middle of the alphabet.
      for (uint32_t s = 0; s < alphabet; s++) {
        const int d = std::abs(static_cast<int>(s) - static_cast<int>(alphabet / 2));
        w[s] = std::max<uint32_t>(1, static_cast<uint32_t>(1000000.0 / (1u << std::min(d / 2, 19))));
      }
      break;
    case TableKind::Dominant: {
      for (uint32_t s = 0; s < alphabet; s++) w[s] = 1;
      w[rnd_below(alphabet)] = 1u << 30;
      break;
    }
    case TableKind::Sparse: {
      // `alphabet` present symbols spread over 0..255 with absent ones between.
      std::vector<uint32_t> all(256);
      for (uint32_t s = 0; s < 256; s++) all[s] = s;
      for (uint32_t s = 255; s > 0; s--) std::swap(all[s], all[rnd_below(s + 1)]);
      for (uint32_t t = 0; t < alphabet; t++) w[all[t]] = 1 + rnd_below(100);
      break;
    }
  }
  return make_freqs(w, k);
}

enum class StreamKind { Table, Uniform, Rare, Frequent };
const char* stream_name(StreamKind t) {
  switch (t) {
    case StreamKind::Table: return "table";
    case StreamKind::Uniform: return "uniform";
    case StreamKind::Rare: return "rare";
    case StreamKind::Frequent: return "frequent";
  }
  return "?";
}

std::vector<uint8_t> make_symbols(StreamKind kind, const std::vector<uint32_t>& f, uint32_t k, size_t n) {
  std::vector<uint8_t> present, slot_symbol;
  int rare = -1, frequent = -1;
  for (int s = 0; s < 256; s++) {
    if (!f[s]) continue;
    present.push_back(static_cast<uint8_t>(s));
    for (uint32_t t = 0; t < f[s]; t++) slot_symbol.push_back(static_cast<uint8_t>(s));
    if (rare < 0 || f[s] < f[rare]) rare = s;
    if (frequent < 0 || f[s] > f[frequent]) frequent = s;
  }
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; i++) {
    switch (kind) {
      case StreamKind::Table: out[i] = slot_symbol[rnd_below(1u << k)]; break;
      case StreamKind::Uniform: out[i] = present[rnd_below(static_cast<uint32_t>(present.size()))]; break;
      case StreamKind::Rare: out[i] = static_cast<uint8_t>(rare); break;
      case StreamKind::Frequent: out[i] = static_cast<uint8_t>(frequent); break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checks

std::string describe(const char* what, const char* level, uint32_t k, uint32_t alphabet, TableKind t, StreamKind s, size_t n,
                     uint32_t lanes) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s [%s] k=%u alphabet=%u table=%s stream=%s count=%zu lanes=%u", what, level, k, alphabet,
                table_name(t), stream_name(s), n, lanes);
  return buf;
}

// Decodes `payload` (copied into an exactly sized buffer) on `lanes` lanes with the spec's decoder,
// the scalar kernel and every level; statuses and outputs (all filled with the same pattern first)
// must agree.
void compare_decode(const std::vector<uint8_t>& payload, size_t count, uint32_t lanes, const RefTable& t, const std::string& what) {
  const DecodeTable& dec = t.dec;
  const uint8_t* p_null = nullptr;
  std::vector<uint8_t> in(payload);
  std::vector<uint8_t> ref_out(count, 0xa5);
  const Status ref = qans::rans_decode_scalar(in.empty() ? p_null : in.data(), in.size(), count, lanes, dec, ref_out.data());
  {
    std::vector<uint8_t> spec_out(count, 0xa5);
    const Status spec = spec_decode(payload, count, lanes, t.f.data(), dec.k, spec_out.data());
    char buf[160];
    std::snprintf(buf, sizeof buf, " [scalar vs spec] length=%zu: spec %s, scalar %s", payload.size(), qans::status_code(spec),
                  qans::status_code(ref));
    expect(ref == spec, what + buf);
    expect(ref_out == spec_out, what + buf + " (symbols differ)");
  }
  for (const Kernels& level : g_levels) {
    std::vector<uint8_t> in2(payload);
    std::vector<uint8_t> out(count, 0xa5);
    const Status got = level.decode(in2.empty() ? p_null : in2.data(), in2.size(), count, lanes, dec, out.data());
    char buf[160];
    std::snprintf(buf, sizeof buf, " [%s] length=%zu: scalar %s, level %s", level.name, payload.size(), qans::status_code(ref),
                  qans::status_code(got));
    expect(got == ref, what + buf);
    expect(out == ref_out, what + buf + " (symbols differ)");
  }
}

void corrupt_cases(const std::vector<uint8_t>& payload, size_t n, uint32_t lanes, const RefTable& dec, const std::string& what,
                   bool all_cuts) {
  const size_t len = payload.size();
  const size_t states = rans_state_bytes(lanes);
  // A stored state below L, and one at 2^31 or above.
  for (uint32_t bad : {0u, kRansL - 1, 1u << 31, 0xffffffffu}) {
    std::vector<uint8_t> p(payload);
    const uint32_t lane = rnd_below(lanes);
    std::memcpy(&p[4 * lane], &bad, 4);
    compare_decode(p, n, lanes, dec, what + " bad state");
  }
  // A state changed but still valid.
  {
    std::vector<uint8_t> p(payload);
    const uint32_t v = kRansL + rnd_below((1u << 31) - kRansL);
    std::memcpy(&p[4 * rnd_below(lanes)], &v, 4);
    compare_decode(p, n, lanes, dec, what + " altered state");
  }
  // Flipped bits: anywhere, and in the last 80 bytes.
  if (len > states) {
    for (int t = 0; t < 6; t++) {
      std::vector<uint8_t> p(payload);
      const size_t at = t < 3 ? states + rnd() % (len - states) : len - 1 - rnd() % std::min<size_t>(80, len - states);
      p[at] ^= static_cast<uint8_t>(1u << rnd_below(8));
      compare_decode(p, n, lanes, dec, what + " flipped bit");
    }
  }
  // An extra trailing word, a missing last word, an odd length.
  {
    std::vector<uint8_t> p(payload);
    p.push_back(static_cast<uint8_t>(rnd()));
    p.push_back(static_cast<uint8_t>(rnd()));
    compare_decode(p, n, lanes, dec, what + " trailing word");
    p.pop_back();
    compare_decode(p, n, lanes, dec, what + " odd length");
  }
  if (len >= states + 2) {
    std::vector<uint8_t> p(payload.begin(), payload.end() - 2);
    compare_decode(p, n, lanes, dec, what + " truncated");
  }
  // Wrong symbol counts.
  compare_decode(payload, n + 1, lanes, dec, what + " count+1");
  if (n > 0) compare_decode(payload, n - 1, lanes, dec, what + " count-1");
  if (n >= lanes) compare_decode(payload, n - lanes, lanes, dec, what + " count-lanes");
  if (n >= 32) compare_decode(payload, n - 32, lanes, dec, what + " count-32");
  // Decoded with twice and half the lanes (a wrong lane code).
  if (lanes < kRansLanes) compare_decode(payload, n, 2 * lanes, dec, what + " as twice the lanes");
  if (lanes > 1) compare_decode(payload, n, lanes / 2, dec, what + " as half the lanes");
  // Every cut of the payload from the states to its length, or a sample of them.
  if (all_cuts) {
    for (size_t cut = states; cut <= len; cut++) {
      compare_decode(std::vector<uint8_t>(payload.begin(), payload.begin() + cut), n, lanes, dec, what + " cut");
    }
  } else {
    for (int t = 0; t < 4 && len > states; t++) {
      const size_t cut = len - 2 * (1 + rnd() % std::min<size_t>(60, (len - states) / 2));
      compare_decode(std::vector<uint8_t>(payload.begin(), payload.begin() + cut), n, lanes, dec, what + " cut");
    }
  }
}

void random_payloads(size_t n, uint32_t lanes, const RefTable& dec, const std::string& what, int tries) {
  for (int t = 0; t < tries; t++) {
    const size_t words = rnd() % (n + 1);
    std::vector<uint8_t> p(rans_state_bytes(lanes) + 2 * words);
    for (uint8_t& b : p) b = static_cast<uint8_t>(rnd());
    if (t % 4 != 3) {
      // Valid states, so that decoding runs through the payload.
      for (uint32_t l = 0; l < lanes; l++) {
        const uint32_t v = kRansL + rnd_below((1u << 31) - kRansL);
        std::memcpy(&p[4 * l], &v, 4);
      }
    }
    compare_decode(p, n, lanes, dec, what + " random payload");
  }
}

void run_case(uint32_t k, uint32_t alphabet, TableKind tk, StreamKind sk, size_t n, uint32_t lanes, bool corrupt) {
  const std::vector<uint32_t> f = make_table(tk, alphabet, k);
  EncodeTable enc;
  RefTable t;
  t.f = f;
  if (qans::build_encode_table(f.data(), 256, k, &enc) != Status::Ok || qans::build_decode_table(f.data(), 256, k, &t.dec) != Status::Ok) {
    expect(false, describe("table build", "-", k, alphabet, tk, sk, n, lanes));
    return;
  }
  const DecodeTable& dec = t.dec;
  const std::vector<uint8_t> sym = make_symbols(sk, f, k, n);
  const std::vector<uint8_t> ref = spec_encode(sym, enc.freq, enc.cum, k, lanes);

  // Encoders: scalar against the spec, every level against the spec.
  auto check_encoder = [&](const char* name, qans::RansEncodeFn encode) {
    std::vector<uint8_t> in(sym);
    std::vector<uint8_t> out(rans_state_bytes(lanes) + 2 * n);
    size_t length = 0;
    const Status st = encode(in.empty() ? nullptr : in.data(), n, lanes, enc, out.data(), &length);
    expect(st == Status::Ok, describe("encode status", name, k, alphabet, tk, sk, n, lanes));
    expect(length == ref.size() && std::memcmp(out.data(), ref.data(), ref.size()) == 0,
           describe("encode bytes", name, k, alphabet, tk, sk, n, lanes));
  };
  check_encoder("scalar", qans::rans_encode_scalar);
  for (const Kernels& level : g_levels) check_encoder(level.name, level.encode);

  // Decoders on the valid payload: Ok and the symbols, same as scalar.
  {
    std::vector<uint8_t> in(ref);
    std::vector<uint8_t> out(n, 0);
    const Status st = qans::rans_decode_scalar(in.data(), in.size(), n, lanes, dec, out.data());
    expect(st == Status::Ok && out == sym, describe("scalar round trip", "scalar", k, alphabet, tk, sk, n, lanes));
  }
  compare_decode(ref, n, lanes, t, describe("decode", "all", k, alphabet, tk, sk, n, lanes));
  if (corrupt) corrupt_cases(ref, n, lanes, t, describe("corrupt", "all", k, alphabet, tk, sk, n, lanes), n <= 300);
}

// A symbol whose frequency is 0 makes every encoder fail with INVALID_ARGUMENT and leave *length.
void invalid_symbol_cases() {
  for (uint32_t k : {10u, 12u, 15u}) {
    for (uint32_t lanes : kAllLanes) {
      for (size_t n : {size_t{1}, size_t{33}, size_t{4097}, size_t{70000}}) {
        std::vector<uint32_t> w(256, 0);
        for (uint32_t s = 0; s < 200; s++) w[s] = 1 + rnd_below(50);
        const std::vector<uint32_t> f = make_freqs(w, k);
        EncodeTable enc;
        qans::build_encode_table(f.data(), 256, k, &enc);
        std::vector<uint8_t> sym = make_symbols(StreamKind::Table, f, k, n);
        for (size_t at : {size_t{0}, n / 2, n - 1}) {
          std::vector<uint8_t> bad(sym);
          bad[at] = static_cast<uint8_t>(200 + rnd_below(56));
          auto check = [&](const char* name, qans::RansEncodeFn encode) {
            std::vector<uint8_t> out(rans_state_bytes(lanes) + 2 * n);
            size_t length = 12345;
            const Status st = encode(bad.data(), n, lanes, enc, out.data(), &length);
            char buf[128];
            std::snprintf(buf, sizeof buf, "absent symbol [%s] k=%u count=%zu lanes=%u at=%zu", name, k, n, lanes, at);
            expect(st == Status::InvalidArgument && length == 12345, buf);
          };
          check("scalar", qans::rans_encode_scalar);
          for (const Kernels& level : g_levels) check(level.name, level.encode);
        }
      }
    }
  }
}

// Tables that build_*_table never makes go to the scalar code path and behave as it does.
void odd_table_cases() {
  std::vector<uint32_t> w(256, 0);
  for (uint32_t s = 0; s < 10; s++) w[s] = 1 + s;
  const std::vector<uint32_t> f = make_freqs(w, 12);
  DecodeTable dec;
  qans::build_decode_table(f.data(), 256, 12, &dec);
  EncodeTable enc;
  qans::build_encode_table(f.data(), 256, 12, &enc);
  const std::vector<uint8_t> sym = make_symbols(StreamKind::Table, f, 12, 5000);
  for (uint32_t lanes : kAllLanes) {
    const std::string on = " (" + std::to_string(lanes) + " lanes)";
    const std::vector<uint8_t> ref = spec_encode(sym, enc.freq, enc.cum, 12, lanes);
    // A decode table without packed12 or freq_cum_symbol (as if built by hand): same result.
    RefTable unpacked{dec, f};
    unpacked.dec.packed12.clear();
    compare_decode(ref, sym.size(), lanes, unpacked, "decode table without packed12" + on);
    for (uint32_t k : {12u, 15u}) {
      RefTable t{DecodeTable{}, make_freqs(w, k)};
      qans::build_decode_table(t.f.data(), 256, k, &t.dec);
      EncodeTable enc_k;
      qans::build_encode_table(t.f.data(), 256, k, &enc_k);
      const std::vector<uint8_t> sym_k = make_symbols(StreamKind::Table, t.f, k, 5000);
      const std::vector<uint8_t> ref_k = spec_encode(sym_k, enc_k.freq, enc_k.cum, k, lanes);
      t.dec.freq_cum_symbol.clear();
      compare_decode(ref_k, sym_k.size(), lanes, t, "decode table without freq_cum_symbol" + on);
    }
    // Tables whose lookups could leave them (as if built by hand): INVALID_ARGUMENT at every level,
    // before the payload is looked at, and nothing written.
    auto check_unusable = [&](const DecodeTable& bad, const char* what) {
      auto check = [&](const char* name, qans::RansDecodeFn decode) {
        std::vector<uint8_t> in(ref);
        std::vector<uint8_t> out(sym.size(), 0xa5);
        const Status st = decode(in.data(), in.size(), sym.size(), lanes, bad, out.data());
        expect(st == Status::InvalidArgument && out == std::vector<uint8_t>(sym.size(), 0xa5),
               std::string("unusable decode table, ") + what + on + " [" + name + "]");
      };
      check("scalar", qans::rans_decode_scalar);
      for (const Kernels& level : g_levels) check(level.name, level.decode);
    };
    {
      DecodeTable bad = dec;
      bad.symbols.pop_back();
      check_unusable(bad, "symbols short");
      bad = dec;
      bad.freq_cum.resize(255);
      check_unusable(bad, "freq_cum short");
      bad = dec;
      bad.k = 13;
      check_unusable(bad, "k not matching the sizes");
      bad = dec;
      bad.k = 9;
      check_unusable(bad, "k = 9");
      check_unusable(DecodeTable{}, "empty");
    }
    // An encode table with a frequency of 2^k or more (as if built by hand): every level gives the
    // scalar kernel's bytes.
    EncodeTable odd = enc;
    odd.freq[3] = (1u << 12) + 5;
    std::vector<uint8_t> ref_out(rans_state_bytes(lanes) + 2 * sym.size());
    size_t ref_length = 0;
    const Status ref_status = qans::rans_encode_scalar(sym.data(), sym.size(), lanes, odd, ref_out.data(), &ref_length);
    for (const Kernels& level : g_levels) {
      std::vector<uint8_t> out(rans_state_bytes(lanes) + 2 * sym.size());
      size_t length = 0;
      const Status st = level.encode(sym.data(), sym.size(), lanes, odd, out.data(), &length);
      expect(st == ref_status && length == ref_length && std::memcmp(out.data(), ref_out.data(), length) == 0,
             std::string("encode table with f >= 2^k") + on + " [" + level.name + "]");
    }
  }
  // What build_decode_table keeps: the symbol per slot (2^k bytes), f and cum per symbol in two
  // layouts (2 KiB each), and for k <= 12 the packed words; nothing per slot beyond that for
  // k > 12.
  for (uint32_t k = 10; k <= 15; k++) {
    const std::vector<uint32_t> fk = make_freqs(w, k);
    DecodeTable t;
    expect(qans::build_decode_table(fk.data(), 256, k, &t) == Status::Ok, "build_decode_table");
    const size_t m = size_t{1} << k;
    const size_t want = m + 256 * sizeof(qans::RansFreqCum) + 256 * 8 + (k <= 12 ? 4 * m : 0);
    char buf[96];
    std::snprintf(buf, sizeof buf, "decode table memory at k=%u: %zu bytes, want %zu", k, t.bytes(), want);
    expect(t.bytes() == want && t.freq_bias.empty(), buf);
  }
}

// The lane rules of rans.h, and lane counts other than 32, 16, 8, 4, 2 and 1: INVALID_ARGUMENT
// from every encoder and decoder, before anything is read or written.
void lane_cases() {
  for (uint32_t lanes = 0; lanes <= 64; lanes++) {
    const bool valid = lanes == 1 || lanes == 2 || lanes == 4 || lanes == 8 || lanes == 16 || lanes == 32;
    expect(qans::rans_lanes_valid(lanes) == valid, "rans_lanes_valid(" + std::to_string(lanes) + ")");
  }
  expect(!qans::rans_lanes_valid(0xffffffffu) && !qans::rans_lanes_valid(1u << 31), "rans_lanes_valid of huge counts");
  for (uint32_t code = 0; code < 256; code++) {
    const uint32_t lanes = qans::rans_lanes_of_code(code);
    const bool ok = code <= 5 ? lanes == (32u >> code) && qans::rans_lane_code(lanes) == code : lanes == 0;
    expect(ok, "lane code " + std::to_string(code));
  }
  // §15 step 4: 1 lane below 2^11 symbols, doubling at each power of two, 32 from 2^15 on.
  auto want_lanes = [](uint64_t n) -> uint32_t {
    int log2 = -1;
    for (uint64_t v = n; v != 0; v >>= 1) log2++;
    const int shift = std::min(5, std::max(0, log2 - 10));
    return 1u << shift;
  };
  for (uint64_t n = 0; n < (1u << 17); n++) {
    if (qans::rans_reference_lanes(n) != want_lanes(n)) {
      expect(false, "rans_reference_lanes(" + std::to_string(n) + ")");
      break;
    }
  }
  const std::pair<uint64_t, uint32_t> points[] = {{0, 1},      {1, 1},      {2047, 1},   {2048, 2},       {4095, 2},         {4096, 4},
                                                  {8192, 8},   {16383, 8},  {16384, 16}, {32767, 16},     {32768, 32},       {1u << 17, 32},
                                                  {1u << 20, 32}, {~uint64_t{0}, 32}};
  for (const auto& [n, lanes] : points) expect(qans::rans_reference_lanes(n) == lanes, "rans_reference_lanes at " + std::to_string(n));

  std::vector<uint32_t> w(256, 0);
  for (uint32_t s = 0; s < 10; s++) w[s] = 1 + s;
  const std::vector<uint32_t> f = make_freqs(w, 12);
  DecodeTable dec;
  qans::build_decode_table(f.data(), 256, 12, &dec);
  EncodeTable enc;
  qans::build_encode_table(f.data(), 256, 12, &enc);
  for (size_t n : {size_t{0}, size_t{5}, size_t{5000}}) {
    const std::vector<uint8_t> sym = make_symbols(StreamKind::Table, f, 12, n);
    const std::vector<uint8_t> ref = spec_encode(sym, enc.freq, enc.cum, 12, 32);
    for (uint32_t lanes : {0u, 3u, 5u, 6u, 12u, 24u, 31u, 33u, 64u, 128u, 0x80000000u, 0xffffffffu}) {
      auto check = [&](const char* name, qans::RansDecodeFn decode, qans::RansEncodeFn encode) {
        std::vector<uint8_t> in(ref);
        std::vector<uint8_t> out(n, 0xa5);
        const Status st = decode(in.data(), in.size(), n, lanes, dec, out.data());
        char buf[128];
        std::snprintf(buf, sizeof buf, "%u lanes [%s] count=%zu", lanes, name, n);
        expect(st == Status::InvalidArgument && out == std::vector<uint8_t>(n, 0xa5), std::string("decode on ") + buf);
        std::vector<uint8_t> coded(kRansStateBytes + 2 * n, 0x5a);
        size_t length = 12345;
        const Status est = encode(sym.empty() ? nullptr : sym.data(), n, lanes, enc, coded.data(), &length);
        expect(est == Status::InvalidArgument && length == 12345 && coded == std::vector<uint8_t>(kRansStateBytes + 2 * n, 0x5a),
               std::string("encode on ") + buf);
      };
      check("scalar", qans::rans_decode_scalar, qans::rans_encode_scalar);
      for (const Kernels& level : g_levels) check(level.name, level.decode, level.encode);
    }
  }
}

// q = floor(x / f) through the reciprocal, for every f < 2^15: around the multiples of f just
// below 2^31 (where the error term is largest), around each bound f << (31 - k), and for small x.
void reciprocal_cases(bool quick) {
  int bad = 0;
  uint64_t checked = 0;
  auto check = [&](uint32_t f, uint64_t x) {
    if (x == 0 || x >= (1ull << 31)) return;
    const qans::RkEncSym e = qans::rk_enc_sym(f, 0, 15);
    const uint32_t x32 = static_cast<uint32_t>(x);
    uint32_t q = static_cast<uint32_t>((static_cast<uint64_t>(x32) * e.rcp) >> 32) >> (e.limit & 15);
    // f = 1 gives x - 1 by design (the bias makes up for it).
    if (f == 1) q += 1;
    checked++;
    if (q != x32 / f && bad++ < 5) std::printf("reciprocal wrong: f=%u x=%u q=%u\n", f, x32, q);
  };
  for (uint32_t f = 1; f < (1u << 15); f++) {
    const uint64_t top = (1ull << 31) - 1;
    const uint64_t t_top = top / f;
    for (uint64_t t = t_top >= 3 ? t_top - 3 : 0; t <= t_top; t++) {
      for (uint64_t r : {uint64_t{0}, uint64_t{1}, uint64_t{f} / 2, uint64_t{f} - 2, uint64_t{f} - 1}) check(f, t * f + r);
    }
    for (uint64_t x = top; x > top - 64; x--) check(f, x);
    for (uint32_t k = 10; k <= 15; k++) {
      if (f >= (1u << k)) continue;
      const uint64_t bound = uint64_t{f} << (31 - k);
      for (uint64_t x = bound - 40; x < bound; x++) check(f, x);
    }
    for (uint64_t x = 1; x < 3ull * f + 3 && x < 200; x++) check(f, x);
  }
  // The SSE4.1 encoder's division in double precision, q = trunc((x + 0.5) * fl(1 / f)), on the
  // same states.
  int bad_double = 0;
  uint64_t checked_double = 0;
  for (uint32_t f = 1; f < (1u << 15); f++) {
    const double rf = 1.0 / f;
    auto check_double = [&](uint64_t x) {
      if (x >= (1ull << 31)) return;
      const uint32_t q = static_cast<uint32_t>((static_cast<double>(x) + 0.5) * rf);
      checked_double++;
      if (q != x / f && bad_double++ < 5) std::printf("double division wrong: f=%u x=%" PRIu64 " q=%u\n", f, x, q);
    };
    const uint64_t top = (1ull << 31) - 1;
    const uint64_t t_top = top / f;
    for (uint64_t t = t_top >= 3 ? t_top - 3 : 0; t <= t_top; t++) {
      for (uint64_t r : {uint64_t{0}, uint64_t{1}, uint64_t{f} / 2, uint64_t{f} - 2, uint64_t{f} - 1}) check_double(t * f + r);
    }
    for (uint64_t x = top; x > top - 64; x--) check_double(x);
    for (uint32_t k = 10; k <= 15; k++) {
      if (f >= (1u << k)) continue;
      const uint64_t bound = uint64_t{f} << (31 - k);
      for (uint64_t x = bound - 40; x < bound; x++) check_double(x);
    }
    for (uint64_t x = 0; x < 3ull * f + 3 && x < 200; x++) check_double(x);
  }
  char dbuf[128];
  std::snprintf(dbuf, sizeof dbuf, "double-precision division exact on %" PRIu64 " (f, x) pairs", checked_double);
  expect(bad_double == 0, dbuf);

  if (!quick) {
    // Every state for a few frequencies.
    for (uint32_t f : {3u, 32767u}) {
      const qans::RkEncSym e = qans::rk_enc_sym(f, 0, 15);
      uint32_t want = 0, r = 0;  // x / f and x % f, carried along
      for (uint64_t x = 1; x < (1ull << 31); x++) {
        if (++r == f) {
          r = 0;
          want++;
        }
        const uint32_t x32 = static_cast<uint32_t>(x);
        const uint32_t q = static_cast<uint32_t>((static_cast<uint64_t>(x32) * e.rcp) >> 32) >> (e.limit & 15);
        if (q != want && bad++ < 5) std::printf("reciprocal wrong: f=%u x=%u q=%u\n", f, x32, q);
      }
      checked += (1ull << 31) - 1;
    }
  }
  char buf[128];
  std::snprintf(buf, sizeof buf, "reciprocal division exact on %" PRIu64 " (f, x) pairs", checked);
  expect(bad == 0, buf);
}

void dispatch_cases() {
  expect(qans::rans_decoder(qans::SimdLevel::Scalar) == qans::rans_decode_scalar, "dispatch scalar decoder");
  expect(qans::rans_encoder(qans::SimdLevel::Scalar) == qans::rans_encode_scalar, "dispatch scalar encoder");
#if defined(QANS_COMPILED_SSE41) && defined(QANS_COMPILED_AVX2) && defined(QANS_COMPILED_AVX512)
  expect(qans::rans_decoder(qans::SimdLevel::Sse41) == qans::rans_decode_sse41, "dispatch sse41 decoder");
  expect(qans::rans_encoder(qans::SimdLevel::Sse41) == qans::rans_encode_sse41, "dispatch sse41 encoder");
  expect(qans::rans_decoder(qans::SimdLevel::Avx2) == qans::rans_decode_avx2, "dispatch avx2 decoder");
  expect(qans::rans_encoder(qans::SimdLevel::Avx2) == qans::rans_encode_avx2, "dispatch avx2 encoder");
  expect(qans::rans_decoder(qans::SimdLevel::Avx512) == qans::rans_decode_avx512, "dispatch avx512 decoder");
  expect(qans::rans_encoder(qans::SimdLevel::Avx512) == qans::rans_encode_avx512, "dispatch avx512 encoder");
#endif
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  g_levels = levels_to_test();
  std::printf("levels:");
  for (const Kernels& level : g_levels) std::printf(" %s", level.name);
  std::printf("%s\n", quick ? " (quick)" : "");

  dispatch_cases();
  lane_cases();
  reciprocal_cases(quick);
  invalid_symbol_cases();
  odd_table_cases();

  const size_t small_counts[] = {0, 1, 31, 32, 33, 63, 64, 65, 200, 4095, 4096, 4097};
  const uint32_t alphabets[] = {2, 3, 5, 16, 17, 64, 200, 255, 256};
  const TableKind tables[] = {TableKind::Random, TableKind::Skewed, TableKind::Dominant, TableKind::Sparse};
  const StreamKind streams[] = {StreamKind::Table, StreamKind::Uniform, StreamKind::Rare, StreamKind::Frequent};
  for (uint32_t k = 10; k <= 15; k++) {
    for (uint32_t alphabet : alphabets) {
      for (TableKind tk : tables) {
        for (StreamKind sk : streams) {
          for (size_t n : small_counts) run_case(k, alphabet, tk, sk, n, kRansLanes, true);
        }
      }
    }
  }
  // Fewer lanes: the counts around one and two rounds of lanes, and the reference writer's block
  // lengths for that many lanes (1024 symbols a lane and more), for a spread of alphabets (fewer
  // in the quick run).
  const std::vector<uint32_t> lane_alphabets = quick ? std::vector<uint32_t>{2, 256} : std::vector<uint32_t>{2, 5, 17, 256};
  for (uint32_t lanes : kAllLanes) {
    if (lanes == kRansLanes) continue;
    const size_t counts[] = {0, 1, lanes - 1u, lanes, lanes + 1u, 2u * lanes - 1u, 2u * lanes + 1u, 200, 1023, 1024, 4097};
    for (uint32_t k = 10; k <= 15; k++) {
      for (uint32_t alphabet : lane_alphabets) {
        for (TableKind tk : tables) {
          for (StreamKind sk : streams) {
            for (size_t n : counts) run_case(k, alphabet, tk, sk, n, lanes, true);
          }
        }
      }
    }
  }
  // Large blocks: every k, a spread of alphabets and streams (fewer in the quick run).
  for (uint32_t k = 10; k <= 15; k++) {
    for (uint32_t alphabet : {2u, 16u, 256u}) {
      for (TableKind tk : {TableKind::Skewed, TableKind::Random}) {
        for (StreamKind sk : streams) {
          if (quick && (sk == StreamKind::Uniform || tk == TableKind::Random)) continue;
          run_case(k, alphabet, tk, sk, 1u << 17, kRansLanes, true);
          if (!quick || alphabet == 256) run_case(k, alphabet, tk, sk, (1u << 20) + 7, kRansLanes, !quick);
          // Fewer lanes on the longest blocks the reference gives them, and on a long block.
          for (uint32_t lanes : kAllLanes) {
            if (lanes == kRansLanes || (quick && alphabet != 256)) continue;
            run_case(k, alphabet, tk, sk, size_t{2048} * lanes - 1, lanes, true);
            if (!quick && alphabet == 256) run_case(k, alphabet, tk, sk, (1u << 17) + 3, lanes, true);
          }
        }
      }
    }
  }
  // Random payloads for a few tables and counts.
  for (uint32_t k : {10u, 12u, 13u, 15u}) {
    for (uint32_t alphabet : {2u, 17u, 256u}) {
      const std::vector<uint32_t> f = make_table(TableKind::Random, alphabet, k);
      RefTable t;
      t.f = f;
      qans::build_decode_table(f.data(), 256, k, &t.dec);
      for (uint32_t lanes : kAllLanes) {
        for (size_t n : {size_t{0}, size_t{1}, size_t{lanes - 1u}, size_t{lanes + 1u}, size_t{32}, size_t{100}, size_t{1000}, size_t{70000}}) {
          const int tries = lanes == kRansLanes ? (quick ? 8 : 24) : (quick ? 3 : 8);
          random_payloads(n, lanes, t, describe("random", "all", k, alphabet, TableKind::Random, StreamKind::Table, n, lanes), tries);
        }
      }
    }
  }

  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
