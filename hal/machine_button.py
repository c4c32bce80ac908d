# A push button on a board (hal/interfaces.py: Button): the patient's PTM button, or a demo key.
#
# A Pin.irq on the pressing edge (falling for an active-low button with the pull-up, rising for
# an active-high one with the pull-down). The IRQ handler (it may be a hard IRQ) allocates
# nothing: it calls micropython.schedule with a bound method cached at construction, and
# coalesces the edges of one bounce while that call is queued. The scheduled function
# debounces: it counts a press only if at least debounce_ms passed since the last accepted edge
# AND the pin still reads pressed. If the schedule queue is full (RuntimeError) the edge is
# dropped silently and counted in `dropped`.
#
# Limit of the edge-only rule: a release that bounces more than debounce_ms after the press
# was accepted can read pressed for an instant and count again; debounce_ms is per button.
# The time is the port's time.ticks_ms (an instance attribute: a test can swap in a fake tick).
#
# Long presses: held_ms() reads the pin and says how long the button has been held since its
# last accepted press (-1 once let go), so a board can tell a long press from a short one by
# polling it (boards/pumpboard.py: toy mode's quiet). It allocates nothing.

import time

import machine

import micropython
from micropython import const

_MASK = const(0x3FFFFFFF)  # the IRQ's counters stay small ints


class Button:
    def __init__(self, pin, debounce_ms=50, active_low=True):
        if isinstance(debounce_ms, bool) or not isinstance(debounce_ms, int) or not 0 <= debounce_ms <= 10_000:
            raise ValueError("button debounce_ms: must be an integer 0..10000")
        self._level = 0 if active_low else 1  # the level that reads pressed
        if isinstance(pin, (int, str)):
            pin = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP if active_low else machine.Pin.PULL_DOWN)
        self._pin = pin
        self._debounce = debounce_ms
        self.ticks_ms = time.ticks_ms
        self._ticks_diff = time.ticks_diff
        self._pending = 0
        self._last = 0  # tick of the last accepted edge
        self._accepted = False  # any edge accepted yet (before that, _last means nothing)
        self._queued = False  # a scheduled call is waiting
        self.edges = 0  # edges seen by the IRQ
        self.dropped = 0  # edges lost to a full schedule queue
        # Bound once: the IRQ runs with the heap possibly locked.
        self._irq_ref = self._irq
        self._scheduled_ref = self._scheduled
        pin.irq(handler=self._irq_ref, trigger=machine.Pin.IRQ_FALLING if active_low else machine.Pin.IRQ_RISING)

    # -- Button interface -----------------------------------------------------------------------

    def pending(self):
        return self._pending

    def presses(self):
        n = self._pending
        self._pending = 0
        return n

    def held_ms(self):
        """ms the button has been held since its last accepted press; -1 if it is not held now."""
        if not self._accepted or self._pin.value() != self._level:
            return -1
        d = self._ticks_diff(self.ticks_ms(), self._last)
        return d if d >= 0 else 0

    # -- interrupt side ---------------------------------------------------------------------------

    def _irq(self, pin):
        self.edges = (self.edges + 1) & _MASK
        if self._queued:
            return  # a bounce of the edge already queued: the scheduled call reads the pin
        try:
            micropython.schedule(self._scheduled_ref, 0)
            self._queued = True
        except RuntimeError:  # the queue is full
            self.dropped = (self.dropped + 1) & _MASK

    def _scheduled(self, _):
        self._queued = False
        now = self.ticks_ms()
        # A wrapped difference (no accepted press for over 2**29 ms, 6.2 days) reads negative:
        # only [0, debounce_ms) is a bounce.
        if self._accepted and 0 <= self._ticks_diff(now, self._last) < self._debounce:
            return
        if self._pin.value() != self._level:
            return  # a glitch, or already released
        self._accepted = True
        self._last = now
        self._pending += 1
