"""pumpsim accuracy: the trumpet statistic, the mechanism's volume model, the CLI (docs/accuracy.md)."""

import csv
from fractions import Fraction

import numpy as np
import pytest

from sim import report, runner
from sim.accuracy import SAMPLE_MS, SUB_PER_PG, WINDOWS_MIN, analyse, trumpet
from sim.cli import main
from sim.mechanism_model import MechanismParams, stroke_volumes_nl
from sim.scenario import parse

HOUR = 3_600_000
# A constant 500 mcg/day at 2000 mcg/mL: 1000 strokes of 250 nL (0.5 mcg) a day, one every 86.4 s.
FLAT = """
name = "flat"
days = 2
[pump]
volume_ml = 12.0
[drug]
concentration_mcg_ml = 2000
[basal]
steps = [ { start = "00:00", mcg_per_day = 500 } ]
[limits]
max_daily_mcg = 800
"""
RATE_NG_PER_DAY = 500_000
STROKE_PG = 250 * 2000  # nL x mcg/mL


def _judged(text=FLAT, mechanism=None):
    sc = parse(text, "<test>")
    if mechanism is not None:
        sc.mechanism = mechanism
    r = runner.simulate(sc)
    report.judge(r)
    return r


def _cli(args, capsys):
    try:
        code = main(["accuracy", *args])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


# -- the window statistic, against the definition ----------------------------------------------------


def _naive(q, ref, p_min):
    """IEC 60601-2-24's windows from the definition: per-sample deliveries q and references ref (one
    per 30 s sample); each window of p_min minutes, sliding by one sample, is the error of its mean
    flow against its reference. Returns (max, min, windows, skipped) as exact Fractions."""
    n = p_min * 2
    errs, skipped = [], 0
    for j in range(len(q) - n + 1):
        d = sum(q[j:j + n])
        r = sum(ref[j:j + n])
        if r == 0:
            skipped += 1
            continue
        errs.append(Fraction(100 * (d - r), r))
    return max(errs), min(errs), len(errs), skipped


def _cumulative(per_sample):
    return np.concatenate([[0], np.cumsum(np.asarray(per_sample, dtype=np.int64))])


def test_window_statistic_matches_a_naive_reimplementation():
    rng = np.random.default_rng(5)
    q = [int(x) for x in rng.integers(0, 9, 240)]  # 2 h of samples
    ref = [int(x) for x in rng.integers(1, 7, 240)]
    ref[50:70] = [0] * 20  # 10 min with nothing prescribed: the 2 and 5 min windows inside it are skipped
    rows, overall = trumpet(_cumulative(q), _cumulative(ref))
    assert [r["window_min"] for r in rows] == list(WINDOWS_MIN)
    for row in rows:
        hi, lo, count, skipped = _naive(q, ref, row["window_min"])
        assert (row["windows"], row["skipped"]) == (count, skipped)
        assert row["max_error_pct"] == pytest.approx(float(hi), rel=1e-12)
        assert row["min_error_pct"] == pytest.approx(float(lo), rel=1e-12)
    assert overall == float(Fraction(100 * (sum(q) - sum(ref)), sum(ref)))
    assert [r["skipped"] for r in rows] == [20 - 4 + 1, 20 - 10 + 1, 0, 0, 0]


def test_window_statistic_is_the_standards_mean_of_sample_errors_at_a_set_rate():
    # At a set rate r the standard writes Ep = max_j (dt / P) sum_i 100 (Q_i - r) / r: the same number.
    rng = np.random.default_rng(9)
    rate = 7
    q = rng.normal(rate, 2.0, 120)  # float deliveries (a real mechanism)
    rows, overall = trumpet(np.concatenate([[0.0], np.cumsum(q)]), _cumulative([rate] * 120))
    for row in rows:
        n = row["window_min"] * 2
        e = [sum(100 * (q[i] - rate) / rate for i in range(j, j + n)) / n for j in range(120 - n + 1)]
        assert row["windows"] == len(e) == (60 - row["window_min"]) * 2 + 1
        assert row["max_error_pct"] == pytest.approx(max(e), rel=1e-9)
        assert row["min_error_pct"] == pytest.approx(min(e), rel=1e-9)
    assert overall == pytest.approx(100 * (q.sum() - 120 * rate) / (120 * rate), rel=1e-9)


# -- the mechanism's volume model --------------------------------------------------------------------


def _times(n, step_ms=86_400):
    return np.arange(1, n + 1, dtype=np.int64) * step_ms


def test_an_exact_mechanism_gives_exactly_nominal_volumes():
    sc = parse(FLAT, "<test>")
    assert sc.mechanism == MechanismParams() and sc.mechanism.exact
    inputs = [(50 * 86_400, "refill", {"volume_nl": 3_000_000, "concentration": 2000})]
    for params in (None, MechanismParams(seed=99)):
        v = stroke_volumes_nl(sc, _times(500), inputs, params)
        assert len(v) == 500 and all(x == 250 for x in v.tolist())


