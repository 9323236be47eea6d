#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a
# bounded time on its seed corpus (fuzz/corpus/TARGET). A crash fails the run
# and leaves its input in build-fuzz/crashes/.
#   scripts/fuzz.sh [seconds per target, default 25]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-25}
dir="$root/build-fuzz"
cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DHEARTH_FUZZ=ON \
  -DHEARTH_TESTS=OFF -DHEARTH_BENCH=OFF -DHEARTH_WERROR=OFF >/dev/null
cmake --build "$dir" --target fuzz_client_protocol fuzz_internal fuzz_plugin_msgpack -- -j"$(nproc)"
mkdir -p "$dir/crashes"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for target in fuzz_client_protocol fuzz_internal fuzz_plugin_msgpack; do
  # New inputs go to a scratch copy: the corpus in the repo stays as committed.
  work="$dir/corpus/$target"
  mkdir -p "$work"
  cp -n "$root/fuzz/corpus/$target"/* "$work"/ 2>/dev/null || true
  echo "fuzz: $target for ${seconds}s"
  "$dir/fuzz/$target" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 \
    -artifact_prefix="$dir/crashes/$target-" -print_final_stats=1 "$work" 2>"$dir/$target.log" ||
    { tail -40 "$dir/$target.log"; echo "fuzz: $target FAILED (input in $dir/crashes)" >&2; exit 1; }
  grep -E "stat::number_of_executed_units|cov:" "$dir/$target.log" | tail -2
done
