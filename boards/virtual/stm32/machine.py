# MicroPython's `machine` as the stm32 port has it on a pyboard v1.1 (PYBV11), for the virtual board
# (boards/virtual/README.md). The shared parts are in boards/virtual/vmachine.py; what the stm32
# port does differently is here, each behaviour with the source it comes from (v1.24.0..v1.28.0).
#
#   Pin     names only, as ports/stm32/pin.c pin_find() resolves them: a Pin, Pin.mapper(),
#           Pin.dict(), a board name (PYBV11/pins.csv) or a cpu name ("A0"); an unknown name
#           raises ValueError "Pin(Z9) doesn't exist", anything not a str TypeError. One object
#           per pin (its id: the pin's first board name), as the port's pins are constants.
#           af_list(): its timer alternate functions (the only ones modelled).
#   ADC     ADC(pin) only on a pin with an ADC channel (ports/stm32/machine_adc.c); ADC(int) is a
#           raw channel.
#   PWM     only from v1.28.0 (MICROPY_PY_MACHINE_PWM in ports/stm32/mpconfigport.h): before,
#           `machine.PWM` raises AttributeError.
#   Timer   extmod/machine_timer.c: the soft timer (id -1 only), a whole-ms period, callbacks
#           scheduled (hard=True only from v1.28.0, where the keyword appears).
#   RTC     ports/stm32/rtc.c: 2015-01-01 after the backup domain lost power; the weekday stored
#           as set (1..7), the subseconds the raw 255..0 count; kept across resets.
#
# Test hooks (besides vmachine's): the scheduler as boards/virtual/esp32/machine.py has it:
# hold_scheduler(True) keeps scheduled callbacks queued (the main program is busy),
# hold_scheduler(False) or run_scheduled() runs them, scheduled_lost counts the ones a full
# queue dropped; hard_call(fn, arg, what) (a hard IRQ: GC locked, an exception printed and
# returned).

import sys

import vmachine as _vm
import vport as _vp
from vmachine import *  # noqa: F401,F403
from vmachine import idle, set_record  # noqa: F401

import micropython as _micropython

PORT = "stm32"

