# A fake `rp2` module for tests off the RP2040 (CPython and the MicroPython unix port).
#
# asm_pio() really assembles: the decorated function runs with the PIO DSL names injected into its
# module's globals (as MicroPython's own rp2.asm_pio does, so a program that reads a module global
# fails here as it would on the board), in two passes (labels, then code), and yields the same
# 8-field program list as MicroPython: [opcodes, offset_pio0, offset_pio1, execctrl, shiftctrl,
# out_init, set_init, sideset_init]. Opcodes are encoded from the RP2040 datasheet's instruction
# table (section 3.4):
#
#   bits 15-13  12-8                 7-5        4-0
#   JMP   000   delay/side-set       cond       address
#   WAIT  001   delay/side-set       pol src(2) index
#   IN    010   delay/side-set       source     bit count (32 -> 0)
#   OUT   011   delay/side-set       dest       bit count (32 -> 0)
#   PUSH  100   delay/side-set       0 iffull block 00000
#   PULL  100   delay/side-set       1 ifempty block 00000
#   MOV   101   delay/side-set       dest       op(2) source(3)
#   IRQ   110   delay/side-set       0 clear wait index(5)
#   SET   111   delay/side-set       dest       data
#
# The 5-bit delay/side-set field holds the side-set value in its top bits (with an enable bit at
# bit 12 when side-set is optional) and the delay in the rest.
#
# StateMachine records what the code under test does (init arguments, puts, execs, restarts) and
# lets a test play the state machine's part: take() a word from the TX FIFO, complete() a burst by
# pushing a word into the RX FIFO.

_PROG_DATA = 0
_PROG_EXECCTRL = 3
_PROG_SHIFTCTRL = 4
_PROG_OUT_PINS = 5
_PROG_SET_PINS = 6
_PROG_SIDESET_PINS = 7

SYSCLK_HZ = 125_000_000
FIFO_DEPTH = 4


class PIO:
    IN_LOW = 0
    IN_HIGH = 1
    OUT_LOW = 2
    OUT_HIGH = 3
    SHIFT_LEFT = 0
    SHIFT_RIGHT = 1
    JOIN_NONE = 0
    JOIN_TX = 1
    JOIN_RX = 2
    IRQ_SM0 = 0x100
    IRQ_SM1 = 0x200
    IRQ_SM2 = 0x400
    IRQ_SM3 = 0x800

    def __init__(self, id):
        self.id = id


class PIOASMError(Exception):
    pass


def _count(pins):
    if pins is None:
        return 0
    if isinstance(pins, int):
        return 1
    return len(pins)


