# The controller against the independent oracle, on fake hardware that walks the HAL trains.

from support import Events, FakeClock, FakeMotor, bolus_segments, oracle_stroke_times, timeline
from support import run_controller as _run

from firmware import alarms as A
from firmware.controller import Controller
from firmware.prescription import Bolus, Prescription, Profile, PumpParams

DAY = 86_400_000
HOUR = 3_600_000
MIN = 60_000


def _rx(steps, concentration=2000, periodic=(), ptm=None, limit_mcg=2000, weekdays=None):
    base = Profile([h * HOUR for h, _ in steps], [mcg * 1000 for _, mcg in steps], "basal.steps")
    profiles = [base] * 7
    if weekdays:
        for day, wsteps in weekdays.items():
            profiles[day] = Profile([h * HOUR for h, _ in wsteps], [m * 1000 for _, m in wsteps], "w")
    return Prescription(concentration, profiles, tuple(periodic), ptm, int(limit_mcg * 1000))


def _make(rx, pump=None, motor=None, **kw):
    clock = FakeClock()
    motor = motor(clock) if motor else FakeMotor(clock)
    events = Events()
    ctl = Controller(clock, motor, pump or PumpParams(), rx, events, **kw)
    return ctl, clock, motor, events


def _basal(steps, days):
    return [(d * DAY + h * HOUR, mcg * 1000) for d in range(days) for h, mcg in steps]


def _deltas(segments):
    out = []
    rate = 0
    for t, r in segments:
        out.append((t, r - rate))
        rate = r
    return out


def test_flat_basal_strokes_every_72_s_across_the_tick_wrap():
    ctl, clock, motor, _ = _make(_rx([(0, 600)]))
    _run(ctl, clock, DAY)
    # 600 mcg/day at 2000 mcg/mL: a 250 nL stroke holds 0.5 mcg, one every 72 s.
    assert motor.times[:3] == [72_000, 144_000, 216_000]
    assert len(motor.times) == 1200
    assert motor.times == oracle_stroke_times([(0, 600_000)], 250 * 2000, DAY)
    assert ctl.due == [0, 0]


def test_flex_profile_matches_oracle_at_every_stroke():
    steps = [(0, 700), (6, 400), (12, 517), (18, 613)]
    ctl, clock, motor, _ = _make(_rx(steps, concentration=3000, limit_mcg=900))
    _run(ctl, clock, 3 * DAY)
    assert motor.times == oracle_stroke_times(_basal(steps, 3), 250 * 3000, 3 * DAY)


def test_weekday_profile_applies_on_its_day():
    # Start on a Friday (4); Saturday (5) has its own profile.
    rx = _rx([(0, 600)], weekdays={5: [(0, 300), (12, 900)]})
    ctl, clock, motor, _ = _make(rx, weekday=4)
    _run(ctl, clock, 3 * DAY)
    segments = [(0, 600_000), (DAY, 300_000), (DAY + 12 * HOUR, 900_000), (2 * DAY, 600_000)]
    assert motor.times == oracle_stroke_times(segments, 500_000, 3 * DAY)


def test_clinician_bolus_runs_at_two_integer_rates_and_delivers_exactly_its_dose():
    ctl, clock, motor, events = _make(_rx([(0, 600)]))
    start = 5 * HOUR + 17 * MIN + 3
    _run(ctl, clock, DAY, [(start, lambda: ctl.request_bolus(50_003, 7))])
    # 50 003 ng * 1440 = 10 286 331 * 7 + 3: 10 286 332 ng/day for 3 minutes, then 10 286 331.
    segments = timeline([(0, 600_000)] + bolus_segments(start, 50_003, 7), DAY)
    assert segments[1:4] == [(start, 10_886_332), (start + 3 * MIN, 10_886_331), (start + 7 * MIN, 600_000)]
    assert motor.times == oracle_stroke_times(segments, 500_000, DAY)
    assert (A.EV_BOLUS, A.CLINICIAN, A.OK, 50_003) in events.log
    # Exactly the dose: a day of basal plus the bolus is 650.003 mcg = 1300 strokes + 0.003 mcg.
    assert len(motor.times) == 1300


