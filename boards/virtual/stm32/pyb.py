# MicroPython's `pyb` as the stm32 port has it on a pyboard v1.1, for the virtual board
# (boards/virtual/README.md): Timer and its channels, Pin (machine.Pin: one type on the port),
# disable_irq/enable_irq. Each behaviour from ports/stm32/timer.c and irq.c (v1.24.0..v1.28.0).
#
#   Timer(n)      n 1..14 (the STM32F405's); one object per timer (MP_STATE_PORT
#                 pyb_timer_obj_all): Timer(2) again is the same timer. freq= derives prescaler
#                 and period as compute_prescaler_period_from_freq() does, from an 84 MHz source
#                 (TIM2..7, 12..14; 168 MHz for TIM1, 8..11: timer_get_source_freq() with the
#                 pyboard's APB dividers 4 and 2); TIM2 and TIM5 count 32 bits, the others 16.
#                 freq(f) and period(p) write the prescaler and auto-reload PRELOAD registers
#                 (ARPE is set): they take effect at the next update event, and a channel's
#                 compare value is left as it was (its duty changes with the period).
#   channel(k, Timer.PWM, pin=p, pulse_width=w | pulse_width_percent=x): p must have an
#                 alternate function of THIS timer ("Pin(B6) doesn't have an alt for Timer(2)"),
#                 of any channel (pin_find_af): the fake records whether the channel's output
#                 really is on that pin (drives_pin). The compare register is PRELOADED once
#                 configured: pulse_width(w) lands at the next update event.
#   callback(f)   runs at each update event: a hard IRQ (GC locked; an exception is printed and
#                 the callback disabled); from v1.27.0 Timer(..., hard=False) schedules it.
#   disable_irq() an update event while IRQs are off is HELD (the NVIC pending bit: at most one
#                 per timer, two updates make one callback) and its callback runs at enable_irq().
#
# Test hooks: Timer.advance(n) runs n timer periods (at each update event the preloaded
# registers load, a PWM channel whose compare is non-zero starts a pulse, counted in `pulses` if
# its output was low (`widths`: the compare values pulses had), then the update IRQ);
# on_call(fn): fn(name) runs before each port call ("disable_irq", "enable_irq", "pulse_width",
# "pulse_width_percent", "freq", "period"), so a test can make an update arrive at any point of
# the code under test; TimerChannel.history: (period + 1, compare) at each compare write
# (vmachine.record); Timer.uncaught: the exception a hard callback raised. Written in the subset
# of Python MicroPython has.

import machine
import vmachine
import vport

Pin = machine.Pin
RTC = machine.RTC  # ports/stm32/modpyb.c and modmachine.c: both are pyb_rtc_type

irq_enabled = True
irq_disables = 0
_tap = None
_timers = [None] * 14


def on_call(fn):
    """Test hook: fn(name) runs before each port call of the code under test (None: off)."""
    global _tap
    _tap = fn


def _call(name):
    global _tap
    tap = _tap
    if tap is not None:
        _tap = None  # not re-entered by what the tap does
        try:
            tap(name)
        finally:
            _tap = tap


def reset_fakes():
    global irq_enabled, irq_disables, _tap
    for i in range(14):
        _timers[i] = None
    irq_enabled = True
    irq_disables = 0
    _tap = None
    _flush()  # main.c soft_reset_exit: storage_flush()


def disable_irq():
    global irq_enabled, irq_disables
    _call("disable_irq")
    was = irq_enabled
    irq_enabled = False
    irq_disables += 1
    return was


def enable_irq(state=True):
    global irq_enabled
    _call("enable_irq")
    irq_enabled = bool(state)
    if irq_enabled:
        for t in _timers:  # the held updates run now
            if t is not None and t.pending:
                t.pending = False
                t._irq()


def _percent(period, value):
    # compute_pwm_value_from_percent(): clamped to 0..100; an int exactly, a float truncated
    if value <= 0:
        return 0
    if value >= 100:
        return period
    if isinstance(value, float):
        return int(value / 100 * period)
    return value * period // 100


