# The pyboard timer step engine (hal/steps_pyb.py) on the virtual stm32 port (boards/virtual/stm32): on CPython
# (pytest) and on the MicroPython unix port (tools/run_boards.sh). Plain test functions and asserts.

import machine
import pyb
from steps_support import alloc

from hal import steps_pyb


def _pyb_engine(rate=1000):
    machine.reset_fakes()
    eng = steps_pyb.TimerSteps(2, 1, "X1", "X2", rate)
    return eng, eng._tim, eng._ch


def test_pyb_timer_bookkeeping():
    eng, tim, ch = _pyb_engine(1000)
    assert tim.freq() == 1000 and tim.prescaler() == 1 and tim.period() == 41999
    assert eng.half == 21000 and ch.pin.id == "X1" and ch.mode == pyb.Timer.PWM
    assert ch.pulse_width() == 0 and machine.Pin.get("X2").value() == 1
    tim.advance(5)
    assert ch.pulses == 0 and not eng.busy()  # idle: no pulses


def test_pyb_timer_exactly_n_steps():
    eng, tim, ch = _pyb_engine(500)
    done = 0
    for n in (1, 2, 7, 200, 1000):
        p0 = ch.pulses
        before = pyb.irq_disables
        eng.start(n)
        assert pyb.irq_disables == before + 1 and pyb.irq_enabled
        assert eng.busy() and ch.pulses == p0  # the compare lands at the next update
        tim.advance(n)
        assert ch.pulses - p0 == n and eng.busy()  # pulse n runs; its stop was written at U_n
        assert ch.preload == 0 and ch.compare == eng.half
        tim.advance(1)
        assert ch.pulses - p0 == n and not eng.busy()  # U_n+1: no pulse, burst complete
        done += 1
        assert eng.bursts() == done
        tim.advance(3)
        assert ch.pulses - p0 == n and eng.bursts() == done
        assert set(ch.widths) == {eng.half}


def test_pyb_timer_stop():
    eng, tim, ch = _pyb_engine(1000)
    eng.start(10)
    tim.advance(3)
    eng.stop()
    tim.advance(5)
    assert ch.pulses == 3 and not eng.busy() and eng.bursts() == 0
    eng.start(2)
    tim.advance(3)
    assert ch.pulses == 5 and eng.bursts() == 1


def test_pyb_callback_allocates_nothing():
    eng, tim, ch = _pyb_engine(1000)
    cb = eng._cb
    eng._left = 1 << 20  # a long burst: the counting branch
    eng._tail = 0

    def counting():
        cb(tim)

    used = alloc(counting)
    assert used in (None, 0), used

    def completing():
        eng._left = 1  # the branch that writes the compare...
        cb(tim)
        cb(tim)  # ...and the one that counts the burst

    used = alloc(completing)
    assert used in (None, 0), used
    assert eng.bursts() == 400


def test_pyb_start_busy_bursts_allocate_nothing():
    eng, tim, ch = _pyb_engine(1000)

    def stroke():
        eng.start(200)
        eng.busy()
        eng.bursts()
        eng._left = eng._tail = 0

    used = alloc(stroke)
    assert used in (None, 0), used
