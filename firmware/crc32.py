# CRC-32 (IEEE 802.3, the polynomial of zlib and binascii.crc32), kept in two 16-bit halves.
#
# binascii.crc32 returns a 32-bit value: on a 32-bit port three values in four are above the
# small-int range (2**30), so every call would allocate a long int, and the journal's append must
# allocate nothing. This computes the same CRC with a table of 256 entries split into two arrays of
# 16-bit halves: every intermediate is below 2**16. tests/core/test_journal.py checks it against
# binascii.crc32 (CPython's, and the port's where it has one).

import sys
from array import array

# CPython (the simulator) has binascii.crc32 and no small-int limit: it takes that, for speed. The
# ports take the tables below, which tests/core/test_journal.py runs on both MicroPython ports.
_NATIVE = None
if sys.implementation.name == "cpython":
    from binascii import crc32 as _NATIVE

_POLY_HI = 0xEDB8  # 0xEDB88320, the reflected polynomial, in halves
_POLY_LO = 0x8320


def _tables():
    hi = array("H", bytes(512))
    lo = array("H", bytes(512))
    for n in range(256):
        h = 0
        v = n
        for _ in range(8):
            if v & 1:
                v = ((v >> 1) | ((h & 1) << 15)) ^ _POLY_LO
                h = (h >> 1) ^ _POLY_HI
            else:
                v = (v >> 1) | ((h & 1) << 15)
                h >>= 1
        hi[n] = h
        lo[n] = v
    return hi, lo


_HI, _LO = _tables()


class Crc32:
    """A running CRC-32: reset(), update(buf, start, end) any number of times, then hi and lo
    (the CRC's upper and lower 16 bits). Allocates nothing after construction."""

    def __init__(self, tables=False):
        self.hi = 0
        self.lo = 0
        if _NATIVE is not None and not tables:  # tables: True takes them even there (tests)
            self.update = self._native
        self.reset()

    def reset(self):
        self.hi = 0xFFFF
        self.lo = 0xFFFF

    def update(self, buf, start, end):
        # Small frames: a MicroPython function with more than about 11 words of locals and stack
        # takes its frame from the heap on every call (GUIDE.md, "Call frames go on the heap").
        for i in range(start, end):
            self._byte(buf[i])

    def _native(self, buf, start, end):
        c = _NATIVE(bytes(buf[start:end]), ((self.hi << 16) | self.lo) ^ 0xFFFFFFFF) ^ 0xFFFFFFFF  # pyright: ignore[reportOptionalCall]
        self.hi = c >> 16
        self.lo = c & 0xFFFF

    def _byte(self, x):
        k = (self.lo ^ x) & 0xFF
        self.lo = ((self.lo >> 8) | ((self.hi & 0xFF) << 8)) ^ _LO[k]
        self.hi = (self.hi >> 8) ^ _HI[k]

    def final_lo(self):
        return self.lo ^ 0xFFFF

    def final_hi(self):
        return self.hi ^ 0xFFFF
