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


def raises(exc_type, fn):
    """Calls fn(); returns the exc_type it raised, or fails the test if it raised none."""
    try:
        fn()
    except exc_type as e:
        return e
    raise AssertionError("%s not raised" % exc_type.__name__)


def heap_meter():
    """On MicroPython: a function returning bytes allocated so far (gc stays disabled until
    heap_meter_done(), so nothing is freed in between). None on CPython.

    Measures with the heap unlocked: heap_lock would let oversized call frames fall back to the
    C stack silently, hiding the allocation a normal run makes.
    """
    import sys

    if sys.implementation.name != "micropython":
        return None
    import gc

    import micropython

    gc.collect()
    gc.disable()
    total = getattr(micropython, "mem_total", None)  # unix port: cumulative, exact
    return total if total else gc.mem_alloc


def heap_meter_done():
    import gc

    gc.enable()


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
    # As the ports (extmod/modtime.c): tick values are taken modulo 2**30; ticks_add raises
    # OverflowError unless -2**29 < delta < 2**29; ticks_diff never raises.
    def ticks_add(self, t, delta):
        if -_HALF < delta < _HALF:
            # Offset by half a period so the sum stays within +-2**30; the xor adds it back.
            return (((t & _MASK) - _HALF + delta) & _MASK) ^ _HALF
        delta & 0  # a float delta: TypeError, as the port converts it before the check
        raise OverflowError("ticks interval overflow")

    def ticks_diff(self, a, b):
        # The xor adds half a period modulo 2**30: ((a - b + 2**29) mod 2**30) - 2**29.
        return ((((a & _MASK) - (b & _MASK)) & _MASK) ^ _HALF) - _HALF

    def advance(self, ms):
        self.tick = self.ticks_add(self.tick, ms)
        self.now_ms += ms

    def until(self, deadline):
        """Jump to a deadline tick (never backwards)."""
        d = self.ticks_diff(deadline, self.tick)
        if d > 0:
            self.advance(d)


class FakeMotor:
    """Walks each train with the HAL cursor, as a board backend would; optionally records times.

    strokes() is the monotonic count (masked like a board's); a train's strokes already fired
    (numbered base + k) are skipped at start().
    """

    MASK = (1 << 29) - 1

    def __init__(self, clock, record=True, count=0):
        self.clock = clock
        self.train = None
        self._next = -1
        self.record = record
        self.times = []  # absolute ms (clock.now_ms) of every stroke
        self.total = 0
        self.count = count & self.MASK

    def start(self, train):
        self.strokes()
        self._adopt(train)

    def _adopt(self, train):
        """Walk the new train, skipping the strokes numbered up to what this motor already fired."""
        self.train = train
        train.rewind()
        self._next = train.next_offset()
        for _ in range((self.count - train.base) & self.MASK):
            if self._next < 0:
                break
            self._next = train.next_offset()

    def stop(self):
        self.train = None

    def _fire(self, t_ms):
        self.count = (self.count + 1) & self.MASK
        self.total += 1
        if self.record:
            self.times.append(t_ms)

    def strokes(self):
        train = self.train
        if train is not None:
            clock = self.clock
            age = clock.ticks_diff(clock.tick, train.origin)
            while 0 <= self._next <= age:
                self._fire(clock.now_ms - age + self._next)
                self._next = train.next_offset()
        return self.count


class Events:
    def __init__(self):
        self.log = []

    def __call__(self, code, a, b, c):
        self.log.append((code, a, b, c))

    def codes(self):
        return [e[0] for e in self.log]


def oracle_stroke_times(segments, stroke_pg, end_ms):
    """Independent reference for the delivery rule, in exact (big) integers.

    segments: [(start_ms, rate_ng_per_day)], sorted, the first at 0. stroke_pg: the tip mass of
    every stroke, or runs [(strokes, pg)] whose last run goes on for ever. Stroke k fires at the
    first whole ms t with sum(rate * dt) >= (tip mass of strokes 1..k) * 86_400_000 ms/day.
    """
    runs = [(0, stroke_pg)] if isinstance(stroke_pg, int) else stroke_pg
    times = []
    acc = 0  # ideal mass in ng*ms/day at the start of the current segment
    target = 0  # tip mass of strokes 1..k in pg
    k = 1
    for i in range(len(segments)):
        t0, rate = segments[i]
        t1 = segments[i + 1][0] if i + 1 < len(segments) else end_ms
        if rate:
            while True:
                run = 0
                n = k
                while run < len(runs) - 1 and n > runs[run][0]:
                    n -= runs[run][0]
                    run += 1
                need = (target + runs[run][1]) * 86_400 - acc
                t = t0 + (need + rate - 1) // rate  # ceil
                if t > t1:
                    break
                times.append(t)
                target += runs[run][1]
                k += 1
        acc += rate * (t1 - t0)
    return times


def bolus_segments(start_ms, amount_ng, minutes):
    """The two integer-rate phases of a bolus: [(t, delta_rate)] to add to a basal timeline."""
    q, r = divmod(amount_ng * 1440, minutes)
    out = [(start_ms, q + (1 if r else 0))]
    if r:
        out.append((start_ms + r * 60_000, -1))
    out.append((start_ms + minutes * 60_000, -q))
    return out


def timeline(changes, end_ms):
    """[(t, delta_rate)] -> sorted [(t, rate)] segments starting at 0."""
    points = {0: 0}
    for t, d in changes:
        points[t] = points.get(t, 0) + d
    out = []
    rate = 0
    for t in sorted(points):
        if t >= end_ms:
            break
        rate += points[t]
        out.append((t, rate))
    return out


def run_controller(ctl, clock, end_ms, requests=()):
    """Jump from deadline to deadline; requests are (t_ms, callable) applied at their time."""
    requests = list(requests)
    while True:
        t_dead = clock.now_ms + clock.ticks_diff(ctl.deadline(), clock.tick)
        t_req = requests[0][0] if requests else end_ms
        t = min(t_dead, t_req, end_ms)
        clock.advance(t - clock.now_ms)
        if t == t_dead:
            ctl.service()
        while requests and requests[0][0] == t:
            requests.pop(0)[1]()
        if t >= end_ms:
            ctl.service()
            return