class _Assembler:
    def __init__(self, out_init=None, set_init=None, sideset_init=None, side_pindir=False,
                 in_shiftdir=0, out_shiftdir=0, autopush=False, autopull=False,
                 push_thresh=32, pull_thresh=32, fifo_join=0):
        self.labels = {}
        self.sideset_count = _count(sideset_init)
        self.execctrl = int(side_pindir) << 29
        self.shiftctrl = ((fifo_join << 30) | ((pull_thresh & 31) << 25) | ((push_thresh & 31) << 20)
                          | (out_shiftdir << 19) | (in_shiftdir << 18) | (int(autopull) << 17)
                          | (int(autopush) << 16))
        self.init = (out_init, set_init, sideset_init)
        self.code = []
        self.wrap_used = False
        self.pass_ = 0
        self.n = 0
        self.n_side = 0
        self.side_opt = False
        self.delay_bits = 5

    def start(self, pass_):
        if pass_ == 1:
            if not self.wrap_used and self.n:
                self.wrap()
            if self.sideset_count:
                self.side_opt = self.n_side != self.n
                if self.side_opt:
                    self.execctrl |= 1 << 30
            self.delay_bits = 5 - self.sideset_count - int(self.side_opt)
            if self.delay_bits < 0:
                raise PIOASMError("too many side-set pins")
        self.pass_ = pass_
        self.n = 0
        self.n_side = 0

    # directives
    def wrap_target(self):
        if self.pass_ == 0:
            self.execctrl |= self.n << 7

    def wrap(self):
        if not self.n:
            raise PIOASMError("wrap before any instruction")
        if self.pass_ == 0:
            self.execctrl |= (self.n - 1) << 12
        self.wrap_used = True

    def label(self, name):
        if self.pass_ == 0:
            if name in self.labels:
                raise PIOASMError("duplicate label " + str(name))
            self.labels[name] = self.n

    # delay and side-set: `instr [n]` and `instr .side(v)`
    def __getitem__(self, delay):
        if self.pass_:
            if not 0 <= delay < (1 << self.delay_bits):
                raise PIOASMError("delay %d does not fit %d bits" % (delay, self.delay_bits))
            self.code[-1] |= delay << 8
        return self

    def side(self, value):
        self.n_side += 1
        if self.pass_:
            if not self.sideset_count:
                raise PIOASMError("side() without sideset_init")
            if not 0 <= value < (1 << self.sideset_count):
                raise PIOASMError("side-set value too large")
            self.code[-1] |= value << (13 - self.sideset_count - int(self.side_opt))
            if self.side_opt:
                self.code[-1] |= 1 << 12
        return self

    def _emit(self, word, target=None):
        self.n += 1
        if self.n > 32:
            raise PIOASMError("program longer than 32 instructions")
        if self.pass_:
            if target is not None:
                if target not in self.labels:
                    raise PIOASMError("unknown label " + str(target))
                word |= self.labels[target]
            self.code.append(word)
        return self

    # instructions
    def word(self, instr, label=None):
        return self._emit(instr & 0xFFFF, label)

    def nop(self):
        return self._emit(0xA042)  # mov y, y

    def jmp(self, cond, label=None):
        if label is None:
            cond, label = 0, cond
        if not 0 <= cond <= 7:
            raise PIOASMError("bad jmp condition")
        return self._emit(cond << 5, label)

    def wait(self, polarity, src, index):
        if src == 0:
            code = 0  # gpio
        elif src == 6:
            code = 1  # pin (the name `pin` is the jmp condition 6)
        else:
            code = 2  # irq (the name `irq` is the instruction itself)
        if not 0 <= index <= 31:
            raise PIOASMError("bad wait index")
        return self._emit(0x2000 | (int(polarity) & 1) << 7 | code << 5 | index)

    def in_(self, src, count):
        if src not in (0, 1, 2, 3, 6, 7) or not 1 <= count <= 32:
            raise PIOASMError("bad in")
        return self._emit(0x4000 | src << 5 | (count & 31))

    def out(self, dest, count):
        if dest == 8:
            dest = 7  # exec
        if not 0 <= dest <= 7 or not 1 <= count <= 32:
            raise PIOASMError("bad out")
        return self._emit(0x6000 | dest << 5 | (count & 31))

    @staticmethod
    def _blocking(flags):
        # `block` (0x21) or no flag: blocking; `noblock` (0x01) alone: not blocking
        return (not flags & 1) or bool(flags & 0x20)

    def push(self, a=0, b=0):
        flags = a | b
        return self._emit(0x8000 | (0x40 if flags & 0x40 else 0) | (0x20 if self._blocking(flags) else 0))

    def pull(self, a=0, b=0):
        flags = a | b
        return self._emit(0x8080 | (0x40 if flags & 0x40 else 0) | (0x20 if self._blocking(flags) else 0))

    def mov(self, dest, src):
        if dest == 8:
            dest = 4  # exec
        if not 0 <= dest <= 7 or (src & 7) == 4 or src > 0x1F:
            raise PIOASMError("bad mov")
        return self._emit(0xA000 | dest << 5 | src)  # src carries the op in bits 3-4

    def irq(self, mod, index=None):
        if index is None:
            mod, index = 0, mod
        if not 0 <= (index & 0x0F) <= 7:
            raise PIOASMError("bad irq index")
        clear = 0x40 if mod & 0x40 else 0
        wait = 0x20 if (mod & 0x20) else 0
        return self._emit(0xC000 | clear | wait | (index & 0x1F))

    def set(self, dest, data):
        if dest not in (0, 1, 2, 4) or not 0 <= data <= 31:
            raise PIOASMError("bad set")
        return self._emit(0xE000 | dest << 5 | data)


_NAMES = {
    "gpio": 0, "pins": 0, "x": 1, "y": 2, "null": 3, "pindirs": 4, "pc": 5, "status": 5,
    "isr": 6, "osr": 7, "exec": 8,
    "invert": lambda s: s | 0x08, "reverse": lambda s: s | 0x10,
    "not_x": 1, "x_dec": 2, "not_y": 3, "y_dec": 4, "x_not_y": 5, "pin": 6, "not_osre": 7,
    "noblock": 0x01, "block": 0x21, "iffull": 0x40, "ifempty": 0x40, "clear": 0x40,
    "rel": lambda i: i | 0x10,
}
_DIRECTIVES = ("wrap_target", "wrap", "label")
_INSTRUCTIONS = ("word", "nop", "jmp", "wait", "in_", "out", "push", "pull", "mov", "irq", "set")