def test_seeded_error_is_reproducible_with_the_right_mean_and_sd():
    sc = parse(FLAT, "<test>")
    params = MechanismParams(stroke_error_pct=5, seed=3)
    n = 200_000
    a = stroke_volumes_nl(sc, _times(n), [], params)
    assert np.array_equal(a, stroke_volumes_nl(sc, _times(n), [], params))
    assert np.array_equal(a[:1000], stroke_volumes_nl(sc, _times(1000), [], params))  # a longer run keeps them
    assert not np.array_equal(a, stroke_volumes_nl(sc, _times(n), [], MechanismParams(stroke_error_pct=5, seed=4)))
    pct = (a / 250 - 1) * 100
    assert abs(pct.mean()) < 5 * 5 / n**0.5  # five standard errors
    assert pct.std() == pytest.approx(5, rel=0.01)


def test_tolerance_and_pressure_drift_follow_the_reservoir_fill():
    sc = parse(FLAT, "<test>")  # 12 mL in a 20 mL reservoir
    n = 30_000
    times = _times(n)
    refill_t = int(times[9_999]) + 10  # after 10,000 strokes (9.5 mL left), 10 mL of the same drug
    inputs = [(refill_t, "refill", {"volume_nl": 10_000_000, "concentration": 2000})]
    params = MechanismParams(stroke_tolerance_pct=2, pressure_drift_pct=-6)
    v = stroke_volumes_nl(sc, times, inputs, params)
    # Oracle: walk the strokes one by one with the fill before each.
    fill = 12_000_000
    refilled = False
    expect = []
    for t in times.tolist():
        if t > refill_t and not refilled:
            fill += 10_000_000
            refilled = True
        expect.append(250 * (1 + (2 - 6 * (1 - fill / 20_000_000)) / 100))
        fill -= 250
    assert np.allclose(v, expect, rtol=0, atol=1e-9)
    assert v[0] == pytest.approx(250 * (1 + (2 - 6 * 0.4) / 100))


# -- the analysis of a run ---------------------------------------------------------------------------


def _flat_oracle(r, from_ms, period_ms, factor=Fraction(1)):
    """Window errors of the flat scenario straight from the stroke times: the reference is the set
    rate over the window, the delivery the strokes in (a, a + P] times the stroke's tip mass."""
    T = r.stroke_times.tolist()
    samples = list(range(from_ms, from_ms + period_ms + 1, SAMPLE_MS))
    count = [sum(1 for t in T if t <= s) for s in samples]
    rows = {}
    for p in WINDOWS_MIN:
        n = 2 * p
        ref = Fraction(RATE_NG_PER_DAY * p * 60_000, SUB_PER_PG)  # pg
        errs = [(factor * (count[j + n] - count[j]) * STROKE_PG - ref) / ref * 100 for j in range(len(samples) - n)]
        rows[p] = (max(errs), min(errs))
    total_ref = Fraction(RATE_NG_PER_DAY * period_ms, SUB_PER_PG)
    overall = (factor * (count[-1] - count[0]) * STROKE_PG - total_ref) / total_ref * 100
    return rows, overall


def test_the_analysis_of_a_run_matches_the_stroke_times_and_the_firmware_bound():
    r = _judged()
    a = analyse(r, HOUR, 24 * HOUR)
    rows, overall = _flat_oracle(r, HOUR, 24 * HOUR)
    assert a["mechanism"] == "exact mechanism" and a["samples"] == 2880
    assert a["overall_error_pct"] == float(overall)
    for row in a["rows"]:
        hi, lo = rows[row["window_min"]]
        assert row["max_error_pct"] == pytest.approx(float(hi), rel=1e-12)
        assert row["min_error_pct"] == pytest.approx(float(lo), rel=1e-12)
        # Never ahead, under one stroke behind: a window is within one stroke of its ideal.
        bound = 100 * STROKE_PG * SUB_PER_PG / (RATE_NG_PER_DAY * row["window_min"] * 60_000)
        assert row["bound_pct"] == pytest.approx(bound, rel=1e-12)
        assert -bound < row["min_error_pct"] <= row["max_error_pct"] < bound


def test_a_stroke_tolerance_shifts_the_overall_error_by_that_percentage():
    r = _judged(mechanism=MechanismParams(stroke_tolerance_pct=-4))
    a = analyse(r, HOUR, 24 * HOUR)
    rows, overall = _flat_oracle(r, HOUR, 24 * HOUR, factor=Fraction(96, 100))
    _, exact_overall = _flat_oracle(r, HOUR, 24 * HOUR)
    assert a["overall_error_pct"] == pytest.approx(float(overall), rel=1e-12)
    assert float(overall - exact_overall) == pytest.approx(-4 * (1 + float(exact_overall) / 100), rel=1e-12)
    for row in a["rows"]:
        hi, lo = rows[row["window_min"]]
        assert row["max_error_pct"] == pytest.approx(float(hi), rel=1e-12)
        assert row["min_error_pct"] == pytest.approx(float(lo), rel=1e-12)


