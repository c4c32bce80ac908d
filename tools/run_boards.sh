#!/usr/bin/env bash
# Run the board backends' tests (tests/boards/test_*.py) on the MicroPython unix port, with the
# fake `machine` of tests/boards/fakes (the unix port's own has no Pin, PWM, ADC or Timer).
#
#   tools/run_boards.sh [-v] [test_module ...]      default: every tests/boards/test_*.py
#
# Environment: MICROPYTHON, MP_HEAPSIZE, MP_TIMEOUT as tools/run_unix.sh.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

mp=${MICROPYTHON:-$root/.venv/bin/micropython}
heap=${MP_HEAPSIZE:-2M}
timeout_s=${MP_TIMEOUT:-300}

if [[ ! -x $mp ]]; then
    echo "run_boards: MicroPython interpreter not found at $mp (run 'make .venv')" >&2
    exit 2
fi

args=()
modules=0
for a in "$@"; do
    args+=("$a")
    [[ $a == -* ]] || modules=$((modules + 1))
done
if [[ $modules -eq 0 ]]; then
    for f in tests/boards/test_*.py; do
        args+=("$(basename "$f" .py)")
    done
fi

# The fake machine.py first: a .py earlier on the path replaces the port's extensible built-in
# machine module. tests/core/mprunner.py then puts tests/core and the repo root ahead of these
# (neither has a machine.py) and imports the named modules from tests/boards.
export MICROPYPATH="$root/tests/boards/fakes:$root/tests/boards:$root/tests/core:$root:.frozen"

rc=0
timeout --kill-after=10 "$timeout_s" "$mp" -X "heapsize=$heap" tests/core/mprunner.py "${args[@]}" || rc=$?
if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    echo "run_boards: MicroPython run timed out after ${timeout_s}s (hang?)" >&2
fi
exit $rc
