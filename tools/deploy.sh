#!/usr/bin/env bash
# make deploy BOARD=... PORT=...: copy build/<board>/ onto a board with mpremote, then reset it.
#
#   tools/deploy.sh rpi_pico|esp32|pyboard /dev/ttyACM0
#
# Copies firmware/ and hal/ (.mpy), pumpboard.mpy, main.py and board.json to the board's
# filesystem root, and says each step. Fails with one line when no board answers on PORT.
# CONFIG=file.json: that file goes as board.json instead of the board's own.
# With a "link" in board.json, also the link's keys: the host's key file is KEY_FILE, or
# keys/<board>-<machine.unique_id() in hex>.json, made once (mode 0600) and kept after; the board
# gets link_keys.bin, which it journals at its next boot and removes (boards/pumpboard.py).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
board=${1:?usage: tools/deploy.sh BOARD PORT}
port=${2:-}
mpremote=${MPREMOTE:-$root/.venv/bin/mpremote}
src=build/$board
config=${CONFIG:-$root/$src/board.json}

if [[ ! -x $mpremote ]]; then
    echo "deploy: mpremote not found at $mpremote (run 'make .venv')" >&2
    exit 2
fi
if [[ -z $port ]]; then
    echo "deploy: no PORT given (make deploy BOARD=$board PORT=/dev/ttyACM0; 'mpremote devs' lists them)" >&2
    exit 2
fi
if [[ ! -f $src/main.py ]]; then
    echo "deploy: $src is not built (make mpy BOARD=$board)" >&2
    exit 2
fi
if [[ ! -f $config ]]; then
    echo "deploy: CONFIG $config is not a file" >&2
    exit 2
fi
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
# A board that answers runs this one-liner and prints its version.
ask="import sys
print(sys.implementation._machine, sys.version)
try:
    import machine, binascii
    print(binascii.hexlify(machine.unique_id()).decode())
except Exception:
    print('board')"
if ! answer=$(timeout 15 "$mpremote" connect "$port" exec "$ask" 2>/dev/null); then
    echo "deploy: no MicroPython board answers on $port (plugged in? flashed with MicroPython? another program" \
         "using the port? a pump with its link on USB: press the board's reset button and run this again within 3 s)" >&2
    exit 1
fi
version=$(head -n 1 <<< "$answer" | tr -d '\r')
uid=$(sed -n 2p <<< "$answer" | tr -d '\r')
echo "deploy: $port answers: $version"
keys=()
if "$root/.venv/bin/python" -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get('link') else 1)" "$config"; then
    key_file=${KEY_FILE:-$root/keys/$board-$uid.json}
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    made=$("$root/.venv/bin/python" "$root/tools/link_keys.py" "$key_file" "$tmp/link_keys.bin")
    echo "deploy: link keys: $made (the board journals them at its next boot)"
    keys=(+ fs cp "$tmp/link_keys.bin" :link_keys.bin)
fi
cd "$src"
n=$(find firmware hal -name '*.mpy' | wc -l)
echo "deploy: copying $n .mpy files under firmware/ and hal/, pumpboard.mpy, main.py and board.json${CONFIG:+ (from $config)} to $port"
# One connection for the whole copy; cp -r makes the folders it needs. ":." is the board's
# working directory, its root after a reset (":" alone needs os.stat(""), which not every port has).
# A .py left by an earlier `mip install` would be imported before the .mpy beside it: remove them.
clean="import os
for d in ('firmware', 'hal', '.'):
    try:
        names = os.listdir(d)
    except OSError:
        continue
    for n in names:
        if n.endswith('.py') and (d != '.' or n == 'pumpboard.py'):
            os.remove(d + '/' + n)
            print('deploy: removed stale', d + '/' + n)"
# A hard reset (mpremote's `reset`: machine.reset()) to start main.py: mpremote's soft-reset is done
# from the raw REPL, and a soft reset from there skips main.py (ports/*/main.c run it only when
# pyexec_mode_kind is PYEXEC_MODE_FRIENDLY_REPL).
"$mpremote" connect "$port" exec "$clean" + fs cp -r firmware hal :. + fs cp pumpboard.mpy main.py :. \
    + fs cp "$config" :board.json \
    "${keys[@]}" + reset
echo "deploy: reset: $board restarts and runs main.py; watch it with: $mpremote connect $port repl"
if [[ ${#keys[@]} -gt 0 ]]; then
    echo "deploy: talk to it: pumpctl --url $port --key-file $key_file status"
fi
