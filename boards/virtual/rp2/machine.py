# MicroPython's `machine` as the rp2 port has it, for the virtual board (boards/virtual/README.md).
# The shared parts are in boards/virtual/vmachine.py; what the rp2 port does differently is here,
# each from the port's sources (ports/rp2/..., v1.24.0-v1.28.0; the pin parts did not change).
#
# The board: VIRTUAL_RP2_BOARD=RPI_PICO (default) or RPI_PICO_W, read at import as a firmware
# build fixes it; board(name) switches it in a test (and forgets every pin).
#   Pin:   one object per GPIO, as the port's const pin table: Pin(25) is Pin("LED") on a Pico,
#          Pin.get(id or name) finds it. On a Pico W "LED" is the wireless chip's WL_GPIO0 (an
#          external pin, `ext`), and GPIO 23, 24, 25, 29 are wired to the chip: the port still
#          hands them out (the pin's `wireless` names the chip's line).
#   ADC:   ADC(channel 0..4) or ADC(pin) for GPIO 26..29 only; `channel` is the ADC channel.
#   Timer: the hardware alarm pool: the period in whole µs (`period_us`; `period_ms` only where
#          it is whole ms), `hard` from v1.26.0.
#   RTC:   2021-01-01 at every hard boot (power-on, reset, watchdog); subseconds 0.

import os

import vmachine
import vport
from vmachine import *  # noqa: F401,F403
from vmachine import idle, reset, reset_fakes, set_record  # noqa: F401

PORT = "rp2"
BOARDS = ("RPI_PICO", "RPI_PICO_W")

_NUM_GPIOS = 30  # NUM_BANK0_GPIOS (RP2040): machine_pin_obj_table, ports/rp2/boards/make-pins.py
_ADC_BASE_PIN = 26  # pico-sdk: ADC_BASE_PIN, NUM_ADC_CHANNELS 5 (channel 4: the temperature sensor)
_NUM_ADC_CHANNELS = 5
_UNSET = vmachine._UNSET


def _board_names(name):
    """ports/rp2/boards/<name>/pins.csv (board names, looked up first) and the cpu names make-pins.py
    always adds (GPIO0..GPIO29; EXT_GPIO0..2 where the board has MICROPY_HW_PIN_EXT_COUNT)."""
    names = {}
    for i in range(_NUM_GPIOS):
        names["GPIO%d" % i] = i
    for i in list(range(23)) + [26, 27, 28]:
        names["GP%d" % i] = i
    if name == "RPI_PICO_W":
        for i in range(3):  # CYW43_WL_GPIO_COUNT
            names["EXT_GPIO%d" % i] = names["WL_GPIO%d" % i] = "EXT_GPIO%d" % i
        names["LED"] = "EXT_GPIO0"
    else:
        names["GP25"] = names["LED"] = 25
    return names


# pico-sdk boards/pico_w.h: CYW43_DEFAULT_PIN_WL_* (ports/rp2/cyw43_configport.h uses them)
_PICO_W_WIRELESS = {23: "WL_REG_ON", 24: "WL_DATA/HOST_WAKE", 25: "WL_CS", 29: "WL_CLOCK"}


def board(name):
    """The board modelled (test hook): RPI_PICO or RPI_PICO_W. Forgets every pin."""
    global BOARD, _NAMES, _WIRELESS
    if name not in BOARDS:
        raise ValueError("VIRTUAL_RP2_BOARD: %r is not one of %s" % (name, ", ".join(BOARDS)))
    BOARD = name
    _NAMES = _board_names(name)
    _WIRELESS = _PICO_W_WIRELESS if name == "RPI_PICO_W" else {}
    reset_fakes()


BOARD = "RPI_PICO"
_NAMES = {}
_WIRELESS = {}
board((getattr(os, "getenv", None) and os.getenv("VIRTUAL_RP2_BOARD")) or "RPI_PICO")  # wasm: no getenv


def _key(id):
    """machine_pin_find (ports/rp2/machine_pin.c): a GPIO number, or "EXT_GPIOn" for an external pin."""
    if isinstance(id, vmachine.Pin):
        return id.id
    if isinstance(id, str):
        key = _NAMES.get(id)
        if key is None:
            raise ValueError('unknown named pin "%s"' % id)
        return key
    if isinstance(id, int) and not isinstance(id, bool) and 0 <= id < _NUM_GPIOS:
        return id
    raise ValueError("invalid pin")


def _int(x):
    # mp_obj_get_int: an int (a bool is 0 or 1); anything else is a TypeError
    if isinstance(x, int):
        return int(x)
    raise TypeError("can't convert %s to int" % type(x).__name__)


def _has_alt(gpio, alt):
    # ports/rp2/boards/rp2040_af.csv: functions 1-7 and 9 on every GPIO, 8 (GPCK) on 20..25
    return 1 <= alt <= 9 and (alt != 8 or 20 <= gpio <= 25)


