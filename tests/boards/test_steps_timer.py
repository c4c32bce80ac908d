# The ULN2003 phase engine on a machine.Timer (hal/steps_timer.py), on every virtual port that
# builds it (esp32, stm32): on CPython (pytest) and on the MicroPython unix port.

import machine
from steps_support import alloc, raises

from hal import steps_timer


def _coils(pins):
    v = 0
    for i in range(4):
        if machine.Pin.get(pins[i]).value():
            v |= 1 << i
    return v


def test_timer_phases_sequence_count_and_continuity():
    for half in (True, False):
        machine.reset_fakes()
        pins = (12, 13, 14, 15)
        eng = steps_timer.TimerPhases(pins, 400, half=half)
        tim = eng._tim
        assert tim.mode == machine.Timer.PERIODIC and tim.callback == eng._cb and tim.period_ms == 2
        seq = steps_timer.HALF_STEP if half else steps_timer.FULL_STEP
        tim.fire()
        assert _coils(pins) == 0 and not eng.busy()
        seen = []
        done = 0
        for n in (1, 2, 7, 13):
            eng.start(n)
            for _ in range(n):
                assert eng.busy()
                tim.fire()
                seen.append(_coils(pins))
            assert eng.busy() and eng.bursts() == done  # completes one tick later
            tim.fire()
            done += 1
            assert not eng.busy() and eng.bursts() == done
            tim.fire()
            assert eng.bursts() == done
        assert seen == [seq[i % 8] for i in range(len(seen))]
        eng.start(5)
        tim.fire()
        eng.stop()
        held = _coils(pins)
        tim.fire()
        assert _coils(pins) == held and not eng.busy() and eng.bursts() == done
    assert raises(ValueError, steps_timer.TimerPhases, (1, 2, 3), 100)


def test_timer_phases_callback_allocates_nothing():
    machine.reset_fakes()
    eng = steps_timer.TimerPhases((12, 13, 14, 15), 400)
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
    machine.reset_fakes()
    ph = steps_timer.TimerPhases((12, 13, 14, 15), 400)

    def phases():
        ph.start(200)
        ph.busy()
        ph.bursts()

    used = alloc(phases)
    assert used in (None, 0), used
