# Phase engine for a ULN2003 board and a 28BYJ-48 off the RP2040 (ESP32, pyboard)
# (hal/interfaces.py, "Steps"): four coil pins, a half-step (default) or full-step sequence,
# stepped by a periodic timer callback at steps_per_s.
#
# The timer: `timer`, a hardware timer already running at steps_per_s that has a callback()
# method (the pyboard: pyb.Timer(n, freq=steps_per_s), whose callback is a hard IRQ), or else
# machine.Timer(timer_id) initialised at freq=steps_per_s (the ESP32: hardware timers 0..3,
# callbacks scheduled). `hard=` is never passed: the ESP32 refuses hard=True and releases before
# 1.28 have no such keyword on extmod's timer. timer_id -1 is extmod/machine_timer.c's soft
# timer (the pyboard's machine.Timer): its period is a whole number of ms, 1000 // steps_per_s,
# so only rates dividing 1000 come out exactly (300 steps/s would run at 333): any other rate
# is refused, with the nearest exact ones in the message.
#
# This is the one engine where Python runs per step. It is accepted for this toy motor only: its
# rates are low (a 28BYJ-48 tops out near 500-1000 half-steps/s), a late tick delays a step but
# never loses or doubles one, and the ESP32's RMT and the pyboard's PWM channels have no
# four-phase sequence mode. A real pump on those ports drives a STEP/DIR driver from
# hal/steps_esp32.py or hal/steps_pyb.py, with no Python per step.
#
# The timer runs all the time; a tick with no burst running returns at once. The callback
# allocates nothing and uses no floats: state in int attributes, the sequence in a bytes object,
# the pins' value methods bound once. The sequence continues across bursts (the rotor never
# jumps) and the coils hold the last phase between bursts. A burst of n steps sets the n phases
# on n ticks; the tick after the last one counts it completed (the rotor has had one step time to
# follow), so busy() stays true until then.

from machine import Pin, Timer

from micropython import const

_MASK = const(0x1FFFFFFF)  # bursts() modulo 2**29

HALF_STEP = b"\x01\x03\x02\x06\x04\x0c\x08\x09"  # coil bits: bit 0 = pins[0] (IN1)
FULL_STEP = b"\x03\x06\x0c\x09\x03\x06\x0c\x09"


def exact_ms_rates(steps_per_s):
    """(below, above): the nearest rates a whole-ms timer makes exactly (1000 // ms for ms
    dividing 1000) on each side of steps_per_s; 0 where there is none."""
    below = above = 0
    ms = 1
    while ms <= 1000:
        if 1000 % ms == 0:
            r = 1000 // ms  # falling as ms grows
            if r > steps_per_s:
                above = r
            elif r < steps_per_s and not below:
                below = r
        ms += 1
    return below, above


class TimerPhases:
    def __init__(self, pins, steps_per_s, half=True, timer_id=-1, timer=None):
        if len(pins) != 4:
            raise ValueError("pins: four coil pins")
        if isinstance(steps_per_s, bool) or not isinstance(steps_per_s, int) or not 1 <= steps_per_s <= 2000:
            raise ValueError("steps_per_s: must be an integer 1..2000")
        if timer is None and timer_id == -1 and 1000 % steps_per_s:
            below, above = exact_ms_rates(steps_per_s)
            ms = 1000 // steps_per_s or 1  # extmod/machine_timer.c: delta_ms, at least 1
            raise ValueError("steps_per_s: %d is not a rate a whole-ms soft timer makes (it would run at about %d); "
                             "nearest exact: %s" % (steps_per_s, 1000 // ms,
                                                    " or ".join("%d" % r for r in (below, above) if r)))
        coils = [Pin(p, Pin.OUT, value=0) for p in pins]
        self._a = coils[0].value
        self._b = coils[1].value
        self._c = coils[2].value
        self._d = coils[3].value
        self.sequence = HALF_STEP if half else FULL_STEP
        self.steps_per_s = steps_per_s
        self._phase = 7  # index of the phase on the coils; the first step sets sequence[0]
        self._left = 0  # ticks still to come in this burst: its steps plus one to complete it
        self._bursts = 0
        self._cb = self._tick  # bound once
        if timer is not None:
            self._tim = timer
            timer.callback(self._cb)
        else:
            self._tim = Timer(timer_id)
            self._tim.init(mode=Timer.PERIODIC, freq=steps_per_s, callback=self._cb)

    def _tick(self, _t):
        if self._left > 1:
            self._phase = (self._phase + 1) & 7
            v = self.sequence[self._phase]
            self._a(v & 1)
            self._b(v & 2)
            self._c(v & 4)
            self._d(v & 8)
            self._left -= 1
        elif self._left:
            self._left = 0
            self._bursts = (self._bursts + 1) & _MASK

    def start(self, n):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 65535:
            raise ValueError("n: must be an integer 1..65535")
        self._left = n + 1  # one store: the callback sees the whole burst or none of it

    def busy(self):
        return self._left != 0

    def bursts(self):
        return self._bursts

    def stop(self):
        self._left = 0  # the coils keep the phase they hold