def _source_hz(tim_id):
    return 168_000_000 if tim_id == 1 or 8 <= tim_id <= 11 else 84_000_000


class TimerChannel:
    def __init__(self, timer, number, mode, pin):
        self.timer = timer
        self.number = number
        self.mode = mode
        self.pin = pin
        self.drives_pin = False
        self.preload = 0  # the compare value written (CCRx as read back)
        self.compare = 0  # the compare value in effect (loaded at update events)
        self.high = False  # the output at the end of the last period
        self.pulses = 0  # pulses started (rising edges on the output)
        self.widths = []  # the compare values pulses had, each once (vmachine.record)
        self.history = []  # (period + 1, compare) at each compare write (vmachine.record)

    def _write(self, value):
        self.preload = value & self.timer._mask
        if vmachine.record:
            self.history.append((self.timer._arr + 1, self.preload))

    def pulse_width(self, value=None):
        if value is None:
            return self.preload
        _call("pulse_width")
        self._write(value)  # mp_obj_get_int(): a float raises TypeError
        return None

    compare = pulse_width
    capture = pulse_width

    def pulse_width_percent(self, value=None):
        period = self.timer._arr + 1  # compute_period(), edge-aligned
        if value is None:  # compute_percent_from_pwm_value(): a float
            return self.preload * 100 / period if self.preload < period else 100.0
        _call("pulse_width_percent")
        self._write(_percent(period, value))
        return None

    def callback(self, fun):
        raise NotImplementedError("the virtual pyb does not model channel callbacks")