class Pin(vmachine.Pin):
    ALT_SPI = 1  # GPIO_FUNC_* (pico-sdk), the port's Pin.ALT_* constants
    ALT_UART = 2
    ALT_I2C = 3
    ALT_PWM = 4
    ALT_SIO = 5
    ALT_PIO0 = 6
    ALT_PIO1 = 7
    ALT_GPCK = 8
    ALT_USB = 9

    def __new__(cls, id, *args, **kw):
        key = _key(id)
        pin = cls._pins.get(key)
        if pin is None:
            pin = object.__new__(cls)
            pin._fresh(key)
            cls._pins[key] = pin
        return pin

    def __init__(self, id, mode=_UNSET, pull=_UNSET, **kw):
        # mp_pin_make_new: Pin(id) alone configures nothing; any other argument runs init()
        if mode is not _UNSET or pull is not _UNSET or kw:
            self.init(None if mode is _UNSET else mode, None if pull is _UNSET else pull, **kw)

    def _fresh(self, key):
        self.id = key
        self.ext = isinstance(key, str)
        self.name = key if self.ext else "GPIO%d" % key
        self.wireless = _WIRELESS.get(key)
        self.mode = Pin.IN
        self.pull = None
        self.alt = Pin.ALT_SIO
        self._out = 0
        self.level = None
        self.history = []
        self.handler = None
        self.trigger = 0
        self.hard = False

    @classmethod
    def get(cls, id):
        return cls._pins[_key(id)]

    def init(self, mode=None, pull=None, *, value=None, alt=ALT_SIO):
        # machine_pin_obj_init_helper: no `drive` keyword on rp2
        if self.ext and pull is not None:
            raise ValueError("pulls are not supported for external pins")
        if self.ext and alt != Pin.ALT_SIO:
            raise ValueError("alternate functions are not supported for external pins")
        v = -1 if value is None else (1 if value else 0)
        if mode is not None:
            mode = _int(mode)
            if self.ext:
                self._ext_config(mode, v)
            elif mode == Pin.IN:
                self.mode = Pin.IN
            elif mode == Pin.OUT:
                if v != -1:
                    self.value(v)  # the level first, then the direction
                self.mode = Pin.OUT
            elif mode == Pin.OPEN_DRAIN:
                self.value(1 if v == -1 else v)
                self.mode = Pin.OPEN_DRAIN
            else:  # Pin.ALT, or any other mode
                alt = _int(alt)
                if not _has_alt(self.id, alt):
                    raise ValueError("invalid pin af: %d" % alt)
                self.mode = Pin.ALT
                self.alt = alt
        # a value without a mode is ignored; the pull is always set (None: no pull)
        if not self.ext:
            self.pull = None if pull is None else (_int(pull) or None)  # PULL_UP | PULL_DOWN: both

    def _ext_config(self, mode, v):
        # machine_pin_ext_config (ports/rp2/machine_pin_cyw43.c)
        if mode == Pin.IN:
            self.mode = Pin.IN
        elif mode == Pin.OUT:
            if self.mode != Pin.OUT:
                self.value(self._out if v == -1 else v)
                self.mode = Pin.OUT
                return
        else:
            raise ValueError("only Pin.OUT and Pin.IN are supported for this pin")
        if v != -1:
            if self.mode == Pin.OUT:
                self.value(v)
            else:
                self._out = v  # remembered for a later Pin.OUT

    def _input_level(self):
        if self.level is not None:
            return self.level
        return 1 if self.pull is not None and self.pull & Pin.PULL_UP else 0

    def low(self):
        self.value(0)

    def high(self):
        self.value(1)

    def toggle(self):
        self.value(1 - self._out)

    def irq(self, handler=_UNSET, trigger=_UNSET, hard=_UNSET):
        if self.ext:
            raise ValueError("expecting a regular GPIO Pin")
        return vmachine.Pin.irq(self, handler, trigger, hard)

    def __repr__(self):
        return "Pin(%s, mode=%s)" % (self.name, ("IN", "OUT", "OPEN_DRAIN", "ALT")[self.mode])


vmachine.pin_type = Pin


class ADC(vmachine.ADC):
    CORE_TEMP = 4  # ADC_TEMPERATURE_CHANNEL_NUM

    def __init__(self, source):
        # ports/rp2/machine_adc.c: one argument, no keywords. An int 0..4 is a channel; anything
        # else is looked up as a pin, which must be GPIO 26..29 (an int 26 is GPIO 26).
        channel = -1
        self.pin = None
        if isinstance(source, int) and not isinstance(source, bool) and 0 <= source < _NUM_ADC_CHANNELS:
            channel = source
        else:
            pin = Pin(source)  # machine_pin_find: errors as Pin(); configures nothing
            if pin.ext or not _ADC_BASE_PIN <= pin.id < _ADC_BASE_PIN + _NUM_ADC_CHANNELS:  # ADC_IS_VALID_GPIO
                raise ValueError("Pin doesn't have ADC capabilities")
            channel = pin.id - _ADC_BASE_PIN
            pin.pull = None  # adc_gpio_init: no pulls, digital input off
            pin.mode = Pin.ALT
            pin.alt = 0x1F  # GPIO_FUNC_NULL
            self.pin = pin
        self.channel = channel
        self.u16 = 0
        self.reads = 0