# ports/stm32/boards/PYBV11/pins.csv (identical v1.24.0..v1.28.0): board name, cpu pin. X13..X16,
# X23, X24 are reset and power pins, commented out there.
_BOARD_PINS = (
    ("X1", "A0"), ("X2", "A1"), ("X3", "A2"), ("X4", "A3"), ("X5", "A4"), ("X6", "A5"), ("X7", "A6"),
    ("X8", "A7"), ("X9", "B6"), ("X10", "B7"), ("X11", "C4"), ("X12", "C5"), ("X17", "B3"),
    ("X18", "C13"), ("X19", "C0"), ("X20", "C1"), ("X21", "C2"), ("X22", "C3"), ("Y1", "C6"),
    ("Y2", "C7"), ("Y3", "B8"), ("Y4", "B9"), ("Y5", "B12"), ("Y6", "B13"), ("Y7", "B14"),
    ("Y8", "B15"), ("Y9", "B10"), ("Y10", "B11"), ("Y11", "B0"), ("Y12", "B1"), ("SW", "B3"),
    ("LED_RED", "A13"), ("LED_GREEN", "A14"), ("LED_YELLOW", "A15"), ("LED_BLUE", "B4"),
    ("MMA_INT", "B2"), ("MMA_AVDD", "B5"), ("SD_D0", "C8"), ("SD_D1", "C9"), ("SD_D2", "C10"),
    ("SD_D3", "C11"), ("SD_CMD", "D2"), ("SD_CK", "C12"), ("SD", "A8"), ("SD_SW", "A8"),
    ("USB_VBUS", "A9"), ("USB_ID", "A10"), ("USB_DM", "A11"), ("USB_DP", "A12"),
)
# Those cpu pins as ports/stm32/boards/make-pins.py reads ports/stm32/boards/stm32f405_af.csv (the
# PYBV11 AF_FILE; identical v1.24.0..v1.28.0): the ADC channel (every pin listed has ADC1; -1: none)
# and the timer alternate functions, (AF index, timer, function), in the csv's order.
_CPU_PINS = {
    "A0": (0, ((1, 2, "CH1"), (1, 2, "ETR"), (2, 5, "CH1"), (3, 8, "ETR"))),
    "A1": (1, ((1, 2, "CH2"), (2, 5, "CH2"))),
    "A2": (2, ((1, 2, "CH3"), (2, 5, "CH3"), (3, 9, "CH1"))),
    "A3": (3, ((1, 2, "CH4"), (2, 5, "CH4"), (3, 9, "CH2"))),
    "A4": (4, ()),
    "A5": (5, ((1, 2, "CH1"), (1, 2, "ETR"), (3, 8, "CH1N"))),
    "A6": (6, ((1, 1, "BKIN"), (2, 3, "CH1"), (3, 8, "BKIN"), (9, 13, "CH1"))),
    "A7": (7, ((1, 1, "CH1N"), (2, 3, "CH2"), (3, 8, "CH1N"), (9, 14, "CH1"))),
    "B6": (-1, ((2, 4, "CH1"),)),
    "B7": (-1, ((2, 4, "CH2"),)),
    "C4": (14, ()),
    "C5": (15, ()),
    "B3": (-1, ((1, 2, "CH2"),)),
    "C13": (-1, ()),
    "C0": (10, ()),
    "C1": (11, ()),
    "C2": (12, ()),
    "C3": (13, ()),
    "C6": (-1, ((2, 3, "CH1"), (3, 8, "CH1"))),
    "C7": (-1, ((2, 3, "CH2"), (3, 8, "CH2"))),
    "B8": (-1, ((2, 4, "CH3"), (3, 10, "CH1"))),
    "B9": (-1, ((2, 4, "CH4"), (3, 11, "CH1"))),
    "B12": (-1, ((1, 1, "BKIN"),)),
    "B13": (-1, ((1, 1, "CH1N"),)),
    "B14": (-1, ((1, 1, "CH2N"), (3, 8, "CH2N"), (9, 12, "CH1"))),
    "B15": (-1, ((1, 1, "CH3N"), (3, 8, "CH3N"), (9, 12, "CH2"))),
    "B10": (-1, ((1, 2, "CH3"),)),
    "B11": (-1, ((1, 2, "CH4"),)),
    "B0": (8, ((1, 1, "CH2N"), (2, 3, "CH3"), (3, 8, "CH2N"))),
    "B1": (9, ((1, 1, "CH3N"), (2, 3, "CH4"), (3, 8, "CH3N"))),
    "A13": (-1, ()),
    "A14": (-1, ()),
    "A15": (-1, ((1, 2, "CH1"), (1, 2, "ETR"))),
    "B4": (-1, ((2, 3, "CH1"),)),
    "B2": (-1, ()),
    "B5": (-1, ((2, 3, "CH2"),)),
    "C8": (-1, ((2, 3, "CH3"), (3, 8, "CH3"))),
    "C9": (-1, ((2, 3, "CH4"), (3, 8, "CH4"))),
    "C10": (-1, ()),
    "C11": (-1, ()),
    "D2": (-1, ((2, 3, "ETR"),)),
    "C12": (-1, ()),
    "A8": (-1, ((1, 1, "CH1"),)),
    "A9": (-1, ((1, 1, "CH2"),)),
    "A10": (-1, ((1, 1, "CH3"),)),
    "A11": (-1, ((1, 1, "CH4"),)),
    "A12": (-1, ((1, 1, "ETR"),)),
}
_CPU_OF = {}  # board name -> cpu pin
_FIRST = {}  # cpu pin -> its first board name (the fake's id for the pin)
for _b, _c in _BOARD_PINS:
    _CPU_OF[_b] = _c
    if _c not in _FIRST:
        _FIRST[_c] = _b

