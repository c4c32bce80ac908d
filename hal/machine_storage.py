# The journal's two flash regions on a board (firmware/journal.py; boards/README.md "The journal's
# flash region"), opened from the port's own flash object, and FileFlash, a file-backed region.
#
#   open_regions(journal_cfg, port=None) -> (state_dev, events_dev)
#
# The port's own part is in hal/storage_rp2.py, storage_esp32.py, storage_pyb.py (a board gets only
# its own: tools/board_env.sh, tools/board_manifests.py).
#
# journal_cfg: board.json's "journal" object (missing keys: DEFAULTS[board]):
#   "state_blocks", "event_blocks"  the two regions in journal blocks of BLOCK (4096) bytes, each >= 2
#   "start"      rp2, stm32: the byte offset of the state region in the port's flash storage area
#                (rp2.Flash(), pyb.Flash()); the event region follows it
#   "partition"  esp32: the label of a data partition holding both, state first
#
# What each port's extended block protocol really does (MicroPython v1.24.0..v1.28.0), and what is
# done about it here:
#   rp2    ports/rp2/rp2_flash.c: Flash(start=, len=) kw-only, multiples of 4096 within
#          MICROPY_HW_FLASH_STORAGE_BYTES (1408 KB on a Pico), else ValueError; 4096-byte blocks;
#          writeblocks with offset is flash_range_program: NOR, but whole 256-byte pages only
#          (modules/_boot.py: "the flash requires the programming size to be aligned to 256
#          bytes"): storage_rp2._Pages programs a page of 0xFF around the bytes (0xFF leaves a bit as it is).
#          The filesystem: _boot.py mounts littlefs over the whole rp2.Flash(), and formats the
#          whole of it again if a mount fails (a smaller one fails: littlefs checks block_count).
#   esp32  ports/esp32/esp32_partition.c: Partition(label) (app, then data partitions; OSError
#          ENOENT if none), 4096-byte blocks, NOR writes with offset, ioctl 6 erases. No window over
#          part of a partition: the stock table has none free (nvs, phy_init, factory, vfs), so the
#          student flashes a table with a "journal" data partition (the firmware stays stock);
#          Window gives each region its blocks of it.
#          The filesystem: the "vfs" partition (1.26+: made at boot over the flash after the last
#          partition if the table has none).
#   stm32  ports/stm32/storage.c, flashbdev.c (pyboard: the internal flash, 112 KB in sectors of
#          16, 16, 16 and 64 KB): Flash(start=, len=) multiples of 512, 512-byte blocks; writeblocks
#          with offset COPIES into a RAM cache of one flash sector (bits go 1 -> 0 and 0 -> 1),
#          written back (the sector erased, then programmed) at ioctl 3 (sync), when another sector
#          is written, or 5 s after the last write; ioctl 6 does nothing (no erase for internal
#          flash); readblocks/writeblocks return an error code instead of raising. storage_pyb._Pyb groups 8
#          blocks into one of 4096, erases by writing 0xFF, raises on an error code, and syncs after
#          every write (a record is durable when its commit is). The filesystem: FAT over all of
#          pyb.Flash() unless a littlefs superblock is at block 0 or 1 (main.c init_flash_fs):
#          then littlefs over pyb.Flash(start=0, len=its block_count x block_size).
#          NOT SOLVED here: each write-back erases the whole sector before programming it, so a
#          power cut in that window (up to about a second for the 64 KB sector) erases every journal
#          block in the sector (the defaults: all of them), and mount() takes an erased region for
#          the very first boot; and each synced write costs a sector erase (10,000 cycles).

import sys

BLOCK = 4096  # journal block: firmware/persist.py's snapshot (825 ints, 3316 bytes) fits it

DEFAULTS = {
    # the top 112 KB of the Pico's 1408 KB storage area
    "rpi_pico": {"start": 1408 * 1024 - 28 * BLOCK, "state_blocks": 16, "event_blocks": 12},
    # a 112 KB data partition labelled "journal"
    "esp32": {"partition": "journal", "state_blocks": 16, "event_blocks": 12},
    # the top 32 KB of the pyboard's 112 KB (in its 64 KB sector): little room for both
    "pyboard": {"start": 112 * 1024 - 8 * BLOCK, "state_blocks": 4, "event_blocks": 4},
}
_BOARD_PORT = {"rpi_pico": "rp2", "esp32": "esp32", "pyboard": "stm32"}
_PLATFORM_PORT = {"rp2": "rp2", "esp32": "esp32", "pyboard": "stm32"}


def defaults(board):
    """board.json's "journal" defaults for a board folder (rpi_pico, esp32, pyboard)."""
    return dict(DEFAULTS[board])


def _port():
    try:
        import machine

        p = getattr(machine, "PORT", None)  # the virtual board's
        if p is not None:
            return p
    except ImportError:
        pass
    return _PLATFORM_PORT.get(sys.platform, sys.platform)


def _blocks(cfg, key):
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not 2 <= v <= 4096:
        raise ValueError("journal.%s: %r: an integer of blocks, 2..4096 (the journal needs 2)" % (key, v))
    return v


