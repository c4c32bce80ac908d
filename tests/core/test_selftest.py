# The self-tests (firmware/selftest.py) and the watchdog's feeding rule (PumpLoop._healthy): each
# self-test failing holds delivery for good, raises critical_fault and logs why; a wake whose health
# checks fail leaves the watchdog unfed; with both on, the steady path allocates nothing.
#
# The rig's pump clock starts at midnight, so the self-tests fall at whole hours of the test
# (firmware/selftest.py: on the pump clock's hours); a stroke is due every 72 s (fakes_hal).

from fakes_hal import STROKE_MS, standard_rig, standard_rx
from support import heap_meter, heap_meter_done, skip

from firmware.alarms import (
    ALARM_CRITICAL_FAULT,
    EV_CRITICAL_FAULT,
    FAULT_BATTERY_ADC,
    FAULT_CLOCK,
    FAULT_JOURNAL_CHECK,
    FAULT_RX_CRC,
)
from firmware.controller import HOLD_FAULT
from firmware.persist import Persist
from firmware.prescription import PumpParams
from hal.channel import CMD_SILENCE
from sim.nor_flash import NorFlash

S = 1000
MIN = 60 * S
HOUR = 60 * MIN


class Rtc:
    """The real-time clock: the rig clock's seconds plus skew_s (a test moves it alone)."""

    def __init__(self, clock):
        self.clock = clock
        self.skew_s = 0

    def now_s(self):
        return 1_000_000 + self.skew_s + self.clock.now_ms // 1000


class Dog:
    """The Watchdog interface (hal/interfaces.py): counts feeds and records the tick of each."""

    def __init__(self, clock, timeout_ms=8000, record=True):
        self.clock = clock
        self.timeout_ms = timeout_ms
        self.feeds = 0
        self.record = record
        self.fed_ms = []

    def feed(self):
        self.feeds += 1
        if self.record:
            self.fed_ms.append(self.clock.now_ms)


def _rig_with_persist(watchdog=False):
    """A standard rig whose loop has a journal and a real-time clock (rebuilt on the rig's hardware)."""
    from firmware.loop import PumpLoop

    rig = standard_rig()
    rig.flash = NorFlash(4096, 8)
    rig.rtc = Rtc(rig.clock)
    rig.dog = Dog(rig.clock) if watchdog else None
    rig.loop = PumpLoop(rig.clock, rig.motor, rig.ann, rig.button, rig.prog, rig.adc, PumpParams(), standard_rx(),
                        rig.events, persist=Persist(rig.flash, rig.rtc), watchdog=rig.dog)
    return rig


def _faulted(rig, what, at_ms, detail=None):
    """critical_fault for `what` raised once, at at_ms, and delivery held for good from then."""
    faults = rig.events.of(EV_CRITICAL_FAULT)
    assert [(e[0], e[1]) for e in faults] == [(at_ms, what)], faults
    if detail is not None:
        assert faults[0][2] == detail, faults
    loop = rig.loop
    assert loop.ctl.held & HOLD_FAULT and loop.alarms.active & ALARM_CRITICAL_FAULT
    assert loop.selftest.failed == what
    assert rig.motor.times and rig.motor.times[-1] <= at_ms  # not one stroke after it


def _strokes_until(ms):
    return ms // STROKE_MS  # one every 72 s from 72 s on


def test_the_self_tests_pass_hourly_on_a_healthy_pump():
    rig = _rig_with_persist()
    rig.run_until(10 * HOUR + 1)
    assert rig.loop.selftest.runs == 11 and not rig.loop.selftest.failed  # boot, then 1 h .. 10 h
    assert not rig.events.of(EV_CRITICAL_FAULT) and not rig.loop.ctl.held
    assert len(rig.motor.times) == _strokes_until(10 * HOUR + 1)


