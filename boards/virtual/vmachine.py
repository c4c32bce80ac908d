# The parts of MicroPython's `machine` that every port shares, for the virtual board: each port's
# own machine.py (boards/virtual/<port>/machine.py) builds on these and sets what its port does
# differently. On CPython (pytest) and on the unix port (whose own machine has no Pin, PWM, ADC or
# Timer), found first on sys.path (tests/boards/conftest.py; MICROPYPATH in tools/run_boards.sh and
# tools/demo.py), so `import machine` in hal/ gets the port's. Each class has test hooks, named
# without a leading underscore and documented.
#
#   set_record(False) stops Pin and PWM appending to their history (allocation tests: the list
#          growing would be counted against the code under test).
#   Pin:   drive(level) sets the level outside world puts on an input and fires the irq
#          handler on a matching edge (a hard one as the port runs it: see _hard);
#          bounce(levels) drives several; Pin.get(id) is the last Pin made for an id (a port
#          whose pins are singletons returns that one); history is every level written by
#          value()/on()/off().
#   PWM:   history is every (freq, duty_u16) the output took, in order.
#   ADC:   set_u16(v) (or .u16 = v) is what read_u16() returns; reads counts the calls.
#   Timer: fire() runs the callback as the hardware would (ONE_SHOT: once).
#   WDT:   the port's timeout limits enforced with its messages (each port's _check); feeds counts
#          feed() calls, timeout_ms is what it was started with, WDT.started every one started
#          (never stopped: the real one cannot be).
#   RTC:   one clock per board (RTC() is the port's singleton), running with the board's
#          time.ticks_ms (follow_ticks(False): only advance_ms moves it); the port's default date,
#          weekday and subseconds in each port's subclass. Hooks (classmethods): boot(kind) is what
#          a boot does to it ("power": back to the port's default date; "hard": machine.reset or a
#          watchdog, the port's choice; "soft": kept), advance_ms(ms) time going by, the board on
#          or off. reset_fakes() powers it on again, following the ticks.
#   idle(): counted in idles.
#   reset(): the board restarts: the process ends with status RESET_EXIT (tests/host/
#          serial_board.py boots the board again, running main.py, as a hard reset does).
#
# Written in the subset of Python MicroPython implements.

import sys

_PIN_NAMES = (["LED", "LED_RED", "LED_GREEN", "LED_YELLOW", "LED_BLUE"] + ["X%d" % i for i in range(1, 25)]
              + ["Y%d" % i for i in range(1, 13)])
_N_PINS = 48  # GPIO 0..47 (the ESP32-S3 has the most)

idles = 0
record = True
_UNSET = object()  # an argument not given
RESET_EXIT = 3  # the exit status of reset(): distinct from a soft reset's 0 and a traceback's 1

try:
    from micropython import heap_lock as _heap_lock
    from micropython import heap_unlock as _heap_unlock
except ImportError:  # CPython: no heap to lock
    def _heap_lock():
        pass

    def _heap_unlock():
        pass


def set_record(on):
    global record
    record = bool(on)


def idle():
    global idles
    idles += 1


_UNIQUE_ID_BYTES = {"rp2": 8, "esp32": 6, "stm32": 12}


def unique_id():
    """machine.unique_id(): the flash chip's 8-byte id (rp2 machine.c), the 6-byte Wi-Fi MAC (esp32),
    the MCU's 12-byte UID (stm32). VIRTUAL_UNIQUE_ID (hex) makes it another board's."""
    port = getattr(sys.modules.get("machine"), "PORT", "rp2")
    n = _UNIQUE_ID_BYTES.get(port, 8)
    given = ""
    try:
        import os

        given = os.getenv("VIRTUAL_UNIQUE_ID") or ""
    except (ImportError, AttributeError):
        pass
    if given:
        import binascii

        return binascii.unhexlify(given)[:n]
    return bytes(range(0xE6, 0xE6 + n))


