#!/usr/bin/env bash
# The main job: install what is missing, build, and run a local all-in-one
# cluster with a demo workload printing live figures every second.
# Extra arguments go to `hearth demo` (see `build/hearth demo --help`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build" -DCMAKE_BUILD_TYPE=Release -DHEARTH_TESTS=OFF -DHEARTH_BENCH=OFF
echo "demo: starting; Ctrl-C stops it"
# The presence plugin is part of the demo cluster: its updates show as "other events".
exec "$root/build/hearth" demo --plugin "presence=$root/build/plugins/presence/presence.so" "$@"