def test_periodic_bolus_starts_at_its_time_each_day():
    rx = _rx([(0, 600)], periodic=[(8 * HOUR, Bolus(50_000, 10, "p"))])
    ctl, clock, motor, events = _make(rx)
    _run(ctl, clock, 2 * DAY)
    changes = [(0, 600_000)] + bolus_segments(8 * HOUR, 50_000, 10) + bolus_segments(DAY + 8 * HOUR, 50_000, 10)
    assert motor.times == oracle_stroke_times(timeline(changes, 2 * DAY), 500_000, 2 * DAY)
    assert events.codes().count(A.EV_BOLUS) == 2


def test_ptm_lockout_and_daily_maximum():
    ptm = (Bolus(25_000, 5, "ptm"), 180, 2)
    ctl, clock, _, events = _make(_rx([(0, 600)], ptm=ptm))
    results = []
    asks = [1 * HOUR, 2 * HOUR, 4 * HOUR + 1, 8 * HOUR, 12 * HOUR, DAY + 4 * HOUR + 2]
    _run(ctl, clock, 2 * DAY, [(t, lambda: results.append(ctl.request_ptm())) for t in asks])
    assert results == [A.OK, A.LOCKOUT, A.OK, A.MAX_PER_DAY, A.MAX_PER_DAY, A.OK]


def test_bolus_over_the_hard_limit_is_truncated_then_denied():
    # Basal 600 mcg/day, limit 700. The firmware counts the basal over a window 1 s longer than a
    # day (600.006944 mcg, rounded up to 600.007) and keeps a margin of 3 strokes and a blocked
    # line's 2 uL (2.75 uL at 2000 mcg/mL: 5.5 mcg).
    ctl, clock, _, events = _make(_rx([(0, 600)], limit_mcg=700))
    results = []
    _run(ctl, clock, DAY, [(HOUR, lambda: results.append(ctl.request_bolus(80_000, 10))),
                           (2 * HOUR, lambda: results.append(ctl.request_bolus(80_000, 10))),
                           (3 * HOUR, lambda: results.append(ctl.request_bolus(80_000, 10)))])
    assert results == [A.OK, A.OK, A.LIMIT]
    room = 700_000 - 5_500 - (600_000 * 86_401_000 + 86_400_000 - 1) // 86_400_000 - 80_000
    assert room == 14_493
    assert (A.EV_LIMIT_TRUNCATED, A.CLINICIAN, 80_000, room) in events.log
    assert (A.EV_BOLUS, A.CLINICIAN, A.LIMIT, 0) in events.log


def test_low_and_empty_reservoir_stop_delivery_and_refill_resumes_without_catch_up():
    pump = PumpParams(20_000_000, 250, 2_000_000, 500_000)
    # 2.6 mL at 6000 mcg/day (3 mL/day): low after 0.6 mL, empty after 2.1 mL.
    ctl, clock, motor, events = _make(_rx([(0, 6000)], limit_mcg=7000), pump, volume_nl=2_600_000)
    refill_at = DAY
    _run(ctl, clock, 2 * DAY, [(refill_at, lambda: ctl.refill(10_000_000, 2000))])
    codes = events.codes()
    assert codes.index(A.EV_LOW_RESERVOIR) < codes.index(A.EV_EMPTY_RESERVOIR) < codes.index(A.EV_REFILL)
    assert A.EV_DELIVERY_RESUMED in codes and A.EV_LOW_RESERVOIR_CLEARED in codes
    empty_strokes = (2_600_000 - 500_000) // 250
    assert motor.times[empty_strokes - 1] < refill_at < motor.times[empty_strokes]
    # After the refill the first stroke comes one full period later: nothing is made up.
    assert motor.times[empty_strokes] - refill_at == 7200
    assert ctl.missed.total() > 0
    # Same drug: the refill adds to the 0.5 mL left at the empty threshold.
    assert ctl.reservoir.volume_nl == 10_500_000 - (len(motor.times) - empty_strokes) * 250