_NOT_GIVEN = object()
_mapper = None  # Pin.mapper(fun)
_map_dict = None  # Pin.dict(d)


def _find(id):
    """The pin's id for `id`, as pin_find() in ports/stm32/pin.c resolves it, errors included."""
    if isinstance(id, _vm.Pin):
        return id.id
    if _mapper is not None:
        o = _mapper(id)
        if o is not None:
            if not isinstance(o, _vm.Pin):
                raise ValueError("Pin.mapper didn't return a Pin object")
            return o.id
    if _map_dict is not None and id in _map_dict:
        o = _map_dict[id]
        if not isinstance(o, _vm.Pin):  # the port would use it as a pin object regardless
            raise ValueError("Pin.dict()[%r] is not a Pin" % (id,))
        return o.id
    if isinstance(id, str):
        if id in _CPU_OF:
            return _FIRST[_CPU_OF[id]]
        if id in _FIRST:
            return _FIRST[id]
        raise ValueError("Pin(%s) doesn't exist" % id)
    # mp_obj_str_get_str() on the error path (py/objstr.c bad_implicit_conversion)
    raise TypeError("can't convert '%s' object to str implicitly" % type(id).__name__)


# -- mp_sched_schedule (py/scheduler.c), as boards/virtual/esp32/machine.py models it -------------
SCHED_DEPTH = 8  # MICROPY_SCHEDULER_DEPTH, ports/stm32/mpconfigport.h
scheduled = []  # (fn, arg) queued
scheduled_lost = 0
_held = False
_running = False  # the scheduler is locked while it runs a callback (MP_SCHED_LOCKED)


def _schedule(fn, arg):
    """False, and nothing queued, when the queue is full (softtimer.c ignores it: the tick is lost)."""
    global scheduled_lost
    if len(scheduled) >= SCHED_DEPTH:
        scheduled_lost += 1
        return False
    scheduled.append((fn, arg))
    if not _held:
        run_scheduled()
    return True


def run_scheduled():
    """The VM runs what is pending (between two bytecodes of the main program)."""
    global _running
    if _running:
        return
    _running = True
    try:
        while scheduled:
            fn, arg = scheduled.pop(0)
            fn(arg)
    finally:
        _running = False


def hold_scheduler(on=True):
    """Test hook: True keeps scheduled callbacks queued (the main program is busy); False runs them."""
    global _held
    _held = bool(on)
    if not _held:
        run_scheduled()


def hard_call(fn, arg, what):
    """A hard IRQ calling fn(arg) (shared/runtime/mpirq.c, ports/stm32/timer.c): the GC is locked
    (on MicroPython an allocation raises MemoryError; only while vmachine.record is off, as the
    fakes' own history lists grow); an exception is printed, not raised. Returns the exception,
    or None."""
    lock = None if _vm.record else getattr(_micropython, "heap_lock", None)
    if lock is not None:
        lock()
    try:
        fn(arg)
        err = None
    except Exception as e:  # noqa: BLE001 - the port catches everything
        err = e
    finally:
        if lock is not None:
            _micropython.heap_unlock()
    if err is not None:
        print("uncaught exception in %r interrupt handler" % (what,))
        print(repr(err))
    return err


def reset_fakes():
    """Forget every Pin, pyb.Timer and scheduled callback (Pin.dict/mapper stay, as on a board
    until soft reset)."""
    global scheduled_lost, _held, _running
    _vm.reset_fakes()
    del scheduled[:]
    scheduled_lost = 0
    _held = _running = False
    pyb = sys.modules.get("pyb")
    if pyb is not None:
        pyb.reset_fakes()


class PinAF:
    """ports/stm32/pin.c pin_af_type: name() is AF<index>_<fn><unit> (stm32f4xx_prefix.c AF())."""

    def __init__(self, idx, timer):
        self._idx = idx
        self._name = "AF%d_TIM%d" % (idx, timer)

    def index(self):
        return self._idx

    def name(self):
        return self._name

    def __repr__(self):
        return "Pin.%s" % self._name


