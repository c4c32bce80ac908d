"""The hard limit at its edge, through faults: a stateful test and the regressions of issue 11.

Prescriptions are drawn within a few strokes of `max_daily_mcg` (the worst basal window and the
margin computed here from their definitions in docs/delivery.md), then mixed with occlusions of
every compliance the line's `max_stored_ul` allows, stalls and MRI scans inside the least-rate
steps, runaways, suspends, patient and clinician boluses, and late wakes. Every run is judged

- by the referee, under a time bound: a crash or an overrun is a failure;
- by an independent judge written here (`tip_windows`): the drug that reaches the patient, stroke
  by stroke, at the tip, or at the block's end for a stroke pushed against a block, summed over
  every rolling 24 h window from the scenario alone (one drug, a full path: every stroke carries
  stroke_nl x C pg), never from the firmware's counters or the referee's arrays.

`make soak` runs the large profile (HYPOTHESIS_PROFILE=soak) and prints the worst window as a
fraction of the limit.
"""

import math
import os
from fractions import Fraction

import pytest
from bounded import JUDGE_SECONDS, time_bound
from hypothesis import assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from listed import judged_both_ways
from test_regressions import rolling_24h_max_pg

from sim import report, runner, scenario

DAY = 86_400_000
WINDOW_MS = DAY + 1000
MIN = 60_000
SOAK = os.environ.get("HYPOTHESIS_PROFILE") == "soak"


# -- the definitions, independently ------------------------------------------------------------

def least_mcg_per_day(conc):
    """0.048 mL/day at conc mcg/mL, in mcg/day rounded up to the ng."""
    return Fraction(math.ceil(Fraction(48_000 * conc, 1000)), 1000)


def worst_window_ng(steps):
    """Largest basal mass in a window of 24 h + 1 s of a daily profile [(start_min, ng_per_day)]:
    a whole day plus the extra second at the highest rate, rounded up."""
    starts = [m * MIN for m, _ in steps] + [DAY]
    day_mass = sum(Fraction(r * (starts[i + 1] - starts[i]), DAY) for i, (_, r) in enumerate(steps))
    return math.ceil(day_mass + Fraction(max(r for _, r in steps) * 1000, DAY))


def margin_ng(stroke_nl, max_stored_nl, conc):
    """docs/delivery.md: rounding, runaway, and a blocked line's store plus its crossing stroke."""
    return math.ceil(Fraction((3 * stroke_nl + max_stored_nl) * conc, 1000))


