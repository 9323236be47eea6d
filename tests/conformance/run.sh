#!/bin/sh
# Hearth protocol v2 conformance suite (docs/protocol.md). Env: HEARTH_BIN, HEARTH_CONFORMANCE_PORT.
exec "${PYTHON:-/usr/bin/python3}" "$(dirname "$0")/conformance.py" "$@"
