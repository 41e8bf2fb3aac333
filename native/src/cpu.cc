#include "cpu.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#define QANS_CPU_X86_64 1
#if defined(_MSC_VER)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

namespace qans {

namespace {

#if defined(QANS_CPU_X86_64)

struct CpuidRegs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

CpuidRegs cpuid(uint32_t leaf, uint32_t subleaf) {
  CpuidRegs r;
#if defined(_MSC_VER)
  int regs[4];
  __cpuidex(regs, static_cast<int>(leaf), static_cast<int>(subleaf));
  r.eax = static_cast<uint32_t>(regs[0]);
  r.ebx = static_cast<uint32_t>(regs[1]);
  r.ecx = static_cast<uint32_t>(regs[2]);
  r.edx = static_cast<uint32_t>(regs[3]);
#else
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
#endif
  return r;
}

// XCR0: the register state the operating system saves on context switches. Only call when
// CPUID reports OSXSAVE.
uint64_t xgetbv0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
#endif
}

inline bool bit(uint32_t reg, int n) {
  return (reg >> n) & 1u;
}

SimdLevel detect() {
  const uint32_t max_leaf = cpuid(0, 0).eax;
  if (max_leaf < 1) return SimdLevel::Scalar;
  const CpuidRegs l1 = cpuid(1, 0);
  const bool sse41 = bit(l1.ecx, 19);
  const bool sse42 = bit(l1.ecx, 20);
  const bool popcnt = bit(l1.ecx, 23);
  if (!(sse41 && sse42 && popcnt)) return SimdLevel::Scalar;

  // AVX state must be enabled by the operating system: OSXSAVE set and XCR0 saving XMM and YMM.
  const bool osxsave = bit(l1.ecx, 27);
  const bool avx = bit(l1.ecx, 28);
  if (!osxsave || !avx || max_leaf < 7) return SimdLevel::Sse41;
  const uint64_t xcr0 = xgetbv0();
  if ((xcr0 & 0x6) != 0x6) return SimdLevel::Sse41;
  const CpuidRegs l7 = cpuid(7, 0);
  const bool avx2 = bit(l7.ebx, 5);
  const bool bmi1 = bit(l7.ebx, 3);
  const bool bmi2 = bit(l7.ebx, 8);
  const uint32_t max_ext = cpuid(0x80000000u, 0).eax;
  const bool lzcnt = max_ext >= 0x80000001u && bit(cpuid(0x80000001u, 0).ecx, 5);
  if (!(avx2 && bmi1 && bmi2 && lzcnt)) return SimdLevel::Sse41;

  // AVX-512 also needs the opmask, ZMM_Hi256 and Hi16_ZMM state (XCR0 bits 5-7).
  if ((xcr0 & 0xE6) != 0xE6) return SimdLevel::Avx2;
  const bool f = bit(l7.ebx, 16);
  const bool dq = bit(l7.ebx, 17);
  const bool bw = bit(l7.ebx, 30);
  const bool vl = bit(l7.ebx, 31);
  const bool vbmi = bit(l7.ecx, 1);
  if (!(f && dq && bw && vl && vbmi)) return SimdLevel::Avx2;
  return SimdLevel::Avx512;
}

#else

SimdLevel detect() {
  return SimdLevel::Scalar;
}

#endif

SimdLevel min_level(SimdLevel a, SimdLevel b) {
  return static_cast<int>(a) < static_cast<int>(b) ? a : b;
}

SimdLevel detected_once() {
  static const SimdLevel level = min_level(detect(), compiled_simd_level());
  return level;
}

std::atomic<int> g_level{-1};

}  // namespace

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return "scalar";
    case SimdLevel::Sse41: return "sse41";
    case SimdLevel::Avx2: return "avx2";
    case SimdLevel::Avx512: return "avx512";
  }
  return "scalar";
}

bool parse_simd_level(const char* name, SimdLevel* level) {
  for (int i = 0; i < kSimdLevelCount; i++) {
    const SimdLevel candidate = static_cast<SimdLevel>(i);
    if (std::strcmp(name, simd_level_name(candidate)) == 0) {
      *level = candidate;
      return true;
    }
  }
  return false;
}

SimdLevel compiled_simd_level() {
#if defined(QANS_COMPILED_AVX512)
  return SimdLevel::Avx512;
#elif defined(QANS_COMPILED_AVX2)
  return SimdLevel::Avx2;
#elif defined(QANS_COMPILED_SSE41)
  return SimdLevel::Sse41;
#else
  return SimdLevel::Scalar;
#endif
}

SimdLevel detected_simd_level() {
  return detected_once();
}

SimdLevel current_simd_level() {
  int level = g_level.load(std::memory_order_relaxed);
  if (level < 0) {
    level = static_cast<int>(detected_once());
    int expected = -1;
    if (!g_level.compare_exchange_strong(expected, level, std::memory_order_relaxed)) level = expected;
  }
  return static_cast<SimdLevel>(level);
}

SimdLevel set_simd_level(SimdLevel requested) {
  const SimdLevel level = min_level(requested, detected_once());
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
  return level;
}

bool apply_simd_environment() {
  const char* value = std::getenv("QANS_SIMD");
  if (value == nullptr || *value == '\0') return true;
  SimdLevel cap;
  if (!parse_simd_level(value, &cap)) return false;
  set_simd_level(min_level(cap, current_simd_level()));
  return true;
}

}  // namespace qans
