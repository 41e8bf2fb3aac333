#!/usr/bin/env bash
# Builds and runs the rANS kernel tests and benchmark with plain g++, compiling each
# native/src/rans*.cc with the flags of its level as native/CMakeLists.txt does.
#
#   native/tests/run.sh [test]   kernel tests (rANS, then the weight-matrix products), optimised and then under ASan + UBSan
#   native/tests/run.sh bench [MiB] [runs]   throughput per level (with htscodecs when installed)
#
# Build products go to $QANS_TEST_BUILD (default: a directory under ${TMPDIR:-/tmp}); extra
# compiler flags for the kernels can be given in $QANS_KERNEL_FLAGS. The benchmark reads
# RANS_BENCH_ONLY (int8 or int4), RANS_BENCH_LEVELS (e.g. "avx2,avx512"), RANS_BENCH_KS (e.g.
# "12,15"; default 12 to 15) and RANS_BENCH_BLOCKS (log2 block sizes, e.g. "17"; default 17,20)
# to narrow its runs.
set -euo pipefail
shopt -s inherit_errexit

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/../src"
build="${QANS_TEST_BUILD:-${TMPDIR:-/tmp}/qans-rans-tests}"
cxx="${CXX:-g++}"
mkdir -p "$build"

defines=(-DQANS_X86_SIMD=1 -DQANS_COMPILED_SSE41=1 -DQANS_COMPILED_AVX2=1 -DQANS_COMPILED_AVX512=1)
case "$(uname -m)" in x86_64|amd64) ;; *) defines=() ;; esac

level_flags() {
  case "$1" in
    *_sse41.cc) echo "-msse4.1 -msse4.2 -mpopcnt" ;;
    *_avx2.cc) echo "-mavx2 -mbmi -mbmi2 -mlzcnt -mpopcnt" ;;
    *_avx512.cc) echo "-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vbmi -mbmi2 -mpopcnt" ;;
    *) echo "" ;;
  esac
}

# compile_sources <name> <extra flags...> -- <sources...>: an object for each source into
# $build/<name>/ (SIMD-level sources only where the levels are compiled in), echoes their paths.
compile_sources() {
  local name="$1"
  shift
  local flags=()
  while [ "$1" != "--" ]; do
    flags+=("$1")
    shift
  done
  shift
  mkdir -p "$build/$name"
  local objects=()
  for file in "$@"; do
    local base
    base="$(basename "$file" .cc)"
    if [ "${#defines[@]}" -eq 0 ] && [[ "$base" =~ _(sse41|avx2|avx512)$ ]]; then continue; fi
    # shellcheck disable=SC2046
    "$cxx" -std=c++17 -O3 -ffp-contract=off -Wall -Wextra -Werror "${defines[@]}" $(level_flags "$file") ${QANS_KERNEL_FLAGS:-} "${flags[@]}" \
      -c "$file" -o "$build/$name/$base.o"
    objects+=("$build/$name/$base.o")
  done
  echo "${objects[@]}"
}

# build_kernels <name> <extra flags...>: objects for every rans*.cc.
build_kernels() {
  local name="$1"
  shift
  compile_sources "$name" "$@" -- "$src"/rans*.cc
}

# build_products <name> <extra flags...>: objects for the weight-matrix products and what they use
# besides rANS (kernels*.cc, dot_rows*.cc, weight_matrix.cc, thread_pool.cc, cpu.cc).
build_products() {
  local name="$1"
  shift
  compile_sources "$name" "$@" -- "$src"/kernels*.cc "$src"/dot_rows*.cc "$src"/weight_matrix.cc "$src"/thread_pool.cc "$src"/cpu.cc
}

mode="${1:-test}"
case "$mode" in
  test)
    objects="$(build_kernels opt)"
    # shellcheck disable=SC2086
    "$cxx" -std=c++17 -O2 -Wall -Wextra -Werror "${defines[@]}" "$here/rans_kernels_test.cc" $objects -o "$build/rans_kernels_test"
    echo "== rans_kernels_test (-O3)"
    "$build/rans_kernels_test"
    san=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g)
    objects="$(build_kernels san "${san[@]}")"
    # shellcheck disable=SC2086
    "$cxx" -std=c++17 -O1 -Wall -Wextra -Werror "${defines[@]}" "${san[@]}" "$here/rans_kernels_test.cc" $objects \
      -o "$build/rans_kernels_test_san"
    echo "== rans_kernels_test (-fsanitize=address,undefined)"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 "$build/rans_kernels_test_san" --quick
    objects="$(build_kernels opt) $(build_products opt)"
    # shellcheck disable=SC2086
    "$cxx" -std=c++17 -O2 -Wall -Wextra -Werror "${defines[@]}" "$here/weight_matrix_test.cc" $objects -lpthread -o "$build/weight_matrix_test"
    echo "== weight_matrix_test (-O3)"
    "$build/weight_matrix_test"
    objects="$(build_kernels san "${san[@]}") $(build_products san "${san[@]}")"
    # shellcheck disable=SC2086
    "$cxx" -std=c++17 -O1 -Wall -Wextra -Werror "${defines[@]}" "${san[@]}" "$here/weight_matrix_test.cc" $objects -lpthread \
      -o "$build/weight_matrix_test_san"
    echo "== weight_matrix_test (-fsanitize=address,undefined)"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 "$build/weight_matrix_test_san"
    ;;
  bench)
    shift || true
    objects="$(build_kernels opt)"
    hts=()
    if [ -f /usr/include/htscodecs/rANS_static4x16.h ]; then hts=(-DQANS_BENCH_HTSCODECS=1 -lhtscodecs); fi
    # shellcheck disable=SC2086
    "$cxx" -std=c++17 -O2 -Wall -Wextra "${defines[@]}" "$here/rans_bench.cc" $objects "${hts[@]}" -o "$build/rans_bench"
    "$build/rans_bench" "$@"
    ;;
  *)
    echo "usage: $0 [test|bench [MiB] [runs]]" >&2
    exit 2
    ;;
esac