_U64 = (1 << 64) - 1


class Timer(vmachine.Timer):
    # ports/rp2/machine_timer.c: a hardware alarm, delta_us whole µs. Only id -1.

    def __init__(self, id=-1, **kw):
        if _int(id) != -1:
            raise ValueError("Timer doesn't exist")
        self.id = -1
        self.active = False
        self.mode = Timer.PERIODIC
        self.period_us = 0
        self.period_ms = None
        self.callback = None
        self.hard = False
        self.fired = 0
        if kw:
            self.init(**kw)

    def init(self, *, mode=1, callback=None, period=-1, tick_hz=1000, freq=None, hard=None):  # mode: PERIODIC
        if hard is not None and not vport.at_least(1, 26):
            raise TypeError("extra keyword arguments given")  # v1.24.0, v1.25.0: no `hard`
        mode = _int(mode)
        if freq is not None:
            # (uint64_t)(1000000.0 / freq) (floats on rp2); int freq: the same, in ints here
            if not freq > 0:
                raise ValueError("freq: must be > 0 (the port converts 1e6/freq to an unsigned int unchecked)")
            delta = 1_000_000 // freq if isinstance(freq, int) else int(1_000_000.0 / freq)
        else:
            # (uint64_t)period * 1000000 / tick_hz, with period and tick_hz 32-bit mp_int_t: the
            # default period 0xffffffff is -1 there, so a timer without one waits ~585000 years
            period = _word(period)
            tick_hz = _word(tick_hz)
            if tick_hz == 0:
                raise ZeroDivisionError("tick_hz: 0 (undefined on the port)")
            delta = (period & _U64) * 1_000_000 & _U64
            delta //= tick_hz & _U64
        self.period_us = max(1, delta)
        self.period_ms = self.period_us // 1000 if self.period_us % 1000 == 0 else None
        self.mode = mode
        self.callback = callback
        self.hard = bool(hard)
        self.active = True  # init() cancels the alarm set before

    def fire(self):
        """The period elapsed: the alarm's callback (a ONE_SHOT timer then stops)."""
        if not self.active:
            return False
        if self.mode == Timer.ONE_SHOT:
            self.active = False
        self.fired += 1
        # alarm_callback: mp_irq_dispatch from v1.26.0 (a hard one that raised stops the alarm);
        # before, mp_sched_schedule always
        if self.callback is None:
            pass
        elif not self.hard:
            self.callback(self)
        elif vmachine._hard(self.callback, self) < 0:
            self.active = False
        return True

    def __repr__(self):
        return "Timer(mode=%s, tick_hz=1000000, period=%d)" % (
            "ONE_SHOT" if self.mode == Timer.ONE_SHOT else "PERIODIC", self.period_us)


def _word(x):
    # mp_obj_get_int into a 32-bit mp_int_t (py/obj.c: a bigger int raises OverflowError)
    x = _int(x)
    if not -(1 << 31) <= x < (1 << 31):
        raise OverflowError("overflow converting long int to machine word")
    return x


class WDT(vmachine.WDT):
    def _check(self, id, timeout):
        # ports/rp2/machine_wdt.c: WDT_TIMEOUT_MAX 8388; the ms are taken as uint32 (a negative
        # one exceeds it too)
        if id != 0:
            raise ValueError("WDT(%d) doesn't exist" % id)
        if timeout < 0 or timeout > 8388:
            raise ValueError("timeout exceeds 8388")


class RTC(vmachine.RTC):
    # ports/rp2/machine_rtc.c (alike v1.24.0-v1.28.0: pico-sdk's aon timer, over the RP2040's RTC
    # peripheral): RTC() takes no argument and is a singleton; datetime() reads the weekday
    # computed (timeutils, 0..6 from Monday) and subseconds 0; a set reads items 0-2 and 4-6 only
    # (weekday and subseconds not even type-checked) and starts a whole second (tv_nsec 0).
    DEFAULT = (2021, 1, 1)  # ports/rp2/main.c: aon_timer_start(2021-01-01 00:00:00) at each boot
    LOSES_ON_HARD_RESET = True  # main() runs at every hard reset, a watchdog's too; a soft reset keeps it


# -- UART ----------------------------------------------------------------------------------------

import vuart  # noqa: E402

