# MicroPython's `machine` as the esp32 port has it (the original ESP32, ESP32_GENERIC), for the
# virtual board (boards/virtual/README.md). The shared parts are in boards/virtual/vmachine.py; what
# the esp32 port does differently is here, each from ports/esp32 at the release cited.
#
#   Pin    GPIO 0..23, 25..27, 32..39 (machine_pin.h, CONFIG_IDF_TARGET_ESP32, no SPIRAM); no pin
#          names on ESP32_GENERIC (no pins.csv); 34..39 input only. irq(handler, trigger, wake): no
#          `hard`, no `priority`; every edge goes through mp_sched_schedule (soft).
#   ADC    only the GPIOs wired to ADC1 (32..39) or ADC2 (0, 2, 4, 12..15, 25..27).
#   Timer  Timer(id) with id 0..3, one object per id; callbacks always scheduled (soft); hard=True
#          refused from 1.27, `hard` unknown before; the period in 10 MHz ticks.
#   RTC    gettimeofday() from 2000-01-01 at a power-on, kept across other resets; subseconds µs.
#
# Test hooks, on top of vmachine's: Pin.signal (the peripheral whose output the GPIO matrix puts on
# the pin, None: the pin's own latch); ADC.set_raw(raw12); Timer.period_ticks; the scheduler:
# hold_scheduler(True) keeps scheduled callbacks queued (the main program is busy),
# hold_scheduler(False) or run_scheduled() runs them; scheduled_lost counts the ones dropped
# because the queue was full. Written in the subset of Python MicroPython has.

import sys

import vmachine
import vport
from vmachine import *  # noqa: F401,F403
from vmachine import idle, set_record  # noqa: F401

PORT = "esp32"

_GPIOS = tuple(range(24)) + (25, 26, 27) + tuple(range(32, 40))  # machine_pin.h MICROPY_HW_ENABLE_GPIOn
_FIRST_INPUT_ONLY = 34  # GPIO_FIRST_NON_OUTPUT (machine_pin.c): "pin can only be input"
# machine_adc.c madc_obj, CONFIG_IDF_TARGET_ESP32: ADC1 channels 0..7, then ADC2 channels 0..9
_ADC_GPIOS = (36, 37, 38, 39, 32, 33, 34, 35, 4, 0, 2, 15, 13, 12, 14, 27, 25, 26)
_TIMER_HZ = 10_000_000  # machine_timer_freq_hz(): 80 MHz APB / TIMER_DIVIDER 8 (machine_timer.c)
_N_TIMERS = 4  # SOC_TIMER_GROUP_TOTAL_TIMERS: 2 groups x 2 timers
SCHED_DEPTH = 8  # MICROPY_SCHEDULER_DEPTH, ports/esp32/mpconfigport.h (1.24..1.28)
_UNSET = object()  # an argument not given


def _gpio(pin):
    """machine_pin_find: a Pin, an enabled GPIO number (no names on this board), else ValueError."""
    if isinstance(pin, vmachine.Pin):
        return pin.id
    if isinstance(pin, int) and not isinstance(pin, bool) and pin in _GPIOS:
        return pin
    raise ValueError("invalid pin")


# -- mp_sched_schedule (py/scheduler.c): a ring of SCHED_DEPTH; a full ring drops the call --------
_fns = [None] * SCHED_DEPTH
_args = [None] * SCHED_DEPTH
_head = 0
_len = 0
_held = False
_running = False  # the scheduler is locked while it runs a callback (MP_SCHED_LOCKED)
scheduled_lost = 0


def _schedule(fn, arg):
    global _len, scheduled_lost
    if _len == SCHED_DEPTH:
        scheduled_lost += 1
        return False
    i = (_head + _len) % SCHED_DEPTH
    _fns[i] = fn
    _args[i] = arg
    _len += 1
    if not _held:
        run_scheduled()
    return True


def run_scheduled():
    """The VM runs what is pending (between two bytecodes of the main program)."""
    global _running
    if _running:
        return  # locked while a callback runs (MP_SCHED_LOCKED): run after it
    _running = True
    while _len:
        _run_one()
    _running = False  # (a callback that raised leaves it locked until reset_fakes)


def _run_one():
    # small frames: a big one comes from the heap, counted against the code under test
    global _head, _len
    i = _head
    fn = _fns[i]
    _fns[i] = None
    _head = (i + 1) % SCHED_DEPTH
    _len -= 1
    fn(_args[i])


