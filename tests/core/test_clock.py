# Setting the pump clock (Controller.set_clock, the programmer's CMD_SET_CLOCK): elapsed time is
# untouched, so the ideal delivery is continuous through the jump and no dose is doubled or
# skipped; the basal day-profile follows the new local time. Expected stroke times come from the
# delivery rule's oracle in support.py over elapsed time, with the prescription's rate at each
# elapsed instant worked out here from the local time the clock shows then.

from fakes_hal import standard_rig
from support import Events, FakeClock, FakeMotor, bolus_segments, oracle_stroke_times, raises, timeline
from support import run_controller as _run

from firmware import alarms as A
from firmware.controller import Controller
from firmware.prescription import Bolus, Prescription, Profile, PumpParams
from hal.channel import CMD_SET_CLOCK

DAY = 86_400_000
HOUR = 3_600_000
MIN = 60_000


def _rx(steps, periodic=(), ptm=None, limit_mcg=2000):
    base = Profile([h * HOUR for h, _ in steps], [mcg * 1000 for _, mcg in steps], "basal.steps")
    return Prescription(2000, [base] * 7, tuple(periodic), ptm, int(limit_mcg * 1000))


def _make(rx, **kw):
    clock = FakeClock()
    motor = FakeMotor(clock)
    events = Events()
    ctl = Controller(clock, motor, PumpParams(), rx, events, **kw)
    return ctl, clock, motor, events


def _set(ctl, weekday, ms, out):
    def go():
        ctl.sync()  # accounted up to now: what is owed just before the jump ...
        before = (ctl.due[0], ctl.due[1], ctl.delivered.total())
        out.append(ctl.set_clock(weekday, ms))
        out.append(before == (ctl.due[0], ctl.due[1], ctl.delivered.total()))  # ... is owed just after
    return go


def test_clock_set_back_an_hour_during_a_periodic_bolus_gives_it_once():
    # 600 mcg/day flat; 50 mcg over 30 minutes at 07:30. At 07:40, the bolus running, the clock is
    # set back to 06:40: the bolus runs its remaining 20 minutes, and 07:30 coming round again
    # (elapsed 08:30) gives nothing. The next local day's 07:30 is elapsed 1 day + 08:30.
    rx = _rx([(0, 600)], periodic=[(7 * HOUR + 30 * MIN, Bolus(50_000, 30, "p"))])
    ctl, clock, motor, events = _make(rx)
    out = []
    _run(ctl, clock, 2 * DAY, [(7 * HOUR + 40 * MIN, _set(ctl, 0, 6 * HOUR + 40 * MIN, out))])
    assert out == [A.OK, True]
    changes = [(0, 600_000)] + bolus_segments(7 * HOUR + 30 * MIN, 50_000, 30)
    changes += bolus_segments(DAY + 8 * HOUR + 30 * MIN, 50_000, 30)
    assert motor.times == oracle_stroke_times(timeline(changes, 2 * DAY), 500_000, 2 * DAY)
    grants = [e for e in events.log if e[0] == A.EV_BOLUS]
    assert grants == [(A.EV_BOLUS, A.PERIODIC, A.OK, 50_000)] * 2
    # The first elapsed day holds exactly the prescription by elapsed time: 600 + 50 mcg, 0.5 mcg a stroke.
    assert len([t for t in motor.times if t <= DAY]) == (600_000 + 50_000) // 500
    assert (A.EV_CLOCK_SET, 7 * HOUR + 40 * MIN, 0, -3600) in events.log
    assert (ctl.weekday(), ctl.ms) == (1, 23 * HOUR)  # 2 days elapsed, the clock an hour behind


def test_clock_set_forward_across_a_step_boundary_takes_the_new_step_at_once():
    # 400 mcg/day from 00:00, 800 from 12:00. At 11:00 the clock is set to 13:00: 800 from the
    # jump, the next local midnight comes at elapsed 22:00, the next 12:00 at elapsed 34:00.
    ctl, clock, motor, events = _make(_rx([(0, 400), (12, 800)]))
    out = []
    _run(ctl, clock, 2 * DAY, [(11 * HOUR, _set(ctl, 0, 13 * HOUR, out))])
    assert out == [A.OK, True]  # nothing accrued or lost for the jump
    segments = [(0, 400_000), (11 * HOUR, 800_000), (22 * HOUR, 400_000), (34 * HOUR, 800_000), (46 * HOUR, 400_000)]
    assert motor.times == oracle_stroke_times(segments, 500_000, 2 * DAY)
    assert (A.EV_CLOCK_SET, 11 * HOUR, 0, 7200) in events.log


