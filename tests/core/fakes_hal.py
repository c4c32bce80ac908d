# Small HAL fakes (hal/interfaces.py) for driving firmware/loop.py in the core tests, on CPython and
# MicroPython alike: a clock whose wait() jumps time, a motor with stall, block and runaway faults,
# an annunciator that records tones, a button, a programmer that keeps every reply, an ADC.

from support import FakeClock, FakeMotor

from hal.channel import Channel
from hal.interfaces import LOAD_NORMAL, MOTOR_OVERLOAD, MOTOR_STALL, MOTOR_UNCOMMANDED

_BIG = 1 << 29  # "no limit" for the motor's loads (a small int on every port)


class LoopClock(FakeClock):
    """FakeClock (MicroPython-exact ticks) with the HAL wait().

    wait(deadline, ready) jumps time to the earliest of: the deadline, the next scheduled action
    (at(ms, fn): the outside world, ms since the test started), the motor's next stroke (so a
    fault the motor reports at a stroke wakes the loop at that ms) and end_ms. It returns True at
    the deadline or as soon as ready() is true, False at end_ms (the backend shutting down).
    """

    def __init__(self, start=None):
        if start is None:
            FakeClock.__init__(self)
        else:
            FakeClock.__init__(self, start)
        self.motor = None
        self.end_ms = -1  # -1: wait() never returns False
        self.actions = []  # (ms, fn), kept sorted
        self.waits = 0
        # A wrong behaviour that keeps the loop in one ms fails at once instead of hanging the suite.
        self.max_spin = 1000  # waits in a row that move time by 1 ms or less
        self.max_waits = 2_000_000  # waits over the whole test
        self._spin = 0
        self._spin_ms = 0

    def at(self, ms, fn):
        i = 0
        while i < len(self.actions) and self.actions[i][0] <= ms:
            i += 1
        self.actions.insert(i, (ms, fn))

    def _run_actions(self):
        while self.actions and self.actions[0][0] <= self.now_ms:
            fn = self.actions.pop(0)[1]
            fn()

    def wait(self, deadline, ready):
        self.waits += 1
        assert self.waits <= self.max_waits, "the loop woke %d times: runaway loop at %d ms" % (self.waits, self.now_ms)
        if self.now_ms - self._spin_ms <= 1:
            self._spin += 1
            assert self._spin <= self.max_spin, "the loop spins: %d wakes in a row at %d ms" % (self._spin, self.now_ms)
        else:
            self._spin = 0
        self._spin_ms = self.now_ms
        self._run_actions()
        if ready():
            return True
        while True:
            step = self.ticks_diff(deadline, self.tick)
            if step < 0:
                step = 0
            if self.actions:
                a = self.actions[0][0] - self.now_ms
                if a < step:
                    step = a if a > 0 else 0
            if self.motor is not None:
                m = self.motor.ms_to_next_stroke()
                if 0 <= m < step:
                    step = m
            if self.end_ms >= 0 and self.end_ms - self.now_ms < step:
                step = self.end_ms - self.now_ms
                if step < 0:
                    step = 0
            self.advance(step)
            self._run_actions()
            if self.motor is not None:
                self.motor.strokes()  # the motor runs in real time: strokes and faults happen now
            if self.end_ms >= 0 and self.now_ms >= self.end_ms:
                return False
            if self.ticks_diff(deadline, self.tick) <= 0 or ready():
                return True

    def run_until(self, loop, end_ms):
        """Runs loop.run() until end_ms (ms since the test started)."""
        self.end_ms = end_ms
        loop.run()
        self.end_ms = -1


class HalMotor(FakeMotor):
    """FakeMotor (walks each StrokeTrain with the HAL cursor) plus the rest of the Motor interface.

    Faults the test stages:
      stalled = True   the next stroke due fails: MOTOR_STALL, and the train ends
      blocked = True   each completed stroke raises the line load by load_step percent
      uncommanded()    the rotor makes a stroke by itself (if powered): MOTOR_UNCOMMANDED
    line_load is the load at rest (settable: a released block sets it back to LOAD_NORMAL).
    """

    def __init__(self, clock, record=True, count=0):
        FakeMotor.__init__(self, clock, record, count)
        self.stalled = False
        self.blocked = False
        self.load_step = 25
        self.line_load = LOAD_NORMAL
        self.powered = True
        self.enables = []  # (now_ms, on) of every enable() call
        self.failed = 0  # stroke attempts that did not complete ...
        self.failed_ms = []  # ... and when (record=True)
        self.uncommanded_total = 0
        self.handler = None
        self.load_limit = _BIG
        self.pressure_load = _BIG
        self._pressed = 0
        self._faults = 0
        self.starts = 0

    # -- Motor interface beyond FakeMotor ------------------------------------------------------

    def start(self, train):
        self.starts += 1
        FakeMotor.start(self, train)

    def strokes(self):
        train = self.train
        if train is not None and self.powered:
            clock = self.clock
            age = clock.ticks_diff(clock.tick, train.origin)
            while 0 <= self._next <= age:
                if self.stalled:
                    self.failed += 1
                    if self.record:
                        self.failed_ms.append(clock.now_ms)
                    self.train = None  # a stroke that fails ends its train
                    self._raise(MOTOR_STALL)
                    break
                self._fire(clock.now_ms - age + self._next)
                if self._loaded():
                    break
                self._next = train.next_offset()
        return self.count

    def _loaded(self):
        """After a completed stroke: its load against the pressure and load limits."""
        if self.blocked:
            self.line_load += self.load_step
        if self.line_load > self.pressure_load:
            self._pressed += 1
        if self.line_load >= self.load_limit:
            self.train = None
            self._raise(MOTOR_OVERLOAD)
            return True
        return False

    def faults(self):
        self.strokes()
        f = self._faults
        self._faults = 0
        return f

    def load(self):
        self.strokes()
        return self.line_load

    def set_load_limit(self, percent):
        self.load_limit = percent

    def set_pressure_load(self, percent):
        self.pressure_load = percent

    def pressed(self):
        self.strokes()
        n = self._pressed
        self._pressed = 0
        return n

    def enable(self, on):
        if self.powered:
            self.strokes()
        self.enables.append((self.clock.now_ms, on))
        self.powered = on

    def on_fault(self, handler):
        self.handler = handler

    def _raise(self, bits):
        self._faults |= bits
        if self.handler is not None:
            self.handler(bits)

    # -- for the fake clock and the tests --------------------------------------------------------

    def ms_to_next_stroke(self):
        """ms from now to the next stroke of the train, -1 if none will fire."""
        train = self.train
        if train is None or not self.powered or self._next < 0:
            return -1
        d = self._next - self.clock.ticks_diff(self.clock.tick, train.origin)
        return d if d > 0 else 0

    def uncommanded(self):
        """The rotor turns by itself: counted like any stroke and reported at once (if powered)."""
        self.strokes()
        if not self.powered:
            return False
        self.uncommanded_total += 1
        self._fire(self.clock.now_ms)
        self._loaded()
        self._raise(MOTOR_UNCOMMANDED)
        return True


