"""The simulator's strokes, at every stroke, against the independent oracle."""

import numpy as np
from oracle import segments, stroke_times

from sim import runner, scenario

SCENARIO = """
name = "oracle"
days = 9
start = "2026-03-06T00:00"   # a Friday
[pump]
reservoir_ml = 40
stroke_nl = 200
[drug]
concentration_mcg_ml = 1500
[basal]
steps = [ {start = "00:00", mcg_per_day = 333.3}, {start = "05:45", mcg_per_day = 512},
          {start = "13:10", mcg_per_day = 0}, {start = "14:00", mcg_per_day = 701.25} ]
[basal.weekdays]
sat = [ {start = "00:00", mcg_per_day = 250}, {start = "10:00", mcg_per_day = 444} ]
[[periodic_bolus]]
at = "07:07"
mcg = 33.3
minutes = 13
[ptm]
mcg = 17
minutes = 7
lockout_minutes = 60
max_per_day = 5
[limits]
max_daily_mcg = 1500
[[event]]
day = 1
time = "09:00:07"
action = "ptm"
[[event]]
day = 2
time = "23:55"
action = "bolus"
mcg = 40
minutes = 11
[[event]]
day = 4
time = "12:00"
action = "refill"
volume_ml = 30
concentration_mcg_ml = 900
[[event]]
day = 6
time = "04:00"
action = "ptm"
"""


def test_every_stroke_matches_the_oracle(tmp_path):
    sc = scenario.parse(SCENARIO, "oracle.toml")
    result = runner.simulate(sc, record_strokes=True)
    kinds_minutes = {"clinician": None, "periodic": 13, "ptm": 7}
    boluses = []
    for b in result.boluses:
        if b["granted"]:
            minutes = kinds_minutes[b["kind"]] or 11
            boluses.append((round(b["requested_s"] * 1000), round(b["mcg"] * 1000), minutes))
    assert len(boluses) == 9 + 2 + 1  # periodic every day, two PTMs, one clinician
    refills = [(round(e["t_s"] * 1000), e["concentration_mcg_ml"]) for e in result.events if e["kind"] == "refill"]
    end = sc.days * 86_400_000
    expected, _ = stroke_times(segments(sc, boluses, refills, end), sc.pump.stroke_nl, end)
    got = result.stroke_times
    assert len(got) == len(expected) > 10_000
    assert np.array_equal(got, np.array(expected, dtype=np.int64))
    assert 0 < result.max_lag_nl < sc.pump.stroke_nl
