#!/usr/bin/env bash
# Installs Hearth to a temporary prefix, builds examples/wordfilter against the
# installed headers with find_package(Hearth), loads it into a running node as
# a required plugin, and checks its effects from a Python client.
#   tests/out_of_tree_plugin.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src/examples/wordfilter" -B "$tmp/wf" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/wf" >/dev/null
test -f "$tmp/wf/wordfilter.so" || { echo "wordfilter.so was not built"; exit 1; }

base=$((30000 + ($$ % 500) * 5))  # below the ephemeral range (32768+), above the gtest ports
"$tmp/prefix/bin/hearth" all-in-one --frontend "tcp://127.0.0.1:$base" \
  --backend "tcp://127.0.0.1:$((base + 1))" --listen "tcp://127.0.0.1:$((base + 2))" \
  --plugin "wordfilter=$tmp/wf/wordfilter.so" --plugin-required wordfilter \
  --plugin-option wordfilter.words=spam,scam >"$tmp/node.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  grep -q "with 1 guild node" "$tmp/node.log" && break
  sleep 0.1
done
grep -q "plugin wordfilter: filtering 2 word(s)" "$tmp/node.log" || { cat "$tmp/node.log"; exit 1; }
/usr/bin/python3 "$src/tests/wordfilter_check.py" "$base" || { cat "$tmp/node.log"; exit 1; }
echo "out-of-tree plugin: built against the installed tree, loaded, filtering and answering"
