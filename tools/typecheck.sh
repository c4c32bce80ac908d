#!/usr/bin/env bash
# make typecheck: pyright on firmware/, hal/ and each board's files, against that board's
# MicroPython stubs, one run per board.
#
#   tools/typecheck.sh [board ...]      default: rpi_pico esp32 pyboard
#
# Stubs (build/stubs/<stubs>, `make stubs`): micropython-rp2-rpi-pico-stubs, micropython-esp32-stubs,
# micropython-stm32-stubs, each with micropython-stdlib-stubs' stdlib/. typeshedPath and stubPath
# point at them, so `time`, `micropython`, `machine` resolve to the port's stubs (time.monotonic
# is an error), `micropython` never to the CPython shim ./micropython.py, and the fake empty venv
# build/stubs/no-site keeps CPython's stdlib and site-packages out (`import dataclasses` in
# firmware/ is an error). A port's own modules (rp2, esp32, pyb) are checked only against that
# port: the other ports' step engines (hal/steps_*.py) are left out of each run.
# pyrightconfig.json (the one editors pick up) checks firmware/ and hal/ against the Pico's stubs.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source tools/board_env.sh

pyright=${PYRIGHT:-$root/.venv/bin/pyright}
boards=("$@")
if [[ ${#boards[@]} -eq 0 ]]; then
    boards=(rpi_pico esp32 pyboard)
fi

mkdir -p build/stubs/no-site/lib/python3.11/site-packages build/pyright
rc=0
for board in "${boards[@]}"; do
    board_env "$board"
    if [[ ! -d build/stubs/$STUBS/stdlib ]]; then
        echo "typecheck: stubs for $board missing in build/stubs/$STUBS (run 'make stubs')" >&2
        exit 2
    fi
    exclude='"**/__pycache__", "../../micropython.py"'
    for f in "${OTHER_STEPS[@]}"; do
        exclude+=", \"../../$f\""
    done
    cfg=build/pyright/$board.json
    cat > "$cfg" <<JSON
{
  "extends": "../../pyrightconfig.json",
  "include": ["../../firmware", "../../hal", "../../boards/pumpboard.py", "../../boards/$board/main.py"],
  "exclude": [$exclude],
  "extraPaths": ["../..", "../../boards"],
  "typeshedPath": "../stubs/$STUBS",
  "stubPath": "../stubs/$STUBS"
}
JSON
    echo "== pyright $board (micropython-$STUBS-stubs: -p $cfg)"
    "$pyright" -p "$cfg" || rc=1
done
exit $rc