def hold_scheduler(on=True):
    global _held
    _held = bool(on)
    if not _held:
        run_scheduled()


def reset_fakes():
    """The board restarts: forget every Pin and Timer made, empty the scheduler, free the RMT
    channels (esp32.board_reset, if imported)."""
    global _head, _len, _held, _running, scheduled_lost
    vmachine.reset_fakes()
    esp32 = sys.modules.get("esp32")
    if esp32 is not None:
        esp32.board_reset()
    Timer._timers.clear()
    for i in range(SCHED_DEPTH):
        _fns[i] = _args[i] = None
    _head = _len = scheduled_lost = 0
    _held = _running = False


def _int(x):
    # mp_obj_get_int: an int (a bool is 0 or 1); anything else is a TypeError
    if isinstance(x, int):
        return int(x)
    raise TypeError("can't convert %s to int" % type(x).__name__)


class Pin(vmachine.Pin):
    # One object per GPIO, as the port's machine_pin_obj_table: Pin(n) is always the same object.

    def __new__(cls, id, *args, **kw):
        gpio = _gpio(id)
        pin = cls._pins.get(gpio)
        if pin is None:
            pin = object.__new__(cls)
            pin._fresh(gpio)
            cls._pins[gpio] = pin
        return pin

    def __init__(self, id, mode=_UNSET, pull=_UNSET, **kw):
        # mp_pin_make_new: Pin(id) alone configures nothing; any other argument runs init()
        if mode is not _UNSET or pull is not _UNSET or kw:
            self.init(None if mode is _UNSET else mode, -1 if pull is _UNSET else pull, **kw)

    def _fresh(self, gpio):
        self.id = gpio
        self.mode = Pin.IN
        self.pull = None
        self._out = 0
        self.level = None
        self.history = []
        self.handler = None
        self.trigger = 0
        self.hard = False
        self.signal = None

    def init(self, mode=None, pull=-1, *, value=None, drive=None, hold=None):
        # machine_pin_obj_init_helper: the level first, then the direction, then the pull (-1: kept)
        if mode is not None:
            mode = _int(mode)
            if mode not in (Pin.IN, Pin.OUT, Pin.OPEN_DRAIN):
                raise AssertionError("mode %r: the esp32 port has Pin.IN, Pin.OUT and Pin.OPEN_DRAIN" % (mode,))
            if mode != Pin.IN and self.id >= _FIRST_INPUT_ONLY:
                raise ValueError("pin can only be input")
        if value is not None:
            self.value(value)
        if mode is not None:
            self.mode = mode
            if mode != Pin.IN:
                self.signal = None  # gpio_set_direction -> gpio_output_enable: SIG_GPIO_OUT_IDX (ESP-IDF gpio.c)
        if pull != -1:
            self.pull = None if pull is None else (_int(pull) or None)

    def irq(self, handler=None, trigger=vmachine.Pin.IRQ_FALLING | vmachine.Pin.IRQ_RISING, wake=None):
        # machine_pin_irq: handler, trigger, wake only (1.24..1.28): hard= or priority= is a TypeError
        self.handler = handler
        self.trigger = trigger if handler is not None else 0
        self.hard = False
        return self

    def drive(self, level):
        """The outside world puts `level` on the pin; a matching edge schedules the handler
        (machine_pin_isr_handler: mp_sched_schedule, never a hard IRQ)."""
        before = self._input_level()
        self.level = 1 if level else 0
        if self.handler is None or before == self.level:
            return
        edge = Pin.IRQ_RISING if self.level else Pin.IRQ_FALLING
        if self.trigger & edge:
            _schedule(self.handler, self)


vmachine.pin_type = Pin  # PWM(pin number) and the like make this port's Pin


class ADC(vmachine.ADC):
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_9BIT = 9
    WIDTH_10BIT = 10
    WIDTH_11BIT = 11
    WIDTH_12BIT = 12

    def __init__(self, pin, *, atten=-1):
        gpio = _gpio(pin)
        if gpio not in _ADC_GPIOS:
            raise ValueError("invalid pin")  # mp_machine_adc_make_new: not in madc_obj
        if atten != -1 and not 0 <= atten <= 3:
            raise ValueError("invalid attenuation")
        self.channel = gpio
        self.block = 1 if _ADC_GPIOS.index(gpio) < 8 else 2
        self.u16 = 0
        self.reads = 0

    # -- test hook ---------------------------------------------------------------------------

    def set_raw(self, raw):
        """The converter reads `raw` (12 bits): read_u16() scales it as mp_machine_adc_read_u16."""
        if not 0 <= raw <= 4095:
            raise ValueError("raw is 0..4095 (12 bits)")
        self.u16 = raw << 4 | raw >> 8


