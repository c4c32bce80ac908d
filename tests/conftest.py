import os
import sys

# Core tests import their helpers as top-level `support`, as on MicroPython.
_here = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(_here, "core"))
sys.path.insert(0, os.path.dirname(_here))
