// Instruction-set detection and the process-wide dispatch level.
#pragma once

#include "simd_level.h"

namespace qans {

// Highest level this CPU and operating system support (CPUID and XGETBV on x86-64; Scalar
// elsewhere), limited to the levels compiled into this build.
SimdLevel detected_simd_level();

// Highest level compiled into this build (Avx512 on x86-64, Scalar elsewhere).
SimdLevel compiled_simd_level();

// The level the kernels use now. Starts at detected_simd_level(), capped by the QANS_SIMD
// environment variable when the addon loads.
SimdLevel current_simd_level();

// Sets the level to min(requested, detected_simd_level()) and returns it.
SimdLevel set_simd_level(SimdLevel requested);

// Parses "scalar", "sse41", "avx2" or "avx512"; false for anything else.
bool parse_simd_level(const char* name, SimdLevel* level);

// Applies QANS_SIMD, if set to a level name, as a cap on the current level. Returns false when the
// variable is set to something that is not a level name (the level is then left as detected).
bool apply_simd_environment();

}  // namespace qans