def test_a_periodic_bolus_jumped_over_forward_is_given_at_the_jump():
    rx = _rx([(0, 600)], periodic=[(10 * HOUR, Bolus(20_000, 10, "p"))])
    ctl, clock, motor, events = _make(rx)
    out = []
    _run(ctl, clock, DAY, [(9 * HOUR, _set(ctl, 0, 11 * HOUR, out))])
    changes = [(0, 600_000)] + bolus_segments(9 * HOUR, 20_000, 10)
    assert motor.times == oracle_stroke_times(timeline(changes, DAY), 500_000, DAY)
    assert [e for e in events.log if e[0] == A.EV_BOLUS] == [(A.EV_BOLUS, A.PERIODIC, A.OK, 20_000)]


def test_bad_clock_settings_are_refused_and_change_nothing():
    ctl, clock, _, events = _make(_rx([(0, 600)]), weekday=3, time_of_day_ms=5 * HOUR)
    clock.advance(HOUR + 7)
    ctl.service()
    before = (ctl.weekday0, ctl.day, ctl.ms, list(ctl.due), ctl.deadline(), len(events.log))
    for weekday, ms, field in ((7, 0, "set_clock.weekday"), (-1, 0, "set_clock.weekday"),
                               (0, DAY, "set_clock.ms_of_day"), (0, -1, "set_clock.ms_of_day")):
        e = raises(ValueError, lambda: ctl.set_clock(weekday, ms))
        assert str(e).startswith(field), str(e)
    assert before == (ctl.weekday0, ctl.day, ctl.ms, list(ctl.due), ctl.deadline(), len(events.log))


def test_a_clock_set_forward_does_not_shorten_the_ptm_lockout():
    # Lockout 180 minutes. Granted at 01:00; at 01:30 the clock is set to 04:30. At elapsed 02:00
    # the clock reads 05:00, but only an hour has passed: locked out until 3 h after the grant.
    ptm = (Bolus(5_000, 5, "ptm"), 180, 6)
    ctl, clock, _, _ = _make(_rx([(0, 600)], ptm=ptm))
    results = []
    asks = [HOUR, 2 * HOUR, 4 * HOUR - 1, 4 * HOUR]
    reqs = [(t, lambda: results.append(ctl.request_ptm())) for t in asks]
    reqs.append((90 * MIN, _set(ctl, 0, 4 * HOUR + 30 * MIN, [])))
    reqs.sort(key=lambda r: r[0])
    _run(ctl, clock, 5 * HOUR, reqs)
    assert results == [A.OK, A.LOCKOUT, A.LOCKOUT, A.OK]


def test_a_clock_set_back_over_midnight_on_the_first_day_keeps_the_weekday():
    # 00:30 on a Monday set back to 23:00 the Sunday before: the Sunday profile applies, and the
    # clock reads Sunday 23:00 (the days are relabelled so that none is negative).
    sunday = Profile([0], [900_000], "sunday")
    monday = Profile([0], [300_000], "monday")
    rx = Prescription(2000, [monday] * 6 + [sunday], (), None, 2_000_000)
    ctl, clock, motor, events = _make(rx)
    out = []
    _run(ctl, clock, 2 * HOUR, [(30 * MIN, _set(ctl, 6, 23 * HOUR, out))])
    assert out == [A.OK, True]
    assert (ctl.weekday(), ctl.ms) == (0, 30 * MIN)  # Monday 00:30 again, 2 h elapsed
    segments = [(0, 300_000), (30 * MIN, 900_000), (90 * MIN, 300_000)]
    assert motor.times == oracle_stroke_times(segments, 500_000, 2 * HOUR)
    assert ctl.day >= 0


def test_set_clock_through_the_programmer():
    rig = standard_rig()
    rig.send(30 * MIN, (CMD_SET_CLOCK, 2, 8 * HOUR))
    rig.send(40 * MIN, (CMD_SET_CLOCK, 9, 0))
    rig.run_until(HOUR)
    replies = rig.prog.replies
    assert replies[0][1] == A.OK
    assert isinstance(replies[1][1], ValueError) and str(replies[1][1]).startswith("set_clock.weekday")
    ctl = rig.loop.ctl
    ctl.sync()  # accounted up to now (the last wake was earlier)
    assert (ctl.weekday(), ctl.ms) == (2, 8 * HOUR + 30 * MIN)
    assert rig.events.of(A.EV_CLOCK_SET) == [(30 * MIN, 30 * MIN, 0, (2 * DAY + 7 * HOUR + 30 * MIN) // 1000)]
