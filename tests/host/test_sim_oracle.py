"""The simulator's strokes and decisions, at every stroke, against the independent oracle."""

import glob

import numpy as np
import oracle
import pytest

from sim import report, runner, scenario

DAY = 86_400_000
HOUR = 3_600_000


def _decisions(result):
    return [(b["pump_t_ms"], b["kind"], b["ng"] if b["granted"] else b["reason"]) for b in result.boluses]


def _check(sc):
    r = runner.simulate(sc)
    o = oracle.run(sc)
    assert len(r.stroke_times) == len(o.strokes)
    assert np.array_equal(r.stroke_times, np.array(o.strokes, dtype=np.int64))
    assert _decisions(r) == [d for d in o.decisions if d[1] in ("ptm", "clinician", "periodic")]
    accepted = {(t, a) for t, a, _ in r.inputs}
    for t, what, verdict in o.decisions:
        if what in ("refill", "program", "prime"):
            assert ((t, what) in accepted) == (verdict == "ok"), (t, what, verdict)
    inv = report.judge(r)
    assert all(v["pass"] for v in inv.values()), inv
    # The referee's tip masses are the oracle's, stroke by stroke.
    assert np.array_equal(r.referee.tip_pg[: len(o.tip)], np.array(o.tip, dtype=np.int64))
    return r, o


@pytest.mark.parametrize("path", sorted(glob.glob("sim/scenarios/*.toml")))
def test_every_shipped_scenario_matches_the_oracle(path):
    r, o = _check(scenario.load(path))
    assert len(o.strokes) > 1000


FLEX_400 = """
name = "flex-400"
days = 400
start = "2026-03-06T07:45"   # a Friday, not at midnight
[pump]
reservoir_ml = 40
stroke_nl = 200
internal_path_ml = 0.15
[catheter]
length_cm = 60
ml_per_cm = 0.0026
[drug]
concentration_mcg_ml = 1500
[basal]
steps = [ {start = "00:00", mcg_per_day = 333.3}, {start = "05:45", mcg_per_day = 512},
          {start = "13:10", mcg_per_day = 0}, {start = "14:00", mcg_per_day = 701.257} ]
[basal.weekdays]
sat = [ {start = "00:00", mcg_per_day = 250}, {start = "10:00", mcg_per_day = 444} ]
sun = [ {start = "00:00", mcg_per_day = 260}, {start = "10:30", mcg_per_day = 430}, {start = "22:00", mcg_per_day = 300} ]
[[periodic_bolus]]
at = "07:07"
mcg = 33.301
minutes = 13
[[periodic_bolus]]
at = "19:00"
mcg = 12.5
minutes = 45
[ptm]
mcg = 17.003
minutes = 7
lockout_minutes = 60
max_per_day = 5
[limits]
max_daily_mcg = 900
"""


def _flex_400_text():
    text = FLEX_400
    ev = []
    for d in range(0, 400, 3):
        ev.append((d, "09:00:07", 'action = "ptm"'))
        ev.append((d, "09:30", 'action = "ptm"'))  # inside the lockout: denied
    for d in range(1, 400, 17):
        ev.append((d, "23:55", 'action = "bolus"\nmcg = 40.007\nminutes = 11'))
        ev.append((d + 1, "00:01", 'action = "cancel_bolus"'))
    for d in range(20, 400, 40):  # 40 mL at ~0.35 mL/day: a refill every 40 days, alternating drugs
        conc = 1500 if (d // 40) % 2 else 900
        ev.append((d, "12:00", f'action = "refill"\nvolume_ml = 30\nconcentration_mcg_ml = {conc}'))
    ev.append((55, "08:00", 'action = "program"\nsteps = [ {start = "00:00", mcg_per_day = 300}, '
                            '{start = "06:00", mcg_per_day = 520} ]\nperiodic_bolus = [ { at = "06:30", mcg = 20, '
                            'minutes = 20 }, { at = "07:07", mcg = 10, minutes = 5 } ]'))
    ev.append((56, "09:00", 'action = "program"\nsteps = [ {start = "00:00", mcg_per_day = 320}, '
                            '{start = "06:00", mcg_per_day = 500} ]'))
    ev.append((130, "10:00", 'action = "prime"\ncatheter_cm = 20'))
    ev.append((250, "10:00", 'action = "prime"'))
    ev.append((310, "03:00", 'action = "bolus"\nmcg = 600\nminutes = 60'))  # over the limit: truncated
    for d, time, body in ev:
        text += f'\n[[event]]\nday = {d}\ntime = "{time}"\n{body}\n'
    return text


def test_a_400_day_flex_scenario_matches_the_oracle_at_every_stroke():
    sc = scenario.parse(_flex_400_text(), "flex-400.toml")
    r, o = _check(sc)
    kinds = [e["kind"] for e in r.events]
    assert kinds.count("refill") == 10 and kinds.count("prime") == 2 and kinds.count("program") == 2
    assert "limit_truncated" in kinds
    granted = [b for b in r.boluses if b["granted"]]
    assert len(granted) > 900 and len(o.strokes) > 300_000


def test_the_bridge_doses_mcg_at_the_tip_through_a_concentration_change():
    # 500 -> 2000 mcg/mL at day 2 10:00 with 600 mcg/day. The path (0.2 mL + 50 cm x 2.6 uL/cm)
    # holds 330 uL of the old drug: 165 mcg, over six hours. A naive pump pacing strokes by the
    # reservoir's new concentration at once would give the patient a quarter of the dose for
    # those hours. The path model keeps every hour at the prescription.
    text = """days = 4
[pump]
reservoir_ml = 40
volume_ml = 30
[drug]
concentration_mcg_ml = 500
[basal]
steps = [ {start = "00:00", mcg_per_day = 600} ]
[limits]
max_daily_mcg = 700
[[event]]
day = 2
time = "10:00"
action = "refill"
volume_ml = 30
concentration_mcg_ml = 2000
"""
    sc = scenario.parse(text, "bridge.toml")
    r, o = _check(sc)
    T = r.stroke_times
    tip = r.referee.tip_pg[: len(T)]
    change = 2 * DAY + 10 * HOUR
    hours = range(2 * 24 + 10, 2 * 24 + 22)

    def per_hour(times, masses):
        return [int(masses[(times >= h * HOUR) & (times < (h + 1) * HOUR)].sum()) / 1e6 for h in hours]

    real = per_hour(T, tip)
    # Naive reference: from the change on, strokes paced by the new drug, and the tip gives out
    # whatever the path holds (the old drug first).
    before = T[T <= change]
    stroke_new_pg = 250 * 2000
    n_after = int((4 * DAY - change) * 600_000 * 1000 // (stroke_new_pg * DAY)) + 1
    naive_t = np.concatenate([before, change + np.ceil(np.arange(1, n_after + 1) * stroke_new_pg * DAY
                                                       / (600_000 * 1000)).astype(np.int64)])
    path_strokes = 330_000 // 250
    naive_tip = np.concatenate([tip[: len(before)], np.full(path_strokes, 250 * 500),
                                np.full(n_after - path_strokes, stroke_new_pg)])
    naive = per_hour(naive_t, naive_tip)
    assert all(abs(x - 25) <= 0.5 for x in real), real  # 25 mcg an hour, within a stroke
    assert min(naive) < 7, naive  # a quarter of the dose while the old drug leaves the catheter
    assert sum(abs(x - 25) for x in naive) > 100 > sum(abs(x - 25) for x in real)