def asm_pio(**kw):
    asm = _Assembler(**kw)

    def assemble(f):
        gl = f.__globals__
        saved = dict(gl)
        gl.clear()
        gl.update(_NAMES)
        for name in _DIRECTIVES + _INSTRUCTIONS:
            gl[name] = getattr(asm, name)
        try:
            asm.start(0)
            f()
            asm.start(1)
            f()
        finally:
            gl.clear()
            gl.update(saved)
        out_init, set_init, sideset_init = asm.init
        return [asm.code, -1, -1, asm.execctrl, asm.shiftctrl, out_init, set_init, sideset_init]

    return assemble


def asm_pio_encode(instr, sideset_count=0, sideset_opt=False):
    asm = _Assembler()
    asm.sideset_count = sideset_count
    asm.side_opt = bool(sideset_opt)
    asm.delay_bits = 5 - sideset_count
    asm.pass_ = 1
    gl = dict(_NAMES)
    for name in _INSTRUCTIONS:
        gl[name] = getattr(asm, name)
    exec(instr, gl)
    if len(asm.code) != 1:
        raise PIOASMError("expecting exactly 1 instruction")
    return asm.code[0]


def program_info(prog):
    """The configuration a program carries, decoded as the hardware reads it (for tests)."""
    execctrl = prog[_PROG_EXECCTRL]
    shiftctrl = prog[_PROG_SHIFTCTRL]
    sideset = _count(prog[_PROG_SIDESET_PINS])
    return {
        "opcodes": list(prog[_PROG_DATA]),
        "wrap_target": (execctrl >> 7) & 31,
        "wrap": (execctrl >> 12) & 31,
        "side_opt": bool(execctrl >> 30 & 1),
        "sideset_count": sideset,
        "in_shift_right": bool(shiftctrl >> 18 & 1),
        "out_shift_right": bool(shiftctrl >> 19 & 1),
        "autopull": bool(shiftctrl >> 17 & 1),
        "autopush": bool(shiftctrl >> 16 & 1),
        "pull_thresh": ((shiftctrl >> 25) & 31) or 32,
        "push_thresh": ((shiftctrl >> 20) & 31) or 32,
        "out_count": _count(prog[_PROG_OUT_PINS]),
        "set_count": _count(prog[_PROG_SET_PINS]),
    }


_PULL_NOBLOCK = 0x8080


class StateMachine:
    def __init__(self, id, prog=None, freq=-1, **kw):
        self.id = id
        self.prog = None
        self.freq = None
        self.config = {}
        self.inits = 0
        self.puts = []  # every word put, in order
        self.tx = []  # words in the TX FIFO, not yet taken by the state machine
        self.taken = []  # words the state machine took from the TX FIFO
        self.rx = []
        self.execs = []
        self.restarts = 0
        self.running = False
        self.auto_take = True  # an active state machine takes a word as soon as it is put
        if prog is not None:
            self.init(prog, freq, **kw)

    def init(self, prog, freq=-1, *, in_base=None, out_base=None, set_base=None, jmp_pin=None,
             sideset_base=None, in_shiftdir=None, out_shiftdir=None, push_thresh=None, pull_thresh=None):
        if freq != -1 and not (SYSCLK_HZ <= freq * 65536 and freq <= SYSCLK_HZ):
            raise ValueError("freq out of range")
        self.prog = prog
        self.freq = freq
        self.config = {"in_base": in_base, "out_base": out_base, "set_base": set_base, "jmp_pin": jmp_pin,
                       "sideset_base": sideset_base, "in_shiftdir": in_shiftdir, "out_shiftdir": out_shiftdir,
                       "push_thresh": push_thresh, "pull_thresh": pull_thresh}
        self.inits += 1
        self.running = False
        self.tx = []
        self.rx = []

    def active(self, value=None):
        if value is not None:
            self.running = bool(value)
            if self.running and self.auto_take:
                while self.tx:
                    self.take()
        return self.running

    def put(self, value, shift=0):
        if len(self.tx) >= FIFO_DEPTH:
            raise AssertionError("put() on a full TX FIFO would block forever")
        word = (value << shift) & 0xFFFFFFFF
        self.puts.append(word)
        self.tx.append(word)
        if self.running and self.auto_take:
            self.take()

    def take(self):
        """The state machine pulls a word from the TX FIFO."""
        word = self.tx.pop(0)
        self.taken.append(word)
        return word

    def complete(self, word=0):
        """The state machine pushes a word into the RX FIFO."""
        if len(self.rx) >= FIFO_DEPTH:
            raise AssertionError("RX FIFO full: the program would stall on push")
        self.rx.append(word & 0xFFFFFFFF)

    def get(self, buf=None, shift=0):
        if not self.rx:
            raise AssertionError("get() on an empty RX FIFO would block forever")
        word = self.rx.pop(0) >> shift
        if buf is None:
            return word
        buf[0] = word
        return buf

    def rx_fifo(self):
        return len(self.rx)

    def tx_fifo(self):
        return len(self.tx)

    def exec(self, instr):
        if isinstance(instr, str):
            instr = asm_pio_encode(instr, 0)
        self.execs.append(instr)
        if instr == _PULL_NOBLOCK and self.tx:
            self.take()

    def restart(self):
        self.restarts += 1

    def irq(self, handler=None, trigger=0, hard=False):
        self.irq_handler = handler


