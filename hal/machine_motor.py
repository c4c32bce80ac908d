# Motor backend for a board's stepper pump (hal/interfaces.py: Motor, and a Poller).
#
# One stroke is one burst of `steps_per_stroke` steps, emitted by the port's step engine (a
# hal/steps_*.py Steps object: RP2040 PIO, ESP32 RMT, a pyboard timer). Python never runs per
# step: poll(now), called by the board clock's wait() about once a ms, walks the StrokeTrain
# with its cursor and starts the burst of a stroke at its millisecond, never before; the stroke
# counts as completed when steps.bursts() advances.
#
# Stroke numbers: stroke k of a train is the motor's stroke number train.base + k. start() skips
# the strokes already fired: those completed (strokes()) and the one whose burst is running
# (it completes and is counted, so the new train must not fire it again).
#
# start(train) lets a running burst finish (a stroke is never cut in half); stop() too: no
# further strokes. enable(False) aborts a running burst (it is not counted), ends the train and
# drives the driver's enable pin to its off level: A4988, DRV8825 and TMC2209 have an
# active-low EN (low = driver on, high = outputs off), so enable(True) drives it low and
# enable(False) high. While disabled nothing moves: a train started meanwhile is ended at once.
#
# Stall (optional stall_pin, active high): a TMC2209 DIAG output, or any "did not move" line
# (an encoder watchdog). It is read at every poll while a burst runs; high marks the stroke NOT
# completed: steps.stop(), MOTOR_STALL latched, the fault handler called, the train ended.
# With an encoder (encoder(pin, pulses_per_stroke)), a burst that completes with fewer than half
# a stroke of pulses is a stall too.
#
# Load (optional load_adc, anything with read_u16(): machine.ADC on a current-sense or back-EMF
# line). It is sampled at every poll while a burst runs; a completed stroke's load is the mean of
# its samples. The free-running load (LOAD_NORMAL = 100 %) is calibrated as the mean of the first
# CALIBRATION_STROKES completed strokes (the pump is started on a free line, after priming):
# those strokes report LOAD_NORMAL and are never an overload. After that, load() is the last
# completed stroke's mean as a percentage of the calibration: at or above set_load_limit() it
# latches MOTOR_OVERLOAD (the stroke did complete and is counted) and ends the train; above
# set_pressure_load() the stroke is counted in pressed(). recalibrate() starts a new calibration.
# A current or back-EMF sensor cannot see the line pressure at rest: load() at rest is the last
# completed stroke's load, so an occlusion stays held until a stroke completes below the
# release load (firmware/mechanism.py), i.e. until the board is restarted or recalibrated. A
# board with a pressure sensor at rest would read it here instead. Without a load ADC, load()
# is always LOAD_NORMAL.
#
# Uncommanded strokes cannot be seen without rotor feedback: a driver that steps by itself (a
# stuck STEP line) goes unnoticed. With an encoder (encoder(pin, pulses_per_stroke)), its
# rising edges are counted in a hard IRQ where the port's Pin.irq has `hard` (rp2, stm32); the
# esp32's has none (ports/esp32/machine_pin.c: every edge is scheduled, and an edge is lost when
# the schedule queue is full). Every pulses_per_stroke pulses seen outside a burst are one
# uncommanded stroke: counted in strokes() and reported as MOTOR_UNCOMMANDED at once.
#
# poll() allocates nothing (measured in tests/boards/test_machine_backends.py): state lives in
# preallocated attributes and every method's frame stays under MicroPython's 11-word limit.

import machine

from hal.interfaces import LOAD_NORMAL, MOTOR_OVERLOAD, MOTOR_STALL, MOTOR_UNCOMMANDED
from hal.train import COUNT_MASK
from micropython import const

CALIBRATION_STROKES = const(8)
_MAX_SAMPLES = const(8192)  # 8192 * 65535 < 2**29: the sample sum stays a small int
_NO_LIMIT = const(1 << 29)


def _pin(pin, mode, pull=None):
    """A machine.Pin from a pin id (int or name); a Pin given is used as it is."""
    if isinstance(pin, (int, str)):
        if pull is None:
            return machine.Pin(pin, mode)
        return machine.Pin(pin, mode, pull)
    return pin


