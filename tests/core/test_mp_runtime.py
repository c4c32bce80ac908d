# What only a real MicroPython port can prove: the wrap of its own ticks, and zero allocation.

from support import FakeClock, FakeMotor, skip

from firmware.controller import Controller
from firmware.prescription import Bolus, Prescription, Profile, PumpParams

HOUR = 3_600_000


def _time_module():
    import time

    if not hasattr(time, "ticks_add"):
        skip("CPython has no ticks_*; tests/host/test_sim_clock.py covers the simulator's clock")
    return time


def test_deadline_across_the_real_tick_wrap_fires_on_time():
    time = _time_module()
    from hal.machine_clock import MachineClock

    clock = MachineClock()
    near_wrap = time.ticks_add(0, -5)  # 5 ms before the wrap, whatever the port's period
    deadline = clock.ticks_add(near_wrap, 10)
    assert deadline == 5
    assert clock.ticks_diff(deadline, near_wrap) == 10
    assert clock.ticks_diff(near_wrap, deadline) == -10
    # Walking forward 1 ms at a time, the deadline is due exactly at the 10th step.
    t = near_wrap
    for step in range(1, 12):
        t = clock.ticks_add(t, 1)
        assert (clock.ticks_diff(deadline, t) <= 0) == (step >= 10)
    # The largest valid distance is half the period on either side.
    half = time.ticks_add(0, -1) // 2 + 1
    assert clock.ticks_diff(clock.ticks_add(0, half - 1), 0) == half - 1


def _steady_controller():
    base = Profile([0, 6 * HOUR, 12 * HOUR, 18 * HOUR], [700_000, 400_000, 500_000, 600_000], "basal.steps")
    rx = Prescription(2000, [base] * 7, ((8 * HOUR, Bolus(50_000, 10, "p")),), None, 1_000_000)
    clock = FakeClock()
    motor = FakeMotor(clock, record=False)
    counts = [0]

    def emit(code, a, b, c):
        counts[0] += 1

    ctl = Controller(clock, motor, PumpParams(40_000_000), rx, emit)
    return ctl, clock, motor, counts


def test_steady_state_dosing_path_allocates_nothing():
    try:
        import micropython

        micropython.heap_lock  # noqa: B018  (AttributeError where the port lacks it)
    except (ImportError, AttributeError):
        skip("heap_lock needs MicroPython")
    import gc

    ctl, clock, motor, counts = _steady_controller()
    # Warm up a day outside the lock (first periodic bolus fills its ledger slot).
    for _ in range(10):
        clock.until(ctl.deadline())
        ctl.service()
    gc.collect()
    wakes = 0
    failed = None
    micropython.heap_lock()
    try:
        # Three days of step boundaries, midnights, periodic bolus starts and ends, with strokes.
        while wakes < 30:
            clock.until(ctl.deadline())
            ctl.service()
            wakes += 1
    except MemoryError as e:
        failed = e
    finally:
        micropython.heap_unlock()
    assert failed is None, "the dosing path allocated"
    assert wakes == 30
    assert motor.total > 3000 and counts[0] > 0
