# The journal's regions on the stm32 port: pyb.Flash (hal/machine_storage.py says how it behaves).

import pyb

from hal.machine_storage import BLOCK, block_count, check_apart, check_size, littlefs_bytes, start_offset


def open_pyb(cfg, state_n, event_n):
    start = start_offset(cfg, 512)
    whole = pyb.Flash(start=0)
    area = block_count(whole) * 512
    check_size("state_blocks + event_blocks", (state_n + event_n) * BLOCK, area - start,
               "pyb.Flash()'s storage area (%d bytes) from journal.start %d" % (area, start))
    fs = littlefs_bytes(whole)
    check_apart(start, (state_n + event_n) * BLOCK, 0, area if fs < 0 else fs,
                "the stock FAT covers all of pyb.Flash(); make a littlefs over pyb.Flash(start=0, "
                "len=%d) instead" % start)
    return (_Pyb(pyb.Flash(start=start, len=state_n * BLOCK)),
            _Pyb(pyb.Flash(start=start + state_n * BLOCK, len=event_n * BLOCK)))


class _Pyb:
    """A pyb.Flash region as NOR blocks of 4096 bytes that are durable once written (see above)."""

    def __init__(self, dev):
        self._dev = dev
        self._k = BLOCK // 512
        self._ff = bytearray(b"\xff" * 512)

    def readblocks(self, n, buf, offset=0):
        _ok(self._dev.readblocks(n * self._k + offset // 512, buf, offset % 512))

    def writeblocks(self, n, buf, offset=0):
        _ok(self._dev.writeblocks(n * self._k + offset // 512, buf, offset % 512))
        self._dev.ioctl(3, 0)

    def ioctl(self, op, arg):
        if op == 4:
            return block_count(self._dev) // self._k
        if op == 5:
            return BLOCK
        if op == 6:
            return self._erase(arg)
        return self._dev.ioctl(op, arg)

    def _erase(self, n):
        # the port's ioctl 6 does nothing: the block's bytes written back to 0xFF, one 512 at a time
        for i in range(self._k):
            _ok(self._dev.writeblocks(n * self._k + i, self._ff, 0))
        self._dev.ioctl(3, 0)
        return 0


def _ok(rc):
    if rc:
        raise OSError(-rc)
