#!/usr/bin/env bash
# The main job: install what is missing, build, and run a local all-in-one
# cluster with a demo workload printing live figures every second.
# Extra arguments go to `hearth demo` (see `build/hearth demo --help`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build" -DCMAKE_BUILD_TYPE=Release -DHEARTH_TESTS=OFF -DHEARTH_BENCH=OFF

# Push notifications go to a local stand-in for FCM (tests/push_sink.py),
# which prints a line a second with the pushes it receives.
work=$(mktemp -d)
push_port=${HEARTH_DEMO_PUSH_PORT:-7700}
/usr/bin/python3 "$root/tests/push_sink.py" --port "$push_port" --report &
sink=$!
trap 'kill $sink 2>/dev/null || true; rm -rf "$work"' EXIT

echo "demo: starting; Ctrl-C stops it"
# Presence updates and mentions show as "other events"; each mention of an
# offline user becomes a push the provider reports.
"$root/build/hearth" demo \
  --plugin "presence=$root/build/plugins/presence/presence.so" \
  --plugin "push=$root/build/plugins/push/push.so" \
  --plugin-option "push.url=http://127.0.0.1:$push_port/v1/projects/hearth-demo/messages:send" \
  --plugin-option push.http=1.1 \
  --plugin-option "push.db=$work/devices.db" \
  --demo-offline-users 200 --demo-mention-rate 50 \
  "$@"