def test_a_prescription_corrupted_in_ram_is_caught_at_the_next_hour():
    rig = standard_rig()
    rig.run_until(90 * MIN)
    rig.loop.ctl.rx.max_daily_ng += 1  # a flipped bit in the limit held in RAM
    rig.run_until(3 * HOUR)
    _faulted(rig, FAULT_RX_CRC, 2 * HOUR)
    assert len(rig.motor.times) == _strokes_until(2 * HOUR)


def test_a_corrupted_basal_rate_is_caught_and_a_programmed_one_is_not():
    from firmware.prescription import Prescription, Profile
    from hal.channel import CMD_PROGRAM

    rig = standard_rig()
    rx = Prescription(2000, [Profile([0], [500_000], "basal.steps")] * 7, (), None, 1_000_000)
    rig.send(30 * MIN, (CMD_PROGRAM, rx))  # set by the clinician: the reference moves with it
    rig.run_until(3 * HOUR + 1)
    assert not rig.events.of(EV_CRITICAL_FAULT) and rig.loop.selftest.runs == 4
    rig.loop.ctl.rx.profiles[3].rates_ng_per_day = (500_001,)  # the basal rate in RAM (every day's: one Profile)
    rig.run_until(5 * HOUR)
    _faulted(rig, FAULT_RX_CRC, 4 * HOUR)


def test_a_stopped_tick_clock_is_caught_by_the_real_time_clock():
    rig = _rig_with_persist()
    rig.run_until(HOUR + 1)  # the 1 h self-test passed
    frozen = rig.clock.tick
    rig.clock.ticks_ms = lambda: frozen  # the tick clock stops ...
    rig.rtc.skew_s = 3610  # ... while an hour and 10 s pass by the real-time clock
    rig.loop.service()  # a wake by an input (the deadline's never comes)
    _faulted(rig, FAULT_CLOCK, HOUR + 1, 1)  # b: ms ticked since the last self-test


def test_a_tick_clock_running_slow_is_caught():
    rig = _rig_with_persist()
    rig.run_until(HOUR + 1)
    rig.rtc.skew_s = 120  # 2 minutes more by the real-time clock than by the ticks over the next hour
    rig.run_until(3 * HOUR)
    _faulted(rig, FAULT_CLOCK, 2 * HOUR, HOUR)


def test_a_battery_adc_out_of_range_twice_in_a_row_is_a_fault_a_glitch_is_not():
    rig = standard_rig()
    rig.at(2 * HOUR - 10 * S, lambda: setattr(rig.adc, "mv", 500))  # a glitch over the 2 h self-test
    rig.at(2 * HOUR + 50 * S, lambda: setattr(rig.adc, "mv", 3000))
    rig.run_until(3 * HOUR + 1)
    assert not rig.events.of(EV_CRITICAL_FAULT) and not rig.loop.ctl.held
    rig.at(3 * HOUR + 30 * MIN, lambda: setattr(rig.adc, "mv", 5001))  # the divider failed open
    rig.run_until(5 * HOUR)
    _faulted(rig, FAULT_BATTERY_ADC, 4 * HOUR + 2 * MIN, 5001)  # read again 2 minutes later


def test_a_battery_adc_reading_below_any_working_cell_is_a_fault():
    rig = standard_rig()
    rig.at(30 * MIN, lambda: setattr(rig.adc, "mv", 999))
    rig.run_until(2 * HOUR)
    _faulted(rig, FAULT_BATTERY_ADC, HOUR + 2 * MIN, 999)


def test_a_journal_record_that_decayed_since_the_last_check_is_caught():
    rig = _rig_with_persist()
    at = []
    rig.at(70 * MIN - 1, lambda: at.append((rig.loop.persist.journal.block, rig.loop.persist.journal.offset)))
    rig.send(70 * MIN, (CMD_SILENCE,))  # rejected (nothing to silence): logged, so journaled
    rig.run_until(80 * MIN)
    block, offset = at[0]
    assert rig.loop.persist.journal.block == block and rig.loop.persist.journal.offset > offset  # written
    rig.flash.flip((block * 4096 + offset + 12) * 8 + 3)  # a bit of its payload decays
    rig.run_until(3 * HOUR)
    _faulted(rig, FAULT_JOURNAL_CHECK, 2 * HOUR, offset)


