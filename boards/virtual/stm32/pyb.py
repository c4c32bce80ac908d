# MicroPython's `pyb` as the stm32 port has it on a pyboard v1.1, for the virtual board
# (boards/virtual/README.md): Timer and its channels, Pin (machine.Pin: one type on the port),
# disable_irq/enable_irq. Each behaviour from ports/stm32/timer.c and irq.c (v1.24.0..v1.28.0).
#
#   Timer(n)      n 1..14 (the STM32F405's); one object per timer (MP_STATE_PORT
#                 pyb_timer_obj_all): Timer(2) again is the same timer. freq= derives prescaler
#                 and period as compute_prescaler_period_from_freq() does, from an 84 MHz source
#                 (TIM2..7, 12..14; 168 MHz for TIM1, 8..11: timer_get_source_freq() with the
#                 pyboard's APB dividers 4 and 2); TIM2 and TIM5 count 32 bits, the others 16.
#                 freq(f) and period(p) write the prescaler and auto-reload PRELOAD registers
#                 (ARPE is set): they take effect at the next update event, and a channel's
#                 compare value is left as it was (its duty changes with the period).
#   channel(k, Timer.PWM, pin=p, pulse_width=w | pulse_width_percent=x): p must have an
#                 alternate function of THIS timer ("Pin(B6) doesn't have an alt for Timer(2)"),
#                 of any channel (pin_find_af): the fake records whether the channel's output
#                 really is on that pin (drives_pin). The compare register is PRELOADED once
#                 configured: pulse_width(w) lands at the next update event.
#   callback(f)   runs at each update event: a hard IRQ (GC locked; an exception is printed and
#                 the callback disabled); from v1.27.0 Timer(..., hard=False) schedules it.
#   disable_irq() an update event while IRQs are off is HELD (the NVIC pending bit: at most one
#                 per timer, two updates make one callback) and its callback runs at enable_irq().
#
# Test hooks: Timer.advance(n) runs n timer periods (at each update event the preloaded
# registers load, a PWM channel whose compare is non-zero starts a pulse, counted in `pulses` if
# its output was low (`widths`: the compare values pulses had), then the update IRQ);
# on_call(fn): fn(name) runs before each port call ("disable_irq", "enable_irq", "pulse_width",
# "pulse_width_percent", "freq", "period"), so a test can make an update arrive at any point of
# the code under test; TimerChannel.history: (period + 1, compare) at each compare write
# (vmachine.record); Timer.uncaught: the exception a hard callback raised. Written in the subset
# of Python MicroPython has.

import machine
import vmachine
import vport

Pin = machine.Pin
RTC = machine.RTC  # ports/stm32/modpyb.c and modmachine.c: both are pyb_rtc_type

irq_enabled = True
irq_disables = 0
_tap = None
_timers = [None] * 14


def on_call(fn):
    """Test hook: fn(name) runs before each port call of the code under test (None: off)."""
    global _tap
    _tap = fn


def _call(name):
    global _tap
    tap = _tap
    if tap is not None:
        _tap = None  # not re-entered by what the tap does
        try:
            tap(name)
        finally:
            _tap = tap


def reset_fakes():
    global irq_enabled, irq_disables, _tap
    for i in range(14):
        _timers[i] = None
    irq_enabled = True
    irq_disables = 0
    _tap = None


def disable_irq():
    global irq_enabled, irq_disables
    _call("disable_irq")
    was = irq_enabled
    irq_enabled = False
    irq_disables += 1
    return was


def enable_irq(state=True):
    global irq_enabled
    _call("enable_irq")
    irq_enabled = bool(state)
    if irq_enabled:
        for t in _timers:  # the held updates run now
            if t is not None and t.pending:
                t.pending = False
                t._irq()


def _percent(period, value):
    # compute_pwm_value_from_percent(): clamped to 0..100; an int exactly, a float truncated
    if value <= 0:
        return 0
    if value >= 100:
        return period
    if isinstance(value, float):
        return int(value / 100 * period)
    return value * period // 100


def _source_hz(tim_id):
    return 168_000_000 if tim_id == 1 or 8 <= tim_id <= 11 else 84_000_000


