# The dates a clinician plans by (firmware/dates.py), against their definition in docs/alarms.md:
# consumption uniform within each day, day by day through the weekly schedule; a day is its basal
# mass plus every periodic bolus (and, for the low-reservoir date, every patient bolus allowed),
# capped at the hard limit, its volume capped at 24 mL/day. The oracle here works in exact (big)
# integers: the time at which left_nl has gone, as a fraction, then whole minutes.

from fakes_hal import standard_rig

from firmware.dates import day_nl, minutes_until
from firmware.prescription import Bolus, Prescription, Profile, PumpParams
from hal.channel import CMD_RESUME, CMD_SUSPEND

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
MAX_NL_PER_DAY = 24_000_000


def exact_day(rx, concentration, weekday, with_ptm):
    """nL the prescription takes over that weekday, as a fraction (numerator, denominator)."""
    p = rx.profiles[weekday]
    mass = 0  # ng * ms / day
    n = len(p.starts_ms)
    for i in range(n):
        end = p.starts_ms[i + 1] if i + 1 < n else DAY
        mass += p.rates_ng_per_day[i] * (end - p.starts_ms[i])
    extra = 0
    for _, bolus in rx.periodic:
        extra += bolus.amount_ng
    if with_ptm and rx.ptm is not None:
        extra += rx.ptm[0].amount_ng * rx.ptm[2]
    mass += extra * DAY
    if mass > rx.max_daily_ng * DAY:  # the hard limit
        mass = rx.max_daily_ng * DAY
    num, den = mass * 1000, DAY * concentration  # nL
    if num > MAX_NL_PER_DAY * den:  # 24 mL/day
        num = MAX_NL_PER_DAY * den
    return num, den


def floor_day_nl(rx, concentration, weekday, with_ptm):
    num, den = exact_day(rx, concentration, weekday, with_ptm)
    return num // den


def oracle_minutes(left_nl, rx, concentration, weekday, ms_of_day, with_ptm, max_days=3000):
    """Whole minutes (floored) until left_nl more has left the reservoir; None if never (within max_days)."""
    if left_nl <= 0:
        return 0
    # Every day's volume is num/den nL with den = DAY * concentration: count in 1/(den * DAY) nL.
    den = DAY * concentration
    left = left_nl * den * DAY
    t_ms = 0
    d = 0
    span = DAY - ms_of_day  # ms of today still to come
    while d <= max_days:
        num, _ = exact_day(rx, concentration, (weekday + d) % 7, with_ptm)
        # Over `span` ms of this day num/den * span/DAY nL go: num * span in these units, so num a ms.
        gone = num * span
        if left <= gone:
            return (t_ms * num + left) // (num * MIN)  # floor((t_ms + left / num) / MIN)
        left -= gone
        t_ms += span
        span = DAY
        d += 1
    return None


def _rx(profiles, periodic=(), ptm=None, max_daily_ng=1_000_000, concentration=2000):
    return Prescription(concentration, profiles, periodic, ptm, max_daily_ng)


def _uniform(rate):
    return [Profile([0], [rate], "basal.steps")] * 7


def _weekly():
    days = []
    for d in range(7):
        days.append(Profile([0, 7 * HOUR, 19 * HOUR], [400_000 + 24_000 * d, 720_000 - 48_000 * d, 480_000],
                            "basal.%d.steps" % d))
    return days


def _check_day(rx, concentration, weekday, with_ptm):
    got = day_nl(rx, concentration, weekday, with_ptm, [0, 0])
    num, den = exact_day(rx, concentration, weekday, with_ptm)
    # Never more than the definition, and short of it only by its rounding to whole ng and nL.
    assert num // den - 1 <= got <= num // den, (weekday, with_ptm, got, num / den)
    return got


def test_day_volume_uniform_basal_with_and_without_patient_boluses():
    rx = _rx(_uniform(600_000), ptm=(Bolus(20_000, 10, "ptm"), 60, 4))
    qr = [0, 0]
    for wd in range(7):
        assert day_nl(rx, 2000, wd, False, qr) == 600_000 * 1000 // 2000 == 300_000
        assert day_nl(rx, 2000, wd, True, qr) == (600_000 + 4 * 20_000) * 1000 // 2000 == 340_000
    # At another concentration the same mass is another volume.
    assert day_nl(rx, 1000, 3, False, qr) == 600_000
    assert day_nl(rx, 5000, 3, True, qr) == 680_000 // 5