def test_refill_over_capacity_is_rejected_and_changes_nothing():
    ctl, clock, _, events = _make(_rx([(0, 600)]), volume_nl=15_000_000)
    clock.advance(HOUR)
    ctl.service()
    before = ctl.reservoir.volume_nl
    assert ctl.refill(6_000_000, 2000) == A.CAPACITY
    assert ctl.reservoir.volume_nl == before
    assert (A.EV_REFILL_REJECTED, A.CAPACITY, 0, 0) in events.log


def test_new_concentration_paces_the_old_drug_in_the_path_then_the_new():
    ctl, clock, motor, _ = _make(_rx([(0, 600)]), volume_nl=10_000_000)
    _run(ctl, clock, 3 * DAY, [(DAY, lambda: ctl.refill(20_000_000, 1000))])
    # The path (0.2 mL + 50 cm x 2.6 uL = 330 uL) still holds 2000 mcg/mL drug: 1320 strokes of
    # 0.5 mcg every 72 s, then 0.25 mcg strokes every 36 s. The mass schedule never changes.
    after = [t for t in motor.times if t > DAY]
    old = after[:1320]
    assert old[0] == DAY + 72_000 and all(b - a == 72_000 for a, b in zip(old, old[1:]))
    assert after[1320] - after[1319] == 36_000
    assert motor.times == oracle_stroke_times([(0, 600_000)], [(1200 + 1320, 500_000), (0, 250_000)], 3 * DAY)
    assert ctl.reservoir.volume_nl == 20_000_000 - len(after) * 250


def test_prime_delivers_exactly_its_volume_at_its_rate_then_the_prescription_starts():
    ctl, clock, motor, events = _make(_rx([(0, 600)], periodic=[(3 * HOUR, Bolus(20_000, 5, "p"))]))
    _run(ctl, clock, DAY, [(2 * HOUR, lambda: ctl.prime())])
    primes = [t for t in motor.times if t > 2 * HOUR][:1320]
    # 330 uL at 1 mL/h: 1320 strokes of 250 nL, one every 0.9 s, none before its time.
    assert primes == [2 * HOUR + 900 * k for k in range(1, 1321)]
    done = 2 * HOUR + 1320 * 900
    assert (A.EV_PRIME, 330_000, 0, 0) in events.log and (A.EV_PRIME_DONE, 330_000, 0, 0) in events.log
    # The 03:00 periodic bolus fell inside the prime (it ends at 02:19:48): denied, with an event.
    assert done < 3 * HOUR + 1 or (A.EV_BOLUS, A.PERIODIC, A.PRIMING, 0) in events.log
    # Then the prescription starts owing nothing: the first dose stroke 72 s after priming ends.
    after = [t for t in motor.times if t > done]
    assert after[0] == done + 72_000


def test_bad_requests_name_the_problem_and_change_nothing():
    ctl, clock, _, events = _make(_rx([(0, 600)]))
    n = len(events.log)
    for bad in ((0, 10), (50_000, 0), (50_000, 2000)):
        try:
            ctl.request_bolus(*bad)
        except ValueError as e:
            assert "bolus." in str(e)
        else:
            raise AssertionError("accepted a bad bolus")
    for bad, words in (((0, 2000), "volume"), ((1000, 9), "concentration")):
        try:
            ctl.refill(*bad)
        except ValueError as e:
            assert words in str(e)
        else:
            raise AssertionError("accepted a bad refill")
    try:
        ctl.prime(151)
    except ValueError as e:
        assert "catheter_cm" in str(e)
    else:
        raise AssertionError("accepted a bad prime")
    assert len(events.log) == n