class TimerChannel:
    def __init__(self, timer, number, mode, pin):
        self.timer = timer
        self.number = number
        self.mode = mode
        self.pin = pin
        self.drives_pin = False
        self.preload = 0  # the compare value written (CCRx as read back)
        self.compare = 0  # the compare value in effect (loaded at update events)
        self.high = False  # the output at the end of the last period
        self.pulses = 0  # pulses started (rising edges on the output)
        self.widths = []  # the compare values pulses had, each once (vmachine.record)
        self.history = []  # (period + 1, compare) at each compare write (vmachine.record)

    def _write(self, value):
        self.preload = value & self.timer._mask
        if vmachine.record:
            self.history.append((self.timer._arr + 1, self.preload))

    def pulse_width(self, value=None):
        if value is None:
            return self.preload
        _call("pulse_width")
        self._write(value)  # mp_obj_get_int(): a float raises TypeError
        return None

    compare = pulse_width
    capture = pulse_width

    def pulse_width_percent(self, value=None):
        period = self.timer._arr + 1  # compute_period(), edge-aligned
        if value is None:  # compute_percent_from_pwm_value(): a float
            return self.preload * 100 / period if self.preload < period else 100.0
        _call("pulse_width_percent")
        self._write(_percent(period, value))
        return None

    def callback(self, fun):
        raise NotImplementedError("the virtual pyb does not model channel callbacks")