def test_day_volume_is_the_basal_mass_floored_once_then_the_volume():
    # The rule, exactly: the day's basal mass sum(rate x duration) / day floored to whole ng once
    # (sub-ng parts of the steps add up before the floor), boluses added and capped, then the
    # volume floored to whole nL. Odd rates and step starts leave a remainder on every step.
    starts = [0, 7 * HOUR + 13 * MIN + 7, 15 * HOUR + 59 * MIN + 3, 22 * HOUR + 1]
    for rates in ([700_001, 399_999, 123_457, 96_001], [100_003, 100_007, 100_013, 99_991],
                  [186_399, 186_401, 172_799, 96_007]):
        rx = _rx([Profile(starts, rates, "b")] * 7, max_daily_ng=2_000_000)
        mass = 0
        for i in range(4):
            end = starts[i + 1] if i < 3 else DAY
            mass += rates[i] * (end - starts[i])
        for conc in (10, 333, 2000, 5000):
            want = min((mass // DAY) * 1000 // conc, MAX_NL_PER_DAY)  # and at most 24 mL/day
            assert day_nl(rx, conc, 0, False, [0, 0]) == want, (rates, conc)


def test_day_volume_basal_steps_and_periodic_boluses():
    steps = Profile([0, 6 * HOUR, 12 * HOUR, 18 * HOUR], [700_000, 400_000, 500_000, 600_000], "basal.steps")
    rx = _rx([steps] * 7, periodic=((8 * HOUR, Bolus(50_003, 7, "p")), (20 * HOUR, Bolus(10_000, 30, "p2"))))
    # (700 + 400 + 500 + 600) / 4 mcg of basal, the two periodic boluses: 610.003 mcg, 305 001.5 nL
    assert _check_day(rx, 2000, 0, False) in (305_000, 305_001)
    for wd in range(7):
        _check_day(rx, 2000, wd, True)  # no PTM configured: the same
    assert day_nl(rx, 2000, 2, True, [0, 0]) == day_nl(rx, 2000, 2, False, [0, 0])


def test_day_volume_follows_the_weekly_schedule():
    rx = _rx(_weekly(), ptm=(Bolus(15_000, 15, "ptm"), 30, 6), max_daily_ng=2_000_000)
    volumes = set()
    for wd in range(7):
        for with_ptm in (False, True):
            volumes.add(_check_day(rx, 2000, wd, with_ptm))
    assert len(volumes) == 14  # every weekday its own, with and without PTM


def test_day_mass_capped_at_the_hard_limit():
    # 600 mcg basal + 24 patient boluses of 20 mcg = 1080 mcg, over the 1000 mcg limit
    rx = _rx(_uniform(600_000), ptm=(Bolus(20_000, 10, "ptm"), 15, 24), max_daily_ng=1_000_000)
    assert day_nl(rx, 2000, 0, True, [0, 0]) == 1_000_000 * 1000 // 2000 == 500_000
    assert day_nl(rx, 2000, 0, False, [0, 0]) == 300_000


def test_day_volume_capped_at_24_ml():
    # 230 mcg/day at 10 mcg/mL is 23 mL/day; 24 patient boluses of 10 mcg would make it 47 mL.
    rx = _rx(_uniform(230_000), ptm=(Bolus(10_000, 1440, "ptm"), 15, 24), concentration=10)
    PumpParams(40_000_000)  # a pump that can hold it
    assert day_nl(rx, 10, 4, False, [0, 0]) == 23_000_000
    assert day_nl(rx, 10, 4, True, [0, 0]) == MAX_NL_PER_DAY


def test_minutes_until_nothing_left_to_go_is_now():
    rx = _rx(_uniform(600_000))
    qr = [0, 0]
    assert minutes_until(0, rx, 2000, 0, 5 * HOUR, False, qr) == 0
    assert minutes_until(-250, rx, 2000, 0, 5 * HOUR, True, qr) == 0


def test_minutes_until_at_the_least_rate_with_and_without_every_patient_bolus():
    # The least basal, 0.048 mL/day (96 mcg at 2000 mcg/mL): 1 mL lasts 20 days and 20 hours.
    rx = _rx(_uniform(96_000), ptm=(Bolus(20_000, 10, "ptm"), 60, 4))
    qr = [0, 0]
    assert minutes_until(1_000_000, rx, 2000, 3, 0, False, qr) == 20 * 1440 + 1200
    assert oracle_minutes(1_000_000, rx, 2000, 3, 0, False) == 20 * 1440 + 1200
    # with every patient bolus allowed used, 80 mcg a day more: 88 uL a day, 11 days and 523.6 min
    assert minutes_until(1_000_000, rx, 2000, 3, 0, True, qr) == 11 * 1440 + 523
    assert oracle_minutes(1_000_000, rx, 2000, 3, 0, True) == 11 * 1440 + 523


def test_minutes_until_within_today_and_over_days():
    rx = _rx(_uniform(600_000))  # 300 uL a day, 12.5 uL an hour
    qr = [0, 0]
    assert minutes_until(75_000, rx, 2000, 0, 6 * HOUR, False, qr) == 360  # a quarter day from 06:00
    assert minutes_until(225_000, rx, 2000, 0, 6 * HOUR, False, qr) == 18 * 60  # exactly to midnight
    assert minutes_until(225_001, rx, 2000, 0, 6 * HOUR, False, qr) == 18 * 60  # 0.288 s into tomorrow
    assert minutes_until(225_250, rx, 2000, 0, 6 * HOUR, False, qr) == 18 * 60 + 1  # 72 s into tomorrow
    # 19.5 mL at 0.3 mL/day: 65 days, from any time of any weekday
    for wd in range(7):
        for ms in (0, 13 * HOUR + 7 * MIN):
            assert minutes_until(19_500_000, rx, 2000, wd, ms, False, qr) == 65 * 1440


def test_minutes_until_through_the_weekly_schedule_against_the_oracle():
    rxs = (
        _rx(_weekly(), ptm=(Bolus(15_000, 15, "ptm"), 30, 6), max_daily_ng=2_000_000),
        _rx(_weekly(), periodic=((3 * HOUR, Bolus(40_000, 60, "p")),), max_daily_ng=2_000_000),
        _rx([Profile([0], [96_000], "basal.steps")] * 5 + _uniform(900_000)[:2], max_daily_ng=1_000_000),
    )
    qr = [0, 0]
    n = 0
    exact = 0
    for rx in rxs:
        for wd in (0, 3, 6):
            for ms in (0, 7 * HOUR, 19 * HOUR + 30 * MIN + 17, DAY - 1):
                for left in (1, 250, 123_457, 300_000, 2_000_000, 17_999_750, 40_000_000):
                    for with_ptm in (False, True):
                        got = minutes_until(left, rx, 2000, wd, ms, with_ptm, qr)
                        want = oracle_minutes(left, rx, 2000, wd, ms, with_ptm)
                        assert want is not None
                        # Whole minutes, within a minute of the exact time (day volumes are whole nL).
                        assert want - 1 <= got <= want + 1, (wd, ms, left, with_ptm, got, want)
                        exact += got == want
                        n += 1
    assert n == 3 * 3 * 4 * 7 * 2
    assert exact * 4 >= n * 3, (exact, n)  # mostly to the minute


def test_minutes_until_beyond_any_service_life_is_never():
    rx = _rx(_uniform(96_000))  # the least basal at 2000 mcg/mL: 48 uL a day
    qr = [0, 0]
    # 40 mL take 833.3 days: a date within service
    assert minutes_until(40_000_000, rx, 2000, 0, 0, False, qr) == oracle_minutes(40_000_000, rx, 2000, 0, 0, False)
    # 1000 mL would take 57 years: no date
    assert minutes_until(1_000_000_000, rx, 2000, 0, 0, False, qr) == -1


def test_the_loop_keeps_the_dates_from_their_definition():
    rig = standard_rig()
    loop = rig.loop
    pump = PumpParams()
    rx = rig.loop.ctl.rx
    # At the start (Monday 00:00, a full 20 mL reservoir): the low date with every patient bolus used,
    # the empty date at the last stroke above 0.5 mL without them.
    assert loop.low_reservoir_min == oracle_minutes(20_000_000 - pump.low_nl, rx, 2000, 0, 0, True)
    assert loop.low_reservoir_min == 18_000_000 * 1440 // 340_000
    empty_left = (20_000_000 - pump.empty_nl) // pump.stroke_nl * pump.stroke_nl
    assert loop.empty_min == oracle_minutes(empty_left, rx, 2000, 0, 0, False) == 65 * 1440
    # Recalculated at a suspend and a resume: 25 h in, 1250 strokes gone.
    t = 25 * HOUR
    rig.send(t, (CMD_SUSPEND,))
    rig.send(t, (CMD_RESUME,))
    rig.run_until(t + MIN)
    volume = 20_000_000 - 1250 * pump.stroke_nl
    assert loop.ctl.reservoir.volume_nl == volume
    assert loop.low_reservoir_min == oracle_minutes(volume - pump.low_nl, rx, 2000, 1, HOUR, True)
    empty_left = (volume - pump.empty_nl) // pump.stroke_nl * pump.stroke_nl
    assert loop.empty_min == oracle_minutes(empty_left, rx, 2000, 1, HOUR, False)
