# Annunciator backend for a board: a piezo buzzer on a PWM pin (hal/interfaces.py: Annunciator,
# and a Poller).
#
# A sound is a preallocated tuple of (freq_hz, ms) steps; freq 0 is silence (duty 0, the
# frequency is left as it was: several ports reject freq(0)). Nothing blocks: tone(), chirp()
# and beep_low() only select a pattern, and poll() (called by the board clock's wait() about once
# a ms) starts it and moves from step to step. A new sound replaces the one playing.
#
# Patterns run in real time, on the port's own time.ticks_ms, whatever tick the clock passes to
# poll(now): a DemoClock passes virtual ticks, and a 3 s alarm must still last 3 s. (ticks_ms is
# an instance attribute, so a test can swap in a fake tick.) poll() allocates nothing.

import time

import machine

from micropython import const

CRITICAL = const(2)  # firmware.alarms.CRITICAL
NON_CRITICAL = const(1)  # firmware.alarms.NON_CRITICAL
DUTY_ON = const(32768)  # 50 %: the loudest square wave

# CRITICAL: two tones alternating, 250 ms each, 3 s in all.
CRITICAL_PATTERN = ((988, 250), (659, 250)) * 6
# NON_CRITICAL: one tone, 1 s.
NON_CRITICAL_PATTERN = ((880, 1000),)
# Demo mode: a granted bolus, a short happy rising chirp (C6, E6, G6) ...
CHIRP_PATTERN = ((1047, 70), (1319, 70), (1568, 120))
# ... and a refused one, a short low "not yet".
BEEP_LOW_PATTERN = ((220, 250),)


class Buzzer:
    def __init__(self, pin):
        if isinstance(pin, (int, str)):
            pin = machine.Pin(pin, machine.Pin.OUT)
        self._pwm = machine.PWM(pin)
        self._pwm.freq(1000)
        self._pwm.duty_u16(0)
        self.ticks_ms = time.ticks_ms
        self._ticks_diff = time.ticks_diff
        self._ticks_add = time.ticks_add
        self._pattern = None  # the pattern playing (or about to start at the next poll)
        self._i = -1  # its step playing; -1: not started yet
        self._until = 0  # tick the step ends
        self.sounded = 0  # patterns started, for the board's report

    # -- Annunciator ----------------------------------------------------------------------------

    def tone(self, cls, alarm):
        self._play(CRITICAL_PATTERN if cls == CRITICAL else NON_CRITICAL_PATTERN)

    # -- demo sounds ----------------------------------------------------------------------------

    def chirp(self):
        self._play(CHIRP_PATTERN)

    def beep_low(self):
        self._play(BEEP_LOW_PATTERN)

    def off(self):
        self._pattern = None
        self._pwm.duty_u16(0)

    def playing(self):
        return self._pattern is not None

    def _play(self, pattern):
        self._pattern = pattern
        self._i = -1
        self.sounded += 1

    # -- Poller -----------------------------------------------------------------------------------

    def poll(self, now):
        if self._pattern is None:
            return
        t = self.ticks_ms()
        if self._i >= 0 and self._ticks_diff(t, self._until) < 0:
            return
        self._i += 1
        if self._i >= len(self._pattern):
            self.off()
            return
        if self._i:  # steps follow each other exactly: the pattern does not drift with late polls
            t = self._until
        self._step(t, self._pattern[self._i])

    def _step(self, t, step):
        self._until = self._ticks_add(t, step[1])
        if step[0]:
            self._pwm.freq(step[0])
            self._pwm.duty_u16(DUTY_ON)
        else:
            self._pwm.duty_u16(0)
