"""make bench: the SimPy model against pumpsim, the bench scenarios as designed, and the harness's outputs."""

import json
import subprocess
import sys
from fractions import Fraction

from sim import bench, bench_simpy, runner, scenario

_BAD = ("refill_rejected", "low_reservoir", "empty_reservoir")


def _pumpsim_strokes(days, stroke_nl=250):
    return runner.simulate(scenario.parse(bench.simpy_text(days, stroke_nl), "<simpy>")).strokes


def _strokes_by_definition(days, stroke_nl):
    # Exact and never ahead: after whole days, floor(prescribed mass / one stroke's mass).
    basal = bench_simpy.BASAL
    day_mcg = sum(Fraction(rate * ((basal[i + 1][0] if i + 1 < len(basal) else 1440) - start), 1440)
                  for i, (start, rate) in enumerate(basal)) + bench_simpy.BOLUS_MCG
    stroke_mcg = Fraction(stroke_nl * bench_simpy.CONCENTRATION_MCG_ML, 1_000_000)
    return int(days * day_mcg / stroke_mcg)


def test_simpy_model_strokes_equal_pumpsim():
    for days, stroke_nl in ((3, 250), (30, 250), (200, 250), (7, 50), (91, 500)):
        theirs = bench_simpy.simulate(days, stroke_nl)
        assert theirs == _pumpsim_strokes(days, stroke_nl), (days, stroke_nl)
        assert theirs == _strokes_by_definition(days, stroke_nl), (days, stroke_nl)


def test_simpy_model_cli_prints_its_strokes_and_refuses_bad_input():
    r = subprocess.run([sys.executable, "-m", "sim.bench_simpy", "3"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and int(r.stdout) == _strokes_by_definition(3, 250)
    r = subprocess.run([sys.executable, "-m", "sim.bench_simpy", "three"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.startswith("bench_simpy: usage")


def test_bench_7y_refills_are_accepted_and_never_run_low():
    r = runner.simulate(bench.bench_scenario())
    kinds = [e["kind"] for e in r.events]
    assert not [k for k in kinds if k in _BAD]
    assert kinds.count("refill") == len(range(90, bench.EOS_DAY, 90))
    last_refill_day = max(range(90, bench.EOS_DAY, 90))
    # EOS falls between the last refill and the next one, which the scenario leaves out.
    assert r.battery["eos_s"] is not None and last_refill_day < r.battery["eos_s"] / 86_400 < last_refill_day + 90


def test_bench_7y_old_28_ml_refill_was_refused_over_capacity():
    # Why the pump ran dry at day 128: the first 28 mL refill did not fit the 40 mL reservoir.
    r = runner.simulate(scenario.parse(bench.bench_text(100).replace("{fill}", "28.0"), "<bench-28>"))
    refused = [e for e in r.events if e["kind"] == "refill_rejected"]
    assert [(e["t_s"], e["reason"]) for e in refused] == [(90.5 * 86_400, "over_capacity")]


def test_complexity_variants_are_valid_and_run_as_designed():
    for steps in (1, 4, 13):
        for boluses in (0, 1, 4, 24):
            sc = scenario.parse(bench.simpy_text(120, steps=steps, boluses_per_day=boluses), "<complexity>")
            assert len(sc.rx.profiles[0].starts_ms) == steps
            r = runner.simulate(sc)
            kinds = [e["kind"] for e in r.events]
            assert not [k for k in kinds if k in _BAD], (steps, boluses)
            starts = [b for b in r.boluses if b["granted"]]
            assert len(starts) == 120 * boluses, (steps, boluses, len(starts))


def test_measure_counts_a_childs_cpu_and_peak_memory():
    m = bench.measure([sys.executable, "-c", "b = bytearray(120 << 20); sum(range(3_000_000))"])
    assert m["rc"] == 0
    assert m["peak_mb"] >= 120
    assert 0 < m["cpu_s"] and m["wall_s"] > 0


def test_quick_bench_writes_results_and_plot(tmp_path):
    r = subprocess.run([sys.executable, "-m", "sim.bench", "--quick", "--out", str(tmp_path)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["machine"]) >= {"cpu_count", "platform", "python"} and "commit" in results
    names = [(row["name"], row["program"]) for row in results["rows"]]
    assert names == [("simpy-7y", "pumpsim --no-plot"), ("simpy-7y", "SimPy model"), ("bench-7y", "pumpsim --no-plot"),
                     ("simpy-7y-50nl", "pumpsim --no-plot"), ("default", "pumpsim (plot)")]
    for row in results["rows"]:
        assert set(row) == set(bench.ROW_FIELDS)
        assert row["cpu_s"] > 0 and row["peak_mb"] > 0 and row["strokes"] > 0
    s = results["simpy"]
    assert s["ratio"] == s["simpy_cpu_s"] / s["pumpsim_cpu_s"]
    assert results["rows"][0]["strokes"] == results["rows"][1]["strokes"] == s["strokes"]
    assert len(results["targets"]) == 6 and all(isinstance(t["pass"], bool) for t in results["targets"])
    wear = results["journal_wear"]  # the journal at 24 mL/day: 96 000 strokes a day, from the prescription
    assert wear["strokes_per_day"] == 96_000 and wear["bytes_per_day"] > 0 and wear["years"] >= 10
    assert sum(wear["erases_per_block"]) >= wear["blocks"]  # it went round its blocks
    sc = results["scaling"]
    assert [p["days"] for p in sc["days"]] == [1, 7, 30]
    assert [p["stroke_nl"] for p in sc["stroke_nl"]] == [500, 250, 100, 50]
    assert {(p["steps"], p["boluses_per_day"]) for p in sc["complexity"]} == {(1, 0), (1, 24), (13, 0), (13, 24)}
    for p in sc["days"] + sc["stroke_nl"] + sc["complexity"]:
        assert set(p) == set(bench.POINT_FIELDS) and p["judge_s"] > 0
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for line in ("SimPy comparison", "referee 50 nL / 250 nL", "peak memory", "us per wake", "make run",
                 "journal at 24 mL/day"):
        assert line in r.stdout
