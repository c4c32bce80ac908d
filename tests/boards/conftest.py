import os
import sys

# The board backends' tests import the fakes (machine, rp2, esp32, pyb) and their helpers as
# top-level modules, as the MicroPython unix port does with MICROPYPATH.
_here = os.path.dirname(os.path.abspath(__file__))
for _p in (_here, os.path.join(_here, "fakes")):
    if _p in sys.path:
        sys.path.remove(_p)
    sys.path.insert(0, _p)
