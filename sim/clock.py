"""Virtual clock: jumps to the next deadline; its ticks wrap at 2**30 like the boards' ticks."""

TICKS_PERIOD = 1 << 30
_HALF = TICKS_PERIOD // 2
_MASK = TICKS_PERIOD - 1
START_BEFORE_WRAP_MS = 5 * 60_000


class SimClock:
    """`now_ms` is exact simulated time since the scenario's start (an unbounded int).

    The firmware only sees `ticks_ms()`, which starts 5 minutes before a wrap so every run
    crosses one early, and `ticks_add`/`ticks_diff` with MicroPython's semantics.
    """

    def __init__(self, start_ticks=TICKS_PERIOD - START_BEFORE_WRAP_MS):
        self.now_ms = 0
        self._start_ticks = start_ticks
        self._ticks = start_ticks % TICKS_PERIOD  # ticks_ms() at now_ms, kept by advance_to()

    def ticks_ms(self):
        return self._ticks

    # As the ports (extmod/modtime.c): tick values are taken modulo the period; ticks_add raises
    # OverflowError unless -2**29 < delta < 2**29, so ticks_diff(ticks_add(t, d), t) == d and
    # ticks_diff(t, ticks_add(t, d)) == -d always hold; ticks_diff never raises.
    @staticmethod
    def ticks_add(ticks, delta):
        if -_HALF < delta < _HALF:
            return (ticks + delta) & _MASK  # & not %: a float delta raises TypeError
        delta & 0  # noqa: B018 -- a float delta: TypeError, the port converts it before the check
        raise OverflowError("ticks interval overflow")

    @staticmethod
    def ticks_diff(a, b):
        return (a - b + _HALF) % TICKS_PERIOD - _HALF

    def to_ms(self, ticks):
        """Simulated time of a tick value within +-2**29 of now."""
        return self.now_ms + (ticks - self._ticks + _HALF) % TICKS_PERIOD - _HALF  # + ticks_diff(ticks, now)

    def advance_to(self, t_ms):
        if t_ms < self.now_ms:
            raise ValueError(f"virtual clock cannot go back from {self.now_ms} to {t_ms} ms")
        self.now_ms = t_ms
        self._ticks = (self._start_ticks + t_ms) % TICKS_PERIOD


class SimRTC:
    """The pump's real-time clock (hal/interfaces.py "RTC"): whole seconds, going on while the
    firmware is off. epoch_s: its reading at the scenario's start; valid False: it lost its time."""

    def __init__(self, clock, epoch_s=0):
        self._clock = clock
        self.epoch_s = epoch_s
        self.valid = True

    def now_s(self):
        return self.epoch_s + self._clock.now_ms // 1000 if self.valid else -1

    def set_s(self, s):
        """The firmware sets it (its time lost at boot: firmware/persist.py)."""
        self.epoch_s = s - self._clock.now_ms // 1000
        self.valid = True
