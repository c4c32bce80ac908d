# The journal's regions on the rp2 port: rp2.Flash (hal/machine_storage.py says how it behaves).

import rp2

from hal.machine_storage import BLOCK, block_count, check_apart, check_size, littlefs_bytes, start_offset
from micropython import const

_PAGE = const(256)  # flash_range_program's page


def open_rp2(cfg, state_n, event_n):
    start = start_offset(cfg, BLOCK)
    whole = rp2.Flash()
    area = block_count(whole) * BLOCK  # rp2_flash.c: BLOCK_SIZE_BYTES 4096
    check_size("state_blocks + event_blocks", (state_n + event_n) * BLOCK, area - start,
               "rp2.Flash()'s storage area (%d bytes) from journal.start %d" % (area, start))
    fs = littlefs_bytes(whole)
    check_apart(start, (state_n + event_n) * BLOCK, 0, area if fs < 0 else fs,
                "stock rp2 firmware formats littlefs over all of rp2.Flash(); build it with a _boot.py "
                "that mounts rp2.Flash(len=%d)" % start)
    return (_Pages(rp2.Flash(start=start, len=state_n * BLOCK)),
            _Pages(rp2.Flash(start=start + state_n * BLOCK, len=event_n * BLOCK)))


class _Pages:
    """An rp2.Flash whose writes program whole 256-byte pages: the bytes given, 0xFF around them.
    Small frames, state in attributes: the journal's append allocates nothing through it."""

    def __init__(self, dev):
        self._dev = dev
        self._page = bytearray(b"\xff" * _PAGE)
        self._n = 0
        self._buf = self._page  # (the caller's buffer during a write)
        self._off = 0
        self._d = 0
        self.readblocks = dev.readblocks
        self.ioctl = dev.ioctl

    def writeblocks(self, n, buf, offset=0):
        self._n = n
        self._buf = buf
        self._off = offset
        pos = offset
        while pos < offset + len(buf):
            pos = self._page_from(pos)
        self._buf = self._page

    def _page_from(self, pos):
        # programs the page holding byte pos of the block; returns where the next page starts
        base = pos - pos % _PAGE
        end = self._off + len(self._buf)
        if end > base + _PAGE:
            end = base + _PAGE
        self._d = base - self._off  # page[i] is buf[i + _d]
        self._copy(pos - base, end - base)
        self._dev.writeblocks(self._n, self._page, base)
        self._clear()
        return end

    def _copy(self, first, end):
        for i in range(first, end):
            self._page[i] = self._buf[i + self._d]

    def _clear(self):
        page = self._page
        for i in range(_PAGE):
            page[i] = 0xFF
