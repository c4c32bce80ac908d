"""pumpsim end to end, including every kind of bad input."""

import csv
import json
import subprocess
import sys

import pytest

from sim.cli import main

GOOD = """
name = "tiny"
days = 3
[drug]
concentration_mcg_ml = 2000
[basal]
steps = [ { start = "00:00", mcg_per_day = 600 }, { start = "07:30", mcg_per_day = 450 } ]
[limits]
max_daily_mcg = 1200
"""


def _run(args, capsys):
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_default_run_writes_every_output(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = _run(["run", "--days", "10", "--out", str(out), "--strokes"], capsys)
    assert code == 0, err
    assert "to the patient" in stdout and "max lag" in stdout and "invariants" in stdout
    s = json.loads((out / "summary.json").read_text())
    for key in ("scenario", "days", "strokes", "delivered_ml", "delivered_mcg", "prescribed_mcg", "patient_mcg",
                "max_lag_nl", "invariants", "daily", "boluses", "events", "final", "wall_s"):
        assert key in s
    assert s["scenario"] == "default" and s["days"] == 10 and len(s["daily"]) == 10
    assert 0 < s["max_lag_nl"] < 250
    assert all(v["pass"] for v in s["invariants"].values()) and len(s["invariants"]) == 11
    for key in ("alarms", "battery", "faults", "projections"):
        assert key in s
    assert set(s["projections"]) == {"low_reservoir_s", "empty_s", "eri_s", "eos_s", "history"}
    assert set(s["battery"]) == {"eri_s", "eos_s", "final_pct", "final_v"}
    assert s["final"]["state"] == "delivering"
    assert "dates (as of the last recalculation)" in stdout
    assert 0 <= s["prescribed_mcg"] - s["patient_mcg"] < 0.5  # behind by less than one 0.5 mcg stroke
    rows = list(csv.reader((out / "strokes.csv").open()))
    assert rows[0] == ["t_ms", "delivered_nl", "tip_pg"] and len(rows) == s["strokes"] + 1
    assert rows[-1][1] == str(s["strokes"] * 250)
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(json.loads(line)["kind"] for line in (out / "events.jsonl").read_text().splitlines())
    daily = list(csv.DictReader((out / "daily.csv").open()))
    assert [int(d["day"]) for d in daily] == list(range(10))


def test_check_accepts_the_shipped_scenarios(capsys):
    import glob

    files = sorted(glob.glob("sim/scenarios/*.toml"))
    assert len(files) >= 4
    for f in files:
        code, out, err = _run(["check", f], capsys)
        assert code == 0, err
        assert "ok" in out


BAD = [
    ("missing file", None, "no such file"),
    ("syntax", "days = = 3", "TOML syntax error"),
    ("unknown key", GOOD + "colour = 3\n", "colour: unknown key"),
    ("wrong type", GOOD.replace("days = 3", 'days = "3"'), "days: must be an integer"),
    ("out of range", GOOD.replace("2000", "9000"), "drug.concentration_mcg_ml: 9000 is out of range 10..5000"),
    ("unsorted", GOOD.replace('"07:30"', '"00:00"'), "strictly increase"),
    ("too many steps", GOOD.replace(
        'steps = [ { start = "00:00", mcg_per_day = 600 }, { start = "07:30", mcg_per_day = 450 } ]',
        "steps = [" + ",".join(f'{{ start = "{h:02d}:00", mcg_per_day = 500 }}' for h in range(14)) + "]"),
     "must have 1 to 13 steps"),
    ("bad time", GOOD.replace('"07:30"', '"7:30"'), "is not a time HH:MM"),
    ("event outside", GOOD + '[[event]]\nday = 3\ntime = "10:00"\naction = "ptm"\n', "event[0].day: 3 is out of range"),
    ("basal over limit", GOOD.replace("1200", "400"), "exceeds limits.max_daily_mcg"),
    ("bad action", GOOD + '[[event]]\nday = 1\ntime = "10:00"\naction = "dance"\n', "is not one of"),
    ("path", GOOD.replace("[drug]", "[pump]\ninternal_path_ml = 1.5\n[drug]"), "pump.internal_path_ml: 1.5 is out of range"),
    ("catheter", GOOD + "[catheter]\nlength_cm = 200\n", "catheter.length_cm: 200 is out of range 5..150"),
    ("catheter type", GOOD + "[catheter]\nlength_cm = 50.5\n", "catheter.length_cm: must be an integer"),
    ("ml per cm", GOOD + "[catheter]\nml_per_cm = 0.02\n", "catheter.ml_per_cm: 0.02 is out of range"),
    ("prime rate", GOOD.replace("[drug]", "[pump]\nprime_ml_per_hour = 2\n[drug]"), "pump.prime_ml_per_hour: 2"),
    ("prime cm", GOOD + '[[event]]\nday = 1\ntime = "10:00"\naction = "prime"\ncatheter_cm = 60\n',
     "event[0].catheter_cm: 60 is out of range 1..50"),
    ("prime key", GOOD + '[[event]]\nday = 1\ntime = "10:00"\naction = "prime"\nmcg = 6\n', "mcg: unknown key"),
    ("decimals", GOOD.replace("600 }", "600.0001 }"), "has more than 3 decimals"),
    ("program periodic", GOOD + '[[event]]\nday = 1\ntime = "10:00"\naction = "program"\n'
     'steps = [ { start = "00:00", mcg_per_day = 500 } ]\nperiodic_bolus = [ { at = "25:00", mcg = 5, minutes = 5 } ]\n',
     "periodic_bolus[0].at"),
    # Issue 11: mechanism faults overlapping with a drain (or a runaway) between them were accepted.
    ("faults overlap across a drain", GOOD + "".join(
        f'[[fault]]\nday = 0\ntime = "{t}"\nkind = "{k}"\n{x}\n' for t, k, x in (
            ("11:00", "occlusion", "minutes = 60"), ("11:10", "battery_drain", "factor = 2"),
            ("11:30", "motor_stall", "minutes = 10"))),
     "fault[2]: overlaps fault[0] (occlusion until 720 min); mechanism faults must not overlap"),
    ("glitch ms", GOOD + '[[fault]]\nday = 0\ntime = "06:00"\nkind = "adc_glitch"\nmv = 1000\nms = 60001\n',
     "fault[0].ms: 60001 is out of range 1..60000"),
    ("glitch mv", GOOD + '[[fault]]\nday = 0\ntime = "06:00"\nkind = "adc_glitch"\nmv = 1000.5\nms = 2\n',
     "fault[0].mv: must be an integer"),
    ("glitch missing", GOOD + '[[fault]]\nday = 0\ntime = "06:00"\nkind = "adc_glitch"\nms = 2\n', "fault[0].mv"),
    ("glitch key", GOOD + '[[fault]]\nday = 0\ntime = "06:00"\nkind = "adc_glitch"\nmv = 9\nms = 2\nminutes = 3\n',
     "fault[0].minutes: unknown key (allowed: day, time, kind, mv, ms)"),
    ("zero-rate step", GOOD.replace("mcg_per_day = 450", "mcg_per_day = 0"),
     "basal.steps[1].mcg_per_day: 0 mcg is below the least rate, 0.048 mL/day (96 mcg/day at 2000 mcg/mL); "
     "to stop delivery, suspend"),
    ("line over its store", GOOD + "[catheter]\ncompliance_ul = 3\nmax_stored_ul = 2\n",
     "catheter.compliance_ul: a 3 uL line stores 2.75 uL of 250 nL strokes below the occlusion threshold, more "
     "than catheter.max_stored_ul 2 uL"),
    # 600 mcg/day for 7.5 h and 450 for 16.5 h, and 1 s at 600: 496.882 mcg, plus the 5.5 mcg margin.
    ("no room for the margin", GOOD.replace("1200", "502.381"), "basal: 496.882 mcg in 24 h plus the limit's "
     "margin 5.5 mcg (2750 nL: 3 strokes of 250 nL and a blocked line's 2000 nL) exceeds limits.max_daily_mcg "
     "502.381 mcg"),
]


@pytest.mark.parametrize("label,text,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, label, text, message):
    path = tmp_path / "s.toml"
    if text is not None:
        path.write_text(text)
    out = tmp_path / "out"
    for args in (["check", str(path)], ["run", str(path), "--out", str(out)]):
        code, stdout, err = _run(args, capsys)
        assert code == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err
        assert str(path) in lines[0] and message in lines[0], lines[0]
    assert not out.exists()


def test_console_script_runs_as_a_process(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(GOOD)
    p = subprocess.run([sys.executable, "-m", "sim.cli", "run", str(path), "--out", str(tmp_path / "o"), "--no-plot"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert not (tmp_path / "o" / "plot.png").exists() and (tmp_path / "o" / "summary.json").exists()
    bad = subprocess.run([sys.executable, "-m", "sim.cli", "check", str(tmp_path / "nope.toml")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_a_program_keeps_what_it_does_not_replace_from_the_program_before():
    from sim import scenario

    text = GOOD.replace("days = 3", "days = 5") + """
[[event]]
day = 1
time = "10:00"
action = "program"
steps = [ { start = "00:00", mcg_per_day = 500 } ]
max_daily_mcg = 900
[[event]]
day = 2
time = "10:00"
action = "program"
steps = [ { start = "00:00", mcg_per_day = 550 } ]
"""
    first, second = scenario.parse(text, "p.toml").events
    assert first.rx.max_daily_ng == second.rx.max_daily_ng == 900_000
    assert second.rx.profiles[0].rates_ng_per_day == (550_000,)


@pytest.mark.parametrize("flags,message", [(["--wake-jitter-ms", "1001"], "--wake-jitter-ms: 1001 is out of range"),
                                           (["--wake-jitter-ms", "x"], "invalid int value"),
                                           (["--seed", "q"], "invalid int value")])
def test_bad_flags_exit_2_with_one_line(tmp_path, capsys, flags, message):
    code, _, err = _run(["run", "--out", str(tmp_path / "o"), "--no-plot", *flags], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err


def test_late_wakes_keep_every_invariant_and_are_reproducible(tmp_path, capsys):
    runs = []
    for i in range(2):
        out = tmp_path / f"j{i}"
        code, _, err = _run(["run", "--days", "90", "--wake-jitter-ms", "1000", "--seed", "7", "--out", str(out),
                             "--no-plot", "--strokes"], capsys)
        assert code == 0, err
        runs.append(((out / "strokes.csv").read_text(), json.loads((out / "summary.json").read_text())))
    assert runs[0][0] == runs[1][0]  # the same seed: the same strokes
    inv = runs[0][1]["invariants"]
    assert all(v["pass"] for v in inv.values())
    assert 0 < inv["never_a_stroke_behind"]["worst_late_ms"] <= 1000 and inv["never_ahead"]["worst_early_ms"] == 0


def test_a_violated_invariant_exits_3_with_one_line_per_invariant(tmp_path, capsys, monkeypatch):
    # A firmware whose trains fire every stroke 5 ms early: the referee must catch it on its own.
    from firmware.controller import Controller

    real = Controller._first

    def early(self):
        real(self)
        self.train.first_ms -= 5

    monkeypatch.setattr(Controller, "_first", early)
    out = tmp_path / "bad"
    code, stdout, err = _run(["run", "--days", "2", "--out", str(out), "--no-plot"], capsys)
    assert code == 3
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("pumpsim: invariant ") for line in lines)
    assert any("never_ahead" in line for line in lines)
    assert (out / "summary.json").exists()
    assert not json.loads((out / "summary.json").read_text())["invariants"]["never_ahead"]["pass"]
