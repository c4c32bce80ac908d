# Status LED for a board (a Poller): a blink per stroke in demo mode, the alarm class, and a
# fault pattern when the board's configuration is invalid (the pump does not start).
#
# A pattern is a preallocated tuple of (level, ms) steps that repeats; a blink is one short
# flash. poll() (called by the board clock's wait() about once a ms) drives the pin; it runs in
# real time on the port's time.ticks_ms (an instance attribute: a test can swap in a fake
# tick), whatever tick the clock passes, so the patterns look the same in demo mode. An alarm
# or fault pattern owns the LED: blink() is ignored while one shows. poll() allocates nothing.

import time

import machine

from micropython import const

CRITICAL = const(2)  # firmware.alarms.CRITICAL
NON_CRITICAL = const(1)  # firmware.alarms.NON_CRITICAL
BLINK_MS = const(40)

SLOW_PATTERN = ((1, 200), (0, 1800))  # a non-critical alarm: one flash every 2 s
FAST_PATTERN = ((1, 100), (0, 150))  # a critical alarm: 4 flashes a second
FAULT_PATTERN = ((1, 120), (0, 120), (1, 120), (0, 120), (1, 120), (0, 1000))  # 3 quick, a pause
BLINK_PATTERN = ((1, BLINK_MS),)  # then off


class Led:
    def __init__(self, pin):
        if isinstance(pin, (int, str)):
            pin = machine.Pin(pin, machine.Pin.OUT)
        self._pin = pin
        self.ticks_ms = time.ticks_ms
        self._ticks_diff = time.ticks_diff
        self._ticks_add = time.ticks_add
        self._pattern = None
        self._repeat = False
        self._i = -1  # step showing; -1: starts at the next poll
        self._until = 0
        self.blinks = 0
        self._set(0)

    def blink(self):
        """One short flash (a stroke, in demo mode); ignored while an alarm or fault pattern shows."""
        if self._repeat:
            return
        self._show(BLINK_PATTERN, False)
        self.blinks += 1

    def pattern(self, cls):
        """Slow blink while a non-critical alarm is active, fast while a critical one is."""
        self._show(FAST_PATTERN if cls == CRITICAL else SLOW_PATTERN, True)

    def fault(self):
        """The board cannot run (an invalid configuration): three quick flashes and a pause."""
        self._show(FAULT_PATTERN, True)

    def off(self):
        self._pattern = None
        self._repeat = False
        self._set(0)

    def showing(self):
        """The pattern showing (one of the *_PATTERN tuples), or None."""
        return self._pattern

    def _show(self, pattern, repeat):
        if pattern is self._pattern and repeat and self._repeat:
            return  # already showing: keep its phase
        self._pattern = pattern
        self._repeat = repeat
        self._i = -1

    def _set(self, level):
        self._pin.value(level)  # active high (the Pico's GP25, the ESP32's GPIO2, an LED to ground)

    def poll(self, now):
        if self._pattern is None:
            return
        t = self.ticks_ms()
        if self._i >= 0:
            if self._ticks_diff(t, self._until) < 0:
                return
            t = self._until  # steps follow each other exactly
        self._i += 1
        if self._i >= len(self._pattern):
            if not self._repeat:
                self.off()
                return
            self._i = 0
        self._step(t, self._pattern[self._i])

    def _step(self, t, step):
        self._until = self._ticks_add(t, step[1])
        self._set(step[0])