def reset():
    # machine.reset() (extmod/modmachine.c): a hard reset. Its main.py runs at the next boot.
    sys.exit(RESET_EXIT)


def _hard(handler, parent):
    """A hard irq handler, as shared/runtime/mpirq.c mp_irq_dispatch calls it (v1.24-v1.28): the
    heap locked (gc_lock: an allocating handler fails here as on the board), an exception printed,
    not raised; -1 then. (A soft one is mp_sched_schedule'd: the fake calls it at once.)"""
    _heap_lock()
    return _hard_locked(handler, parent)  # its frame comes under the lock: from the C stack, as in an ISR


def _hard_locked(handler, parent):
    # (no `except ... as e`: its frame would not fit on the stack, an allocation attempt at each call)
    try:
        handler(parent)
    except Exception:
        _heap_unlock()
        _report()
        return -1
    _heap_unlock()
    return 0


def _report():
    print("Uncaught exception in IRQ callback handler")
    print(repr(sys.exc_info()[1]))


def reset_fakes():
    """Forget every Pin made (tests call it to start clean)."""
    Pin._pins.clear()
    WDT.started.clear()
    global idles, _rtc
    idles = 0
    _rtc = None
    RTC.follow = True


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    _pins = {}

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=0, alt=-1):
        if isinstance(id, Pin):
            id = id.id
        if isinstance(id, bool) or not (isinstance(id, int) and 0 <= id < _N_PINS or id in _PIN_NAMES):
            raise ValueError("invalid pin")
        self.id = id
        self.mode = Pin.IN
        self.pull = None
        self._out = 0  # the output latch
        self.level = None  # what the outside world drives (None: nothing, the pull decides)
        self.history = []
        self.handler = None
        self.trigger = 0
        self.hard = False
        self.init(mode, pull, value=value)
        Pin._pins[id] = self

    @classmethod
    def get(cls, id):
        return cls._pins[id]

    def init(self, mode=-1, pull=-1, *, value=None, drive=0, alt=-1):
        if mode != -1:
            if mode not in (Pin.IN, Pin.OUT, Pin.OPEN_DRAIN, Pin.ALT):
                raise ValueError("invalid pin mode: %r" % (mode,))
            self.mode = mode
        if pull != -1:
            if pull not in (None, Pin.PULL_UP, Pin.PULL_DOWN):
                raise ValueError("invalid pull: %r" % (pull,))
            self.pull = pull
        if value is not None:
            self.value(value)

    def value(self, x=None):
        # (not *args: a varargs tuple would allocate at every call, counted against the caller)
        if x is not None:
            self._out = 1 if x else 0
            if record:
                self.history.append(self._out)
            return None
        if self.mode == Pin.OUT:
            return self._out
        if self.mode == Pin.OPEN_DRAIN and not self._out:
            return 0  # driven low; released, it reads the line
        return self._input_level()

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def _input_level(self):
        if self.level is not None:
            return self.level
        if self.pull == Pin.PULL_UP:
            return 1
        return 0

    def irq(self, handler=_UNSET, trigger=_UNSET, hard=_UNSET):
        # (handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=False) as ports/rp2/machine_pin.c
        # and ports/stm32/pin.c take them; the esp32 has no `hard` (its machine.py). irq() with no
        # argument changes nothing; a handler of None disables the irq.
        if handler is _UNSET and trigger is _UNSET and hard is _UNSET:
            return self
        self.handler = None if handler is _UNSET else handler
        self.trigger = Pin.IRQ_FALLING | Pin.IRQ_RISING if trigger is _UNSET else trigger
        self.hard = hard is not _UNSET and bool(hard)
        return self

    # -- test hooks --------------------------------------------------------------------------

    def drive(self, level):
        """The outside world puts `level` on the pin; an irq fires on a matching edge."""
        before = self._input_level()
        self.level = 1 if level else 0
        if self.handler is None or before == self.level:
            return
        edge = Pin.IRQ_RISING if self.level else Pin.IRQ_FALLING
        if not self.trigger & edge:
            return
        if not self.hard:
            self.handler(self)
        elif _hard(self.handler, self) < 0:
            self.handler = None  # mp_irq_handler: a hard handler that raised is disabled

    def bounce(self, levels):
        for level in levels:
            self.drive(level)

    def release(self):
        """Nothing drives the pin any more (the pull decides)."""
        self.level = None

    def __repr__(self):
        return "Pin(%r)" % (self.id,)


