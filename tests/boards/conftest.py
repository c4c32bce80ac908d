import os
import sys

# The board tests import the virtual port's modules (machine, and rp2, esp32 or pyb) and their
# helpers as top-level modules, as the MicroPython unix port does with MICROPYPATH. One port per
# process: VIRTUAL_PORT (rp2, esp32 or stm32; default rp2) and VIRTUAL_MICROPYTHON (the release;
# default the newest modelled). tools/run_boards.sh runs every pair listed in tests/boards/ports.py.
_here = os.path.dirname(os.path.abspath(__file__))
_virtual = os.path.join(os.path.dirname(os.path.dirname(_here)), "boards", "virtual")
sys.path.insert(0, _here)
import ports  # noqa: E402

PORT = os.environ.get("VIRTUAL_PORT") or "rp2"
if PORT not in ports.PORTS:
    raise SystemExit("VIRTUAL_PORT: %r is not one of %s" % (PORT, ", ".join(ports.PORTS)))
for _p in (_here, _virtual, os.path.join(_virtual, PORT)):
    if _p in sys.path:
        sys.path.remove(_p)
    sys.path.insert(0, _p)

_run = set(ports.modules(PORT))
collect_ignore = [f for f in os.listdir(_here) if f.startswith("test_") and f.endswith(".py") and f[:-3] not in _run]
