#!/usr/bin/env bash
# Runs the native decoder fuzzer (fuzz/native/decode_fuzzer.cc) under AddressSanitizer and
# UndefinedBehaviorSanitizer: builds it if needed (build.sh), writes the seeds from the valid
# conformance vectors (make-seeds.ts), replays the committed crash reproducers in regressions/,
# then fuzzes. Arguments go to libFuzzer, for example:
#
#   bash fuzz/native/run.sh -max_total_time=60       the CI smoke run
#   npm run fuzz:native -- -max_total_time=1800      a campaign
#
# Exits non-zero on any crash, sanitizer report, failed check, timeout or out-of-memory; the input
# that caused it is saved in fuzz/native/crashes/. New coverage is kept in fuzz/native/corpus/ for
# the next run; corpus/, corpus-seed/, crashes/ and build/ are generated and not committed.
set -euo pipefail
shopt -s inherit_errexit

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

fuzzer="$(bash "$here/build.sh" | tail -n 1)"
(cd "$root" && npx tsx fuzz/native/make-seeds.ts "$here/corpus-seed")
mkdir -p "$here/corpus" "$here/crashes"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

shopt -s nullglob
regressions=("$here"/regressions/*)
if [ "${#regressions[@]}" -gt 0 ]; then
  echo "== replaying ${#regressions[@]} crash reproducers from fuzz/native/regressions"
  "$fuzzer" -runs=1 "${regressions[@]}"
fi

echo "== fuzzing"
# One execution must finish within 10 s and 2 GiB (the harness keeps them to milliseconds).
"$fuzzer" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$here/crashes/" "$@" "$here/corpus" "$here/corpus-seed"
