# Which MicroPython release the virtual board models: the environment's VIRTUAL_MICROPYTHON
# ("1.26", "1.27.0", ...), or the newest release modelled. Each port's folder (boards/virtual/rp2,
# esp32, stm32) names its port in its own machine.py; the fakes read VERSION once, at import, as
# the real ports fix their modules at build time. Written in the subset of Python MicroPython has.

import os

NEWEST = (1, 28)
OLDEST = (1, 24)  # the boards README promises 1.24 or newer


def _parse(text):
    parts = text.split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        raise ValueError("VIRTUAL_MICROPYTHON: %r is not a release like 1.27" % (text,))
    v = (int(parts[0]), int(parts[1]))
    if not OLDEST <= v <= NEWEST:
        raise ValueError("VIRTUAL_MICROPYTHON: %r: the virtual ports model 1.24..1.28" % (text,))
    return v


_getenv = getattr(os, "getenv", None)  # the WebAssembly port's os has none
VERSION = _parse((_getenv and _getenv("VIRTUAL_MICROPYTHON")) or "%d.%d" % NEWEST)


def at_least(major, minor):
    return VERSION >= (major, minor)