class StrokeMotor:
    def __init__(self, clock, steps, steps_per_stroke, enable_pin=None, stall_pin=None, load_adc=None):
        if isinstance(steps_per_stroke, bool) or not isinstance(steps_per_stroke, int) \
                or not 1 <= steps_per_stroke <= 65535:
            raise ValueError("steps_per_stroke: must be an integer 1..65535")
        self._clock = clock
        self._steps = steps
        self._n = steps_per_stroke
        self._en = None
        if enable_pin is not None:
            self._en = _pin(enable_pin, machine.Pin.OUT)
            self._en.value(0)  # active-low EN: the driver is on
        self._stall = None if stall_pin is None else _pin(stall_pin, machine.Pin.IN)
        self._adc = load_adc
        self._enabled = True
        self._count = 0  # strokes completed (COUNT_MASK)
        self._faults = 0
        self._handler = None
        self._bursts = steps.bursts()
        self._busy = False  # a burst of ours is running
        # the train
        self._train = None
        self._off = -1  # offset of the next stroke from the train's origin; -1: none
        self._due = 0  # its tick
        # load
        self._limit = _NO_LIMIT
        self._pressure = _NO_LIMIT
        self._pressed = 0
        self._load = LOAD_NORMAL
        self._sum = 0  # samples of the running burst
        self._samples = 0
        self._cal_sum = 0
        self._cal_n = 0
        self._cal = 0  # calibrated free-running mean (0: calibrating)
        # encoder
        self._enc = None
        self._enc_ref = None
        self._pulses = 0  # incremented by the encoder's IRQ (COUNT_MASK)
        self._seen = 0  # pulses accounted for
        self._per_stroke = 0
        self._burst_from = 0  # pulses at the start of the running burst

    # -- Motor interface ------------------------------------------------------------------------

    def strokes(self):
        return self._count

    def start(self, train):
        self._train = train
        self._off = -1
        if not self._enabled or train.count <= 0:
            return
        train.rewind()
        skip = (self._count + (1 if self._busy else 0) - train.base) & COUNT_MASK
        if skip > COUNT_MASK >> 1:  # the train counts from strokes still to come: skip none
            skip = 0
        while skip > 0 and self._next():
            skip -= 1
        self._next()

    def stop(self):
        self._off = -1
        self._train = None

    def faults(self):
        f = self._faults
        self._faults = 0
        return f

    def load(self):
        return self._load

    def set_load_limit(self, percent):
        self._limit = percent

    def set_pressure_load(self, percent):
        self._pressure = percent

    def pressed(self):
        n = self._pressed
        self._pressed = 0
        return n

    def enable(self, on):
        if not on:
            self._off = -1
            if self._busy:
                self._steps.stop()
                self._busy = False
                self._bursts = self._steps.bursts()
        self._enabled = bool(on)
        if self._en is not None:
            self._en.value(0 if on else 1)

    def on_fault(self, handler):
        self._handler = handler

    # -- extras ---------------------------------------------------------------------------------

    def recalibrate(self):
        """The next CALIBRATION_STROKES completed strokes set the free-running load again."""
        self._cal = 0
        self._cal_sum = 0
        self._cal_n = 0
        self._load = LOAD_NORMAL

    def encoder(self, pin, pulses_per_stroke):
        """Rotor feedback: rising edges of `pin`, pulses_per_stroke of them per stroke."""
        if isinstance(pulses_per_stroke, bool) or not isinstance(pulses_per_stroke, int) or pulses_per_stroke < 1:
            raise ValueError("encoder pulses_per_stroke: must be a positive integer")
        self._per_stroke = pulses_per_stroke
        self._enc = _pin(pin, machine.Pin.IN)
        self._enc_ref = self._on_pulse  # bound once: the IRQ must not allocate
        try:
            self._enc.irq(handler=self._enc_ref, trigger=machine.Pin.IRQ_RISING, hard=True)
        except TypeError:  # esp32: no `hard` argument
            self._enc.irq(handler=self._enc_ref, trigger=machine.Pin.IRQ_RISING)

    def _on_pulse(self, pin):
        self._pulses = (self._pulses + 1) & COUNT_MASK  # a hard IRQ: small ints only, nothing allocated

    # -- Poller -----------------------------------------------------------------------------------

    def poll(self, now):
        if self._busy:
            if self._stall is not None and self._stall.value():
                self._stalled()  # even if the burst just ended: the stall happened during it
                return
            if self._steps.bursts() != self._bursts:
                self._completed()
            elif self._adc is not None:
                self._sample()
        if self._enc is not None and not self._busy:
            self._uncommanded()
        if self._off >= 0 and not self._busy and self._clock.ticks_diff(now, self._due) >= 0 \
                and not self._steps.busy():
            self._fire()

    def _fire(self):
        self._burst_from = self._pulses
        self._sum = 0
        self._samples = 0
        self._busy = True
        self._steps.start(self._n)
        self._next()

    def _next(self):
        """Moves the cursor to the train's next stroke; False when the train is done."""
        train = self._train
        self._off = -1 if train is None else train.next_offset()
        if self._off < 0 or train is None:
            return False
        self._due = self._clock.ticks_add(train.origin, self._off)
        return True

    def _completed(self):
        self._bursts = self._steps.bursts()
        self._busy = False
        if self._enc is not None and (self._pulses - self._burst_from) & COUNT_MASK < (self._per_stroke + 1) >> 1:
            self._seen = self._pulses
            self._fault(MOTOR_STALL)  # the steps went out, the rotor did not turn
            return
        self._seen = self._pulses
        self._count = (self._count + 1) & COUNT_MASK
        if self._adc is not None:
            self._loaded()

    def _stalled(self):
        self._steps.stop()
        self._busy = False
        self._bursts = self._steps.bursts()
        self._seen = self._pulses
        self._fault(MOTOR_STALL)

    def _fault(self, bits):
        self._off = -1  # the train ends
        self._raise(bits)

    def _raise(self, bits):
        self._faults |= bits
        if self._handler is not None:
            self._handler(bits)

    def _sample(self):
        adc = self._adc
        if adc is not None and self._samples < _MAX_SAMPLES:
            self._sum += adc.read_u16()
            self._samples += 1

    def _loaded(self):
        """The completed stroke's load against the calibration, the limit and the pressure load."""
        if not self._samples:
            self._sample()  # a burst shorter than a poll: one sample now
        mean = self._sum // self._samples
        if not self._cal:
            self._cal_sum += mean
            self._cal_n += 1
            if self._cal_n >= CALIBRATION_STROKES:
                self._cal = self._cal_sum // self._cal_n or 1
            return
        self._load = mean * LOAD_NORMAL // self._cal  # <= 65535 * 100: a small int
        if self._load > self._pressure:
            self._pressed += 1
        if self._load >= self._limit:
            self._fault(MOTOR_OVERLOAD)

    def _uncommanded(self):
        if (self._pulses - self._seen) & COUNT_MASK < self._per_stroke:
            return
        self._seen = (self._seen + self._per_stroke) & COUNT_MASK
        self._count = (self._count + 1) & COUNT_MASK
        self._raise(MOTOR_UNCOMMANDED)  # the train goes on: the fault handler decides (it cuts the power)