def test_prescription_limits():
    cases = (
        (lambda: _rx([(0, 600)], concentration=9), "concentration"),
        (lambda: _rx([(1, 600)]), "00:00"),
        (lambda: _rx([(0, 600), (0, 500)]), "strictly increase"),
        (lambda: _rx([(0, 600)] + [(h, 600) for h in range(1, 14)]), "1 to 13"),
        (lambda: _rx([(0, 50_000)], concentration=2000), "24 mL/day"),
        (lambda: _rx([(0, 90)], concentration=2000), "0.048 mL/day"),
    )
    for build, words in cases:
        try:
            build()
        except ValueError as e:
            assert words in str(e), str(e)
        else:
            raise AssertionError("accepted: " + words)
    for basal in (700, 699):  # 699 mcg/day + 1 s of it + one 0.5 mcg stroke still exceeds 699.5
        try:
            _rx([(0, basal)], limit_mcg=699.5).check_pump(PumpParams())
        except ValueError as e:
            assert "max_daily_mcg" in str(e)
        else:
            raise AssertionError("basal over the hard limit was accepted")


class RacyMotor(FakeMotor):
    """An interrupt-driven motor whose stroke due at the very ms of a count read completes just
    after the read and before start() replaces the train (defect 1.6)."""

    def strokes(self):
        train = self.train
        if train is not None:
            clock = self.clock
            age = clock.ticks_diff(clock.tick, train.origin)
            while 0 <= self._next < age:  # strictly before now: the stroke at `now` is in flight
                self._fire(clock.now_ms - age + self._next)
                self._next = train.next_offset()
        return self.count

    def start(self, train):
        old = self.train
        if old is not None:
            age = self.clock.ticks_diff(self.clock.tick, old.origin)
            while 0 <= self._next <= age:  # the in-flight stroke lands before the new train starts
                self._fire(self.clock.now_ms - age + self._next)
                self._next = old.next_offset()
        self._adopt(train)


def test_a_stroke_completing_between_count_read_and_start_is_counted_once():
    # Requests land exactly on stroke times (every 72 s): each races a stroke against start().
    ptm = (Bolus(1_000, 15, "ptm"), 15, 24)
    ctl, clock, motor, events = _make(_rx([(0, 600)], ptm=ptm, limit_mcg=700), motor=RacyMotor)
    asks = [72_000 * k for k in range(1, 25, 3)] + [HOUR + 72_000 * k for k in range(1, 4)]
    # Two days: the stroke at midnight, a change point, races its count read too.
    _run(ctl, clock, 2 * DAY, [(t, ctl.cancel_bolus) for t in asks] + [(2 * HOUR, ctl.request_ptm)])
    changes = [(0, 600_000)] + bolus_segments(2 * HOUR, 1_000, 15)
    assert motor.times == oracle_stroke_times(timeline(changes, 2 * DAY), 500_000, 2 * DAY)
    assert A.EV_UNDER_DELIVERY not in events.codes()
    assert ctl.reservoir.volume_nl == 20_000_000 - 250 * len(motor.times)


def _run_late(ctl, clock, end_ms, late_ms):
    """Every wake comes late_ms after the deadline the controller asked for."""
    while clock.now_ms < end_ms:
        t = clock.now_ms + clock.ticks_diff(ctl.deadline(), clock.tick) + late_ms
        clock.advance(min(t, end_ms) - clock.now_ms)
        ctl.service()


def test_late_wakes_apply_every_change_at_its_exact_ms():
    # Defect 1.3: waking 1 ms late used to skip the periodic bolus (it needed a wake on its exact
    # ms) and to run a bolus past its end at the old rate.
    rx = _rx([(0, 600), (7, 450)], periodic=[(8 * HOUR, Bolus(50_003, 7, "p"))])
    for late in (1, 999):
        ctl, clock, motor, events = _make(rx)
        _run_late(ctl, clock, 3 * DAY, late)
        assert [e for e in events.log if e[0] == A.EV_BOLUS] == [(A.EV_BOLUS, A.PERIODIC, A.OK, 50_003)] * 3
        changes = []
        for d in range(3):
            changes += [(d * DAY, 600_000 - (450_000 if d else 0)), (d * DAY + 7 * HOUR, -150_000)]
            changes += bolus_segments(d * DAY + 8 * HOUR, 50_003, 7)
        exact = oracle_stroke_times(timeline(changes, 3 * DAY), 500_000, 3 * DAY)
        # Never early, never more than the wake latency late, and not one stroke more or less.
        assert len(motor.times) == len(exact)
        assert all(0 <= got - want <= late for got, want in zip(motor.times, exact))
        assert A.EV_UNDER_DELIVERY not in events.codes()