class Timer:
    PWM = 0  # channel_mode_info[] order in ports/stm32/timer.c
    PWM_INVERTED = 1
    OC_TIMING = 2
    OC_ACTIVE = 3
    OC_INACTIVE = 4
    OC_TOGGLE = 5
    OC_FORCED_ACTIVE = 6
    OC_FORCED_INACTIVE = 7
    IC = 8
    ENC_A = 9
    ENC_B = 10
    ENC_AB = 11
    UP = 0
    DOWN = 0x10
    CENTER = 0x20
    HIGH = 0
    LOW = 2

    def __new__(cls, id, *args, **kw):
        if not isinstance(id, int):
            raise TypeError("can't convert %s to int" % type(id).__name__)
        if not 1 <= id <= 14:
            raise ValueError("Timer(%d) doesn't exist" % id)
        t = _timers[id - 1]
        if t is None:
            t = object.__new__(cls)
            t._new(id)
            _timers[id - 1] = t
        return t

    def __init__(self, id, *args, **kw):
        if args or kw:
            self.init(*args, **kw)

    def _new(self, id):
        self.id = id
        self._mask = 0xFFFFFFFF if id in (2, 5) else 0xFFFF
        self._psc = self._arr = 0  # registers as written
        self._psc_now = self._arr_now = 0  # in effect (loaded at update events)
        self._callback = None
        self.hard = True
        self.running = False
        self.pending = False
        self.channels = {}
        self._chans = []
        self.updates = 0
        self.uncaught = None  # the exception a hard callback raised

    def init(self, *, freq=None, prescaler=-1, period=-1, tick_hz=1000, mode=UP, div=1, callback=None,
             deadtime=0, brk=0, **kw):
        hard = True
        if "hard" in kw and vport.at_least(1, 27):  # the keyword appears in v1.27.0
            hard = bool(kw.pop("hard"))
        if kw:
            raise TypeError("extra keyword arguments given")
        if freq is not None:
            self._from_freq(freq)
        elif prescaler != -1 and period != -1:
            self._psc = prescaler & 0xFFFF
            self._arr = period & self._mask
        elif period != -1:
            self._from_t(period, tick_hz)
        else:
            raise TypeError("must specify either freq, period, or prescaler and period")
        if mode not in (Timer.UP, Timer.DOWN, Timer.CENTER):
            raise ValueError("invalid mode (%d)" % mode)
        self._psc_now, self._arr_now = self._psc, self._arr  # HAL_TIM_Base_Init: an update (UG)
        for ch in self._chans:
            ch.compare = ch.preload
        self.hard = hard
        self.running = True
        if callback is not None:
            self.callback(callback)

    def _from_freq(self, freq):
        # compute_prescaler_period_from_freq(), into the registers (no tuple: freq() is called from
        # poll paths measured for allocation)
        prescaler = 1
        if isinstance(freq, float):
            if freq <= 0:
                raise ValueError("must have positive freq")
            while freq < 1 and prescaler < 6553:
                prescaler *= 10
                freq *= 10
            period = int(_source_hz(self.id) / freq)
        else:
            if freq <= 0:
                raise ValueError("must have positive freq")
            period = _source_hz(self.id) // freq
        if period < 1:
            period = 1
        while period > self._mask:
            if period % 5 == 0:
                prescaler *= 5
                period //= 5
            elif period % 3 == 0:
                prescaler *= 3
                period //= 3
            else:
                prescaler <<= 1
                period >>= 1
        self._psc = (prescaler - 1) & 0xFFFF
        self._arr = (period - 1) & self._mask

    def _from_t(self, t_num, t_den):
        # compute_prescaler_period_from_t()
        if t_num <= 0 or t_den <= 0:
            raise ValueError("must have positive freq")
        period = _source_hz(self.id) * t_num // t_den
        prescaler = 1
        while period > self._mask:
            if prescaler <= 13107 and period % 5 == 0:
                prescaler *= 5
                period //= 5
            elif prescaler <= 21845 and period % 3 == 0:
                prescaler *= 3
                period //= 3
            else:
                lsb = period & 1
                prescaler <<= 1
                period >>= 1
                if period < prescaler:
                    prescaler |= lsb
                if prescaler > 0x10000:
                    raise ValueError("period too large")
        self._psc = (prescaler - 1) & 0xFFFF
        self._arr = (period - 1) & self._mask

    def freq(self, value=None):
        if value is None:
            src = _source_hz(self.id)
            a = self._psc + 1
            b = self._arr + 1
            if src % a or (src // a) % b:  # MICROPY_PY_BUILTINS_FLOAT: a float unless exact
                return src / a / b
            return src // a // b
        _call("freq")
        self._from_freq(value)
        return None

    def period(self, value=None):
        if value is None:
            return self._arr
        _call("period")
        self._arr = value & self._mask
        return None

    def prescaler(self, value=None):
        if value is None:
            return self._psc
        self._psc = value & 0xFFFF
        return None

    def source_freq(self):
        return _source_hz(self.id)

    def channel(self, number, mode=None, *, callback=None, pin=None, pulse_width=0, pulse_width_percent=None,
                compare=0, polarity=-1):
        if not 1 <= number <= 4:
            raise ValueError("invalid channel (%d)" % number)
        if mode is None:
            if pin is not None or pulse_width or pulse_width_percent is not None or compare or callback is not None:
                raise TypeError("'mode' argument required")
            return self.channels.get(number)
        if callback is not None:
            raise NotImplementedError("the virtual pyb does not model channel callbacks")
        if mode not in (Timer.PWM, Timer.PWM_INVERTED, Timer.OC_TIMING, Timer.OC_ACTIVE, Timer.OC_INACTIVE,
                        Timer.OC_TOGGLE, Timer.OC_FORCED_ACTIVE, Timer.OC_FORCED_INACTIVE):
            raise NotImplementedError("the virtual pyb models PWM and OC channels only")
        ch = TimerChannel(self, number, mode, pin)
        if pin is not None:
            if not isinstance(pin, Pin):
                raise ValueError("pin argument needs to be %sa Pin type" % ("be " if not vport.at_least(1, 25) else ""))
            afs = [a for a in pin.timer_afs() if a[1] == self.id]  # pin_find_af(pin, AF_FN_TIM, id)
            if not afs:
                raise ValueError("Pin(%s) doesn't have an alt for Timer(%d)" % (pin.name(), self.id))
            pin.init(Pin.ALT, alt=afs[0][0])
            ch.drives_pin = [a for a in afs if a[2] in ("CH%d" % number, "CH%dN" % number)] != []
        if mode in (Timer.PWM, Timer.PWM_INVERTED):
            if pulse_width_percent is not None:
                value = _percent(self._arr + 1, pulse_width_percent)
            else:
                value = pulse_width
        else:
            value = compare
        # HAL_TIM_PWM_ConfigChannel writes the compare before enabling its preload: in effect now
        ch.preload = ch.compare = value & self._mask
        self.channels[number] = ch
        self._chans = list(self.channels.values())
        return ch

    def callback(self, fun):
        if fun is None:
            self._callback = None
        elif callable(fun):
            self._callback = fun
            self.pending = False  # __HAL_TIM_CLEAR_FLAG(UPDATE) before enabling the IRQ
            self.running = True
        else:
            raise ValueError("callback must be None or a callable object")

    def deinit(self):
        self._callback = None
        self.pending = False
        self.channels = {}
        self._chans = []
        self.running = False

    def _irq(self):
        cb = self._callback
        if cb is None:
            return
        if self.hard:
            err = machine.hard_call(cb, self, self)
            if err is not None:
                self.uncaught = err
                self._callback = None  # timer_handle_irq_channel(): disabled after an exception
        else:
            machine._schedule(cb, self)  # mp_irq_dispatch(): mp_sched_schedule

    # -- test hook -----------------------------------------------------------------------------

    def __repr__(self):
        return "Timer(%d)" % self.id

    def advance(self, n=1):
        """Run n periods: at each update event the preloaded registers load, PWM pulses start, then
        the update IRQ runs (or is held while IRQs are disabled)."""
        if not self.running:
            return
        for _ in range(n):
            self.updates += 1
            self._psc_now = self._psc
            self._arr_now = self._arr
            for ch in self._chans:  # (a list: dict.values() would allocate a view per update)
                ch.compare = ch.preload
                if ch.mode == Timer.PWM:
                    # PWM mode 1: high while the counter is below the compare
                    if ch.compare > 0 and not ch.high:
                        ch.pulses += 1
                        if vmachine.record and ch.compare not in ch.widths:
                            ch.widths.append(ch.compare)
                    ch.high = ch.compare > self._arr_now
            if self._callback is not None:
                if irq_enabled:
                    self._irq()
                else:
                    self.pending = True


# -- Flash: ports/stm32/storage.c and flashbdev.c (v1.24.0..v1.28.0 alike), a PYBV11 -------------
#
# The internal flash storage: stm32f405.ld FLASH_FS, 112 KB at 0x08004000, flash sectors 1-3 of
# 16 KB and 4 of 64 KB, in blocks of FLASH_BLOCK_SIZE (512). Flash() is the whole device (FAT
# behind an emulated MBR: blocks from FLASH_PART1_START_BLOCK 0x100); Flash(start=, len=) kw-only,
# multiples of 512 within the 112 KB, else ValueError with no message (pyb_flash_new_obj). Its
# extended protocol (MICROPY_VFS_LFS2 = 1 in PYBV11/mpconfigboard.mk):
#   readblocks/writeblocks(n, buf, offset) return 0, or -EFAULT (-14) if block n is past len (no
#   exception); they do not check offset + len(buf): past the object the fake raises AssertionError.
#   writeblocks COPIES into a RAM cache of one flash sector (bits go either way), marked dirty; the
#   cache is written back (the sector erased, then programmed) at ioctl 2/3, when a block of another
#   sector is written, 5 s after the last write (the storage systick: hook flash_idle()), and at a
#   soft reset (reset_fakes). Until then the flash keeps the old bytes; reads see the cache.
#   ioctl 4: len / 512; 5: 512; 6: returns 0 and erases NOTHING (no MICROPY_HW_BDEV_ERASEBLOCKS_EXT
#   for internal flash); 1 with arg 1: the "native" block size, also 512 here.
# The bytes live in vflash's chip "stm32". Test hooks: flash_chip(), flash_idle(), flash_dirty(),
# flash_power_cut(erased=True): the cache is lost; erased: the dirty sector was already erased (the
# IRQ handler erases it at the first storage tick, within 512 ms of the write, and programs it only
# at the write-back), format_littlefs(nbytes): a littlefs superblock at block 0 (pyb.Flash(start=0)).

FS_BYTES = 112 * 1024
_FBLOCK = 512
_SECTORS = ((0, 16384), (16384, 16384), (32768, 16384), (49152, 65536))  # within FS_BYTES
_cache = None  # [sector start, bytearray] of the cached sector, or None
_dirty = False


def flash_chip():
    import vflash

    return vflash.chip("stm32", FS_BYTES, _FBLOCK)


def format_littlefs(nbytes):
    import vflash

    flash_chip().program(0, vflash.littlefs_superblock(_FBLOCK, nbytes // _FBLOCK), False)


def _sector(addr):
    for s in _SECTORS:
        if s[0] <= addr < s[0] + s[1]:
            return s
    raise AssertionError("pyb.Flash: address %d past the storage" % addr)


def _flush():
    global _dirty
    if _dirty:
        start, buf = _cache
        chip = flash_chip()
        chip.erase(start, len(buf))
        chip.program(start, buf, False)
        _dirty = False


def flash_idle():
    """The storage systick 5 s after the last write: the cache is written back."""
    _flush()


def flash_dirty():
    return _dirty


def flash_power_cut(erased=True):
    global _cache, _dirty
    if _dirty and erased:
        flash_chip().erase(_cache[0], len(_cache[1]))
    _cache = None
    _dirty = False


def _cached(addr):
    # flash_cache_get_addr_for_write: the sector that holds addr, in the cache (flushing another)
    global _cache
    s = _sector(addr)
    if _cache is None or _cache[0] != s[0]:
        _flush()
        buf = bytearray(s[1])
        flash_chip().read(s[0], buf)
        _cache = [s[0], buf]
    return _cache[1], addr - s[0]


class Flash:
    def __init__(self, *args, **kw):
        if args:
            raise TypeError("extra positional arguments given")
        for k in kw:
            if k not in ("start", "len"):
                raise TypeError("extra keyword arguments given")
        start = kw.get("start", -1)
        length = kw.get("len", -1)
        self.whole = start == -1 and length == -1
        if start == -1:
            start = 0
        elif not (0 <= start < FS_BYTES and start % _FBLOCK == 0):
            raise ValueError()
        if length == -1:
            length = FS_BYTES - start
        elif not (0 < length and start + length <= FS_BYTES and length % _FBLOCK == 0):
            raise ValueError()
        self.start = start
        self.len = length

    def _span(self, n, offset, nbytes):
        if self.whole:
            raise AssertionError("pyb.Flash(): the whole device (FAT, with its MBR) is not modelled")
        if n * _FBLOCK >= self.len:
            return -1
        at = n * _FBLOCK + offset
        if offset < 0 or at + nbytes > self.len:
            raise AssertionError("pyb.Flash: bytes %d..%d of a %d-byte Flash: the port does not check, and "
                                 "reaches another region's flash" % (at, at + nbytes, self.len))
        return self.start + at

    def readblocks(self, n, buf, offset=0):
        at = self._span(n, offset, len(buf))
        if at < 0:
            return -14  # -MP_EFAULT
        for i in range(len(buf)):
            a = at + i
            if _cache is not None and _cache[0] <= a < _cache[0] + len(_cache[1]):
                buf[i] = _cache[1][a - _cache[0]]
            else:
                flash_chip().read(a, memoryview(buf)[i:i + 1])
        return 0

    def writeblocks(self, n, buf, offset=None):
        global _dirty
        if offset is None:
            raise AssertionError("pyb.Flash(start=, len=).writeblocks without offset is not modelled")
        at = self._span(n, offset, len(buf))
        if at < 0:
            return -14
        for i in range(len(buf)):
            cache, j = _cached(at + i)
            cache[j] = buf[i]
            _dirty = True
        return 0

    def ioctl(self, op, arg):
        if op == 1:
            return -1 if (arg == 1 and self.whole) else 0
        if op in (2, 3):
            _flush()
            return 0
        if op == 4:
            return (0x100 + FS_BYTES // _FBLOCK) if self.whole else self.len // _FBLOCK
        if op == 5:
            return _FBLOCK
        if op == 6:
            return 0  # no erase on the internal flash
        return None