class Pin(_vm.Pin):
    # ports/stm32/pin.c's constants; legacy pyb names too (the pyboard enables
    # MICROPY_PY_MACHINE_PIN_LEGACY). The values are the fake's own, as in vmachine.
    ALT_OPEN_DRAIN = 4
    ANALOG = 5
    OUT_PP = _vm.Pin.OUT
    OUT_OD = _vm.Pin.OPEN_DRAIN
    AF_PP = _vm.Pin.ALT
    AF_OD = 4
    PULL_NONE = 0

    def __new__(cls, id, *args, **kw):
        name = _find(id)
        p = _vm.Pin._pins.get(name)
        if p is None:
            p = object.__new__(cls)
        return p

    def __init__(self, id, mode=-1, pull=-1, af=-1, *, value=None, alt=-1):
        if getattr(self, "_made", False):  # the pin's constant object: Pin(x, ...) re-inits it
            self.init(mode, pull, af, value=value, alt=alt)
            return
        # vmachine.Pin's state, set here: vmachine.Pin.__init__ checks ids of numbered GPIOs
        self._made = True
        self.id = _find(id)
        self.mode = Pin.IN
        self.pull = None
        self.alt = -1
        self._out = 0
        self.level = None
        self.history = []
        self.handler = None
        self.trigger = 0
        self.hard = False
        _vm.Pin._pins[self.id] = self
        self.init(mode, pull, af, value=value, alt=alt)

    @classmethod
    def get(cls, id):
        return cls._pins[_find(id)]

    def init(self, mode=-1, pull=-1, af=-1, *, value=None, alt=-1):
        # pin_obj_init_helper(): mode, pull and af checks with the port's messages
        if mode != -1:
            if mode not in (Pin.IN, Pin.OUT, Pin.OPEN_DRAIN, Pin.ALT, Pin.ALT_OPEN_DRAIN, Pin.ANALOG):
                raise ValueError("invalid pin mode: %d" % mode)
            a = alt if alt != -1 else af
            if mode in (Pin.ALT, Pin.ALT_OPEN_DRAIN) and not 0 <= a <= 15:
                raise ValueError("invalid pin af: %d" % a)
            self.alt = a
        if pull != -1:
            if pull not in (None, Pin.PULL_NONE, Pin.PULL_UP, Pin.PULL_DOWN):
                raise ValueError("invalid pin pull: %d" % pull)
            pull = None if pull == Pin.PULL_NONE else pull
        if mode != -1 or pull != -1 or value is not None:
            _vm.Pin.init(self, mode if mode not in (Pin.ALT_OPEN_DRAIN, Pin.ANALOG) else -1, pull, value=value)
            if mode in (Pin.ALT_OPEN_DRAIN, Pin.ANALOG):
                self.mode = mode

    # -- legacy pyb methods (ports/stm32/pin.c) ---------------------------------------------------

    def name(self):
        return _CPU_OF[self.id]

    def names(self):
        cpu = _CPU_OF[self.id]
        return [cpu] + [b for b, c in _BOARD_PINS if c == cpu]

    def af_list(self):
        return [PinAF(i, t) for i, t, _ in _CPU_PINS[_CPU_OF[self.id]][1]]

    @classmethod
    def mapper(cls, fun=_NOT_GIVEN):
        global _mapper
        if fun is _NOT_GIVEN:
            return _mapper
        _mapper = fun  # None too: pin_mapper() sets whatever it is given
        return None

    @classmethod
    def dict(cls, d=_NOT_GIVEN):
        global _map_dict
        if d is _NOT_GIVEN:
            return _map_dict
        _map_dict = d
        return None

    # -- fake only ---------------------------------------------------------------------------------

    def timer_afs(self):
        """(AF index, timer, function) of the pin's timer alternate functions, in the csv's order."""
        return _CPU_PINS[_CPU_OF[self.id]][1]

    def adc_channel(self):
        return _CPU_PINS[_CPU_OF[self.id]][0]