# -- Flash: ports/rp2/rp2_flash.c (v1.24.0..v1.28.0 alike) ---------------------------------------
#
# The storage area MICROPY_HW_FLASH_STORAGE_BYTES (1408 KB on RPI_PICO, mpconfigboard.h) in blocks
# of FLASH_SECTOR_SIZE (4096). Flash() is the whole area (one object); Flash(start=, len=) kw-only,
# each a multiple of 4096 inside the area, else ValueError with no message. readblocks/writeblocks
# memcpy and program with no bounds check: outside the object's area (a neighbour's flash, or past
# the chip) the fake raises AssertionError. writeblocks(n, buf) erases the span first; with an
# offset it is flash_range_program: NOR, and whole 256-byte pages only (pico-sdk hardware/flash.h:
# "Must be aligned to a 256-byte flash page"; modules/_boot.py mounts littlefs with progsize=256):
# anything else programs a page from past the buffer on a board, so the fake raises. ioctl 6 erases
# a block. The bytes live in vflash's chip "rp2", kept across machine.reset_fakes (a reboot).
# Test hooks: flash_chip() (vflash.Chip), format_littlefs(nbytes): a littlefs superblock at block 0
# (what _boot.py leaves, or a student's smaller filesystem).

STORAGE_BYTES = 1408 * 1024
_SECTOR = 4096
_PAGE = 256


def flash_chip():
    import vflash

    return vflash.chip("rp2", STORAGE_BYTES, _SECTOR)


def format_littlefs(nbytes):
    import vflash

    flash_chip().program(0, vflash.littlefs_superblock(_SECTOR, nbytes // _SECTOR), False)


class Flash:
    def __init__(self, *args, **kw):
        if args:
            raise TypeError("extra positional arguments given")
        for k in kw:
            if k not in ("start", "len"):
                raise TypeError("extra keyword arguments given")
        start = kw.get("start", -1)
        length = kw.get("len", -1)
        if start == -1 and length == -1:
            start, length = 0, STORAGE_BYTES
        if start == -1:
            start = 0
        elif not (0 <= start < STORAGE_BYTES and start % _SECTOR == 0):
            raise ValueError()
        if length == -1:
            length = STORAGE_BYTES - start
        elif not (0 < length and start + length <= STORAGE_BYTES and length % _SECTOR == 0):
            raise ValueError()
        self.start = start
        self.len = length

    def _span(self, n, offset, nbytes):
        at = n * _SECTOR + offset
        if n < 0 or offset < 0 or at + nbytes > self.len:
            raise AssertionError("rp2.Flash: bytes %d..%d of a %d-byte Flash: the port does not check, and "
                                 "reads or writes another region's flash" % (at, at + nbytes, self.len))
        return self.start + at

    def readblocks(self, n, buf, offset=0):
        flash_chip().read(self._span(n, offset, len(buf)), buf)

    def writeblocks(self, n, buf, offset=None):
        if offset is None:
            if len(buf) % _SECTOR:
                raise AssertionError("rp2.Flash.writeblocks: flash_range_erase of %d bytes, not whole sectors"
                                     % len(buf))
            at = self._span(n, 0, len(buf))
            flash_chip().erase(at, len(buf))
        else:
            at = self._span(n, offset, len(buf))
        if at % _PAGE or len(buf) % _PAGE:
            raise AssertionError("rp2.Flash.writeblocks: flash_range_program of %d bytes at %d: whole "
                                 "256-byte pages only (a board programs a page from past the buffer)"
                                 % (len(buf), at))
        flash_chip().program(at, buf)

    def ioctl(self, op, arg):
        if op in (1, 2, 3):
            return 0
        if op == 4:
            return self.len // _SECTOR
        if op == 5:
            return _SECTOR
        if op == 6:
            flash_chip().erase(self._span(arg, 0, _SECTOR), _SECTOR)
            return 0
        return None
