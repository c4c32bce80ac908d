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
#          handler on a matching edge; bounce(levels) drives several; Pin.get(id) is the
#          last Pin made for an id; history is every level written by value()/on()/off().
#   PWM:   history is every (freq, duty_u16) the output took, in order.
#   ADC:   set_u16(v) (or .u16 = v) is what read_u16() returns; reads counts the calls.
#   Timer: fire() runs the callback as the hardware would (ONE_SHOT: once).
#   idle(): counted in idles.
#
# Written in the subset of Python MicroPython implements.

_PIN_NAMES = (["LED", "LED_RED", "LED_GREEN", "LED_YELLOW", "LED_BLUE"] + ["X%d" % i for i in range(1, 25)]
              + ["Y%d" % i for i in range(1, 13)])
_N_PINS = 48  # GPIO 0..47 (the ESP32-S3 has the most)

idles = 0
record = True


def set_record(on):
    global record
    record = bool(on)


def idle():
    global idles
    idles += 1


def reset_fakes():
    """Forget every Pin made (tests call it to start clean)."""
    Pin._pins.clear()
    global idles
    idles = 0


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

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, *, priority=1, wake=None, hard=False):
        self.handler = handler
        self.trigger = trigger
        self.hard = hard
        return self

    # -- test hooks --------------------------------------------------------------------------

    def drive(self, level):
        """The outside world puts `level` on the pin; an irq fires on a matching edge."""
        before = self._input_level()
        self.level = 1 if level else 0
        if self.handler is None or before == self.level:
            return
        edge = Pin.IRQ_RISING if self.level else Pin.IRQ_FALLING
        if self.trigger & edge:
            self.handler(self)

    def bounce(self, levels):
        for level in levels:
            self.drive(level)

    def release(self):
        """Nothing drives the pin any more (the pull decides)."""
        self.level = None

    def __repr__(self):
        return "Pin(%r)" % (self.id,)


def _as_pin(dest):
    return dest if isinstance(dest, Pin) else Pin(dest)


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
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, *, mode=PERIODIC, period=-1, freq=-1, tick_hz=1000, callback=None, hard=True):
        self.id = id
        self.active = False
        self.mode = mode
        self.period_ms = -1
        self.callback = None
        self.fired = 0
        if callback is not None or period != -1 or freq != -1:
            self.init(mode=mode, period=period, freq=freq, tick_hz=tick_hz, callback=callback, hard=hard)

    def init(self, *, mode=PERIODIC, period=-1, freq=-1, tick_hz=1000, callback=None, hard=True):
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
            self.period_ms = 1000  # rp2: 1 s by default
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
        if self.callback is not None:
            self.callback(self)
        return True