def test_a_wake_over_a_second_late_writes_off_the_arrears_instead_of_a_burst():
    ctl, clock, motor, events = _make(_rx([(0, 600), (12, 450)]))
    _run(ctl, clock, 12 * HOUR - 1)
    clock.advance(12 * HOUR + 1 + 10 * MIN - clock.now_ms)  # the 12:00 wake comes 10 min late
    ctl.service()
    burst = [t for t in motor.times if t == clock.now_ms]
    assert len(burst) <= 1  # at most the arrears of the last second: never 10 minutes' worth at once
    lost = [e for e in events.log if e[0] == A.EV_UNDER_DELIVERY]
    assert len(lost) == 1 and 3_000 <= lost[0][1] <= 3_200  # ~10 min at 450 mcg/day = 3.1 mcg


class DroppingMotor(FakeMotor):
    """A stalled motor: it skips every third stroke it is asked for."""

    def _fire(self, t_ms):
        self.asked = getattr(self, "asked", 0) + 1
        if self.asked % 3:
            FakeMotor._fire(self, t_ms)


def test_a_motor_that_falls_behind_is_never_caught_up_in_a_burst():
    ctl, clock, motor, events = _make(_rx([(0, 600), (6, 500), (12, 600), (18, 500)]), motor=DroppingMotor)
    _run(ctl, clock, DAY)
    gaps = [b - a for a, b in zip(motor.times, motor.times[1:])]
    assert min(gaps) >= 72_000  # never faster than the prescription's own pace
    assert A.EV_UNDER_DELIVERY in events.codes()


def test_a_program_that_would_double_a_window_across_the_change_is_rejected():
    # Defect 1.1: the least rate (96 mcg/day at 2000 mcg/mL) until noon and 1200 after, limit 750;
    # at midnight a program of 1200 until noon and the least after. Each program alone holds 648
    # mcg a day, but the window from yesterday noon to today noon would hold 1200.
    old = _rx([(0, 96), (12, 1200)], limit_mcg=750)
    ctl, clock, motor, events = _make(old)
    new = _rx([(0, 1200), (12, 96)], limit_mcg=750)
    results = []
    _run(ctl, clock, 3 * DAY, [(DAY, lambda: results.append(ctl.program(new)))])
    assert results == [A.LIMIT]
    assert (A.EV_PROGRAM_REJECTED, A.LIMIT, 0, 0) in events.log
    # Nothing changed: the old program runs on, 648 mcg a day (1296 strokes of 0.5 mcg).
    assert len(motor.times) == 3 * 1296
    # The same program a day of the least basal later fits: the old noon-to-midnight dose has left
    # every window that the new one reaches.
    ctl, clock, motor, events = _make(old)
    quiet = _rx([(0, 96)], limit_mcg=750)
    _run(ctl, clock, 3 * DAY, [(12 * HOUR, lambda: results.append(ctl.program(quiet))),
                               (2 * DAY, lambda: results.append(ctl.program(new)))])
    assert results[1:] == [A.OK, A.OK]


