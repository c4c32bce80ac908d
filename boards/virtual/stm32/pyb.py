# A fake `pyb` module (Timer, its PWM channels, Pin, disable_irq/enable_irq) for tests off the
# pyboard, on CPython and the MicroPython unix port.
#
# Timer(n, freq=f) derives prescaler and period from an 84 MHz source as the pyboard's TIM2..7
# do (16-bit registers here). channel(k, Timer.PWM, pin=, pulse_width=) gives a channel whose
# compare register is PRELOADED, as MicroPython configures PWM on the STM32: pulse_width(w)
# takes effect at the next update event. The test hook Timer.advance(n) runs n timer periods:
# at each update event the preloaded compare values are loaded, a channel whose compare value is
# non-zero starts a pulse (counted in its `pulses`), and then the callback runs (a hard IRQ in
# the real port) with the timer as argument. Written in the subset of Python MicroPython has.

import machine

SOURCE_HZ = 84_000_000
irq_enabled = True
irq_disables = 0


def disable_irq():
    global irq_enabled, irq_disables
    was = irq_enabled
    irq_enabled = False
    irq_disables += 1
    return was


def enable_irq(state=True):
    global irq_enabled
    irq_enabled = state


class Pin(machine.Pin):
    OUT_PP = machine.Pin.OUT
    IN = machine.Pin.IN
    AF_PP = 16


class TimerChannel:
    def __init__(self, timer, number, mode, pin, pulse_width):
        self.timer = timer
        self.number = number
        self.mode = mode
        self.pin = pin
        self.preload = pulse_width  # the compare value written
        self.compare = pulse_width  # the compare value in effect (loaded at update events)
        self.pulses = 0  # pulses started (rising edges on the pin)
        self.widths = []  # the compare value of each pulse

    def pulse_width(self, value=None):
        if value is None:
            return self.preload
        if not isinstance(value, int) or value < 0:
            raise ValueError("pulse_width")
        self.preload = value
        return None

    def pulse_width_percent(self, value=None):
        period = self.timer.period() + 1
        if value is None:
            return self.preload * 100 // period
        self.pulse_width(value * period // 100)
        return None


class Timer:
    PWM = 0
    PWM_INVERTED = 1
    OC_TIMING = 2

    def __init__(self, id, *, freq=None, prescaler=None, period=None):
        self.id = id
        self._callback = None
        self.channels = {}
        self.updates = 0
        self.deinited = False
        if freq is not None:
            self.init(freq=freq)
        elif prescaler is not None:
            self.init(prescaler=prescaler, period=period)

    def init(self, *, freq=None, prescaler=None, period=None):
        if freq is not None:
            if not isinstance(freq, int) or freq <= 0:
                raise ValueError("freq")
            ticks = SOURCE_HZ // freq
            presc = (ticks - 1) // 65536
            self._prescaler = presc
            self._period = ticks // (presc + 1) - 1
            if self._period < 1:
                raise ValueError("freq too high")
        else:
            self._prescaler = prescaler
            self._period = period
        self.deinited = False

    def freq(self):
        return SOURCE_HZ // ((self._prescaler + 1) * (self._period + 1))

    def period(self, value=None):
        if value is None:
            return self._period
        self._period = value
        return None

    def prescaler(self):
        return self._prescaler

    def source_freq(self):
        return SOURCE_HZ

    def channel(self, number, mode=None, *, pin=None, pulse_width=0, pulse_width_percent=None):
        if mode is None:
            return self.channels[number]
        if pulse_width_percent is not None:
            pulse_width = pulse_width_percent * (self._period + 1) // 100
        ch = TimerChannel(self, number, mode, pin, pulse_width)
        self.channels[number] = ch
        return ch

    def callback(self, fun):
        self._callback = fun

    def deinit(self):
        self.deinited = True
        self._callback = None

    # -- test hook -----------------------------------------------------------------------------

    def advance(self, n=1):
        """Run n periods: at each update event the preloaded compares load, pulses start, the callback runs."""
        for _ in range(n):
            self.updates += 1
            for ch in self.channels.values():
                ch.compare = ch.preload
                if ch.compare > 0:
                    ch.pulses += 1
                    ch.widths.append(ch.compare)
            if self._callback is not None:
                if not irq_enabled:
                    raise AssertionError("an update event while IRQs are disabled would be held")
                self._callback(self)
