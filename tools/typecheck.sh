#!/usr/bin/env bash
# Type-check firmware/ and hal/ with pyright against MicroPython's own stubs, once per port.
#
#   tools/typecheck.sh [port ...]      default: rp2 esp32 stm32
#
# pyrightconfig.json (the one editors pick up) points typeshedPath and stubPath at
# build/stubs/rp2: `pip install --target` of micropython-rp2-stubs, which brings
# micropython-stdlib-stubs' stdlib/ along. So `time`, `micropython`, `machine` resolve to the
# port's stubs (time.monotonic is an error, time.ticks_ms is fine), `micropython` resolves to
# the stub and never to the CPython shim ./micropython.py (stubPath is searched first), and
# the fake empty venv build/stubs/no-site keeps CPython's stdlib and site-packages out of the
# search path, so `import dataclasses` or `import numpy` in firmware/ is an error.
# Every other port gets a generated build/pyright/<port>.json that extends pyrightconfig.json
# and swaps only the two stub paths. Run `make stubs` (or `make typecheck`) to install them.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

pyright=${PYRIGHT:-$root/.venv/bin/pyright}
primary=rp2
ports=("$@")
if [[ ${#ports[@]} -eq 0 ]]; then
    ports=(rp2 esp32 stm32)
fi

mkdir -p build/stubs/no-site/lib/python3.11/site-packages build/pyright
rc=0
for port in "${ports[@]}"; do
    if [[ ! -d build/stubs/$port/stdlib ]]; then
        echo "typecheck: stubs for $port missing in build/stubs/$port (run 'make stubs')" >&2
        exit 2
    fi
    if [[ $port == "$primary" ]]; then
        cfg=pyrightconfig.json
    else
        cfg=build/pyright/$port.json
        cat > "$cfg" <<JSON
{
  "extends": "../../pyrightconfig.json",
  "typeshedPath": "../stubs/$port",
  "stubPath": "../stubs/$port"
}
JSON
    fi
    echo "== pyright ($port stubs: -p $cfg)"
    "$pyright" -p "$cfg" || rc=1
done
exit $rc
