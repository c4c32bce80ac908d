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
#
# The output: machine.PWM(pin) where the port has no `pyb`. On the pyboard (every release:
# machine.PWM only appears in 1.28.0, and it would take the pin's first timer, maybe the step
# engine's), PybPwm: a pyb.Timer PWM channel with machine.PWM's freq()/duty_u16(), on the buzzer
# pin's own timer and channel (pyb_timer_channels), never `step_timer` (board.json motor.timer:
# the step engine's, whose frequency the buzzer must not touch).

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


def pyb_timer_channels(pin):
    """The (timer, channel) outputs TIMn_CHm of a pyboard pin: MicroPython's
    ports/stm32/boards/stm32f405_af.csv for the pins of PYBV11/pins.csv (X1 is PA0, ...)."""
    return {
        "X1": ((2, 1), (5, 1)), "X2": ((2, 2), (5, 2)), "X3": ((2, 3), (5, 3), (9, 1)),
        "X4": ((2, 4), (5, 4), (9, 2)), "X6": ((2, 1),), "X7": ((3, 1), (13, 1)), "X8": ((3, 2), (14, 1)),
        "X9": ((4, 1),), "X10": ((4, 2),), "X17": ((2, 2),), "Y1": ((3, 1), (8, 1)), "Y2": ((3, 2), (8, 2)),
        "Y3": ((4, 3), (10, 1)), "Y4": ((4, 4), (11, 1)), "Y7": ((12, 1),), "Y8": ((12, 2),),
        "Y9": ((2, 3),), "Y10": ((2, 4),), "Y11": ((3, 3),), "Y12": ((3, 4),),
    }.get(pin, ())


class PybPwm:
    """machine.PWM's freq() and duty_u16() on a pyboard timer channel. pyb's Timer.freq(f) rewrites
    prescaler and period but not the compare (ports/stm32/timer.c), so the duty is set again after
    each freq(); the two land at the same update event (both registers are preloaded)."""

    def __init__(self, pin, step_timer):
        import pyb  # pyright: ignore[reportMissingImports]  (the pyboard only)

        ok = [tc for tc in pyb_timer_channels(pin) if tc[0] != step_timer]
        if not ok:
            raise ValueError("board.json: buzzer_pin: %r has no timer channel%s: use one that has (X9, X10, "
                             "Y1..Y4, ...)" % (pin, " but motor.timer %d's" % step_timer
                                               if pyb_timer_channels(pin) else ""))
        self.tim = pyb.Timer(ok[0][0], freq=1000)
        self.ch = self.tim.channel(ok[0][1], pyb.Timer.PWM, pin=pyb.Pin(pin), pulse_width=0)
        self._set_freq = self.tim.freq
        self._set_percent = self.ch.pulse_width_percent
        self._freq = 1000
        self._duty = 0

    def freq(self, value=None):
        if value is None:
            return self._freq
        self._freq = value
        self._set_freq(value)
        self._set_percent((self._duty * 100 + 32768) >> 16)
        return None

    def duty_u16(self, value=None):
        if value is None:
            return self._duty
        self._duty = value
        self._set_percent((value * 100 + 32768) >> 16)  # 32768: 50 %
        return None


class Buzzer:
    def __init__(self, pin, step_timer=2):
        try:
            import pyb  # noqa: F401  # pyright: ignore[reportMissingImports]  (the pyboard only)
        except ImportError:
            pyb = None
        if pyb is not None:
            self._pwm = PybPwm(pin, step_timer)
        else:
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