pin_type = Pin  # the port's Pin class: a port's machine.py with its own sets it


def _as_pin(dest):
    return dest if isinstance(dest, Pin) else pin_type(dest)


class PWM:
    def __init__(self, dest, *, freq=None, duty_u16=None, duty_ns=None, invert=False):
        self.pin = _as_pin(dest)
        self._freq = 1000
        self._duty = 0
        self.history = []
        self.active = True
        if freq is not None:
            self.freq(freq)
        if duty_u16 is not None:
            self.duty_u16(duty_u16)

    def _check(self):
        if not self.active:
            raise ValueError("PWM not initialised")  # as a deinit'd slice: re-init first

    def freq(self, value=None):
        if value is None:
            return self._freq
        if isinstance(value, float) or not isinstance(value, int):
            raise TypeError("can't convert %s to int" % type(value).__name__)
        if value < 8:
            raise ValueError("freq too small")
        if value > 62_500_000:
            raise ValueError("freq too large")
        self.active = True
        self._freq = value
        if record:
            self.history.append((self._freq, self._duty))
        return None

    def duty_u16(self, value=None):
        if value is None:
            return self._duty
        if not isinstance(value, int) or not 0 <= value <= 65535:
            raise ValueError("duty_u16 must be from 0 to 65535")
        self.active = True
        self._duty = value
        if record:
            self.history.append((self._freq, self._duty))
        return None

    def deinit(self):
        self.active = False
        self._duty = 0
        self.history.append((self._freq, 0))


class ADC:
    CORE_TEMP = 4

    def __init__(self, pin, *, atten=None):
        if isinstance(pin, int) and not isinstance(pin, bool) and 0 <= pin <= 4:
            self.channel = pin  # rp2: ADC(0..3) is a channel, ADC(4) the temperature sensor
        else:
            p = _as_pin(pin)
            self.channel = p.id
        self.u16 = 0
        self.reads = 0

    def read_u16(self):
        self.reads += 1
        return self.u16

    # -- test hook ---------------------------------------------------------------------------

    def set_u16(self, value):
        if not 0 <= value <= 65535:
            raise ValueError("read_u16 is 0..65535")
        self.u16 = value


class Timer:
    # extmod/machine_timer.c's soft timer (a whole-ms period). `hard` defaults to False on every
    # port: extmod/machine_timer.c, ports/rp2/machine_timer.c, ports/esp32/machine_timer.c (v1.28.0).
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, *, mode=PERIODIC, period=-1, freq=-1, tick_hz=1000, callback=None, hard=False):
        self.id = id
        self.active = False
        self.mode = mode
        self.period_ms = -1
        self.callback = None
        self.fired = 0
        if callback is not None or period != -1 or freq != -1:
            self.init(mode=mode, period=period, freq=freq, tick_hz=tick_hz, callback=callback, hard=hard)

    def init(self, *, mode=PERIODIC, period=-1, freq=-1, tick_hz=1000, callback=None, hard=False):
        if mode not in (Timer.ONE_SHOT, Timer.PERIODIC):
            raise ValueError("invalid mode")
        if freq != -1:
            if freq <= 0:
                raise ValueError("invalid freq")
            self.period_ms = 1000 // freq
        elif period != -1:
            if period < 0:
                raise ValueError("period must be positive")
            self.period_ms = period * 1000 // tick_hz
        else:
            self.period_ms = 1000  # extmod/machine_timer.c: 1 s by default
        self.mode = mode
        self.callback = callback
        self.hard = hard
        self.active = True

    def deinit(self):
        self.active = False

    # -- test hook ---------------------------------------------------------------------------

    def fire(self):
        """The period elapsed: run the callback (a ONE_SHOT timer then stops)."""
        if not self.active:
            return False
        if self.mode == Timer.ONE_SHOT:
            self.active = False
        self.fired += 1
        if self.callback is None:
            pass
        elif not self.hard:
            self.callback(self)
        elif _hard(self.callback, self) < 0:
            self.active = False  # shared/runtime/softtimer.c: a hard callback that raised stops the timer
        return True


