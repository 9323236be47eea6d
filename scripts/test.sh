#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite twice: a
# normal build, then an AddressSanitizer + UndefinedBehaviorSanitizer build.
#   scripts/test.sh            both
#   scripts/test.sh --no-sanitizers
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"

run_suite() {
  local dir=$1
  shift
  "$root/scripts/build.sh" "$dir" "$@"
  # No tests found is a failure, not a pass.
  (cd "$dir" && ctest --output-on-failure --timeout 600 -j2 --no-tests=error)
}

# Explicit: the demo builds the same directory without tests or benchmarks.
run_suite "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEARTH_TESTS=ON -DHEARTH_BENCH=ON
if [ "${1:-}" != "--no-sanitizers" ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_suite "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug -DHEARTH_SANITIZE=ON -DHEARTH_TESTS=ON -DHEARTH_BENCH=OFF
fi