_UART_FIFO = 32  # UART_FIFO_SIZE_RX: the PL011's RX (and TX) FIFO, 32 deep


class UART(vuart.UART):
    """ports/rp2/machine_uart.c (alike v1.24.0-v1.28.0 in what is modelled): UART(0) or UART(1),
    one object each; tx=/rx= any pin machine_pin_find takes, checked against IS_VALID_TX/RX; the RX
    side a ring of rxbuf bytes (default 256; 32..32766) filled from the 32-byte hardware FIFO by
    the IRQ. Ring full: bytes stay in the FIFO; FIFO full: a byte arriving is LOST (overrun: the
    PL011 keeps the FIFO and drops the new one). any() drains the FIFO into the ring first, then
    says what the ring holds. A read waits timeout_char (at least a character time, forced) between
    bytes. TX: a ring of txbuf bytes (then the 32-byte FIFO); write waits at most `timeout` for room,
    then returns what it took (None: nothing)."""

    _objs = {}

    def __new__(cls, id, *args, **kw):
        id = _int(id)
        if id < 0 or id > 1:
            raise ValueError("UART(%d) doesn't exist" % id)
        self = cls._objs.get(id)
        if self is None:
            self = object.__new__(cls)
            self.id = id
            self.baudrate = 0  # not initialised
            self.timeout = self.timeout_char = 0
            self.tx = 0 if id == 0 else 4  # MICROPY_HW_UART0_TX / UART1_TX
            self.rx = self.tx + 1
            self._fresh(256 + _UART_FIFO)
            cls._objs[id] = self
        return self

    def __init__(self, id, *args, **kw):
        # mp_machine_uart_make_new: buffer sizes back to DEFAULT_BUFFER_SIZE, then init
        self.rxbuf = self.txbuf = 256
        self._realloc = True
        self.init(*args, **kw)

    def init(self, baudrate=-1, bits=-1, parity=-1, stop=-1, *, tx=None, rx=None, cts=None, rts=None,
             timeout=-1, timeout_char=-1, invert=-1, flow=-1, txbuf=-1, rxbuf=-1):
        baudrate = _int(baudrate)
        if baudrate > 0:
            self.baudrate = baudrate
        if tx is not None:
            self.tx = self._pin(tx, 0, "bad TX pin")
        if rx is not None:
            self.rx = self._pin(rx, 1, "bad RX pin")
        if _int(timeout) >= 0:
            self.timeout = timeout
        if _int(timeout_char) >= 0:
            self.timeout_char = timeout_char
        for name, v in (("rxbuf", _int(rxbuf)), ("txbuf", _int(txbuf))):
            if v > 0:
                if v > 32766:  # MAX_BUFFER_SIZE
                    raise ValueError("%s too large" % name)
                v = max(v, 32)  # MIN_BUFFER_SIZE: a smaller one is raised to it
                if v != getattr(self, name):
                    setattr(self, name, v)
                    self._realloc = True
        if self.baudrate == 0:
            self.baudrate = 115200
            self.timeout_char = 0
        self.timeout_char = max(self.timeout_char, 13000 // self.baudrate + 1)  # a whole character
        if self._realloc:  # ringbuf_alloc: new, empty buffers
            self._fresh(self.rxbuf + _UART_FIFO)
            self._realloc = False

    def _pin(self, obj, lane, message):
        pin = Pin(obj)  # mp_hal_get_pin_obj: machine_pin_find's errors
        if pin.ext:
            raise ValueError("expecting a regular GPIO Pin")
        gpio = pin.id
        if gpio & 3 != lane or ((gpio + 4) & 8) >> 3 != self.id:  # IS_VALID_TX / IS_VALID_RX (RP2040)
            raise ValueError(message)
        return gpio

    def _any(self):
        n = self._rx.n
        return n if n < self.rxbuf else self.rxbuf

    def _send_held(self, data):
        room = self.txbuf + _UART_FIFO - len(self._held)
        if room <= 0:
            if self.timeout > 0:
                raise AssertionError("UART.write: TX buffer full: the port waits timeout=%d ms" % self.timeout)
            self.waited_ms += 1  # `elapsed > timeout`: until the ms tick moves
            return None
        k = min(room, len(data))
        self._held.extend(data[:k])
        if k < len(data):
            self.waited_ms += self.timeout + 1
        return k

    def _fresh(self, rx_capacity):
        vuart.UART._fresh(self, rx_capacity)
        self._held = bytearray()

    def _release_tx(self):
        self._tx.extend(self._held)
        self._held = bytearray()

    def __repr__(self):
        return "UART(%d, baudrate=%d, tx=%d, rx=%d, txbuf=%d, rxbuf=%d, timeout=%d, timeout_char=%d)" % (
            self.id, self.baudrate, self.tx, self.rx, self.txbuf, self.rxbuf, self.timeout, self.timeout_char)
