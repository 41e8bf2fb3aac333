// Instruction-set levels of the dispatcher, lowest first. A kernel for a level may use every
// instruction of the levels below it.
#pragma once

namespace qans {

enum class SimdLevel : int { Scalar = 0, Sse41 = 1, Avx2 = 2, Avx512 = 3 };

constexpr int kSimdLevelCount = 4;

const char* simd_level_name(SimdLevel level);

}  // namespace qans