class WDT:
    """machine.WDT(id=0, timeout=5000) (extmod/machine_wdt.c: the defaults); each port's
    machine.py subclasses it with its _check (the limits of its ports/<port>/machine_wdt.c)."""

    started = []

    def __init__(self, id=0, timeout=5000):
        self._check(id, timeout)
        self.timeout_ms = timeout
        self.feeds = 0
        WDT.started.append(self)

    def _check(self, id, timeout):
        pass

    def feed(self):
        self.feeds += 1


# -- RTC -----------------------------------------------------------------------------------------

try:
    from time import ticks_add as _ticks_add
    from time import ticks_diff as _ticks_diff
    from time import ticks_ms as _ticks_ms

    TICKS_PERIOD = _ticks_add(0, -1) + 1  # 2**30 on a 32-bit port, 2**62 on the 64-bit unix port
except ImportError:  # CPython without tests/boards/port_time.py: the host's monotonic clock
    import time as _time

    def _ticks_ms():
        return (_time.monotonic_ns() // 1_000_000) & 0x3FFFFFFF

    def _ticks_diff(a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000

    TICKS_PERIOD = 1 << 30

_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_rtc = None  # the board's one clock (made at its first use: the board's power-on)


def _leap(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _month_days(year, month):
    return 29 if month == 2 and _leap(year) else _MONTH_DAYS[month - 1]


def _days_2000(year, month, day):
    """Days from 2000-01-01 (counted year by year and month by month: plain, not fast)."""
    n = 0
    for y in range(2000, year):
        n += 366 if _leap(y) else 365
    for m in range(1, month):
        n += _month_days(year, m)
    return n + day - 1


def _date_2000(n):
    year = 2000
    while n >= (366 if _leap(year) else 365):
        n -= 366 if _leap(year) else 365
        year += 1
    month = 1
    while n >= _month_days(year, month):
        n -= _month_days(year, month)
        month += 1
    return year, month, n + 1


def _as_int(x):
    # mp_obj_get_int (py/obj.c): an int (a bool is 0 or 1); anything else a TypeError
    if isinstance(x, int):
        return int(x)
    raise TypeError("can't convert %s to int" % type(x).__name__)


class RTC:
    """machine.RTC() (ports/<port>/machine_rtc.c, stm32's rtc.c): datetime() reads and sets
    (year, month, day, weekday, hours, minutes, seconds, subseconds). A port's machine.py sets
    what differs: DEFAULT (its date after it lost the time), LOSES_ON_HARD_RESET, and _weekday,
    _subseconds, _set (which fields its C reads). Kept as seconds and microseconds from
    2000-01-01 (the fake's range: 2000..2099, the stm32 calendar's)."""

    DEFAULT = (2000, 1, 1)
    LOSES_ON_HARD_RESET = False
    follow = True  # moves with time.ticks_ms

    def __new__(cls, *args, **kw):
        # mp_arg_check_num(n_args, n_kw, 0, 0, false): no arguments
        if kw:
            raise TypeError("function doesn't take keyword arguments")
        if args:
            raise TypeError("function takes 0 positional arguments but %d were given" % len(args))
        return cls._one()

    def __init__(self, *args, **kw):
        pass

    @classmethod
    def _one(cls):
        global _rtc
        if _rtc is None or type(_rtc) is not cls:
            _rtc = object.__new__(cls)
            _rtc._power_on()
        return _rtc

    def _power_on(self):
        self._s = _days_2000(*self.DEFAULT) * 86400
        self._us = 0
        self._ref = _ticks_ms()
        self._wd_set(None)

    def _wd_set(self, weekday):
        pass  # a port that stores the weekday (stm32) keeps it

    def _sync(self):
        now = _ticks_ms()
        if RTC.follow:
            self._add_us(_ticks_diff(now, self._ref) * 1000)
        self._ref = now

    def _add_us(self, us):
        us += self._us
        self._s += us // 1_000_000
        self._us = us % 1_000_000

    def datetime(self, dt=_UNSET):
        self._sync()
        if dt is _UNSET:
            days = self._s // 86400
            sec = self._s % 86400
            y, m, d = _date_2000(days)
            return (y, m, d, self._weekday(days), sec // 3600, sec // 60 % 60, sec % 60, self._subseconds())
        # mp_obj_get_array_fixed_n(args[1], 8, &items) (py/obj.c, MICROPY_ERROR_REPORTING_NORMAL)
        if not isinstance(dt, (tuple, list)):
            raise TypeError("object '%s' isn't a tuple or list" % type(dt).__name__)
        if len(dt) != 8:
            raise ValueError("requested length 8 but object has length %d" % len(dt))
        self._set(dt)
        return None

    def _set_fields(self, dt, us):
        # the fields each port's C reads, as ints; a date the C would take unchecked (a wrong
        # calendar on the board) is refused here
        y, mo, d, h, mi, s = (_as_int(dt[i]) for i in (0, 1, 2, 4, 5, 6))
        for name, v, lo, hi in (("year", y, 2000, 2099), ("month", mo, 1, 12), ("hours", h, 0, 23),
                                ("minutes", mi, 0, 59), ("seconds", s, 0, 59)):
            if not lo <= v <= hi:
                raise ValueError("RTC.datetime: %s %d not in %d..%d (unchecked on the port)" % (name, v, lo, hi))
        if not 1 <= d <= _month_days(y, mo):
            raise ValueError("RTC.datetime: day %d not in %d-%02d (unchecked on the port)" % (d, y, mo))
        self._s = _days_2000(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
        self._us = us

    def _weekday(self, days):
        # timeutils_seconds_since_2000_to_struct_time (shared/timeutils/timeutils.c): computed,
        # 0..6 from Monday; 2000-01-01 was a Saturday (5)
        return (days + 5) % 7

    def _subseconds(self):
        return 0

    def _set(self, dt):
        self._set_fields(dt, 0)

    # -- test hooks ----------------------------------------------------------------------------

    @classmethod
    def boot(cls, kind):
        """What a boot does to the clock: "power" (power came back: the port's default date),
        "hard" (machine.reset(), a watchdog: the default date where the port loses it), "soft"."""
        if kind not in ("power", "hard", "soft"):
            raise ValueError("RTC.boot: kind is power, hard or soft, not %r" % (kind,))
        rtc = cls._one()
        rtc._sync()
        if kind == "power" or kind == "hard" and cls.LOSES_ON_HARD_RESET:
            rtc._power_on()

    @classmethod
    def advance_ms(cls, ms):
        """ms milliseconds go by (the board on, or off on the clock's own supply)."""
        if ms < 0:
            raise ValueError("RTC.advance_ms: time does not go back")
        rtc = cls._one()
        rtc._sync()
        rtc._add_us(ms * 1000)

    @classmethod
    def follow_ticks(cls, on):
        """on=False: only advance_ms moves the clock (a test's exact time)."""
        cls._one()._sync()
        RTC.follow = bool(on)