class ADC(_vm.ADC):
    def __init__(self, source):
        # ports/stm32/machine_adc.c mp_machine_adc_make_new(): one positional argument; an int is a
        # channel of ADC1, unchecked; a pin must have an ADC channel.
        if isinstance(source, int) and not isinstance(source, bool):
            self.channel = source
        else:
            pin = source if isinstance(source, Pin) else Pin(source)
            if pin.adc_channel() < 0:
                raise ValueError("Pin(%s) does not have ADC capabilities" % pin.name())
            self.channel = pin.adc_channel()
        self.u16 = 0
        self.reads = 0


if _vp.at_least(1, 28):

    class PWM(_vm.PWM):
        # ports/stm32/machine_pwm.c (v1.28.0): the pin's first TIMx_CHy function drives it
        def __init__(self, dest, *, freq=None, duty_u16=None, duty_ns=None, invert=False):
            pin = dest if isinstance(dest, Pin) else Pin(dest)
            chans = [(t, f) for _, t, f in pin.timer_afs() if f in ("CH1", "CH2", "CH3", "CH4")]
            if not chans:
                raise ValueError("Pin(%s) doesn't have PWM capabilities" % pin.name())
            self.timer_id = chans[0][0]
            _vm.PWM.__init__(self, pin)
            if freq is not None:
                self.freq(freq)
            if duty_u16 is not None:
                self.duty_u16(duty_u16)

        def freq(self, value=None):
            # mp_machine_pwm_freq_set(): <= 0 too small; too large when the period rounds to <= 1
            if value is None:
                return self._freq
            if value <= 0:
                raise ValueError("freq too small")
            src = 168_000_000 if self.timer_id in (1, 8, 9, 10, 11) else 84_000_000
            if (src + value // 2) // value <= 1:
                raise ValueError("freq too large")
            self.active = True
            self._freq = value
            if _vm.record:
                self.history.append((self._freq, self._duty))
            return None

else:
    del PWM  # noqa: F821 - MICROPY_PY_MACHINE_PWM is not set before v1.28.0


class Timer(_vm.Timer):
    # extmod/machine_timer.c: the soft timer of shared/runtime/softtimer.c.
    def __init__(self, id=-1, **kw):
        if id != -1:
            raise ValueError("Timer doesn't exist")  # "only soft timer (-1) supported"
        self.id = -1
        self.active = False
        self.mode = Timer.PERIODIC
        self.period_ms = 1000  # make_new: delta_ms = 1000
        self.callback = None
        self.hard = False
        self.fired = 0
        if kw:
            self.init(**kw)

    def init(self, *, mode=_vm.Timer.PERIODIC, callback=_NOT_GIVEN, period=-1, tick_hz=1000, freq=None, **kw):
        if "hard" in kw and _vp.at_least(1, 28):  # the keyword appears in v1.28.0
            hard = bool(kw.pop("hard"))
        else:
            hard = False
        if kw:
            raise TypeError("extra keyword arguments given")  # py/argcheck.c mp_arg_parse_all()
        self.active = False  # soft_timer_remove()
        self.mode = mode  # not checked: anything but PERIODIC runs once
        delta = self.period_ms
        if freq is not None:
            # MICROPY_PY_BUILTINS_FLOAT: (uint32_t)(1000.0 / freq), truncated; ARM's conversion
            # saturates: freq 0 (inf) -> 2**32 - 1, a negative freq -> 0
            delta = 0xFFFFFFFF if freq == 0 else (0 if freq < 0 else int(1000 / freq))
        elif period != -1:
            delta = period * 1000 // tick_hz
        if delta < 1:
            delta = 1
        elif delta >= 0x40000000:
            raise ValueError("period too large")
        self.period_ms = delta
        if callback is not _NOT_GIVEN:
            self.callback = callback
        self.hard = hard
        if self.callback is not None:
            self.active = True  # soft_timer_insert()

    def deinit(self):
        self.active = False

    def __repr__(self):
        return "Timer(mode=%s, period=%d)" % ("PERIODIC" if self.mode == Timer.PERIODIC else "ONE_SHOT", self.period_ms)

    # -- test hook ---------------------------------------------------------------------------

    def fire(self):
        """period_ms elapsed: the callback is scheduled (it runs at once unless hold_scheduler()),
        or called at once if hard; a ONE_SHOT timer then stops."""
        if not self.active:
            return False
        if self.mode != Timer.PERIODIC:
            self.active = False
        self.fired += 1
        if self.hard:
            if hard_call(self.callback, self, self) is not None:
                self.mode = Timer.ONE_SHOT  # softtimer.c: disabled after an uncaught exception
        else:
            _schedule(self.callback, self)
        return True


class WDT(_vm.WDT):
    def _check(self, id, timeout):
        # ports/stm32/machine_wdt.c: the IWDG's prescaler takes up to 6 halvings while the ms are
        # >= 512, then 8 ticks a ms must fit its 12-bit reload (1..0xfff): 1..32767 ms
        if id != 0:
            raise ValueError("WDT(%d) doesn't exist" % id)
        t = timeout
        prescaler = 0
        while prescaler < 6 and t >= 512:
            prescaler += 1
            t //= 2
        t *= 8
        if t <= 0:
            raise ValueError("WDT timeout too short")
        if t > 0xFFF:
            raise ValueError("WDT timeout too long")


class RTC(_vm.RTC):
    # ports/stm32/rtc.c pyb_rtc_datetime (machine.RTC is pyb's RTC, modmachine.c), v1.24.0-v1.28.0:
    # the calendar registers as stored: the weekday is the one set (1..7 from Monday, never
    # computed; it advances at midnight), the subseconds the raw SSR counting down 255..0
    # (PYBV11: MICROPY_HW_RTC_USE_US 0, RTC_SYNCH_PREDIV 0xff); a set reads items 0-6 (not the
    # subseconds) and restarts the second (the prescaler reloads).
    DEFAULT = (2015, 1, 1)  # rtc.c RTC_CalendarConfig: 2015-01-01, RTC_WEEKDAY_THURSDAY, when the
    LOSES_ON_HARD_RESET = False  # backup domain lost power (no VBAT); resets keep it (rtc_init_start)

    def _wd_set(self, weekday):
        self._wd = 4 if weekday is None else weekday  # RTC_WEEKDAY_THURSDAY
        self._wd_day = self._s // 86400

    def _weekday(self, days):
        return (self._wd - 1 + days - self._wd_day) % 7 + 1

    def _subseconds(self):
        return 255 - self._us * 256 // 1_000_000

    def _set(self, dt):
        weekday = _vm._as_int(dt[3])
        if not 1 <= weekday <= 7:
            raise ValueError("RTC.datetime: weekday %d not in 1..7 (unchecked on the port)" % weekday)
        self._set_fields(dt, 0)
        self._wd_set(weekday)


# -- UART ----------------------------------------------------------------------------------------

import vuart  # noqa: E402

# ports/stm32/boards/PYBV11/mpconfigboard.h: the UARTs with TX and RX pins, and their names
_UART_NAMES = {"XB": 1, "YB": 3, "XA": 4, "YA": 6}


def _int(x):
    # mp_obj_get_int: an int (a bool is 0 or 1); anything else is a TypeError
    if isinstance(x, int):
        return int(x)
    raise TypeError("can't convert %s to int" % type(x).__name__)


_UARTS = {1: ("X9", "X10"), 2: ("X3", "X4"), 3: ("Y9", "Y10"), 4: ("X1", "X2"), 6: ("Y1", "Y2")}


class UART(vuart.UART):
    """ports/stm32/machine_uart.c and uart.c (v1.24.0-v1.28.0): UART(1, 2, 3, 4, 6) or by name
    ("XA", "XB", "YA", "YB"), one object per id, on its fixed pins (no tx/rx arguments: "extra
    keyword arguments given"); UART(id) alone initialises nothing; init's baudrate is required.
    timeout and timeout_char default 0, timeout_char raised to 13000 // baudrate + 2 ms. RX: the
    IRQ moves each byte into a ring of rxbuf bytes (read_buf_len, default 64; 0: none); ring full,
    the byte stays in the data register and the IRQ is masked; every byte after that is LOST
    (overrun). any() is the ring's count, or 1 for a byte in the data register alone. TX: no
    buffer: write waits for the data register (TXE) byte by byte, 2 x timeout_char each, and returns
    what went; the first not taken within `timeout`: None."""

    _objs = {}

    def __new__(cls, id, *args, **kw):
        if isinstance(id, str):
            uid = _UART_NAMES.get(id)
            if uid is None:
                raise ValueError("UART(%s) doesn't exist" % id)
        else:
            uid = _int(id)
            if uid not in _UARTS:
                raise ValueError("UART(%d) doesn't exist" % uid)
        self = cls._objs.get(uid)
        if self is None:
            self = object.__new__(cls)
            self.id = uid
            self.baudrate = 0  # not initialised
            self.rxbuf = 0
            self.timeout = self.timeout_char = 0
            self._fresh(1)
            cls._objs[uid] = self
        return self

    def __init__(self, id, *args, **kw):
        if args or kw:
            self.init(*args, **kw)

    def init(self, *args, **kw):
        names = ("baudrate", "bits", "parity", "stop")
        if len(args) > len(names):
            raise TypeError("extra positional arguments given")
        a = {"bits": 8, "parity": None, "stop": 1, "flow": 0, "timeout": 0, "timeout_char": 0, "rxbuf": -1,
             "read_buf_len": 64}
        for i, v in enumerate(args):
            a[names[i]] = v
        for k, v in kw.items():
            if k not in a and k != "baudrate" or k in names[:len(args)]:
                raise TypeError("extra keyword arguments given")
            a[k] = v
        if "baudrate" not in a:
            raise TypeError("'baudrate' argument required")
        baudrate = _int(a["baudrate"])
        if baudrate <= 0:
            raise ValueError("baudrate: %d (the port divides by it)" % baudrate)
        self.baudrate = baudrate
        self.timeout = _int(a["timeout"])
        self.timeout_char = max(_int(a["timeout_char"]), 13000 // baudrate + 2)
        n = _int(a["rxbuf"]) if _int(a["rxbuf"]) >= 0 else _int(a["read_buf_len"])
        self.rxbuf = n if n > 0 else 0
        self._fresh(self.rxbuf + 1)  # the ring, and the data register behind it
        self._dr_tx = False  # TX data register full (the other end holding CTS)

    def _check(self):
        if not self.baudrate:
            raise AssertionError("UART(%d) not initialised (UART(id) alone leaves it so)" % self.id)

    def _any(self):
        self._check()
        n = self._rx.n
        if self.rxbuf == 0 or n <= self.rxbuf:
            return n  # (no ring: the data register's 0 or 1)
        return self.rxbuf

    def _send_held(self, data):
        self._check()
        if self._dr_tx:  # uart_tx_wait(timeout): TXE stays clear
            if self.timeout > 0:
                raise AssertionError("UART.write: TX register full: the port waits timeout=%d ms" % self.timeout)
            return None
        self._dr_tx = True  # one byte into the data register, then TXE waits 2 x timeout_char
        self._pending = data[:1]
        self.waited_ms += 2 * self.timeout_char
        return 1

    def _release_tx(self):
        if self._dr_tx:
            self._tx.extend(self._pending)
            self._dr_tx = False