class Timer:
    PWM = 0  # channel_mode_info[] order in ports/stm32/timer.c
    PWM_INVERTED = 1
    OC_TIMING = 2
    OC_ACTIVE = 3
    OC_INACTIVE = 4
    OC_TOGGLE = 5
    OC_FORCED_ACTIVE = 6
    OC_FORCED_INACTIVE = 7
    IC = 8
    ENC_A = 9
    ENC_B = 10
    ENC_AB = 11
    UP = 0
    DOWN = 0x10
    CENTER = 0x20
    HIGH = 0
    LOW = 2

    def __new__(cls, id, *args, **kw):
        if not isinstance(id, int):
            raise TypeError("can't convert %s to int" % type(id).__name__)
        if not 1 <= id <= 14:
            raise ValueError("Timer(%d) doesn't exist" % id)
        t = _timers[id - 1]
        if t is None:
            t = object.__new__(cls)
            t._new(id)
            _timers[id - 1] = t
        return t

    def __init__(self, id, *args, **kw):
        if args or kw:
            self.init(*args, **kw)

    def _new(self, id):
        self.id = id
        self._mask = 0xFFFFFFFF if id in (2, 5) else 0xFFFF
        self._psc = self._arr = 0  # registers as written
        self._psc_now = self._arr_now = 0  # in effect (loaded at update events)
        self._callback = None
        self.hard = True
        self.running = False
        self.pending = False
        self.channels = {}
        self._chans = []
        self.updates = 0
        self.uncaught = None  # the exception a hard callback raised

    def init(self, *, freq=None, prescaler=-1, period=-1, tick_hz=1000, mode=UP, div=1, callback=None,
             deadtime=0, brk=0, **kw):
        hard = True
        if "hard" in kw and vport.at_least(1, 27):  # the keyword appears in v1.27.0
            hard = bool(kw.pop("hard"))
        if kw:
            raise TypeError("extra keyword arguments given")
        if freq is not None:
            self._from_freq(freq)
        elif prescaler != -1 and period != -1:
            self._psc = prescaler & 0xFFFF
            self._arr = period & self._mask
        elif period != -1:
            self._from_t(period, tick_hz)
        else:
            raise TypeError("must specify either freq, period, or prescaler and period")
        if mode not in (Timer.UP, Timer.DOWN, Timer.CENTER):
            raise ValueError("invalid mode (%d)" % mode)
        self._psc_now, self._arr_now = self._psc, self._arr  # HAL_TIM_Base_Init: an update (UG)
        for ch in self._chans:
            ch.compare = ch.preload
        self.hard = hard
        self.running = True
        if callback is not None:
            self.callback(callback)

    def _from_freq(self, freq):
        # compute_prescaler_period_from_freq(), into the registers (no tuple: freq() is called from
        # poll paths measured for allocation)
        prescaler = 1
        if isinstance(freq, float):
            if freq <= 0:
                raise ValueError("must have positive freq")
            while freq < 1 and prescaler < 6553:
                prescaler *= 10
                freq *= 10
            period = int(_source_hz(self.id) / freq)
        else:
            if freq <= 0:
                raise ValueError("must have positive freq")
            period = _source_hz(self.id) // freq
        if period < 1:
            period = 1
        while period > self._mask:
            if period % 5 == 0:
                prescaler *= 5
                period //= 5
            elif period % 3 == 0:
                prescaler *= 3
                period //= 3
            else:
                prescaler <<= 1
                period >>= 1
        self._psc = (prescaler - 1) & 0xFFFF
        self._arr = (period - 1) & self._mask

    def _from_t(self, t_num, t_den):
        # compute_prescaler_period_from_t()
        if t_num <= 0 or t_den <= 0:
            raise ValueError("must have positive freq")
        period = _source_hz(self.id) * t_num // t_den
        prescaler = 1
        while period > self._mask:
            if prescaler <= 13107 and period % 5 == 0:
                prescaler *= 5
                period //= 5
            elif prescaler <= 21845 and period % 3 == 0:
                prescaler *= 3
                period //= 3
            else:
                lsb = period & 1
                prescaler <<= 1
                period >>= 1
                if period < prescaler:
                    prescaler |= lsb
                if prescaler > 0x10000:
                    raise ValueError("period too large")
        self._psc = (prescaler - 1) & 0xFFFF
        self._arr = (period - 1) & self._mask

    def freq(self, value=None):
        if value is None:
            src = _source_hz(self.id)
            a = self._psc + 1
            b = self._arr + 1
            if src % a or (src // a) % b:  # MICROPY_PY_BUILTINS_FLOAT: a float unless exact
                return src / a / b
            return src // a // b
        _call("freq")
        self._from_freq(value)
        return None

    def period(self, value=None):
        if value is None:
            return self._arr
        _call("period")
        self._arr = value & self._mask
        return None

    def prescaler(self, value=None):
        if value is None:
            return self._psc
        self._psc = value & 0xFFFF
        return None

    def source_freq(self):
        return _source_hz(self.id)

    def channel(self, number, mode=None, *, callback=None, pin=None, pulse_width=0, pulse_width_percent=None,
                compare=0, polarity=-1):
        if not 1 <= number <= 4:
            raise ValueError("invalid channel (%d)" % number)
        if mode is None:
            if pin is not None or pulse_width or pulse_width_percent is not None or compare or callback is not None:
                raise TypeError("'mode' argument required")
            return self.channels.get(number)
        if callback is not None:
            raise NotImplementedError("the virtual pyb does not model channel callbacks")
        if mode not in (Timer.PWM, Timer.PWM_INVERTED, Timer.OC_TIMING, Timer.OC_ACTIVE, Timer.OC_INACTIVE,
                        Timer.OC_TOGGLE, Timer.OC_FORCED_ACTIVE, Timer.OC_FORCED_INACTIVE):
            raise NotImplementedError("the virtual pyb models PWM and OC channels only")
        ch = TimerChannel(self, number, mode, pin)
        if pin is not None:
            if not isinstance(pin, Pin):
                raise ValueError("pin argument needs to be %sa Pin type" % ("be " if not vport.at_least(1, 25) else ""))
            afs = [a for a in pin.timer_afs() if a[1] == self.id]  # pin_find_af(pin, AF_FN_TIM, id)
            if not afs:
                raise ValueError("Pin(%s) doesn't have an alt for Timer(%d)" % (pin.name(), self.id))
            pin.init(Pin.ALT, alt=afs[0][0])
            ch.drives_pin = [a for a in afs if a[2] in ("CH%d" % number, "CH%dN" % number)] != []
        if mode in (Timer.PWM, Timer.PWM_INVERTED):
            if pulse_width_percent is not None:
                value = _percent(self._arr + 1, pulse_width_percent)
            else:
                value = pulse_width
        else:
            value = compare
        # HAL_TIM_PWM_ConfigChannel writes the compare before enabling its preload: in effect now
        ch.preload = ch.compare = value & self._mask
        self.channels[number] = ch
        self._chans = list(self.channels.values())
        return ch

    def callback(self, fun):
        if fun is None:
            self._callback = None
        elif callable(fun):
            self._callback = fun
            self.pending = False  # __HAL_TIM_CLEAR_FLAG(UPDATE) before enabling the IRQ
            self.running = True
        else:
            raise ValueError("callback must be None or a callable object")

    def deinit(self):
        self._callback = None
        self.pending = False
        self.channels = {}
        self._chans = []
        self.running = False

    def _irq(self):
        cb = self._callback
        if cb is None:
            return
        if self.hard:
            err = machine.hard_call(cb, self, self)
            if err is not None:
                self.uncaught = err
                self._callback = None  # timer_handle_irq_channel(): disabled after an exception
        else:
            machine._schedule(cb, self)  # mp_irq_dispatch(): mp_sched_schedule

    # -- test hook -----------------------------------------------------------------------------

    def __repr__(self):
        return "Timer(%d)" % self.id

    def advance(self, n=1):
        """Run n periods: at each update event the preloaded registers load, PWM pulses start, then
        the update IRQ runs (or is held while IRQs are disabled)."""
        if not self.running:
            return
        for _ in range(n):
            self.updates += 1
            self._psc_now = self._psc
            self._arr_now = self._arr
            for ch in self._chans:  # (a list: dict.values() would allocate a view per update)
                ch.compare = ch.preload
                if ch.mode == Timer.PWM:
                    # PWM mode 1: high while the counter is below the compare
                    if ch.compare > 0 and not ch.high:
                        ch.pulses += 1
                        if vmachine.record and ch.compare not in ch.widths:
                            ch.widths.append(ch.compare)
                    ch.high = ch.compare > self._arr_now
            if self._callback is not None:
                if irq_enabled:
                    self._irq()
                else:
                    self.pending = True