def check_size(key, asked, have, where):
    """The region the config asks for must fit what the board has."""
    if asked > have:
        raise ValueError("journal.%s: asks %d bytes but %s has %d" % (key, asked, where, have))


def check_apart(start, length, fs_start, fs_len, fix):
    """The journal's region [start, start+length) must not overlap the filesystem's."""
    if start < fs_start + fs_len and fs_start < start + length:
        raise ValueError("journal: its flash %d..%d overlaps the filesystem holding the code (%d..%d): "
                         "%s (boards/README.md, \"The journal's flash region\")" % (
                             start, start + length, fs_start, fs_start + fs_len, fix))


def block_count(dev):
    """ioctl 4 of a port's flash object (an int: the stubs type ioctl's result as optional)."""
    n = dev.ioctl(4, 0)
    if not isinstance(n, int) or n < 0:
        raise OSError(5)  # EIO
    return n


def littlefs_bytes(dev):
    """The size of the littlefs whose superblock is at block 0 or 1 of dev, or -1 if none (as
    ports/stm32/main.c init_flash_fs detects it: "littlefs" at byte 8, block_size, block_count at 24)."""
    buf = bytearray(32)
    for b in (0, 1):
        if dev.readblocks(b, buf, 0):
            continue  # an error code (stm32)
        if bytes(buf[8:16]) == b"littlefs":
            return _le32(buf, 24) * _le32(buf, 28)
    return -1


def _le32(buf, at):
    return buf[at] | buf[at + 1] << 8 | buf[at + 2] << 16 | buf[at + 3] << 24


def open_regions(journal_cfg, port=None):
    """(state_dev, events_dev) on this board's flash, checked: sizes, and apart from the filesystem."""
    port = port or _port()
    state_n = _blocks(journal_cfg, "state_blocks")
    event_n = _blocks(journal_cfg, "event_blocks")
    # each port's own module (only that board gets it: tools/board_env.sh, board_manifests.py)
    if port == "rp2":
        from hal.storage_rp2 import open_rp2

        return open_rp2(journal_cfg, state_n, event_n)
    if port == "esp32":
        from hal.storage_esp32 import open_esp32

        return open_esp32(journal_cfg, state_n, event_n)
    if port == "stm32":
        from hal.storage_pyb import open_pyb

        return open_pyb(journal_cfg, state_n, event_n)
    raise ValueError("journal: no flash region known on port %r" % (port,))


def start_offset(cfg, unit):
    v = cfg.get("start")
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v % unit:
        raise ValueError("journal.start: %r: a byte offset, a multiple of %d" % (v, unit))
    return v


class Window:
    """Blocks first..first+count-1 of a device with the extended protocol (an esp32.Partition)."""

    def __init__(self, dev, first, count):
        self._dev = dev
        self._first = first
        self._count = count

    def readblocks(self, n, buf, offset=0):
        self._dev.readblocks(self._first + n, buf, offset)

    def writeblocks(self, n, buf, offset=0):
        self._dev.writeblocks(self._first + n, buf, offset)

    def ioctl(self, op, arg):
        if op == 4:
            return self._count
        if op == 6:
            return self._dev.ioctl(6, self._first + arg)
        return self._dev.ioctl(op, arg)


class FileFlash:
    """A NOR region in a file (CPython and the MicroPython unix port): a write clears bits only
    (old & new), ioctl 6 sets a block to 0xFF; the file is made erased if shorter than the region."""

    def __init__(self, path, block_size=BLOCK, blocks=28):
        if block_size < 256 or block_size % 4 or blocks < 2:
            raise ValueError("FileFlash: block_size a multiple of 4 >= 256, blocks >= 2")
        self.block_size = block_size
        self.blocks = blocks
        try:
            f = open(path, "r+b")
        except OSError:
            f = open(path, "w+b")
        f.seek(0, 2)
        have = f.tell()
        size = block_size * blocks
        if have < size:
            f.write(b"\xff" * (size - have))
            f.flush()
        self._f = f

    def _at(self, n, offset, length):
        at = n * self.block_size + offset
        if n < 0 or offset < 0 or at + length > self.block_size * self.blocks:
            raise OSError(22)  # EINVAL
        self._f.seek(at)
        return at

    def readblocks(self, n, buf, offset=0):
        self._at(n, offset, len(buf))
        self._f.readinto(buf)

    def writeblocks(self, n, buf, offset=None):
        if offset is None:  # the basic protocol: whole blocks, erased first
            if len(buf) % self.block_size:
                raise OSError(22)
            for b in range(len(buf) // self.block_size):
                self.ioctl(6, n + b)
            offset = 0
        at = self._at(n, offset, len(buf))
        old = bytearray(len(buf))
        self._f.readinto(old)
        for i in range(len(buf)):
            old[i] &= buf[i]
        self._f.seek(at)
        self._f.write(old)
        self._f.flush()

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.block_size
        if op == 6:
            self._at(arg, 0, self.block_size)
            self._f.write(b"\xff" * self.block_size)
            self._f.flush()
            return 0
        if op in (1, 2, 3):
            return 0
        return None

    def close(self):
        self._f.close()
