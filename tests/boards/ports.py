"""Which virtual ports and releases the board tests run on, and which test modules each port runs.

    python3 tests/boards/ports.py             the port@release pairs, one per line
    python3 tests/boards/ports.py rp2         the test modules the rp2 port runs

tools/run_boards.sh runs every pair on the MicroPython unix port and on CPython; tests/boards/
conftest.py reads VIRTUAL_PORT (default rp2) and VIRTUAL_MICROPYTHON for a plain pytest run. A
release is listed where the port's modules differ from the next one listed (boards/virtual/README.md).
"""

import os
import sys

PAIRS = (
    ("rp2", "1.24"),  # machine.Timer without `hard`
    ("rp2", "1.28"),
    ("esp32", "1.26"),  # esp32.RMT(channel, pin=, clock_div=), no loop_count or active
    ("esp32", "1.28"),
    ("stm32", "1.24"),  # no machine.PWM (stm32 gained it in 1.28.0)
    ("stm32", "1.28"),
)
PORTS = ("rp2", "esp32", "stm32")
# A module whose name ends in _rp2, _esp32 or _stm32 runs on that port only; one listed here, on the
# ports listed; any other, on every port.
ONLY = {
    "test_steps_timer": ("esp32", "stm32"),
}
BOARD_PORT = {"rpi_pico": "rp2", "esp32": "esp32", "pyboard": "stm32"}

HERE = os.path.dirname(os.path.abspath(__file__))


def modules(port):
    names = sorted(f[:-3] for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py"))
    return [m for m in names if port in ONLY.get(m, _suffix(m))]


def _suffix(module):
    for p in PORTS:
        if module.endswith("_" + p):
            return (p,)
    return PORTS


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print("\n".join(modules(sys.argv[1])))
    else:
        print("\n".join("%s@%s" % p for p in PAIRS))
