# Step engine on a pyboard timer (hal/interfaces.py, "Steps"), for a STEP/DIR driver. DIR is a
# plain output set once.
#
# pyb.Timer(timer_id, freq=steps_per_s) with a PWM channel on the STEP pin: one pulse per timer
# period, high for half of it while the compare value is `half`, none while it is 0. The STM32
# has no N-pulse mode, so a hard-IRQ update callback counts the periods. MicroPython configures
# PWM with the compare register PRELOADED: a value written lands at the next update event.
#
# The update IRQ owns the compare register: start(n) makes ONE store (_go = n), and the callback
# turns it into the compare write. Had start() written the compare itself, an update arriving
# between that write and the count (held while IRQs are off, as the port holds it) could start a
# pulse the count did not see, or count one that never went out: 199 pulses for start(200).
#   U_a        the first update after start(n): its callback takes _go and writes `half`;
#   U_a+1      pulse 1 starts (the compare landed); its callback counts it; ...
#   U_a+n      pulse n starts; its callback writes 0, which lands at U_a+n+1: no pulse n+1 (the
#              stop is written one period before it takes effect);
#   U_a+n+1    (pulse n ended half a period earlier): the burst is complete, bursts() + 1.
# A burst of n steps therefore takes between n + 1 and n + 2 periods from start(n) to its
# completion.
#
# Remaining hazard: the count assumes one callback per update event. An update IRQ held for
# more than one period (interrupts disabled that long, or a higher-priority IRQ running) merges
# two update events into one callback (the NVIC keeps one pending bit): that burst then emits one
# pulse more than it counts. Keep every disable_irq() window and every other IRQ far shorter than
# 1 / steps_per_s (1 ms at 1000 steps/s).
#
# The callback allocates nothing: it is bound once (self._cb), keeps its state in int attributes
# (_go: a burst asked for, _left: pulses still to start, 0 idle; _tail: 1 while the last pulse
# runs), calls the channel's pulse_width through a bound method cached at construction, and uses
# no floats.

import pyb

from micropython import const

_MASK = const(0x1FFFFFFF)  # bursts() modulo 2**29


class TimerSteps:
    def __init__(self, timer_id, channel, step_pin, dir_pin, steps_per_s, dir_level=1):
        if isinstance(steps_per_s, bool) or not isinstance(steps_per_s, int) or steps_per_s < 1:
            raise ValueError("steps_per_s: must be a positive integer")
        self._dir = pyb.Pin(dir_pin, pyb.Pin.OUT_PP, value=1 if dir_level else 0)
        self._go = 0
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
        if self._go:
            self._left = self._go
            self._go = 0
            self._pw(self.half)  # preloaded: pulse 1 starts at the next update
        elif self._left:
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
        self._go = n  # one store: the next update's callback sees all of it or none of it

    def busy(self):
        # Read in the order the callback moves a burst along (_go, _left, _tail): a callback
        # between two reads cannot make a running burst look idle.
        return bool(self._go or self._left or self._tail)

    def bursts(self):
        return self._bursts

    def stop(self):
        irq = pyb.disable_irq()  # a held callback then finds nothing to count
        self._go = 0
        self._left = 0
        self._tail = 0
        self._pw(0)  # lands at the next update: a pulse already high finishes, no new one starts
        pyb.enable_irq(irq)
