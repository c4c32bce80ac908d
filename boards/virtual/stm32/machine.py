# MicroPython's `machine` as the stm32 port has it, for the virtual board (boards/virtual/README.md).
# The shared parts are in boards/virtual/vmachine.py; what the stm32 port does differently is here.

from vmachine import *  # noqa: F401,F403
from vmachine import idle, reset_fakes, set_record  # noqa: F401

PORT = "stm32"