def test_an_exact_mechanisms_trumpet_narrows_about_as_one_over_the_window():
    a = analyse(_judged(), HOUR, 24 * HOUR)
    spread = [row["max_error_pct"] - row["min_error_pct"] for row in a["rows"]]
    assert all(x > y for x, y in zip(spread, spread[1:]))
    # The quantisation error of a window is under one stroke whatever its length: spread x P stays
    # near one stroke over a minute's prescription (72 % min at 0.69 strokes a minute).
    one_stroke_min_pct = 100 * STROKE_PG * SUB_PER_PG / (RATE_NG_PER_DAY * 60_000)
    for p, s in zip(WINDOWS_MIN, spread):
        assert 0.5 * one_stroke_min_pct < s * p < 2 * one_stroke_min_pct


# -- the command line --------------------------------------------------------------------------------


def test_the_cli_writes_the_csv_and_the_plot(tmp_path, capsys):
    path = tmp_path / "flat.toml"
    path.write_text(FLAT + "[mechanism]\nstroke_error_pct = 3\nseed = 8\n")
    out = tmp_path / "out"
    code, stdout, err = _cli([str(path), "--out", str(out), "--hours", "12", "--tolerance-pct", "2"], capsys)
    assert code == 0, err
    assert "Ep(max)" in stdout and "tolerance +2%" in stdout and "sd 3% (seed 8)" in stdout
    rows = list(csv.DictReader((out / "trumpet.csv").open()))
    assert [int(x["window_min"]) for x in rows] == list(WINDOWS_MIN)
    assert set(rows[0]) == {"window_min", "windows", "skipped", "max_error_pct", "min_error_pct", "bound_pct",
                            "overall_error_pct"}
    assert all(int(x["windows"]) == 24 * 60 * 2 // 2 - 2 * int(x["window_min"]) + 1 for x in rows)
    assert (out / "trumpet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = _cli([str(path), "--out", str(tmp_path / "np"), "--no-plot"], capsys)
    assert code == 0, err
    assert (tmp_path / "np" / "trumpet.csv").exists() and not (tmp_path / "np" / "trumpet.png").exists()


PRIMED = FLAT + """
[[event]]
day = 0
time = "00:50"
action = "prime"
"""

BAD = [
    ([], "--hours", "0.5", "--hours: 0.5 h is shorter than the longest window (31 min)"),
    ([], "--from-hours", "1.01", "--from-hours: 1.01 h is not a whole number of 30 s samples"),
    ([], "--from-hours", "-1", "--from-hours: -1 is negative"),
    ([], "--hours", "soon", "--hours: 'soon' is not a number of hours"),
    ([], "--from-hours", "30", "the analysis period ends at 54 h, after the end of the 2-day run (48 h)"),
    ([], "--tolerance-pct", "12", "--tolerance-pct: 12.0 is out of range -10..10 %"),
    ([], "--stroke-error-pct", "nan", "--stroke-error-pct: nan is out of range 0..10 %"),
    ([], "--seed", "-1", "--seed: -1 is out of range"),
    ([], "--drift-pct", "x", "argument --drift-pct: invalid float value: 'x'"),
    (["[mechanism]\nwobble_pct = 1\n"], None, None, "mechanism.wobble_pct: unknown key"),
    (["[mechanism]\nstroke_error_pct = 11\n"], None, None, "mechanism.stroke_error_pct: 11 is out of range 0..10 %"),
    (["[mechanism]\nseed = 1.5\n"], None, None, "mechanism.seed: must be an integer"),
    (["PRIMED"], None, None, "overlaps priming (0.833333 h to"),
]


@pytest.mark.parametrize("extra, option, value, message", BAD, ids=[b[3][:40] for b in BAD])
def test_bad_input_exits_2_naming_the_problem_and_writes_nothing(tmp_path, capsys, extra, option, value, message):
    path = tmp_path / "s.toml"
    path.write_text(PRIMED if extra == ["PRIMED"] else FLAT + "".join(extra))
    out = tmp_path / "out"
    args = [str(path), "--out", str(out)] + ([option, value] if option else [])
    code, stdout, err = _cli(args, capsys)
    assert code == 2
    assert err.startswith("pumpsim: ") and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_a_missing_scenario_exits_2(tmp_path, capsys):
    code, _, err = _cli([str(tmp_path / "none.toml"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "none.toml: no such file" in err and not (tmp_path / "o").exists()
