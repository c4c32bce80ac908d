# Step engine on a pyboard timer (hal/interfaces.py, "Steps"), for a STEP/DIR driver. DIR is a
# plain output set once.
#
# pyb.Timer(timer_id, freq=steps_per_s) with a PWM channel on the STEP pin: one pulse per timer
# period, high for half of it while the compare value is `half`, none while it is 0. The STM32
# has no N-pulse mode, so a hard-IRQ update callback counts the periods. MicroPython configures
# PWM with the compare register PRELOADED: a value written lands at the next update event. So:
#   start(n)   writes `half` (with IRQs off) and arms the count; pulse 1 starts at the next
#              update event U1, whose callback counts it; ...
#   callback   at U_n (pulse n just started) writes 0, which lands at U_{n+1}: no pulse n+1;
#              the stop is written one period before it takes effect, which is exactly why it is
#              written at the n-th update and not after it;
#   U_{n+1}    (pulse n ended half a period earlier): the burst is complete, bursts() + 1.
# A burst of n steps therefore takes between n and n + 1 periods from start(n) (the wait for the
# first update event) plus the period in which its completion is seen.
#
# The callback allocates nothing: it is bound once (self._cb), keeps its state in int attributes
# (_left: pulses still to start, 0 idle; _tail: 1 while the last pulse runs), calls the channel's
# pulse_width through a bound method cached at construction, and uses no floats.

import pyb

from micropython import const

_MASK = const(0x1FFFFFFF)  # bursts() modulo 2**29


class TimerSteps:
    def __init__(self, timer_id, channel, step_pin, dir_pin, steps_per_s, dir_level=1):
        if isinstance(steps_per_s, bool) or not isinstance(steps_per_s, int) or steps_per_s < 1:
            raise ValueError("steps_per_s: must be a positive integer")
        self._dir = pyb.Pin(dir_pin, pyb.Pin.OUT_PP, value=1 if dir_level else 0)
        self._left = 0
        self._tail = 0
        self._bursts = 0
        self._tim = pyb.Timer(timer_id, freq=steps_per_s)
        self.steps_per_s = steps_per_s
        self.half = (self._tim.period() + 1) // 2  # compare value: a 50 % pulse
        self._ch = self._tim.channel(channel, pyb.Timer.PWM, pin=pyb.Pin(step_pin), pulse_width=0)
        self._pw = self._ch.pulse_width  # bound once: the callback calls it
        self._cb = self._update  # bound once: a new bound method per callback() would allocate
        self._tim.callback(self._cb)

    def _update(self, _tim):
        if self._left:
            self._left -= 1
            if not self._left:
                self._pw(0)  # preloaded: lands at the next update, so pulse n is the last
                self._tail = 1
        elif self._tail:
            self._tail = 0
            self._bursts = (self._bursts + 1) & _MASK

    def start(self, n):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 65535:
            raise ValueError("n: must be an integer 1..65535")
        irq = pyb.disable_irq()  # the compare write and the count must land in the same period
        self._pw(self.half)
        self._left = n
        self._tail = 0
        pyb.enable_irq(irq)

    def busy(self):
        return bool(self._left or self._tail)

    def bursts(self):
        return self._bursts

    def stop(self):
        irq = pyb.disable_irq()
        self._pw(0)  # lands at the next update: a pulse already high finishes, no new one starts
        self._left = 0
        self._tail = 0
        pyb.enable_irq(irq)