class RecordingAnnunciator:
    """Records (ms, class, alarm id) of every tone; with record=False only counts them (no allocation)."""

    def __init__(self, clock, record=True):
        self.clock = clock
        self.record = record
        self.tones = []
        self.count = 0

    def tone(self, cls, alarm):
        self.count += 1
        if self.record:
            self.tones.append((self.clock.now_ms, cls, alarm))


class FakeButton:
    def __init__(self):
        self._n = 0
        self.taken = 0

    def press(self, n=1):
        self._n += n

    def pending(self):
        return self._n

    def presses(self):
        n = self._n
        self._n = 0
        self.taken += n
        return n


class FakeProgrammer(Channel):
    """hal.channel.Channel that keeps every (command, result) reply."""

    def __init__(self, size=8):
        Channel.__init__(self, size)
        self.replies = []

    def reply(self, command, result):
        Channel.reply(self, command, result)
        self.replies.append((command, result))


class FakeAdc:
    def __init__(self, mv=3000):
        self.mv = mv
        self.reads = 0

    def read_mv(self):
        self.reads += 1
        return self.mv


class TimedEvents:
    """The firmware's emit(code, a, b, c), recorded with the ms it was reported at."""

    def __init__(self, clock):
        self.clock = clock
        self.log = []

    def __call__(self, code, a, b, c):
        self.log.append((self.clock.now_ms, code, a, b, c))

    def of(self, code):
        """[(ms, a, b, c)] of the events with that code."""
        return [(e[0], e[2], e[3], e[4]) for e in self.log if e[1] == code]


class Rig:
    """A PumpLoop on these fakes. Keyword arguments go to PumpLoop (pump, rx, volume_nl, ...)."""

    def __init__(self, pump, rx, record=True, counting_emit=False, **kw):
        from firmware.loop import PumpLoop

        self.clock = LoopClock()
        self.motor = HalMotor(self.clock, record)
        self.clock.motor = self.motor
        self.ann = RecordingAnnunciator(self.clock, record)
        self.button = FakeButton()
        self.prog = FakeProgrammer(32)
        self.adc = FakeAdc()
        if counting_emit:
            self.counts = [0]
            counts = self.counts

            def emit(code, a, b, c):
                counts[0] += 1

            self.events = emit
        else:
            self.events = TimedEvents(self.clock)
        self.loop = PumpLoop(self.clock, self.motor, self.ann, self.button, self.prog, self.adc, pump, rx,
                             self.events, **kw)
        self.refused_ok = 0  # zero-length waits the loop may refuse (a test that plants a bug)

    def run_until(self, end_ms):
        self.clock.run_until(self.loop, end_ms)
        assert self.loop.refused == self.refused_ok, "%d zero-length waits refused" % self.loop.refused

    def at(self, ms, fn):
        self.clock.at(ms, fn)

    def send(self, ms, command):
        def queue():
            assert self.prog.send(command), "programmer channel full"

        self.clock.at(ms, queue)


# The standard prescription of these tests: 600 mcg/day of 2000 mcg/mL in 250 nL strokes, one
# stroke of 500 ng at the tip every 72 s exactly (the path holds the same drug); a patient bolus of
# 20 mcg over 10 minutes, 60-minute lockout, 4 a day; a hard limit of 1000 mcg a day.
STROKE_MS = 72_000
BASAL_NG_PER_DAY = 600_000
CONCENTRATION = 2000
PTM_NG = 20_000
PTM_MINUTES = 10
PTM_LOCKOUT_MIN = 60
PTM_PER_DAY = 4
MAX_DAILY_NG = 1_000_000


def standard_rx():
    from firmware.prescription import Bolus, Prescription, Profile

    return Prescription(CONCENTRATION, [Profile([0], [BASAL_NG_PER_DAY], "basal.steps")] * 7, (),
                        (Bolus(PTM_NG, PTM_MINUTES, "ptm"), PTM_LOCKOUT_MIN, PTM_PER_DAY), MAX_DAILY_NG)


def standard_rig(**kw):
    from firmware.prescription import PumpParams

    return Rig(PumpParams(), standard_rx(), **kw)
