# Clock backends for MicroPython boards (hal/interfaces.py: Clock, and the Pollers it drives).
#
# MachineClock: the port's own wrapping ticks. DemoClock: the same interface on virtual ticks
# that run `speed` times faster than the port's (demo mode: a day of dosing in minutes), and
# never past the deadline a wait() was given.
#
# wait(deadline, ready) is the board's idle loop: about once a ms it reads the tick, lets every
# Poller (the motor, the buzzer, the LED, the board) act on it, and returns as soon as ready()
# is true or the deadline is reached. It never returns False: a board runs for ever. Nothing in
# it allocates (the pollers are a preallocated list iterated in place; frames are kept small).
#
# The port's tick functions are bound as instance attributes at construction, so a test can
# replace them on the instance (ticks_ms, _real_ms, _sleep_ms) to run on a fake tick.

import time

from micropython import const

DEMO_SPEED_MAX = const(10_000)
_OWED_REAL_MS = const(1000)  # a demo clock owes at most a real second of virtual time


class MachineClock:
    """The port's time.ticks_* (period 2**30 on the boards), with a polling wait()."""

    def __init__(self, pollers=()):
        # Bound once: the controller calls these on every wake.
        self.ticks_ms = time.ticks_ms
        self.ticks_add = time.ticks_add
        self.ticks_diff = time.ticks_diff
        self._sleep_ms = time.sleep_ms
        self._pollers = list(pollers)

    def add_poller(self, p):
        """p.poll(now) is called at every iteration of wait() (about once a ms)."""
        self._pollers.append(p)

    def wait(self, deadline, ready):
        while True:
            now = self.ticks_ms()
            self._poll(now)
            if ready() or self.ticks_diff(deadline, now) <= 0:
                return True
            self._sleep_ms(1)

    def _poll(self, now):
        for p in self._pollers:
            p.poll(now)


class DemoClock(MachineClock):
    """Virtual ticks running `speed` (1..10_000) times faster than the port's.

    ticks_ms() is the virtual tick; it wraps at the port's period and moves only with ticks_add,
    by the real ms elapsed times `speed` (integers only). It advances in wait() (and in
    advance()), so it stands still while the firmware services a wake.

    A wake is never late: in wait() the virtual tick stops at the deadline, whatever real time
    passed (a slow poll, the firmware's service). Virtual time not yet run is owed, and each poll
    runs at most a quarter more than `speed` virtual ms of it: the average speed holds where
    deadlines allow, and virtual time never outruns the motor's pace (firmware/config.py checks a
    demo's strokes against speed x 5/4). At most a real second is owed: a host too slow for the
    speed runs the demo slower. The pollers get the virtual tick.
    """

    def __init__(self, speed, pollers=()):
        if isinstance(speed, bool) or not isinstance(speed, int) or not 1 <= speed <= DEMO_SPEED_MAX:
            raise ValueError("demo_speed: must be an integer 1..10000, not %r" % (speed,))
        MachineClock.__init__(self, pollers)
        self.speed = speed
        self._owed_max = speed * _OWED_REAL_MS  # < 2**29: one ticks_add step
        self._step_max = speed + speed // 4  # virtual ms a poll may run
        self._real_ms = time.ticks_ms
        self._real = self._real_ms()
        self._virtual = self._real
        self.owed = 0  # virtual ms not yet run
        self.ticks_ms = self._ticks_ms  # bound once, over the port's ticks_ms bound above

    def _ticks_ms(self):
        return self._virtual

    def _owe(self):
        """Adds the real ms elapsed since the last call, speed times over, to what is owed."""
        d = self.ticks_diff(self._real_ms(), self._real)
        if d <= 0:
            return
        self._real = self.ticks_add(self._real, d)
        if d > _OWED_REAL_MS:
            d = _OWED_REAL_MS
        self.owed += d * self.speed
        if self.owed > self._owed_max:
            self.owed = self._owed_max

    def _run(self, ms):
        """Moves the virtual tick on by ms, at most what is owed and what a poll may run."""
        if ms > self.owed:
            ms = self.owed
        if ms > self._step_max:
            ms = self._step_max
        if ms > 0:
            self._virtual = self.ticks_add(self._virtual, ms)
            self.owed -= ms

    def advance(self):
        """One poll's worth: the virtual tick runs what is owed, as far as a poll may (no deadline)."""
        self._owe()
        self._run(self.owed)

    def wait(self, deadline, ready):
        while True:
            self._owe()
            self._run(self.ticks_diff(deadline, self._virtual))
            now = self._virtual
            self._poll(now)
            if ready() or self.ticks_diff(deadline, now) <= 0:
                return True
            self._sleep_ms(1)
