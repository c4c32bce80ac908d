# Shared by the core tests on CPython (pytest) and MicroPython (tests/core/mprunner.py).

try:
    import pytest

    def skip(reason):
        pytest.skip(reason)

except ImportError:

    class SkipTest(Exception):
        pass

    def skip(reason):
        raise SkipTest(reason)


_MASK = 0x3FFFFFFF  # ticks period 2**30 minus 1: 2**30 itself is not a small int on 32-bit ports
_HALF = 1 << 29


class FakeClock:
    """MicroPython tick semantics (period 2**30) without the real clock; starts near a wrap."""

    def __init__(self, start=_MASK + 1 - 300_000):
        self.tick = start
        self.now_ms = 0  # ms since the test started

    def ticks_ms(self):
        return self.tick

    # Written so no intermediate leaves the 32-bit small-int range, as C does on a board.
    def ticks_add(self, t, delta):
        t = t - _MASK + delta - 1
        return t + _MASK + 1 if t < 0 else t

    def ticks_diff(self, a, b):
        d = a - b
        if d >= _HALF:
            return d - _MASK - 1
        if d < -_HALF:
            return d + _MASK + 1
        return d

    def advance(self, ms):
        self.tick = self.ticks_add(self.tick, ms)
        self.now_ms += ms

    def until(self, deadline):
        """Jump to a deadline tick (never backwards)."""
        d = self.ticks_diff(deadline, self.tick)
        if d > 0:
            self.advance(d)


class FakeMotor:
    """Walks each train with the HAL cursor, as a board backend would; optionally records times."""

    def __init__(self, clock, record=True):
        self.clock = clock
        self.train = None
        self._done = 0
        self._next = -1
        self.record = record
        self.times = []  # absolute ms (clock.now_ms) of every stroke
        self.total = 0

    def start(self, train):
        self.train = train
        train.rewind()
        self._done = 0
        self._next = train.next_offset()

    def stop(self):
        self.train = None

    def emitted(self):
        if self.train is None:
            return 0
        train = self.train
        clock = self.clock
        age = clock.ticks_diff(clock.tick, train.origin)
        while self._next >= 0 and self._next <= age:
            self._done += 1
            self.total += 1
            if self.record:
                self.times.append(clock.now_ms - age + self._next)
            self._next = train.next_offset()
        return self._done


class Events:
    def __init__(self):
        self.log = []

    def __call__(self, code, a, b, c):
        self.log.append((code, a, b, c))

    def codes(self):
        return [e[0] for e in self.log]


def oracle_stroke_times(segments, stroke_nl, end_ms):
    """Independent reference for the delivery rule, in exact (big) integers.

    segments: [(start_ms, rate_nl_per_day)], sorted, the first at 0. Stroke k fires at the first
    whole ms t with sum(rate * dt) >= k * stroke_nl * 86_400_000.
    """
    day = 86_400_000
    times = []
    acc = 0  # ideal volume * day at the start of the current segment
    k = 1
    for i in range(len(segments)):
        t0, rate = segments[i]
        t1 = segments[i + 1][0] if i + 1 < len(segments) else end_ms
        if rate:
            while True:
                need = k * stroke_nl * day - acc
                t = t0 + (need + rate - 1) // rate  # ceil
                if t > t1:
                    break
                times.append(t)
                k += 1
        acc += rate * (t1 - t0)
    return times


def nl_per_day(mcg_per_day, concentration):
    return mcg_per_day * 1_000_000 // concentration
