"""The closed-form referee (sim/closed.py) gives the verdicts and figures of the stroke-by-stroke one."""

import glob

import pytest
from listed import judged_both_ways

from sim import runner, scenario

SCENARIOS = sorted(glob.glob("sim/scenarios/*.toml") + glob.glob("sim/scenarios/faults/*.toml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.split("scenarios/")[1])
@pytest.mark.parametrize("jitter,seed", [(0, 0), (300, 7), (1000, 3)])
def test_trains_and_listed_strokes_are_judged_alike(path, jitter, seed):
    sc = scenario.load(path, days_override=min(scenario.load(path).days, 40))
    r = runner.simulate(sc, wake_jitter_ms=jitter, seed=seed)
    ref, ref_l = judged_both_ways(sc, r)
    # the trains were judged without listing their strokes, bar a late wake's overdue ones and the cells
    # the closed forms do not cover; the listed run lists them all
    assert ref.listed < ref_l.listed or not r.strokes or r.pump.uncommanded_ms
