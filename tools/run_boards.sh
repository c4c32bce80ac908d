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
MP_EXTRA_PATH="$root/tests/boards/fakes:$root/tests/boards" exec tools/run_unix.sh "${args[@]}"
