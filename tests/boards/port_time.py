# CPython only: MicroPython's time.ticks_ms, ticks_add, ticks_diff and sleep_ms, added to CPython's
# `time` where missing (hal/machine_*.py bind them at construction). Period 2**30 and the errors
# of extmod/modtime.c, on the host's monotonic clock. On MicroPython install() does nothing.
# Tests that need exact time swap a fake tick in on the instance.

import sys
import time

_MASK = (1 << 30) - 1
_HALF = 1 << 29


def _ticks_ms():
    return (time.monotonic_ns() // 1_000_000) & _MASK


def _ticks_add(t, delta):
    if not -_HALF < delta < _HALF:
        raise OverflowError("ticks interval overflow")
    return (t + delta) & _MASK


def _ticks_diff(a, b):
    return ((((a & _MASK) - (b & _MASK)) & _MASK) ^ _HALF) - _HALF


def _sleep_ms(ms):
    time.sleep(ms / 1000)


def install():
    if sys.implementation.name == "micropython":
        return
    for name, fn in (("ticks_ms", _ticks_ms), ("ticks_add", _ticks_add), ("ticks_diff", _ticks_diff),
                     ("sleep_ms", _sleep_ms)):
        if not hasattr(time, name):
            setattr(time, name, fn)
