// Dot products of weight rows with input vectors, in one fixed order of operations so that every
// dispatch level, every weight holder (F32, int8 symbols, compressed blocks) and the TypeScript
// reference (sdk/infer/product-order.ts) produce the same binary32 results, bit for bit.
//
// The order, for one row w and one input x of `cols` values (both binary32):
//   1. every product w[c] * x[c] is formed in binary64, where it is exact (24 + 24 bits);
//   2. partial sum j (j = 0..15) adds the products of columns c = j, j + 16, j + 32, ... in
//      increasing c, starting from +0, each addition rounded to binary64;
//   3. the 16 partial sums are combined in a fixed tree: for step = 8, 4, 2, 1, partial j += partial
//      j + step for j < step (each addition rounded to binary64);
//   4. partial 0 is rounded once to binary32 (round to nearest, ties to even).
// No step may be fused (no FMA): the sources are compiled with -ffp-contract=off.
#pragma once

#include <cstddef>

#include "simd_level.h"

namespace qans {

// Partial sums of the order above.
constexpr size_t kDotPartials = 16;

// out[i * out_stride + r] = dot(w + r * cols, x + i * cols) for r < rows and i < n: `rows` weight
// rows of `cols` binary32 values back to back, `n` inputs of `cols` values (binary32 values held
// in binary64, so that converting them is done once per product rather than once per row).
using DotRowsFn = void (*)(const float* w, size_t rows, size_t cols, const double* x, size_t n, float* out, size_t out_stride);

// The kernel of a level; levels not compiled in fall back to the next lower one.
DotRowsFn dot_rows_kernel(SimdLevel level);

}  // namespace qans
