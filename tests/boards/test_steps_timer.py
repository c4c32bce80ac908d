# The ULN2003 phase engine (hal/steps_timer.py) on the timer each board's main.py gives it, on
# every virtual port that builds it (esp32: machine.Timer(0); stm32: a pyb.Timer, and the rates
# machine.Timer's whole-ms soft timer refuses): on CPython (pytest) and on the MicroPython unix port.

import machine
from steps_support import alloc, raises
from support import skip

from hal import steps_timer

STM32 = machine.PORT == "stm32"
PINS = ("Y3", "Y4", "Y5", "Y6") if STM32 else (12, 13, 14, 15)


def _engine(rate, half=True):
    """The engine as the board's main.py builds it."""
    machine.reset_fakes()
    if STM32:
        import pyb

        return steps_timer.TimerPhases(PINS, rate, half=half, timer=pyb.Timer(4, freq=rate))
    return steps_timer.TimerPhases(PINS, rate, half=half, timer_id=0)  # the ESP32's hardware timer 0


def _tick(eng):
    """One timer period: the callback runs (a hard IRQ on pyb; scheduled, then run, elsewhere)."""
    tim = eng._tim
    if hasattr(tim, "advance"):
        tim.advance(1)
        return
    tim.fire()
    run = getattr(machine, "run_scheduled", None)
    if run is not None:
        run()


def _coils(pins):
    v = 0
    for i in range(4):
        if machine.Pin.get(pins[i]).value():
            v |= 1 << i
    return v


def test_timer_phases_sequence_count_and_continuity():
    for half in (True, False):
        eng = _engine(400, half)
        tim = eng._tim
        if STM32:
            assert tim.freq() == 400 and tim._callback == eng._cb  # 84 MHz / 400: exact
        else:
            assert tim.mode == machine.Timer.PERIODIC and tim.callback == eng._cb
            assert not getattr(tim, "hard", False)  # never asks for hard (the ESP32 refuses it)
        seq = steps_timer.HALF_STEP if half else steps_timer.FULL_STEP
        _tick(eng)
        assert _coils(PINS) == 0 and not eng.busy()
        seen = []
        done = 0
        for n in (1, 2, 7, 13):
            eng.start(n)
            for _ in range(n):
                assert eng.busy()
                _tick(eng)
                seen.append(_coils(PINS))
            assert eng.busy() and eng.bursts() == done  # completes one tick later
            _tick(eng)
            done += 1
            assert not eng.busy() and eng.bursts() == done
            _tick(eng)
            assert eng.bursts() == done
        assert seen == [seq[i % 8] for i in range(len(seen))]
        eng.start(5)
        _tick(eng)
        eng.stop()
        held = _coils(PINS)
        _tick(eng)
        assert _coils(PINS) == held and not eng.busy() and eng.bursts() == done
    assert raises(ValueError, steps_timer.TimerPhases, (1, 2, 3), 100)


def test_timer_phases_rate_is_the_timers_exactly():
    # Defect 5 (issue 13): the pyboard's machine.Timer is a whole-ms soft timer (300 steps/s ran at
    # 333). The pyboard's engine runs on a pyb.Timer: 84 MHz / rate, within 0.01 %.
    if not STM32:
        skip("the ESP32's machine.Timer(0) is a hardware timer")
    for rate in (300, 333, 400, 999, 1500, 2000):
        tim = _engine(rate)._tim
        assert abs(tim.freq() - rate) * 10_000 < rate, (rate, tim.freq())


def _exact(rate):
    """(below, above): the nearest rates a whole-ms period makes exactly, 1000 / ms for a whole ms
    dividing 1000 (0: none)."""
    exact = [r for r in range(1, 1001) if 1000 % r == 0]
    below = [r for r in exact if r < rate]
    above = [r for r in exact if r > rate]
    return (below[-1] if below else 0), (above[0] if above else 0)


def test_timer_phases_on_the_soft_timer_takes_only_exact_rates():
    # extmod/machine_timer.c (the stm32 port's machine.Timer): delta_ms = 1000 // freq, at least 1.
    if not STM32:
        skip("machine.Timer(-1) is extmod's soft timer on the stm32 port; the ESP32 has none")
    for rate in (3, 300, 400, 600, 999, 1001, 1500, 2000):
        machine.reset_fakes()
        try:
            steps_timer.TimerPhases(PINS, rate)
        except ValueError as e:
            msg = str(e)
        else:
            raise AssertionError("%d steps/s accepted on a whole-ms timer" % rate)
        below, above = _exact(rate)
        want = " or ".join("%d" % r for r in (below, above) if r)
        assert msg.startswith("steps_per_s: %d " % rate) and msg.endswith("nearest exact: " + want), msg
    for rate in (1, 8, 125, 250, 500, 1000):
        machine.reset_fakes()
        eng = steps_timer.TimerPhases(PINS, rate)
        tim = eng._tim
        assert tim.id == -1 and tim.period_ms * rate == 1000 and not tim.hard
        eng.start(1)
        machine.hold_scheduler(True)
        try:
            tim.fire()
            assert _coils(PINS) == 0  # a soft timer's callback is scheduled...
        finally:
            machine.hold_scheduler(False)
        assert _coils(PINS) == steps_timer.HALF_STEP[0]  # ...and runs when the VM gets to it


def test_timer_phases_callback_allocates_nothing():
    eng = _engine(400)
    tim = eng._tim
    cb = eng._cb
    eng._left = 1 << 20

    def stepping():
        cb(tim)

    # the fake Pin records every write in a list (that allocates): measure with a Pin that does not
    sink = _Sink()
    eng._a = eng._b = eng._c = eng._d = sink.value
    used = alloc(stepping)
    assert used in (None, 0), used
    assert sink.writes > 0


class _Sink:
    def __init__(self):
        self.writes = 0

    def value(self, v):
        self.writes += 1


def test_timer_phases_start_busy_bursts_allocate_nothing():
    ph = _engine(400)

    def phases():
        ph.start(200)
        ph.busy()
        ph.bursts()

    used = alloc(phases)
    assert used in (None, 0), used
