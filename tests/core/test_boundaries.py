# The safety rules at their exact edges, to the millisecond and the ng (found by mutation testing:
# each pins a comparison that a < / <= swap would otherwise pass).

from support import Events, FakeClock, FakeMotor

from firmware import alarms as A
from firmware.controller import Controller
from firmware.limits import WINDOW_MS
from firmware.prescription import Bolus, Prescription, Profile, PumpParams

DAY = 86_400_000
HOUR = 3_600_000
MIN = 60_000
# The limit's margin (docs/delivery.md) for the default pump at 2000 mcg/mL: a stroke of rounding,
# a runaway's stroke, a blocked line's 2000 nL and the stroke that crosses the threshold.
MARGIN_NG = (250 + 250 + 2000 + 250) * 2000 // 1000


def _ctl(rates=(600_000,), starts=(0,), ptm=None, limit=2_000_000, periodic=()):
    rx = Prescription(2000, [Profile(list(starts), list(rates), "basal.steps")] * 7, periodic, ptm, limit)
    clock = FakeClock()
    events = Events()
    ctl = Controller(clock, FakeMotor(clock, record=False), PumpParams(40_000_000), rx, events)
    return ctl, clock, events


def _at(ctl, clock, t_ms):
    """Advance the clock to t_ms (ms since the start), serving every wake on the way."""
    while True:
        due = clock.now_ms + clock.ticks_diff(ctl.deadline(), clock.tick)
        if due >= t_ms:
            clock.advance(t_ms - clock.now_ms)
            ctl.service()  # the pump clock moves on a wake
            return
        clock.advance(due - clock.now_ms)
        ctl.service()


def test_ptm_lockout_ends_exactly_at_its_minute():
    ctl, clock, _ = _ctl(ptm=(Bolus(1_000, 1, "ptm"), 15, 24))
    assert ctl.request_ptm() == A.OK
    _at(ctl, clock, 15 * MIN - 1)
    assert ctl.request_ptm() == A.LOCKOUT
    _at(ctl, clock, 15 * MIN)
    assert ctl.request_ptm() == A.OK


def test_ptm_count_forgets_a_grant_exactly_24_h_later():
    ctl, clock, _ = _ctl(ptm=(Bolus(1_000, 1, "ptm"), 15, 2))
    assert ctl.request_ptm() == A.OK
    _at(ctl, clock, HOUR)
    assert ctl.request_ptm() == A.OK
    _at(ctl, clock, DAY - 1)
    assert ctl.request_ptm() == A.MAX_PER_DAY
    _at(ctl, clock, DAY)
    assert ctl.request_ptm() == A.OK


def test_a_bolus_exactly_the_room_left_is_granted_whole_and_one_ng_more_is_truncated():
    ctl, clock, events = _ctl(limit=700_000)
    room = ctl.headroom_ng()
    assert room == 700_000 - MARGIN_NG - 600_007
    assert ctl.request_bolus(room, 10) == A.OK
    assert (A.EV_BOLUS, A.CLINICIAN, A.OK, room) in events.log
    assert A.EV_LIMIT_TRUNCATED not in events.codes()
    ctl, clock, events = _ctl(limit=700_000)
    assert ctl.request_bolus(room + 1, 10) == A.OK
    assert (A.EV_LIMIT_TRUNCATED, A.CLINICIAN, room + 1, room) in events.log


def test_truncation_to_exactly_one_stroke_is_granted_and_less_is_denied():
    # One 250 nL stroke at 2000 mcg/mL is 500 ng.
    ctl, clock, events = _ctl(limit=600_007 + MARGIN_NG + 500)
    assert ctl.headroom_ng() == 500 and ctl.request_bolus(5_000, 10) == A.OK
    assert (A.EV_LIMIT_TRUNCATED, A.CLINICIAN, 5_000, 500) in events.log
    ctl, clock, events = _ctl(limit=600_007 + MARGIN_NG + 499)
    assert ctl.request_bolus(5_000, 10) == A.LIMIT


def test_a_granted_bolus_counts_until_exactly_one_window_after_its_end():
    ctl, clock, _ = _ctl(limit=700_000)
    before = ctl.headroom_ng()
    assert ctl.request_bolus(20_000, 10) == A.OK
    end = 10 * MIN
    _at(ctl, clock, end + WINDOW_MS - 1)
    assert ctl.headroom_ng() == before - 20_000
    _at(ctl, clock, end + WINDOW_MS)
    assert ctl.headroom_ng() == before


