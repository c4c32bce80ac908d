# What only a real MicroPython port can prove: the wrap of its own ticks, and zero allocation.

from support import FakeClock, FakeMotor, heap_meter, heap_meter_done, skip

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
    rx = Prescription(2000, [base] * 7, ((8 * HOUR, Bolus(50_003, 7, "p")),), (Bolus(20_000, 7, "ptm"), 15, 24),
                      1_000_000)
    clock = FakeClock()
    motor = FakeMotor(clock, record=False)
    counts = [0]

    def emit(code, a, b, c):
        counts[0] += 1

    ctl = Controller(clock, motor, PumpParams(40_000_000), rx, emit)
    return ctl, clock, motor, counts


def _wake(ctl, clock):
    clock.until(ctl.deadline())
    ctl.service()


def test_steady_state_dosing_path_allocates_nothing_with_the_heap_unlocked():
    # Defect 1.7: heap_lock() alone hides it, because MicroPython then puts a call frame that
    # does not fit 11 words on the C stack instead of the heap. So measure with the heap unlocked.
    mem = heap_meter()
    if mem is None:
        skip("allocation is measured on MicroPython")
    ctl, clock, motor, counts = _steady_controller()
    _wake(ctl, clock)  # the first periodic bolus fills its ledger slot; later ones reuse freed slots
    try:
        for _ in range(10):
            _wake(ctl, clock)
        strokes = motor.total
        before = mem()
        # Three days: step boundaries, midnights, periodic bolus grants with their two phases and
        # ends, path FIFO accounting, with strokes.
        wakes = 0
        while wakes < 60:
            _wake(ctl, clock)
            wakes += 1
        allocated = mem() - before
    finally:
        heap_meter_done()
    print("steady-state: %d B over %d wakes, %d strokes" % (allocated, wakes, motor.total - strokes))
    assert motor.total - strokes > 3000 and counts[0] > 0
    assert allocated == 0, "%d B allocated over %d wakes" % (allocated, wakes)


def test_steady_state_under_heap_lock_too():
    try:
        import micropython

        micropython.heap_lock  # noqa: B018  (AttributeError where the port lacks it)
    except (ImportError, AttributeError):
        skip("heap_lock needs MicroPython")
    import sys

    if sys.implementation.name != "micropython":
        skip("heap_lock needs MicroPython")
    ctl, clock, motor, _ = _steady_controller()
    for _ in range(10):
        _wake(ctl, clock)
    failed = None
    micropython.heap_lock()
    try:
        for _ in range(30):
            _wake(ctl, clock)
    except MemoryError as e:
        failed = e
    finally:
        micropython.heap_unlock()
    assert failed is None, "the dosing path allocated"


def test_request_paths_report_their_allocation():
    # Requests are rare and may allocate a little (the limit's program history, messages); this
    # records how much, per path, and checks that none grows without bound.
    mem = heap_meter()
    if mem is None:
        skip("allocation is measured on MicroPython")
    ctl, clock, motor, _ = _steady_controller()
    rx2 = Prescription(2500, [Profile([0, 12 * HOUR], [600_000, 500_000], "basal.steps")] * 7, (), None, 1_000_000)
    figures = []
    try:
        for name, call in (
            ("request_ptm granted", ctl.request_ptm),
            ("request_ptm denied", ctl.request_ptm),
            ("request_bolus", lambda: ctl.request_bolus(10_000, 5)),
            ("cancel_bolus", ctl.cancel_bolus),
            ("refill", lambda: ctl.refill(1_000_000, 2000)),
            ("refill new drug", lambda: ctl.refill(30_000_000, 2500)),
            ("program", lambda: ctl.program(rx2)),
            ("prime", lambda: ctl.prime(10)),
        ):
            clock.advance(HOUR)
            before = mem()
            call()
            figures.append((name, mem() - before))
    finally:
        heap_meter_done()
    for name, n in figures:
        print("  %-20s %6d B" % (name, n))
    assert figures[0][1] < 2000 and figures[1][1] < 2000


def _extreme(concentration, rate_ng, stroke_nl, internal_nl, catheter_cm, nl_per_cm, bolus):
    second = rate_ng // 2 if rate_ng > 100_000 else rate_ng
    rx = Prescription(concentration, [Profile([0, 6 * HOUR], [rate_ng, second], "basal.steps")] * 7,
                      ((7 * HOUR, bolus),) if bolus else (), None, 200_000_000)
    pump = PumpParams(40_000_000, stroke_nl, 2_000_000, 500_000, internal_nl, catheter_cm, nl_per_cm)
    clock = FakeClock()
    motor = FakeMotor(clock, record=False)
    ctl = Controller(clock, motor, pump, rx, lambda code, a, b, c: None)
    return ctl, clock, motor


def test_core_integers_at_their_extremes_stay_small_on_32_bit():
    # On the 32-bit WebAssembly port a small int that overflows becomes a heap object, so zero
    # bytes allocated over these wakes proves every intermediate stayed below 2**30 (frames live
    # on its pystack). The 64-bit unix port's small ints are 62-bit: there it only runs them.
    import sys

    mem = heap_meter() if sys.maxsize < (1 << 32) else None
    cases = (
        # 24 mL/day at 5000 mcg/mL in 50 nL strokes (480 000 a day), the largest path, a day-long bolus
        (5000, 120_000_000 - 2_000_000, 50, 1_000_000, 150, 10_000, Bolus(2_000_000, 1440, "p")),
        # the weakest drug at the least basal, 5000 nL strokes: a stroke every few hours
        (10, 480, 5000, 0, 5, 1000, None),
        # 5000 nL strokes of the strongest drug (25 mcg a stroke) at 10 mL/day, a 2-minute bolus
        (5000, 50_000_000, 5000, 200_000, 50, 2600, Bolus(50_000, 2, "p")),
    )
    try:
        for case in cases:
            ctl, clock, motor = _extreme(*case)
            _wake(ctl, clock)
            before = mem() if mem else 0
            for _ in range(40):
                if clock.now_ms > 11 * 24 * HOUR:  # the fake's own ms counter would leave small ints at 12.4 days
                    break
                _wake(ctl, clock)
            allocated = (mem() - before) if mem else 0
            assert allocated == 0, "%d B at %r" % (allocated, case[:3])
            assert motor.total > 0
    finally:
        if mem:
            heap_meter_done()
