# The flash chips of the virtual boards (rp2.Flash, esp32.Partition, pyb.Flash): bytes kept in a
# module-level store per chip, so they survive a simulated reboot (machine.reset_fakes) within one
# test process, as a board's flash survives a reset. Sparse: a block never written reads 0xFF.
# Written in the subset of Python MicroPython has.
#
# With VIRTUAL_FLASH_DIR set, each chip is also kept in a file there (<chip>.flash), its blocks
# written through at each program and erase: a board whose process ends at a reset
# (tests/host/serial_board.py) boots again on the flash it left, as a board does after a hard
# reset or a power cut.

_chips = {}


def _flash_dir():
    try:
        import os

        return os.getenv("VIRTUAL_FLASH_DIR") or ""
    except (ImportError, AttributeError):  # a port without os.getenv (wasm): in memory only
        return ""


class Chip:
    """A flash of `size` bytes in erase blocks of `block` bytes; NOR programming unless told."""

    def __init__(self, size, block, path=""):
        self.size = size
        self.block = block
        self.blocks = {}  # erase block -> bytearray
        self.erases = 0
        self._file = None
        if path:
            self._open(path)

    def _open(self, path):
        erased = b"\xff" * self.block
        try:
            f = open(path, "r+b")
        except OSError:
            f = open(path, "w+b")
            for _ in range(self.size // self.block):  # a new chip: erased
                f.write(erased)
            f.flush()
            f.seek(0)
        data = bytearray(self.block)
        for n in range(self.size // self.block):  # block by block: a whole chip would not fit the heap
            f.readinto(data)
            if data != erased:
                self.blocks[n] = bytearray(data)
        self._file = f

    def _keep(self, addr, length):
        """Writes the blocks holding bytes addr..addr+length through to the chip's file, if it has one."""
        if self._file is None or length <= 0:
            return
        for n in range(addr // self.block, (addr + length - 1) // self.block + 1):
            b = self.blocks.get(n)
            self._file.seek(n * self.block)
            self._file.write(b"\xff" * self.block if b is None else b)
        self._file.flush()

    def read(self, addr, buf):
        for i in range(len(buf)):
            a = addr + i
            b = self.blocks.get(a // self.block)
            buf[i] = 0xFF if b is None else b[a % self.block]

    def program(self, addr, buf, nor=True):
        """NOR: the byte becomes old & new (a bit only goes 1 -> 0); nor False: copied."""
        for i in range(len(buf)):
            a = addr + i
            b = self._block(a // self.block)
            b[a % self.block] = (b[a % self.block] & buf[i]) if nor else buf[i]
        self._keep(addr, len(buf))

    def erase(self, addr, length):
        first = addr // self.block
        end = (addr + length) // self.block
        for n in range(first, end):
            self.blocks.pop(n, None)
            self.erases += 1
        self._keep(first * self.block, (end - first) * self.block)

    def _block(self, n):
        b = self.blocks.get(n)
        if b is None:
            b = self.blocks[n] = bytearray(b"\xff" * self.block)
        return b


def chip(name, size, block):
    """The chip called name, made erased on first use; the same object for the whole process."""
    c = _chips.get(name)
    if c is None:
        folder = _flash_dir()
        c = _chips[name] = Chip(size, block, folder + "/" + name + ".flash" if folder else "")
    return c


def wipe(name=None):
    """Test hook: a new, erased chip (all of them if name is None); a kept one's file is erased too."""
    for n in list(_chips) if name is None else [name]:
        c = _chips.pop(n, None)
        if c is not None and c._file is not None:
            c.blocks.clear()
            c._keep(0, c.size)


def littlefs_superblock(block_size, block_count):
    """The first 32 bytes of a littlefs v2 superblock block as littlefs writes them: revision,
    tag, "littlefs", tag, then version, block_size, block_count (lfs2.c lfs2_superblock_t), which
    is what ports/stm32/main.c init_flash_fs reads to size the filesystem."""
    out = bytearray(32)
    out[0] = 1
    out[8:16] = b"littlefs"
    for at, v in ((20, 0x00020001), (24, block_size), (28, block_count)):
        for i in range(4):
            out[at + i] = (v >> (8 * i)) & 0xFF
    return out


def set_up_journal(port, region, done=True):
    """The student's one-time set-up for the journal's regions (boards/README.md "The journal's flash
    region") on the virtual `port`'s flash, for region (hal/machine_storage.py defaults); done=False:
    the stock board, its filesystem over all of the storage."""
    if port == "rp2":
        import rp2

        rp2.format_littlefs(region["start"] if done else rp2.STORAGE_BYTES)
    elif port == "esp32":
        import esp32

        esp32.flash_partition_table(esp32._TABLE_STOCK + (("journal", 1, 0x81, 0x200000, 0x1C000),)
                                    if done else None)
    else:
        import pyb

        pyb.flash_power_cut(False)
        if done:
            pyb.format_littlefs(region["start"])
