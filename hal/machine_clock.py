# Clock backends for MicroPython boards (hal/interfaces.py: Clock, and the Pollers it drives).
#
# MachineClock: the port's own wrapping ticks. DemoClock: the same interface on virtual ticks
# that run `speed` times faster than the port's (demo mode: a day of dosing in minutes).
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
_STEP = const((1 << 29) - 1)  # the largest delta ticks_add takes: each virtual step stays below it


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
    by the real ms elapsed times `speed`, in steps below 2**29 (integers only). It advances in
    wait() (and in advance()), so it stands still while the firmware services a wake, and the
    real time the service took is added at the next wait. The pollers get the virtual tick.
    """

    def __init__(self, speed, pollers=()):
        if isinstance(speed, bool) or not isinstance(speed, int) or not 1 <= speed <= DEMO_SPEED_MAX:
            raise ValueError("demo_speed: must be an integer 1..10000, not %r" % (speed,))
        MachineClock.__init__(self, pollers)
        self.speed = speed
        self._chunk = _STEP // speed  # real ms per ticks_add step, so chunk * speed < 2**29
        self._real_ms = time.ticks_ms
        self._real = self._real_ms()
        self._virtual = self._real
        self.ticks_ms = self._ticks_ms  # bound once, over the port's ticks_ms bound above

    def _ticks_ms(self):
        return self._virtual

    def advance(self):
        """Bring the virtual tick up to the real time elapsed since the last call."""
        now = self._real_ms()
        d = self.ticks_diff(now, self._real)
        if d <= 0:
            return
        self._real = now
        while d > self._chunk:
            self._virtual = self.ticks_add(self._virtual, self._chunk * self.speed)
            d -= self._chunk
        self._virtual = self.ticks_add(self._virtual, d * self.speed)

    def wait(self, deadline, ready):
        while True:
            self.advance()
            now = self._virtual
            self._poll(now)
            if ready() or self.ticks_diff(deadline, now) <= 0:
                return True
            self._sleep_ms(1)
