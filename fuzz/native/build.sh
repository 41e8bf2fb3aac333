#!/usr/bin/env bash
# Builds the libFuzzer harness fuzz/native/decode_fuzzer.cc against the native sources (native/src,
# all but those that need Node's headers: the bindings), under AddressSanitizer and
# UndefinedBehaviorSanitizer, each kernel file with the instruction-set flags of its level as
# native/CMakeLists.txt gives them.
#
#   fuzz/native/build.sh    builds $QANS_FUZZ_BUILD/decode_fuzzer (default: fuzz/native/build/)
#
# Needs clang++ with the libFuzzer runtime (Debian: clang and libclang-rt-14-dev). Rebuilds only
# what is older than its sources, the headers or this script; prints the fuzzer's path last.
set -euo pipefail
shopt -s inherit_errexit

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/../../native/src" && pwd)"
build="${QANS_FUZZ_BUILD:-$here/build}"
cxx="${CXX_FUZZ:-clang++}"
mkdir -p "$build/obj"

if ! command -v "$cxx" > /dev/null; then
  echo "build.sh: $cxx not found; install clang and its libFuzzer runtime (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi

# -ffp-contract=off as in the addon: dequantisation must round as spec §8.3 says. Warnings stop the
# build of the harness only (-Werror below), not of the addon's sources, which gcc builds for release.
common=(-std=c++17 -g -O1 -fno-omit-frame-pointer -ffp-contract=off -Wall -Wextra -I"$src")
case "$(uname -m)" in
  x86_64 | amd64) common+=(-DQANS_X86_SIMD=1 -DQANS_COMPILED_SSE41=1 -DQANS_COMPILED_AVX2=1 -DQANS_COMPILED_AVX512=1) ;;
esac
sanitizers=(-fsanitize=address,undefined -fno-sanitize-recover=all)

level_flags() {
  case "$1" in
    *_sse41.cc) echo "-msse4.1 -msse4.2 -mpopcnt" ;;
    *_avx2.cc) echo "-mavx2 -mbmi -mbmi2 -mlzcnt -mpopcnt" ;;
    *_avx512.cc) echo "-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vbmi -mbmi2 -mpopcnt" ;;
    *) echo "" ;;
  esac
}

# True when a source needs Node's headers (the bindings): it or a header of native/src it includes
# includes nan.h or node.h. Those are not built here.
needs_node() {
  local headers
  headers="$(sed -n 's/^#include "\(.*\)"/\1/p' "$1" | sed "s|^|$src/|")"
  # shellcheck disable=SC2086
  grep -qE '^#include <(nan|node)\.h>' "$1" $headers 2> /dev/null
}

headers_newest="$(ls -t "$src"/*.h | head -n 1)"
objects=()
for file in "$src"/*.cc; do
  base="$(basename "$file" .cc)"
  needs_node "$file" && continue
  if [[ "$base" =~ _(sse41|avx2|avx512)$ ]] && [[ ! " ${common[*]} " =~ QANS_X86_SIMD ]]; then continue; fi
  object="$build/obj/$base.o"
  if [ ! -f "$object" ] || [ "$file" -nt "$object" ] || [ "$headers_newest" -nt "$object" ] || [ "$0" -nt "$object" ]; then
    # shellcheck disable=SC2046
    "$cxx" "${common[@]}" "${sanitizers[@]}" -fsanitize=fuzzer-no-link $(level_flags "$file") -c "$file" -o "$object"
  fi
  objects+=("$object")
done

binary="$build/decode_fuzzer"
relink=0
for input in "$here/decode_fuzzer.cc" "$headers_newest" "$0" "${objects[@]}"; do
  if [ ! -f "$binary" ] || [ "$input" -nt "$binary" ]; then relink=1; fi
done
if [ "$relink" = 1 ]; then
  "$cxx" "${common[@]}" -Werror "${sanitizers[@]}" -fsanitize=fuzzer "$here/decode_fuzzer.cc" "${objects[@]}" -lpthread -o "$binary"
fi
echo "$binary"