def _timer_number(id):
    n = _int(id)
    if vport.at_least(1, 25):
        if not 0 <= n < _N_TIMERS:
            raise ValueError("invalid Timer number")  # machine_timer_make_new, from 1.25.0
        return n
    return n & 3  # 1.24: no check, group = (n >> 1) & 1, index = n & 1


class Timer(vmachine.Timer):
    _timers = {}  # machine_timer_create: one object per hardware timer, found again by its number

    def __new__(cls, id, *args, **kw):
        n = _timer_number(id)
        t = Timer._timers.get(n)
        if t is None:
            t = object.__new__(cls)
            t.id = n
            t.active = False
            t.mode = Timer.PERIODIC
            t.period_ticks = 0
            t.period_ms = -1
            t.callback = None
            t.hard = False
            t.fired = 0
            Timer._timers[n] = t
        return t

    def __init__(self, id, *args, **kw):
        if args:
            raise TypeError("extra positional arguments given")
        if kw:
            self.init(**kw)

    def init(self, *args, **kw):
        self.active = False  # machine_timer_init_helper disables the timer before parsing
        if args:
            raise TypeError("extra positional arguments given")
        allowed = ("mode", "callback", "period", "tick_hz", "freq", "hard") if vport.at_least(1, 27) else \
            ("mode", "callback", "period", "tick_hz", "freq")
        for k in kw:
            if k not in allowed:
                raise TypeError("extra keyword arguments given")
        if kw.get("hard", False):
            raise ValueError("hard Timers are not implemented")
        freq = kw.get("freq")
        if freq is not None:
            if freq <= 0:
                raise AssertionError("freq %r: the port casts a float division by it to uint64 (undefined)" % (freq,))
            ticks = int(_TIMER_HZ / freq)
        else:
            period, tick_hz = kw.get("period", 0xFFFFFFFF), kw.get("tick_hz", 1000)
            if period < 0 or tick_hz <= 0:
                raise AssertionError("period %r, tick_hz %r: undefined on the port (uint64 arithmetic)" % (period, tick_hz))
            ticks = period * _TIMER_HZ // tick_hz
        self.period_ticks = ticks
        self.period_ms = ticks // (_TIMER_HZ // 1000)
        self.mode = _int(kw.get("mode", Timer.PERIODIC))
        self.callback = kw.get("callback")
        self.hard = False
        self.active = True

    # -- test hook ---------------------------------------------------------------------------

    def fire(self):
        """The alarm went off: the callback is scheduled (machine_timer_isr_handler), not called
        from the interrupt; a full scheduler queue loses the tick. A ONE_SHOT timer then stops."""
        if not self.active:
            return False
        if not self.mode:
            self.active = False
        self.fired += 1
        if self.callback is not None:
            _schedule(self.callback, self)
        return True


class WDT(vmachine.WDT):
    def _check(self, id, timeout):
        # ports/esp32/machine_wdt.c: id 0 only (a ValueError without a message); timeout_ms > 0,
        # no upper bound there (ESP-IDF's task watchdog)
        if id != 0:
            raise ValueError()
        if timeout <= 0:
            raise ValueError("WDT timeout too short")


class RTC(vmachine.RTC):
    # ports/esp32/machine_rtc.c (v1.24.0-v1.28.0): datetime() is gettimeofday() from 2000-01-01
    # (the port's MicroPython epoch), the weekday computed (timeutils, 0..6 from Monday), the
    # subseconds tv_usec (µs); a set reads items 0-2, 4-7 (the weekday not even type-checked) and
    # settimeofday()s the µs as given. (RTC.init(date) and RTC.memory() are not modelled.)
    DEFAULT = (2000, 1, 1)  # ESP-IDF's system time starts at 0 at a power-on
    LOSES_ON_HARD_RESET = False  # ESP-IDF's RTC timer keeps the time across every reset but power-on

    def _subseconds(self):
        return self._us

    def _set(self, dt):
        us = vmachine._as_int(dt[7])
        if not 0 <= us < 1_000_000:
            raise ValueError("RTC.datetime: subseconds %d not in 0..999999 µs (unchecked on the port)" % us)
        self._set_fields(dt, us)
