# A fake `esp32` module (its RMT class only) for tests off the board, on CPython and the
# MicroPython unix port. Two API versions, chosen by the module attribute API before an RMT is
# made (tests set it):
#
#   API = 127  MicroPython >= 1.27: RMT([id], *, pin, resolution_hz=None, clock_div=None,
#              idle_level=False, tx_carrier=None, num_symbols=MIN_SYMBOLS); loop_count(n); active();
#              loop(bool) kept (deprecated); PULSE_MAX. FINITE_LOOP = False models the original
#              ESP32, which cannot loop a counted number of times: write_pulses() then raises
#              OSError (rmt_transmit's ESP_ERR_NOT_SUPPORTED) and transmits nothing.
#   API = 126  MicroPython <= 1.26: RMT(id, *, pin, clock_div=8, idle_level=False,
#              tx_carrier=None); loop(bool) repeats forever; no loop_count, active, resolution_hz.
#
# Both: write_pulses(duration, data=True) in its three modes, wait_done(*, timeout=0),
# deinit(), source_freq() = 80 MHz. Every write_pulses call is recorded in `writes` as
# (durations tuple, levels tuple, loop count) with the modes expanded; finish() ends the running
# transmission (the hardware got through it). Written in the subset of Python MicroPython has.

API = 127
FINITE_LOOP = True
SOURCE_HZ = 80_000_000
MIN_SYMBOLS = 48

made = []  # every RMT made, in order


def reset_fakes(api=127, finite_loop=True):
    global API, FINITE_LOOP
    API = api
    FINITE_LOOP = finite_loop
    del made[:]


def RMT(*args, **kw):
    """esp32.RMT as the selected API version has it."""
    if API >= 127:
        return RMT127(*args, **kw)
    return RMT126(*args, **kw)


class RMT126:
    def __init__(self, *args, **kw):
        if API >= 127:
            if len(args) > 1:
                raise TypeError("function takes 1 positional arguments")
            allowed = ("pin", "resolution_hz", "clock_div", "idle_level", "tx_carrier", "num_symbols")
        else:
            if len(args) != 1:
                raise TypeError("'id' argument required")
            allowed = ("pin", "clock_div", "idle_level", "tx_carrier")
        for k in kw:
            if k not in allowed:
                raise TypeError("unexpected keyword argument '%s'" % k)
        if "pin" not in kw:
            raise TypeError("'pin' argument required")
        self.channel = args[0] if args else -1
        self.pin = kw["pin"]
        res, div = kw.get("resolution_hz"), kw.get("clock_div")
        if res is not None and div is not None:
            raise ValueError("resolution_hz and clock_div are mutually exclusive")
        if res is None:
            if div is None:
                div = 8 if API < 127 else None
            if div is None:
                res = 10_000_000
            else:
                if not 1 <= div <= 255:
                    raise ValueError("clock_div must be between 1 and 255")
                res = SOURCE_HZ // div
        elif res <= 0:
            raise ValueError("resolution_hz must be positive")
        self.resolution_hz = res
        self.idle_level = bool(kw.get("idle_level", False))
        n = kw.get("num_symbols", MIN_SYMBOLS)
        if n < MIN_SYMBOLS or n % 2:
            raise ValueError("num_symbols must be even and at least %d" % MIN_SYMBOLS)
        self.num_symbols = n
        self.loops = 0  # 0: once, -1: forever, n: n times
        self.ongoing = False
        self.deinited = False
        self.writes = []
        self.stops = 0
        made.append(self)

    @staticmethod
    def source_freq():
        return SOURCE_HZ

    def _check(self):
        if self.deinited:
            raise OSError("already deinitialized")

    def loop(self, enable):
        self._check()
        self.loops = -1 if enable else 0

    def wait_done(self, *, timeout=0):
        self._check()
        if self.ongoing and timeout != 0:
            raise AssertionError("a blocking wait_done in a test would hang")
        return not self.ongoing

    def write_pulses(self, duration, data=True):
        self._check()
        if self.ongoing:
            raise AssertionError("write_pulses while transmitting would block")
        if isinstance(data, (tuple, list)):
            if isinstance(duration, int):
                durs = (duration,) * len(data)  # mode 2
            else:
                if len(duration) != len(data):  # mode 3
                    raise ValueError("duration and data must have same length")
                durs = tuple(duration)
            levels = tuple(1 if v else 0 for v in data)
        else:
            if not isinstance(duration, (tuple, list)):
                raise TypeError("duration must be a list or tuple")
            durs = tuple(duration)  # mode 1: toggles from `data`
            first = 1 if data else 0
            levels = tuple((first + i) & 1 for i in range(len(durs)))
        if not durs:
            raise ValueError("No pulses")
        for d in durs:
            if not 1 <= d <= 32767:
                raise ValueError("duration %r out of 1..32767" % (d,))
        if self.loops > 0 and not FINITE_LOOP:
            raise OSError(-1)  # ESP_ERR_NOT_SUPPORTED: the original ESP32 has no loop count
        if self.loops != 0 and (len(durs) + 1) // 2 > self.num_symbols:
            raise ValueError("a looped sequence must fit the channel's symbols")
        self.writes.append((durs, levels, self.loops))
        self.ongoing = True

    def deinit(self):
        self.deinited = True
        self.ongoing = False

    # -- test hooks ----------------------------------------------------------------------------

    def finish(self):
        """The transmission in progress has gone out completely."""
        if self.loops == -1:
            raise AssertionError("an endless loop never finishes")
        self.ongoing = False


class RMT127(RMT126):
    PULSE_MAX = 32767

    def loop_count(self, n):
        self._check()
        if n < -1:
            raise ValueError("arg must be -1, 0 or positive")
        if self.ongoing and n != self.loops:
            self.ongoing = False  # changing it stops the current transmission
            self.stops += 1
        self.loops = n

    def active(self, value=None):
        self._check()
        if value is None:
            return self.ongoing
        if value:
            raise ValueError("activate by calling write_pulses()")
        if self.ongoing:
            self.stops += 1
        self.ongoing = False
        return False


def expand(write):
    """The (level, duration) pulses a recorded write puts on the pin, loops unrolled."""
    durs, levels, loops = write
    times = loops if loops > 0 else 1
    out = []
    for _ in range(times):
        for i in range(len(durs)):
            out.append((levels[i], durs[i]))
    return out
