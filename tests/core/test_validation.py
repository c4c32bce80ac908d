# Every validated range at its bounds: the bound itself is accepted, one past it is rejected with
# an error that names the key. Runs on CPython and both MicroPython ports.

from support import Events, FakeClock, FakeMotor

from firmware.controller import Controller
from firmware.prescription import Bolus, Prescription, Profile, PumpParams, check_bolus_args

DAY = 86_400_000
ML = 1_000_000


def _rejects(build, words):
    try:
        build()
    except ValueError as e:
        assert words in str(e), "%s: %s" % (words, e)
        return
    raise AssertionError("accepted, expected an error naming " + words)


def _pump(**kw):
    args = {"capacity_nl": 20 * ML, "stroke_nl": 250, "low_nl": 2 * ML, "empty_nl": ML // 2,
            "internal_path_nl": 200_000, "catheter_cm": 50, "nl_per_cm": 2600, "prime_nl_per_hour": ML}
    args.update(kw)
    return PumpParams(args["capacity_nl"], args["stroke_nl"], args["low_nl"], args["empty_nl"],
                      args["internal_path_nl"], args["catheter_cm"], args["nl_per_cm"], args["prime_nl_per_hour"])


def test_pump_parameters_at_their_bounds():
    for key, good, bad, words in (
        ("capacity_nl", (20 * ML, 40 * ML), (30 * ML, 0), "reservoir_ml"),
        ("stroke_nl", (50, 5000), (49, 5001), "stroke_nl"),
        ("low_nl", (ML // 2 + 1, 10 * ML), (10 * ML + 1,), "low_reservoir_ml"),
        ("empty_nl", (0, 2 * ML), (-1, 2 * ML + 1), "empty_ml"),
        ("internal_path_nl", (0, ML), (-1, ML + 1), "internal_path_ml"),
        ("catheter_cm", (5, 150), (4, 151), "length_cm"),
        ("nl_per_cm", (1000, 10_000), (999, 10_001), "ml_per_cm"),
        ("prime_nl_per_hour", (ML // 10, ML), (ML // 10 - 1, ML + 1), "prime_ml_per_hour"),
    ):
        for v in good:
            low = 3 * ML if key == "empty_nl" else 2 * ML
            p = _pump(**{key: v, "low_nl": low} if key == "empty_nl" else {key: v})
            assert getattr(p, key) == v
        for v in bad:
            _rejects(lambda: _pump(**{key: v}), words)
    _rejects(lambda: _pump(low_nl=ML // 2 - 1, empty_nl=0), "low_reservoir_ml")
    _rejects(lambda: _pump(low_nl=ML, empty_nl=ML), "below pump.low_reservoir_ml")
    assert _pump(low_nl=ML, empty_nl=ML - 1).empty_nl == ML - 1
    assert _pump(internal_path_nl=123, catheter_cm=7, nl_per_cm=1001).path_nl == 123 + 7 * 1001


def test_profiles_at_their_bounds():
    thirteen = [i * 60_000 for i in range(13)]
    assert len(Profile(thirteen, [1] * 13, "b").starts_ms) == 13
    _rejects(lambda: Profile(thirteen + [DAY - 1], [1] * 14, "b"), "1 to 13")
    _rejects(lambda: Profile([], [], "b"), "1 to 13")
    _rejects(lambda: Profile([0, 5], [1], "b"), "1 to 13")
    _rejects(lambda: Profile([1], [1], "b"), "b[0].start")
    assert Profile([0, DAY - 1], [0, 200_000_000], "b").max_rate_ng_per_day == 200_000_000
    _rejects(lambda: Profile([0, DAY], [1, 1], "b"), "b[1].start")
    _rejects(lambda: Profile([0, 5, 5], [1, 1, 1], "b"), "b[2].start: step starts must strictly increase")
    _rejects(lambda: Profile([0], [-1], "b"), "b[0].mcg_per_day")
    _rejects(lambda: Profile([0], [200_000_001], "b"), "b[0].mcg_per_day")


def test_step_rates_against_the_drug():
    # 24 mL/day at 2000 mcg/mL is 48 000 mcg/day; 0.048 mL/day is 96 mcg/day.
    top = Profile([0], [48_000_000], "b")
    top.check(2000)
    _rejects(lambda: Profile([0], [48_000_001], "b").check(2000), "exceeds 24 mL/day")
    Profile([0, 5], [96_000, 96_000], "b").check(2000)
    _rejects(lambda: Profile([0], [95_999], "b").check(2000), "below the least rate, 0.048 mL/day (96 mcg/day")
    # 0 is no rate: stopping intrathecal baclofen is withdrawal; a stop is a suspend.
    _rejects(lambda: Profile([0, 5], [96_000, 0], "b").check(2000), "b[1].mcg_per_day: 0 mcg is below the least rate")
    _rejects(lambda: Profile([0], [1], "b").check(10), "0.48 mcg/day at 10 mcg/mL); to stop delivery, suspend")


def test_boluses_at_their_bounds():
    check_bolus_args(1, 1, "bolus")
    check_bolus_args(200_000_000, 1440, "bolus")
    _rejects(lambda: check_bolus_args(0, 10, "bolus"), "bolus.mcg: must be positive")
    _rejects(lambda: check_bolus_args(200_000_001, 10, "bolus"), "bolus.mcg: must be at most")
    _rejects(lambda: check_bolus_args(10, 0, "bolus"), "bolus.minutes")
    _rejects(lambda: check_bolus_args(10, 1441, "bolus"), "bolus.minutes")
    assert Bolus(7, 3, "p").amount_ng == 7


def _rx(concentration=2000, periodic=(), ptm=None, limit=1_000_000, rates=(600_000,)):
    return Prescription(concentration, [Profile([0], list(rates), "basal.steps")] * 7, periodic, ptm, limit)


def test_prescriptions_at_their_bounds():
    assert _rx(concentration=10, rates=(480,)).concentration == 10
    assert _rx(concentration=5000).concentration == 5000
    _rejects(lambda: _rx(concentration=9), "concentration")
    _rejects(lambda: _rx(concentration=5001), "concentration")
    assert _rx(limit=1).max_daily_ng == 1 and _rx(limit=200_000_000).max_daily_ng == 200_000_000
    _rejects(lambda: _rx(limit=0), "max_daily_mcg")
    _rejects(lambda: _rx(limit=200_000_001), "max_daily_mcg")
    eight = tuple((i * 60_000, Bolus(1000, 5, "p")) for i in range(8))
    assert len(_rx(periodic=eight).periodic) == 8
    _rejects(lambda: _rx(periodic=eight + ((DAY - 1, Bolus(1, 1, "p")),)), "at most 8")
    _rejects(lambda: _rx(periodic=((DAY, Bolus(1, 1, "p")),)), "periodic_bolus[0].at")
    _rejects(lambda: _rx(periodic=((-1, Bolus(1, 1, "p")),)), "periodic_bolus[0].at")
    _rejects(lambda: _rx(periodic=((5, Bolus(1, 1, "p")), (5, Bolus(2, 1, "p")))), "periodic_bolus[1].at: two")
    b = Bolus(10_000, 5, "ptm")
    for lockout, most in ((15, 1), (1440, 24)):
        assert _rx(ptm=(b, lockout, most)).ptm[1] == lockout
    _rejects(lambda: _rx(ptm=(b, 14, 1)), "lockout_minutes")
    _rejects(lambda: _rx(ptm=(b, 1441, 1)), "lockout_minutes")
    _rejects(lambda: _rx(ptm=(b, 60, 0)), "max_per_day")
    _rejects(lambda: _rx(ptm=(b, 60, 25)), "max_per_day")
    _rejects(lambda: Prescription(2000, [Profile([0], [1], "b")] * 6, (), None, 5), "one profile per weekday")


def test_prescription_against_the_pump():
    pump = PumpParams()  # 20 mL, 250 nL strokes
    # A bolus of exactly one stroke (0.5 mcg at 2000 mcg/mL) and one of exactly the reservoir (40 000 mcg).
    _rx(periodic=((0, Bolus(500, 5, "p")),), limit=200_000_000).check_pump(pump)
    _rx(ptm=(Bolus(40_000_000, 1440, "ptm"), 60, 1), limit=200_000_000).check_pump(pump)
    _rejects(lambda: _rx(periodic=((0, Bolus(499, 5, "p")),)).check_pump(pump), "periodic_bolus[0].mcg: less than")
    _rejects(lambda: _rx(ptm=(Bolus(40_000_001, 1440, "ptm"), 60, 1), limit=200_000_000).check_pump(pump),
             "ptm.mcg: more than the reservoir")
    # 24 mL/day at 2000 mcg/mL is 48 000 mcg/day: with 600 of basal, 47 400 mcg/day of bolus fit.
    _rx(ptm=(Bolus(47_400_000, 1440, "ptm"), 60, 1), limit=200_000_000).check_pump(PumpParams(40 * ML))
    _rejects(lambda: _rx(ptm=(Bolus(47_400_001, 1440, "ptm"), 60, 1), limit=200_000_000).check_pump(
        PumpParams(40 * ML)), "ptm.minutes: too short")
    # The limit: basal over 24 h + 1 s (600.006944 -> 600.007 mcg) plus the margin: a stroke of
    # rounding, a runaway's stroke, and a blocked line's 2 uL plus the stroke that crosses the
    # occlusion threshold: 3 x 250 + 2000 nL at 2000 mcg/mL = 5.5 mcg.
    _rx(limit=600_007 + 5_500).check_pump(pump)
    _rejects(lambda: _rx(limit=600_007 + 5_499).check_pump(pump),
             "basal: 600.007 mcg in 24 h plus the limit's margin 5.5 mcg (2750 nL: 3 strokes of 250 nL and a "
             "blocked line's 2000 nL) exceeds limits.max_daily_mcg 605.506 mcg")
    # The blocked line's store is the pump's and catheter's own: a stiffer line, a smaller margin.
    _rx(limit=600_007 + 1_500).check_pump(PumpParams(max_stored_nl=0))
    _rejects(lambda: _rx(limit=600_007 + 1_499).check_pump(PumpParams(max_stored_nl=0)), "margin 1.5 mcg")
    # Rounded up: 3 x 50 + 333 nL at 7 mcg/mL is 3.381 ng -> 4.
    assert PumpParams(stroke_nl=50, max_stored_nl=333).margin_nl == 483


def test_controller_arguments_at_their_bounds():
    rx = _rx()
    clock = FakeClock()
    for kw in ({"weekday": 6}, {"time_of_day_ms": DAY - 1}, {"volume_nl": 0}, {"volume_nl": 20 * ML}):
        Controller(clock, FakeMotor(clock), PumpParams(), rx, Events(), **kw)
    for kw, words in (({"weekday": 7}, "weekday"), ({"weekday": -1}, "weekday"),
                      ({"time_of_day_ms": DAY}, "time_of_day_ms"), ({"time_of_day_ms": -1}, "time_of_day_ms"),
                      ({"volume_nl": 20 * ML + 1}, "volume_ml")):
        _rejects(lambda: Controller(clock, FakeMotor(clock), PumpParams(), rx, Events(), **kw), words)
    ctl = Controller(clock, FakeMotor(clock), PumpParams(), rx, Events(), volume_nl=ML)
    for args, words in (((0, 2000), "volume_ml"), ((20 * ML + 1, 2000), "volume_ml"), ((ML, 9), "concentration"),
                        ((ML, 5001), "concentration")):
        _rejects(lambda: ctl.refill(*args), words)
    assert ctl.refill(20 * ML - ctl.reservoir.volume_nl, 2000) == 0
    _rejects(lambda: ctl.prime(-1), "catheter_cm")
    _rejects(lambda: ctl.prime(51), "catheter_cm")
    assert ctl.prime(50) == 0
