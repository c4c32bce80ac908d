# A simulated NOR flash region with MicroPython's extended block-device protocol (the `os` module
# docs, "Block devices"): what rp2.Flash, esp32.Partition and pyb.Flash(start=, len=) give a
# board. Written for MicroPython too: the core tests run the journal on it on both runtimes.
#
# NOR semantics: programming can only clear bits (the stored byte becomes old & new), an erase
# sets a whole block to 0xFF and is counted per block. The power can be made to fail part way
# through a write or an erase (tear_after), and bits can be flipped (flip), to test what the
# journal makes of a torn or decayed region.

import sys

ERASED = 0xFF
# CPython (the simulator, campaigns of thousands of runs) programs and erases whole spans at once;
# MicroPython keeps the byte loops, which allocate nothing (the journal is measured on them).
_SPANS = sys.implementation.name == "cpython"


class PowerCut(Exception):
    """The power failed during a flash write or erase: what was programmed so far stays."""


class NorFlash:
    def __init__(self, block_size=4096, blocks=4):
        if block_size < 256 or block_size % 4 or blocks < 1:
            raise ValueError("NorFlash: block_size a multiple of 4 >= 256, blocks >= 1")
        self.block_size = block_size
        self.blocks = blocks
        self.data = bytearray(b"\xff" * (block_size * blocks))
        self.erases = [0] * blocks  # erase cycles per block
        self.bytes_programmed = 0
        self.writes = 0
        self._tear_in = -1  # bytes the power lasts for (programmed or erased); -1: for ever
        if _SPANS:
            self._read = self._read_span
            self._program = self._program_span
            self._erase = self._erase_span

    # CPython's spans (a separate method each, so the MicroPython loops keep their small frames)

    def _read_span(self, buf, start):
        buf[:] = self.data[start:start + len(buf)]

    def _program_span(self, buf, start):
        if self._tear_in >= 0:
            NorFlash._program(self, buf, start)
            return
        n = len(buf)
        old = int.from_bytes(self.data[start:start + n], "little")
        self.data[start:start + n] = (old & int.from_bytes(buf, "little")).to_bytes(n, "little")
        self.bytes_programmed += n

    def _erase_span(self, start):
        if self._tear_in >= 0:
            NorFlash._erase(self, start)
            return
        self.data[start:start + self.block_size] = b"\xff" * self.block_size

    # -- the block-device protocol ------------------------------------------------------------

    # Small frames throughout: the journal's append is measured to allocate nothing with this
    # flash under it, and a MicroPython function with more than about 11 words of locals and
    # stack takes its frame from the heap (GUIDE.md).

    def readblocks(self, n, buf, offset=0):
        start = self._span(n, offset, buf)
        self._read(buf, start)

    def _read(self, buf, start):
        for i in range(len(buf)):
            buf[i] = self.data[start + i]

    def writeblocks(self, n, buf, offset=None):
        if offset is None:  # the basic protocol: whole blocks, erased first (as the ports do)
            self._erase_for(n, buf)
            offset = 0
        start = self._span(n, offset, buf)
        self.writes += 1
        self._program(buf, start)

    def _erase_for(self, n, buf):
        if len(buf) % self.block_size:
            raise OSError(22)  # EINVAL
        for b in range(len(buf) // self.block_size):
            self.erase(n + b)

    def _program(self, buf, start):
        for i in range(len(buf)):
            self._power(i, len(buf), "programming")
            self.data[start + i] &= buf[i]
        self.bytes_programmed += len(buf)

    def _power(self, i, n, doing):
        if self._tear_in == 0:
            self._tear_in = -1
            raise PowerCut("power cut while %s byte %d of %d" % (doing, i, n))
        if self._tear_in > 0:
            self._tear_in -= 1

    def ioctl(self, op, arg):
        if op == 4:  # MP_BLOCKDEV_IOCTL_BLOCK_COUNT
            return self.blocks
        if op == 5:  # MP_BLOCKDEV_IOCTL_BLOCK_SIZE
            return self.block_size
        if op == 6:  # MP_BLOCKDEV_IOCTL_BLOCK_ERASE
            self.erase(arg)
            return 0
        if op in (1, 2, 3):  # init, deinit, sync
            return 0
        return None

    # -- simulation ---------------------------------------------------------------------------

    def erase(self, n):
        if not 0 <= n < self.blocks:
            raise OSError(22)
        self.erases[n] += 1
        self._erase(n * self.block_size)

    def _erase(self, start):
        for i in range(self.block_size):
            self._power(i, self.block_size, "erasing")
            self.data[start + i] = ERASED

    def tear_after(self, nbytes):
        """The power fails once nbytes more bytes have been programmed or erased (-1: never)."""
        self._tear_in = nbytes

    def flip(self, bit):
        """Flips one bit of the region (bit 0 is the low bit of byte 0)."""
        self.data[bit >> 3] ^= 1 << (bit & 7)

    def _span(self, n, offset, buf):
        if n < 0 or offset < 0 or n * self.block_size + offset + len(buf) > len(self.data):
            raise OSError(22)
        return n * self.block_size + offset