def test_the_transition_bound_holds_for_exactly_one_window_after_a_program():
    # Old: the least rate (96 mcg/day at 2000 mcg/mL) until noon, 1000 mcg/day after; new: 1000
    # until noon, the least after. Windows spanning the change at midnight and ending at noon to
    # noon + 1 s hold 500 + 500 mcg and 1 s of the least rate (1.11 ng): 1 000 002 ng rounded up,
    # until one window after the change.
    least = 96_000
    ctl, clock, _ = _ctl(rates=(least, 1_000_000), starts=(0, 12 * HOUR), limit=1_100_000)
    new = Prescription(2000, [Profile([0, 12 * HOUR], [1_000_000, least], "n")] * 7, (), None, 1_100_000)
    _at(ctl, clock, DAY)
    own = new.worst_window_ng()
    spanning = 1_000_000 + -(-least * 1000 // DAY)
    assert spanning == 1_000_002
    assert ctl.program(new) == A.OK
    assert ctl.basal_cap_ng() == spanning > own
    _at(ctl, clock, DAY + WINDOW_MS - 1)
    assert ctl.basal_cap_ng() == spanning
    _at(ctl, clock, DAY + WINDOW_MS)
    assert ctl.basal_cap_ng() == own


def test_low_alarm_at_exactly_the_stroke_that_reaches_the_threshold():
    # 2.0005 mL: the 2nd 250 nL stroke leaves exactly... 2.0005 - 0.0005 = 2.0 mL after 2 strokes.
    rx = Prescription(2000, [Profile([0], [600_000], "b")] * 7, (), None, 2_000_000)
    clock = FakeClock()
    events = Events()
    motor = FakeMotor(clock)
    ctl = Controller(clock, motor, PumpParams(), rx, events, volume_nl=2_000_500)
    _at(ctl, clock, 144_000 - 1)
    ctl.service()
    assert A.EV_LOW_RESERVOIR not in events.codes() and len(motor.times) == 1
    _at(ctl, clock, 144_000)
    ctl.service()
    assert (A.EV_LOW_RESERVOIR, 2_000_000, 0, 0) in events.log
    assert ctl.reservoir.strokes_to_low() == 0


def test_the_pump_stops_exactly_when_less_than_a_stroke_is_left_above_empty():
    rx = Prescription(2000, [Profile([0], [600_000], "b")] * 7, (), None, 2_000_000)
    clock = FakeClock()
    events = Events()
    motor = FakeMotor(clock)
    # 0.5 mL empty threshold + 2 strokes + 249 nL: the 2nd stroke leaves 249 nL above it: stop there.
    ctl = Controller(clock, motor, PumpParams(), rx, events, volume_nl=500_000 + 500 + 249)
    assert ctl.reservoir.strokes_available() == 2
    _at(ctl, clock, DAY)
    ctl.service()
    assert len(motor.times) == 2 and A.EV_EMPTY_RESERVOIR in events.codes()
    ctl2 = Controller(clock, FakeMotor(clock), PumpParams(), rx, Events(), volume_nl=500_000 + 500)
    assert ctl2.reservoir.strokes_available() == 2


def _prime_ctl(catheter_cm=50, volume_nl=20_000_000):
    rx = Prescription(2000, [Profile([0], [600_000], "b")] * 7, (), None, 2_000_000)
    clock = FakeClock()
    events = Events()
    motor = FakeMotor(clock)
    pump = PumpParams(20_000_000, 250, 2_000_000, 500_000, 200_000, catheter_cm, 2600)
    return Controller(clock, motor, pump, rx, events, volume_nl=volume_nl), clock, motor, events


def test_a_whole_path_prime_with_a_partial_stroke_left_paces_that_stroke_by_its_drug():
    # 0.2 mL + 47 cm x 2.6 uL = 322.2 uL: 1288 prime strokes (322 uL), 200 nL still empty. The
    # next stroke pushes 200 nL of nothing and 50 nL of drug (100 ng): due after 14.4 s at 600 mcg/day.
    ctl, clock, motor, events = _prime_ctl(catheter_cm=47)
    assert ctl.prime() == A.OK and (A.EV_PRIME, 322_000, 0, 0) in events.log
    _at(ctl, clock, DAY)
    done = 1288 * 900
    assert motor.times[1287] == done and (A.EV_PRIME_DONE, 322_000, 0, 0) in events.log
    assert motor.times[1288] == done + 14_400 and motor.times[1289] == done + 14_400 + 72_000


def test_a_catheter_revision_primes_only_the_new_piece_and_keeps_the_drug_behind_it():
    # 11 cm x 2.6 uL = 28.6 uL: 114 strokes (28.5 uL), 100 nL empty left; the next stroke pushes
    # 100 nL of nothing and 150 nL of the drug still in the path (300 ng): 43.2 s.
    ctl, clock, motor, events = _prime_ctl()
    _at(ctl, clock, HOUR)
    n = len(motor.times)
    assert ctl.prime(11) == A.OK and (A.EV_PRIME, 28_500, 0, 0) in events.log
    assert ctl.path.vol[0] == 28_600 and ctl.path.conc[0] == 0 and ctl.path.conc[1] == 2000
    _at(ctl, clock, DAY)
    done = HOUR + 114 * 900
    assert motor.times[n + 113] == done and motor.times[n + 114] == done + 43_200
    assert motor.times[n + 115] == done + 43_200 + 72_000


def test_a_prime_is_refused_while_priming_or_without_the_volume_and_changes_nothing():
    ctl, clock, motor, events = _prime_ctl(volume_nl=500_000 + 330_000 - 1)  # one nL short of 1320 strokes
    assert ctl.prime() == A.EMPTY and (A.EV_PRIME_REJECTED, A.EMPTY, 0, 0) in events.log
    assert not ctl.priming() and ctl.path.conc[0] == 2000 and ctl.path.n == 1
    ctl, clock, motor, events = _prime_ctl(volume_nl=500_000 + 330_000)  # exactly enough
    assert ctl.prime() == A.OK
    assert ctl.prime(5) == A.PRIMING and (A.EV_PRIME_REJECTED, A.PRIMING, 0, 0) in events.log
    # Nothing asked during a prime is given: boluses are denied with the reason.
    assert ctl.request_bolus(10_000, 10) == A.PRIMING
    assert (A.EV_BOLUS, A.CLINICIAN, A.PRIMING, 0) in events.log


def test_a_prime_cancels_the_boluses_in_progress():
    ctl, clock, motor, events = _prime_ctl()
    assert ctl.request_bolus(20_000, 30) == A.OK
    _at(ctl, clock, 10 * MIN)
    assert ctl.prime() == A.OK
    assert (A.EV_BOLUS_CANCELLED, A.CLINICIAN, 0, 0) in events.log and ctl.boluses.rate_sum == 0


class TimedEvents(Events):
    def __init__(self, clock):
        Events.__init__(self)
        self.clock = clock
        self.times = []

    def __call__(self, code, a, b, c):
        Events.__call__(self, code, a, b, c)
        self.times.append(self.clock.now_ms)

    def first(self, code):
        return self.times[self.codes().index(code)]


def _deadlines_only(ctl, clock, end_ms):
    while clock.now_ms < end_ms:
        clock.until(ctl.deadline())
        ctl.service()


def test_low_and_empty_alarms_sound_at_the_exact_stroke_with_the_pump_waking_only_at_its_deadlines():
    # 6000 mcg/day at 2000 mcg/mL is 3 mL/day: a 250 nL stroke every 7.2 s. From 2.6 mL, the low
    # alarm (2.0 mL) comes with stroke 2400 and the pump stops at stroke 8400 (0.5 mL left).
    for start in (2_600_000, 2_600_001, 2_000_251):
        rx = Prescription(2000, [Profile([0], [6_000_000], "b")] * 7, (), None, 7_000_000)
        clock = FakeClock()
        events = TimedEvents(clock)
        motor = FakeMotor(clock)
        ctl = Controller(clock, motor, PumpParams(), rx, events, volume_nl=start)
        _deadlines_only(ctl, clock, DAY)
        to_low = -(-(start - 2_000_000) // 250)
        assert events.first(A.EV_LOW_RESERVOIR) == motor.times[to_low - 1] == 7200 * to_low
        n = (start - 500_000) // 250
        assert len(motor.times) == n and events.first(A.EV_EMPTY_RESERVOIR) == motor.times[-1]
        assert A.EV_UNDER_DELIVERY not in events.codes()


def test_more_than_24_patient_boluses_in_all_keep_the_rolling_count_right():
    ctl, clock, events = _ctl(ptm=(Bolus(1_000, 1, "ptm"), 15, 24), limit=200_000_000)
    results = []
    for h in range(50):  # one an hour for two days: exactly 24 in every 24 h
        _at(ctl, clock, h * HOUR)
        results.append(ctl.request_ptm())
    assert results == [A.OK] * 50
    _at(ctl, clock, 50 * HOUR - 15 * MIN)
    assert ctl.request_ptm() == A.MAX_PER_DAY