def test_moving_a_periodic_bolus_later_in_the_day_never_doses_it_twice():
    # Defect 1.4: at 09:00 a program moves the 08:00 periodic bolus to 10:00. The new list takes
    # effect at the next pump midnight, so that day has one dose (08:00) and the next one (10:00).
    rx = _rx([(0, 600)], periodic=[(8 * HOUR, Bolus(30_000, 10, "p"))])
    moved = _rx([(0, 600)], periodic=[(10 * HOUR, Bolus(30_000, 10, "p"))])
    ctl, clock, motor, events = _make(rx)
    _run(ctl, clock, 3 * DAY, [(9 * HOUR, lambda: ctl.program(moved))])
    grants = [e for e in events.log if e[0] == A.EV_BOLUS]
    assert len(grants) == 3 and all(e[2] == A.OK for e in grants)
    changes = [(0, 600_000)] + bolus_segments(8 * HOUR, 30_000, 10)
    changes += bolus_segments(DAY + 10 * HOUR, 30_000, 10) + bolus_segments(2 * DAY + 10 * HOUR, 30_000, 10)
    assert motor.times == oracle_stroke_times(timeline(changes, 3 * DAY), 500_000, 3 * DAY)


def test_ptm_lockout_runs_from_the_newest_grant_of_several():
    # Lockout 60 minutes, 6 a day. Grants at 1 h, 2 h 30 and 4 h: a press 30 minutes after the
    # newest is locked out although the older grants are 2 h and more back; 61 minutes after the
    # newest it is granted. (A lockout measured from the oldest grant would grant both.)
    ptm = (Bolus(5_000, 5, "ptm"), 60, 6)
    ctl, clock, _, _ = _make(_rx([(0, 600)], ptm=ptm))
    results = []
    asks = [HOUR, 150 * MIN, 4 * HOUR, 4 * HOUR + 30 * MIN, 4 * HOUR + 59 * MIN, 5 * HOUR + MIN]
    _run(ctl, clock, 6 * HOUR, [(t, lambda: results.append(ctl.request_ptm())) for t in asks])
    assert results == [A.OK, A.OK, A.OK, A.LOCKOUT, A.LOCKOUT, A.OK]


def test_the_limit_margin_is_at_the_strongest_drug_in_the_path_or_gone_within_a_window():
    # 1000 mcg/mL in 5000 nL strokes at 620.001 mcg/day (one stroke every ~11.6 minutes); a refill
    # with 500 mcg/mL at 10:43. The path (330 uL: 66 strokes) still holds the old drug, then the
    # old drug's last stroke leaves the tip; its strokes stay in rolling windows for a day (+1 s),
    # so the margin (pump.margin_nl, a rigid line: three strokes) stays at 1000 mcg/mL until then.
    pump = PumpParams(stroke_nl=5000, max_stored_nl=0)
    rx = Prescription(1000, [Profile([0], [620_001], "basal.steps")] * 7, (), None, 635_009)
    ctl, clock, motor, _ = _make(rx, pump)
    strong, weak = pump.margin_nl * 1000 // 1000, pump.margin_nl * 500 // 1000
    assert strong == 15_000 and weak == 7_500
    path_strokes = pump.path_nl // pump.stroke_nl
    assert path_strokes == 66 and pump.path_nl % pump.stroke_nl == 0
    t_refill = 10 * HOUR + 43 * MIN
    seen = []
    refilled = []

    def probe():
        ctl.service()  # the controller as of now
        seen.append((clock.now_ms, ctl.margin_ng()))

    reqs = [(t_refill, lambda: refilled.append((ctl.refill(20_000_000, 500), len(motor.times))))]
    reqs += [(t_refill + k * 10 * MIN + 7, probe) for k in range(-3, 3 * 24 * 6)]
    reqs.sort(key=lambda r: r[0])
    _run(ctl, clock, 3 * DAY + 12 * HOUR, reqs)
    assert refilled[0][0] == A.OK
    # The old drug's last part left the tip with the 66th stroke after the refill.
    t_gone = motor.times[refilled[0][1] + path_strokes - 1]
    window_ms = DAY + 1000  # a rolling 24 h, plus the 1 s a stroke may be late (docs/delivery.md)
    assert t_refill < t_gone < DAY < t_gone + window_ms < seen[-1][0]
    for t, margin in seen:
        assert margin == (strong if t < t_gone + window_ms else weak), (t, t_gone, margin)
