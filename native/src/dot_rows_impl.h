// The generic source of the dot kernels (dot_rows.h). dot_rows_scalar.cc and dot_rows_<level>.cc
// each include it once, with QANS_DOT_ENTRY naming the kernel pointer to define, QANS_DOT_LANES the
// binary64 lanes of the level's vectors, QANS_DOT_ROWS and QANS_DOT_INPUTS the rows and inputs
// whose partial sums are kept in registers together, and that level's compiler flags. The vectors
// are GCC/Clang vector extensions: each lane is an ordinary binary64 operation, so a lane computes
// exactly what the scalar definition does.
//
// Everything here has internal linkage: a function built with AVX-512 flags must never be merged by
// the linker with the scalar build's copy.
#if !defined(QANS_DOT_ENTRY) || !defined(QANS_DOT_LANES) || !defined(QANS_DOT_ROWS) || !defined(QANS_DOT_INPUTS)
#error "define QANS_DOT_ENTRY, QANS_DOT_LANES, QANS_DOT_ROWS and QANS_DOT_INPUTS before including dot_rows_impl.h"
#endif

#include <cstddef>
#include <cstring>

#include "dot_rows.h"

namespace qans {

namespace {

// Adds the columns after the last whole run of 16 into the partial sums, combines these in the
// fixed tree and rounds once to binary32 (steps 2 to 4 of dot_rows.h).
inline float finish_dot(double* partial, const float* w, const double* x, size_t full, size_t cols) {
  for (size_t c = full; c < cols; c++) partial[c - full] += static_cast<double>(w[c]) * x[c];
  for (size_t step = kDotPartials / 2; step >= 1; step /= 2) {
    for (size_t j = 0; j < step; j++) partial[j] += partial[j + step];
  }
  return static_cast<float>(partial[0]);
}

#if defined(__GNUC__)

constexpr size_t kLanes = QANS_DOT_LANES;
// Vectors per row and input: the 16 partial sums, kLanes to a vector.
constexpr size_t kParts = kDotPartials / kLanes;

typedef double Doubles __attribute__((vector_size(8 * kLanes)));
typedef float Floats __attribute__((vector_size(4 * kLanes)));

inline Doubles load_doubles(const double* p) {
  Doubles v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline Doubles load_widened(const float* p) {
  Floats v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, Doubles);
}

// `Rows` rows (starting at w, `cols` apart) against `Inputs` inputs (starting at x, `cols` apart);
// out[i * out_stride + r].
template <size_t Rows, size_t Inputs>
inline void dot_tile(const float* w, size_t cols, const double* x, float* out, size_t out_stride) {
  const size_t full = cols & ~(kDotPartials - 1);
  Doubles sums[Rows][Inputs][kParts];
  for (size_t r = 0; r < Rows; r++)
    for (size_t i = 0; i < Inputs; i++)
      for (size_t p = 0; p < kParts; p++) sums[r][i][p] = Doubles{};
  for (size_t c = 0; c < full; c += kDotPartials) {
    for (size_t p = 0; p < kParts; p++) {
      Doubles xs[Inputs];
      for (size_t i = 0; i < Inputs; i++) xs[i] = load_doubles(x + i * cols + c + p * kLanes);
      for (size_t r = 0; r < Rows; r++) {
        const Doubles wv = load_widened(w + r * cols + c + p * kLanes);
        for (size_t i = 0; i < Inputs; i++) sums[r][i][p] += wv * xs[i];
      }
    }
  }
  for (size_t r = 0; r < Rows; r++) {
    for (size_t i = 0; i < Inputs; i++) {
      double partial[kDotPartials];
      std::memcpy(partial, sums[r][i], sizeof partial);
      out[i * out_stride + r] = finish_dot(partial, w + r * cols, x + i * cols, full, cols);
    }
  }
}

#else

// Without vector extensions: the definition itself, one row and input at a time.
template <size_t Rows, size_t Inputs>
inline void dot_tile(const float* w, size_t cols, const double* x, float* out, size_t out_stride) {
  const size_t full = cols & ~(kDotPartials - 1);
  for (size_t r = 0; r < Rows; r++) {
    for (size_t i = 0; i < Inputs; i++) {
      const float* row = w + r * cols;
      const double* input = x + i * cols;
      double partial[kDotPartials] = {};
      for (size_t c = 0; c < full; c += kDotPartials) {
        for (size_t j = 0; j < kDotPartials; j++) partial[j] += static_cast<double>(row[c + j]) * input[c + j];
      }
      out[i * out_stride + r] = finish_dot(partial, row, input, full, cols);
    }
  }
}

#endif

// Rows `rows` of the tile at w against every input.
template <size_t Rows>
inline void dot_rows_against_inputs(const float* w, size_t cols, const double* x, size_t n, float* out, size_t out_stride) {
  constexpr size_t kInputs = QANS_DOT_INPUTS;
  size_t i = 0;
  for (; i + kInputs <= n; i += kInputs) dot_tile<Rows, kInputs>(w, cols, x + i * cols, out + i * out_stride, out_stride);
  for (; i < n; i++) dot_tile<Rows, 1>(w, cols, x + i * cols, out + i * out_stride, out_stride);
}

void dot_rows_level(const float* w, size_t rows, size_t cols, const double* x, size_t n, float* out, size_t out_stride) {
  constexpr size_t kRows = QANS_DOT_ROWS;
  size_t r = 0;
  // Rows in groups, each group against every input in turn: the group's rows stay in L1 while the
  // inputs stream past them.
  for (; r + kRows <= rows; r += kRows) dot_rows_against_inputs<kRows>(w + r * cols, cols, x, n, out + r, out_stride);
  for (; r < rows; r++) dot_rows_against_inputs<1>(w + r * cols, cols, x, n, out + r, out_stride);
}

}  // namespace

extern const DotRowsFn QANS_DOT_ENTRY;
const DotRowsFn QANS_DOT_ENTRY = dot_rows_level;

}  // namespace qans
