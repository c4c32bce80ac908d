"""Seven years (2557 days) of the default scenario with quarterly refills, inside the suite."""

import re
from importlib import resources

from sim import runner, scenario

MS_PER_DAY = 86_400_000


def seven_year_default():
    text = resources.files("sim.scenarios").joinpath("default.toml").read_text()
    text = text.replace("days = 90", "days = 2557")
    text = re.sub(r'\[\[event\]\]\nday = 66\n.*?concentration_mcg_ml = 2000\n', "", text, flags=re.S)
    for day in range(90, 2557, 90):
        # At ~0.28 mL/day the 20 mL pump is at its 0.5 mL empty threshold well before each quarter.
        text += f'\n[[event]]\nday = {day}\ntime = "10:00"\naction = "refill"\nvolume_ml = 19.5\n'
    return scenario.parse(text, "<default, 7 years>")


def test_seven_years_no_drift_and_exact_bookkeeping():
    sc = seven_year_default()
    assert sum(e.action == "refill" for e in sc.events) == 28
    r = runner.simulate(sc)
    kinds = [e["kind"] for e in r.events]
    assert kinds.count("refill") == 28  # the last quarter (37 days) ends before the pump runs dry
    assert kinds.count("empty_reservoir") == 28 and kinds.count("delivery_resumed") == 28
    # Ground truth and the firmware's own reservoir agree to the nL after ~200 tick wraps.
    assert r.final_reservoir_nl == r.firmware_reservoir_nl
    assert r.delivered_nl == r.strokes * 250
    assert 0 < r.max_lag_nl < 250
    # Everything prescribed was delivered or written off while empty: nothing lost or invented.
    assert abs(r.prescribed_mcg - r.delivered_mcg - r.missed_mcg) < 0.5
    # Zero drift: on a full day of delivery, delivered equals prescribed within one stroke (0.5 mcg).
    full_days = [d for d in r.daily if d["prescribed_mcg"] and abs(d["delivered_mcg"] - d["prescribed_mcg"]) < 0.5]
    assert len(full_days) > 1700
    assert r.daily[2000]["day"] == 2000
