"""The referee judged twice: from the motor's trains in closed form, and from every stroke listed."""

import copy

from sim import referee


def judged_both_ways(sc, r):
    """Judge run r from its trains and again from its listed stroke times (every piece of the judgement
    then takes its stroke-by-stroke path); assert the two agree in every verdict and figure."""
    ref, inv = referee.judge(sc, r)
    listed_run = copy.copy(r)
    listed_run.stroke_times = r.pump.stroke_times()  # strokes_given: the referee lists them
    ref_l, inv_l = referee.judge(sc, listed_run)
    # trains (a runaway's uncommanded strokes are outside any train: listed) vs one listed array
    assert ref.strokes.kind.count(2) == 0 or r.pump.uncommanded_ms
    assert set(ref_l.strokes.kind) <= {2}
    assert inv == inv_l
    assert ref.figures() == ref_l.figures()
    assert ref.daily() == ref_l.daily()
    assert ref.faults() == ref_l.faults()
    return ref, ref_l
