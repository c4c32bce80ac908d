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


# -- UART ----------------------------------------------------------------------------------------

import vuart  # noqa: E402

_UART_FIFO = 128  # UART_HW_FIFO_LEN (SOC_UART_FIFO_LEN) on the original ESP32
_UART_NUM = 3  # SOC_UART_NUM
_UART_REPL = 0  # ports/esp32/uart.h MICROPY_HW_UART_REPL (ESP32_GENERIC: no USB CDC, the REPL on UART0)
_FLASH_GPIOS = (6, 7, 8, 9, 10, 11)  # the module's SPI flash


def _esp_fail():
    # check_esp_err (ports/esp32/mphalport.c): ESP_FAIL (-1) as OSError(1, "ESP_FAIL")
    return OSError(1, "ESP_FAIL")


class UART(vuart.UART):
    """ports/esp32/machine_uart.c over ESP-IDF's UART driver (components/esp_driver_uart uart.c):
    UART(0..2), UART0 the REPL (no driver: its buffers fixed, ValueError "REPL UART buffer size is
    fixed" (1.27+; "UART buffer size is fixed" before); no reads). 1.24-1.26 make a new object and a
    new driver at every UART(); 1.27+ keep one object per id and its settings while the driver is
    installed. rxbuf must exceed the 128-byte hardware FIFO, txbuf too (or be 0): uart_driver_install
    fails, OSError ESP_FAIL. Every init() flushes the input (uart_flush_input).
    RX (timeout_char below a character: rx full threshold 1, so the ISR moves bytes one by one):
    the driver's ring of rxbuf bytes; when a chunk does not fit, the ISR stashes it and masks the
    RX interrupts; bytes then wait in the 128-byte FIFO; one more overflows it and the ISR RESETS
    the FIFO: its 128 bytes and the new one are LOST. A read that makes room pushes the stash and
    unmasks (the FIFO then moves in as one chunk). any() is the ring's count (rx_buffered_len).
    Reads: 1.24-1.26 uart_read_bytes(n, timeout); 1.27+ one byte within timeout, then the rest
    within timeout_char. TX: uart_write_bytes blocks until every byte is in the txbuf ring (then
    the FIFO): held, a write that does not fit raises AssertionError (the board hangs there)."""

    _objs = {}

    def __new__(cls, id, *args, **kw):
        id = _int(id)
        if id < 0 or id >= _UART_NUM:
            raise ValueError("UART(%d) does not exist" % id)
        self = cls._objs.get(id) if vport.at_least(1, 27) else None
        if self is None:
            self = object.__new__(cls)
            self.id = id
            self.driver = False
            cls._objs[id] = self
        return self

    def __init__(self, id, *args, **kw):
        if not self.driver:  # freshly initialised: the object's defaults
            self.baudrate = 115200
            self.rxbuf = self.txbuf = 256
            self.timeout = self.timeout_char = 0
            self.tx, self.rx = {0: (1, 3), 1: (10, 9), 2: (17, 16)}[self.id]
            self._fresh(self.rxbuf)
            if self.id != _UART_REPL and not vport.at_least(1, 27):
                self.driver = True  # 1.24-1.26: make_new installs it at once
        self.init(*args, **kw)

    def init(self, baudrate=0, bits=0, parity=None, stop=0, *, tx=None, rx=None, rts=None, cts=None,
             txbuf=-1, rxbuf=-1, timeout=-1, timeout_char=-1, invert=-1, flow=-1):
        txbuf = _int(txbuf)
        rxbuf = _int(rxbuf)
        changed = txbuf >= 0 and txbuf != self.txbuf or rxbuf >= 0 and rxbuf != self.rxbuf
        if not vport.at_least(1, 27):
            changed = txbuf >= 0 or rxbuf >= 0
        if changed:
            if self.id == _UART_REPL:
                raise ValueError("REPL UART buffer size is fixed" if vport.at_least(1, 27) else "UART buffer size is fixed")
            self.txbuf = txbuf if txbuf >= 0 else self.txbuf
            self.rxbuf = rxbuf if rxbuf >= 0 else self.rxbuf
            self.driver = False
        if self.id != _UART_REPL and not self.driver:
            # uart_driver_install: rx_buffer_size > UART_HW_FIFO_LEN, tx_buffer_size too or 0
            if self.rxbuf <= _UART_FIFO or not (self.txbuf > _UART_FIFO or self.txbuf == 0):
                raise _esp_fail()
            self.driver = True
        if _int(baudrate) > 0:
            self.baudrate = baudrate
        if tx is not None:
            self.tx = self._pin(tx, True)
        if rx is not None:
            self.rx = self._pin(rx, False)
        if _int(timeout) != -1:
            self.timeout = timeout
        if _int(timeout_char) != -1:
            self.timeout_char = timeout_char
        self._fresh(self.rxbuf)  # uart_flush_input: what came before is discarded

    def _pin(self, obj, output):
        gpio = _gpio(obj)  # machine_pin_get_id: machine_pin_find's errors
        if gpio in _FLASH_GPIOS:
            raise AssertionError("UART: GPIO %d carries the SPI flash: the board crashes" % gpio)
        if output and gpio >= _FIRST_INPUT_ONLY:
            raise _esp_fail()  # uart_set_pin: "tx_io_num error" (not an output GPIO)
        return gpio

    def _fresh(self, rx_capacity):
        vuart.UART._fresh(self, rx_capacity)
        self._stash = bytearray()
        self._fifo = bytearray()
        self._full = False  # rx_buffer_full_flg
        self._held = 0
        self._pending = b""

    def _check_driver(self):
        if self.id == _UART_REPL:
            raise _esp_fail()  # no driver on the REPL UART (uart_get_buffered_data_len: not installed)

    def _any(self):
        self._check_driver()
        return self._rx.n

    def _readable(self):
        self._check_driver()
        return self._rx.n

    def _partial_wait_ms(self):
        return self.timeout_char if vport.at_least(1, 27) else self.timeout

    def _receive_byte(self, b):
        if not self._full:
            if self._rx.put(b):
                return
            self._stash.append(b)  # xRingbufferSendFromISR failed: stashed, RX interrupts masked
            self._full = True
        elif len(self._fifo) < _UART_FIFO:
            self._fifo.append(b)
        else:  # UART_RXFIFO_OVF: uart_reset_rx_fifo
            self.lost += len(self._fifo) + 1
            self._fifo = bytearray()

    def _after_read(self):
        # uart_read_bytes: the stash goes in once it fits, the interrupts come back, and the ISR
        # moves the FIFO in as one chunk (stashed again if it does not fit)
        while self._full and self._rx.cap - self._rx.n >= len(self._stash):
            for b in self._stash:
                self._rx.put(b)
            self._stash = self._fifo
            self._fifo = bytearray()
            self._full = len(self._stash) > 0

    def _send_held(self, data):
        if self._held + len(data) > self.txbuf + _UART_FIFO:
            raise AssertionError("UART.write: uart_write_bytes blocks until the other end takes bytes")
        self._held += len(data)
        self._pending += data
        return len(data)

    def _release_tx(self):
        self._tx.extend(self._pending)
        self._pending = b""
        self._held = 0