def stored_below_threshold_nl(compliance_nl, stroke_nl):
    """What the simulated line stores while the load (+100 % per compliance_nl) stays below 200 %."""
    return (-(-compliance_nl // stroke_nl) - 1) * stroke_nl


def tip_windows(stroke_times, stroke_nl, conc, blocks):
    """Worst drug (pg) reaching the patient in any rolling 24 h window: each stroke carries
    stroke_nl x conc pg; one fired while the catheter was blocked arrives when the block ends."""
    arrivals = []
    for t in stroke_times:
        for a, b in blocks:
            if a <= t < b:
                t = b
                break
        arrivals.append(int(t))
    arrivals.sort()
    return rolling_24h_max_pg(arrivals, [stroke_nl * conc] * len(arrivals))


def judged(text, jitter=0, seed=0):
    sc = scenario.parse(text, "edge.toml")
    r = runner.simulate(sc, wake_jitter_ms=jitter, seed=seed)
    with time_bound(JUDGE_SECONDS, "the referee's judgement"):
        inv = report.judge(r)
    judged_both_ways(sc, r)  # the closed forms against every stroke listed: limit holds, runaways, suspends
    return sc, r, inv


# -- the stateful test --------------------------------------------------------------------------

def _clock(t):
    return f"{t % DAY // 3_600_000:02d}:{t % 3_600_000 // MIN:02d}:{t % MIN // 1000:02d}"


class LimitEdge(RuleBasedStateMachine):
    worst_fraction = Fraction(0)

    @initialize(
        conc=st.sampled_from([200, 500, 1000, 2000, 4000]),
        stroke=st.sampled_from([50, 100, 250, 500, 1000]),
        max_stored_ul=st.sampled_from([0, 0.5, 2, 5, 20, 50]),
        compliance_pick=st.integers(0, 1000),
        rates=st.lists(st.integers(0, 700), min_size=1, max_size=4),
        least=st.lists(st.booleans(), min_size=4, max_size=4),
        extra_strokes=st.integers(0, 3),
        ptm=st.tuples(st.integers(1, 40), st.integers(1, 30), st.integers(15, 120), st.integers(1, 8)),
        start_min=st.integers(0, 1439),
        jitter=st.sampled_from([0, 0, 250, 1000]),
        seed=st.integers(0, 9),
    )
    def setup(self, conc, stroke, max_stored_ul, compliance_pick, rates, least, extra_strokes, ptm, start_min,
              jitter, seed):
        floor = least_mcg_per_day(conc)
        mcg = [floor if least[i] else floor + r for i, r in enumerate(rates)]  # low and least-rate steps
        starts = [0] + [int(1440 * (i + 1) / (len(mcg) + 1)) for i in range(len(mcg) - 1)]
        steps = [(m, int(v * 1000)) for m, v in zip(starts, mcg)]
        max_stored_nl = int(max_stored_ul * 1000)
        # Any compliance in range whose store stays within max_stored_ul (the simulator refuses more).
        allowed = [c for c in range(500, 50_001, 250) if stored_below_threshold_nl(c, stroke) <= max_stored_nl]
        assume(allowed)
        self.compliance_nl = allowed[compliance_pick % len(allowed)]
        self.limit_ng = worst_window_ng(steps) + margin_ng(stroke, max_stored_nl, conc) \
            + extra_strokes * stroke * conc // 1000
        self.stroke, self.conc = stroke, conc
        self.jitter, self.seed = jitter, seed
        self.tod0 = start_min * MIN
        self.now = 0
        self.events, self.faults = [], []
        steps_toml = ", ".join(f'{{start = "{m // 60:02d}:{m % 60:02d}", mcg_per_day = {r / 1000}}}' for m, r in steps)
        self.head = f"""days = 1
start = "2026-01-05T{start_min // 60:02d}:{start_min % 60:02d}"
[pump]
reservoir_ml = 40
stroke_nl = {stroke}
[catheter]
compliance_ul = {self.compliance_nl / 1000}
max_stored_ul = {max_stored_ul}
[drug]
concentration_mcg_ml = {conc}
[basal]
steps = [ {steps_toml} ]
[ptm]
mcg = {ptm[0]}
minutes = {ptm[1]}
lockout_minutes = {ptm[2]}
max_per_day = {ptm[3]}
[limits]
max_daily_mcg = {self.limit_ng / 1000}
"""
        try:
            scenario.parse(self._text(), "edge.toml")
        except scenario.ScenarioError:
            assume(False)  # a PTM dose below one stroke, or too fast for the drug

    def _text(self):
        days = (self.tod0 + self.now) // DAY + 2
        return self.head.replace("days = 1", f"days = {days}", 1) + "".join(self.events) + "".join(self.faults)

    def _add(self, where, body):
        t = self.tod0 + self.now
        where.append(f'\n[[{"event" if where is self.events else "fault"}]]\nday = {t // DAY}\n'
                     f'time = "{_clock(t)}"\n{body}\n')
        try:
            scenario.parse(self._text(), "edge.toml")
        except scenario.ScenarioError:
            where.pop()  # overlapping mechanism faults: bad input, refused before anything runs

    @rule(minutes=st.integers(1, 36 * 60), seconds=st.integers(0, 59))
    def wait(self, minutes, seconds):
        self.now += minutes * MIN + seconds * 1000

    @rule()
    def ptm(self):
        self._add(self.events, 'action = "ptm"')

    @rule(strokes=st.integers(1, 400), minutes=st.integers(1, 120))
    def bolus(self, strokes, minutes):
        mcg = Fraction(strokes * self.stroke * self.conc, 10**6)
        self._add(self.events, f'action = "bolus"\nmcg = {float(round(mcg, 3))}\nminutes = {minutes}')

    @rule(kind=st.sampled_from(["occlusion", "occlusion", "motor_stall", "magnetic_field"]),
          minutes=st.integers(1, 600))
    def mechanism(self, kind, minutes):
        self._add(self.faults, f'kind = "{kind}"\nminutes = {minutes}')

    @rule(strokes=st.integers(1, 3))
    def runaway(self, strokes):
        if not any("runaway" in f for f in self.faults):
            self._add(self.faults, f'kind = "runaway"\nstrokes = {strokes}')

    @rule(action=st.sampled_from(["suspend", "resume"]))
    def clinician(self, action):
        self._add(self.events, f'action = "{action}"')

    @precondition(lambda self: hasattr(self, "head"))
    @invariant()
    def the_limit_holds_at_the_patient(self):
        sc, r, inv = judged(self._text(), self.jitter, self.seed)
        assert all(v["pass"] for v in inv.values()), report.violations(r)
        blocks = [(f.t_ms, f.end_ms) for f in sc.faults if f.kind == "occlusion"]
        worst = tip_windows(r.stroke_times.tolist(), self.stroke, self.conc, blocks)
        assert worst <= self.limit_ng * 1000, (worst, self.limit_ng)
        LimitEdge.worst_fraction = max(LimitEdge.worst_fraction, Fraction(worst, self.limit_ng * 1000))

    def teardown(self):
        if SOAK and hasattr(self, "head"):
            print(f"limit edge: worst window so far {float(LimitEdge.worst_fraction):.6f} of the limit", flush=True)


LimitEdge.TestCase.settings = settings(max_examples=300 if SOAK else 5, stateful_step_count=30 if SOAK else 8,
                                       deadline=None)
TestLimitEdge = LimitEdge.TestCase


# -- the independent judge against known answers -----------------------------------------------

def test_tip_windows_counts_a_block_at_its_release():
    # Strokes at minutes 1..10 and a day later at minutes 1..10 again: 10 in any window. With the
    # 4th to 10th of the first day against a block released at minute 30, those 7 arrive at minute
    # 30, inside the window ending a day after minute 10: 7 + 10.
    times = [k * MIN for k in range(1, 11)] + [DAY + k * MIN for k in range(1, 11)]
    assert tip_windows(times, 250, 2000, []) == 10 * 500_000
    assert tip_windows(times, 250, 2000, [(3 * MIN + 1, 30 * MIN)]) == 17 * 500_000
    assert tip_windows([0, DAY], 100, 1000, []) == 100_000  # (t - 24 h, t]: 24 h apart, never together


def test_the_definitions_here_agree_with_the_worked_examples_of_docs_delivery():
    assert margin_ng(250, 2000, 2000) == 5_500  # 2.75 uL at 2000 mcg/mL
    assert worst_window_ng([(0, 600_000)]) == 600_007  # 600.006944 mcg rounded up
    assert least_mcg_per_day(2000) == 96
    assert stored_below_threshold_nl(2000, 250) == 1750  # 7 strokes below, the 8th crosses 200 %
    assert stored_below_threshold_nl(50_000, 250) == 49_750


# -- issue 11: each reproduction, against the rule ---------------------------------------------

HAIRLINE = """name = "edge"
days = 4
start = "2026-01-05T00:00"
[catheter]
compliance_ul = COMPLIANCE
[drug]
concentration_mcg_ml = 2000
[basal]
steps = [ { start = "00:00", mcg_per_day = 699.791 } ]
[limits]
max_daily_mcg = LIMIT
"""
OCCLUSION = """[[fault]]
day = 1
time = "02:00"
kind = "occlusion"
minutes = 60
"""
RUNAWAY = """[[fault]]
day = 2
time = "TIME"
kind = "runaway"
strokes = 1
"""


def _hairline(limit, compliance="2.0", fault=OCCLUSION):
    return HAIRLINE.replace("LIMIT", limit).replace("COMPLIANCE", compliance) + fault


def test_a_hairline_prescription_without_room_for_a_blocked_line_is_refused_up_front():
    # Old code: accepted, and 703.5 mcg reached the patient in a window after a 60-minute block
    # (2 uL line) against 700.3. The margin is now 3 x 250 + 2000 nL = 5.5 mcg at 2000 mcg/mL:
    # 699.8 (the worst window, rounded up) + 5.5 > 700.3.
    for fault in (OCCLUSION, RUNAWAY.replace("TIME", "12:00:30")):
        try:
            scenario.parse(_hairline("700.3", fault=fault), "edge.toml")
        except scenario.ScenarioError as e:
            assert "basal: 699.8 mcg in 24 h plus the limit's margin 5.5 mcg" in str(e)
            assert "exceeds limits.max_daily_mcg 700.3 mcg" in str(e)
        else:
            raise AssertionError("accepted")


def test_a_line_that_would_store_more_than_the_margin_covers_is_refused():
    # Old code: a 50 uL line never reached the occlusion load in an hour; about 58 strokes arrived at
    # the release and 729.0 mcg reached the patient in a window against 700.3.
    try:
        scenario.parse(_hairline("705.3", compliance="50"), "edge.toml")
    except scenario.ScenarioError as e:
        assert str(e) == ("edge.toml: catheter.compliance_ul: a 50 uL line stores 49.75 uL of 250 nL strokes "
                          "below the occlusion threshold, more than catheter.max_stored_ul 2 uL (the most the "
                          "firmware's limit margin covers)")
    else:
        raise AssertionError("accepted")


def test_at_the_edge_of_the_margin_a_released_block_and_a_runaway_stay_within_the_limit():
    # The same faults with the least limit the margin allows (699.8 + 5.5 = 705.3 mcg) and with a
    # 50 uL line that says so (max_stored_ul = 50: the margin is 50.75 uL, 101.5 mcg).
    cases = [(_hairline("705.3"), 705_300), (_hairline("801.3", "50", OCCLUSION).replace(
        "[catheter]", "[catheter]\nmax_stored_ul = 50"), 801_300)]
    cases += [(_hairline("705.3", fault=RUNAWAY.replace("TIME", t)), 705_300) for t in ("12:00:30", "12:00:50")]
    for text, limit_ng in cases:
        sc, r, inv = judged(text)
        assert all(v["pass"] for v in inv.values()), report.violations(r)
        blocks = [(f.t_ms, f.end_ms) for f in sc.faults if f.kind == "occlusion"]
        assert tip_windows(r.stroke_times.tolist(), 250, 2000, blocks) <= limit_ng * 1000
    # The 50 uL line never reaches the occlusion load in the blocked hour (nothing is detected):
    # its 58 or 59 strokes (1399.6 a day) arrive together at the release, within the margin.
    sc, r, inv = judged(cases[1][0])
    block = sc.faults[0]
    stored = int(((r.stroke_times >= block.t_ms) & (r.stroke_times < block.end_ms)).sum())
    assert 58 <= stored <= 59 and not [e for e in r.events if e["kind"] == "occlusion_detected"]
    assert r.withheld_ng == 0


def test_a_program_that_leaves_no_room_for_the_margin_is_bad_input():
    text = _hairline("705.3", fault="") + """[[event]]
day = 1
time = "00:00"
action = "program"
steps = [ { start = "00:00", mcg_per_day = 699.792 } ]
"""
    try:
        scenario.parse(text, "edge.toml")
    except scenario.ScenarioError as e:
        assert "basal: 699.801 mcg in 24 h plus the limit's margin 5.5 mcg" in str(e)
    else:
        raise AssertionError("accepted")


def test_a_line_softer_than_its_parameter_is_met_by_withholding_the_excess():
    # The simulator refuses such a line in a scenario; a real catheter can still be softer than its
    # parameter says. Here the simulated line is made 5 uL after the check (max_stored_ul stays 2):
    # the load rises 5 % a stroke, the 20th of a 3-hour block is detected (5 uL stored, 10 mcg), and
    # the motor counts the 18 above 110 % (4.5 uL). The margin covers 2 uL plus the crossing
    # stroke; the other 2.25 uL (4.5 mcg) are withheld from the release on, basal included, and at
    # the least limit the prescription allows every window holds.
    from sim.plot import figure

    text = _hairline("705.3", fault=OCCLUSION.replace("minutes = 60", "minutes = 180"))
    sc = scenario.parse(text, "soft.toml")
    run = runner.Run(sc)
    run.pump.compliance_nl = 5000
    r = run.run()
    with time_bound(JUDGE_SECONDS, "the referee's judgement"):
        inv = report.judge(r)
    assert all(v["pass"] for v in inv.values()), report.violations(r)
    held = [e for e in r.events if e["kind"] in ("limit_held", "limit_hold_ended")]
    release = sc.faults[0].end_ms
    assert [e["kind"] for e in held] == ["limit_held", "limit_hold_ended"]
    assert held[0]["withhold_mcg"] == 4.5 and release <= held[0]["t_s"] * 1000 <= release + MIN
    # 4.5 mcg at 699.791 mcg/day: 555.6 s of basal written off, to the ms.
    assert round(held[1]["t_s"] * 1000) - round(held[0]["t_s"] * 1000) == math.ceil(Fraction(4500 * DAY, 699_791))
    # The referee's own figure: the ideal written off over the hold, 699.791 mcg/day x 555.595 s.
    assert r.figures["withheld_mcg"] == float(Fraction(699_791 * 555_595, DAY * 1000))
    assert report.summary(r)["withheld_mcg"] == 4.5 and r.withheld_ng == 4500 and r.state == "delivering"
    blocks = [(f.t_ms, f.end_ms) for f in sc.faults]
    assert tip_windows(r.stroke_times.tolist(), 250, 2000, blocks) <= 705_300 * 1000
    legend = [t.get_text() for ax in figure(r).axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert "limit held (4.5 mcg withheld)" in legend


def test_the_line_check_at_its_boundary():
    # 250 nL strokes against max_stored_ul = 2: a 2.25 uL line holds 8 strokes below the occlusion
    # load (2 uL, the 9th crosses it): accepted. 1 nL more and a 9th stays below: 2.25 uL, refused.
    scenario.parse(_hairline("705.3", "2.25"), "edge.toml")
    with pytest.raises(scenario.ScenarioError, match="a 2.251 uL line stores 2.25 uL of 250 nL strokes"):
        scenario.parse(_hairline("705.3", "2.251"), "edge.toml")
