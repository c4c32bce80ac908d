#!/usr/bin/env bash
# Run the board tests (tests/boards/test_*.py) on every virtual port and release listed in
# tests/boards/ports.py (boards/virtual/<port>: machine, rp2, esp32, pyb as each port has them),
# on the MicroPython unix port and on CPython (pytest).
#
#   tools/run_boards.sh [-v] [port@release ...]      default: every pair in tests/boards/ports.py
#
# Environment: MICROPYTHON, MP_HEAPSIZE, MP_TIMEOUT as tools/run_unix.sh.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
py=$root/.venv/bin/python

flags=()
pairs=()
for a in "$@"; do
    if [[ $a == -* ]]; then flags+=("$a"); else pairs+=("$a"); fi
done
if [[ ${#pairs[@]} -eq 0 ]]; then
    mapfile -t pairs < <("$py" tests/boards/ports.py)
fi

for pair in "${pairs[@]}"; do
    port=${pair%@*}
    release=${pair#*@}
    mapfile -t modules < <("$py" tests/boards/ports.py "$port")
    echo "== virtual $port, MicroPython $release: ${#modules[@]} test modules"
    # The port's machine.py first: a .py earlier on the path replaces the unix port's extensible
    # built-in machine module. tests/core/mprunner.py then puts tests/core and the repo root ahead
    # of these (neither has a machine.py) and imports the named modules from tests/boards.
    VIRTUAL_MICROPYTHON=$release MP_EXTRA_PATH="$root/boards/virtual/$port:$root/boards/virtual:$root/tests/boards" \
        tools/run_unix.sh "${flags[@]}" "${modules[@]}"
    if ! out=$(VIRTUAL_PORT=$port VIRTUAL_MICROPYTHON=$release "$py" -m pytest -p no:cacheprovider tests/boards 2>&1); then
        echo "$out"
        exit 1
    fi
    echo "cpython: ${out##*$'\n'}"
done