def test_the_watchdog_is_fed_at_every_healthy_wake_and_never_left_half_its_timeout():
    rig = _rig_with_persist(watchdog=True)
    rig.run_until(3 * HOUR)
    dog = rig.dog
    assert dog.feeds == rig.loop.wakes and rig.loop.unfed == 0
    gaps = [b - a for a, b in zip(dog.fed_ms, dog.fed_ms[1:])]
    assert max(gaps) <= dog.timeout_ms // 2, max(gaps)
    assert len(rig.motor.times) == _strokes_until(3 * HOUR)  # the wakes change no stroke


def test_no_feed_when_a_health_check_fails():
    rig = _rig_with_persist(watchdog=True)
    rig.run_until(HOUR)
    dog = rig.dog
    loop = rig.loop

    def wake():
        rig.clock.until(loop.deadline())
        fed = dog.feeds
        loop.service()
        return dog.feeds - fed

    assert wake() == 1
    # A reservoir count beyond the reservoir
    cap = loop.ctl.pump.capacity_nl
    good = loop.ctl.reservoir.volume_nl
    loop.ctl.reservoir.volume_nl = cap + 1
    assert wake() == 0
    loop.ctl.reservoir.volume_nl = good
    assert wake() == 1
    # A timer still due after its owner was serviced: the zero-length wait refused
    gauge = loop.gauge
    gauge.ms_to_next_event = lambda: 0
    refused = loop.refused
    assert wake() == 0 and loop.refused == refused + 1
    del gauge.ms_to_next_event
    assert wake() == 1
    # The controller's next change overdue after it was serviced (a controller stuck in the past)
    ctl = loop.ctl
    ctl.plan = lambda: None
    rig.clock.until(loop.deadline())
    ctl._deadline = rig.clock.ticks_add(rig.clock.tick, -1)
    fed = dog.feeds
    loop.service()
    assert dog.feeds == fed
    del ctl.plan
    assert wake() == 1
    assert loop.unfed == 3


def test_a_critical_fault_keeps_the_dog_fed():
    # Held for good and alarming is a healthy loop: a reset would only repeat the boot.
    rig = _rig_with_persist(watchdog=True)
    rig.run_until(30 * MIN)
    rig.loop.ctl.rx.max_daily_ng += 1
    rig.run_until(3 * HOUR)
    assert rig.loop.ctl.held & HOLD_FAULT and rig.loop.unfed == 0 and rig.dog.feeds == rig.loop.wakes


def test_steady_state_with_the_watchdog_and_the_self_tests_allocates_nothing():
    mem = heap_meter()
    if mem is None:
        skip("allocation is measured on MicroPython")
    try:
        rig = standard_rig(record=False, counting_emit=True)
        from firmware.loop import PumpLoop

        rig.flash = NorFlash(4096, 8)
        rig.rtc = Rtc(rig.clock)
        rig.dog = Dog(rig.clock, 8000, record=False)
        loop = PumpLoop(rig.clock, rig.motor, rig.ann, rig.button, rig.prog, rig.adc, PumpParams(), standard_rx(),
                        rig.events, persist=Persist(rig.flash, rig.rtc), watchdog=rig.dog)
        rig.loop = loop
        for _ in range(50):
            rig.clock.until(loop.deadline())
            loop.service()
        runs = loop.selftest.runs
        wakes = loop.wakes
        before = mem()
        while loop.selftest.runs < runs + 3:  # three hourly self-tests, about 2700 wakes
            rig.clock.until(loop.deadline())
            loop.service()
        allocated = mem() - before
    finally:
        heap_meter_done()
    print("steady state with the watchdog and self-tests: %d B over %d wakes, %d self-tests" % (
        allocated, loop.wakes - wakes, loop.selftest.runs - runs))
    assert rig.dog.feeds == loop.wakes and not loop.selftest.failed
    assert allocated == 0, "%d B allocated over %d wakes" % (allocated, loop.wakes - wakes)
