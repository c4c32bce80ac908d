"""Scenario-level regressions for defects 1.1-1.4 of issue 5, judged from ground truth.

Each test runs the real firmware in the simulator and judges the run from what reached the
patient: the simulator's stroke times and the independent oracle's tip mass of each stroke
(tests/host/oracle.py, from the scenario alone). Nothing is read back from firmware counters.

The "old code" figures in the comments were measured on f8b06f9 (the code as it landed) with the
same scenarios (the old runner, or a driver around it where the old format lacks a key), its
strokes judged through the same 0.33 mL path unless said otherwise.
"""

import numpy as np
import oracle
import pytest

from sim import runner, scenario

DAY = 86_400_000
HOUR = 3_600_000


def rolling_24h_max_pg(times, tip_pg):
    """Largest tip mass (pg) in any window (t - 24 h, t]."""
    T = np.asarray(times, dtype=np.int64)
    cum = np.concatenate([[0], np.cumsum(np.asarray(tip_pg, dtype=np.int64))])
    first = np.searchsorted(T, T - DAY, side="right")
    return int((cum[1:] - cum[first]).max()) if len(T) else 0


def run(text):
    sc = scenario.parse(text, "regression.toml")
    r = runner.simulate(sc)
    o = oracle.run(sc)
    assert len(r.stroke_times) == len(o.tip)  # ground truth needs one tip mass per stroke
    return sc, r, o


def verdicts(r, kind):
    return [e.get("reason") or "ok" for e in r.events if e["kind"] in (kind, kind + "_rejected")]


# -- 1.1 a program change doubles the window -----------------------------------------------

PROGRAM_SPAN = """days = 3
start = "2026-01-05T00:00"
[drug]
concentration_mcg_ml = 2000
[basal]
steps = [ {start = "00:00", mcg_per_day = 96}, {start = "12:00", mcg_per_day = 1200} ]
[limits]
max_daily_mcg = LIMIT
[[event]]
day = 1
time = "00:00"
action = "program"
steps = [ {start = "00:00", mcg_per_day = 1200}, {start = "12:00", mcg_per_day = 96} ]
"""


def test_1_1_a_program_change_cannot_double_a_rolling_window():
    # The review's reproduction. Old code: the program was accepted and 1200.0 mcg left the tip in
    # one rolling 24 h (2400 strokes in the window ending day 1 12:00) against a 700 mcg limit.
    sc, r, o = run(PROGRAM_SPAN.replace("LIMIT", "700"))
    assert verdicts(r, "program") == ["limit"]
    assert rolling_24h_max_pg(r.stroke_times, o.tip) <= 700 * 10**6
    # The bound across the change is exact, not a blanket refusal: the window spanning it (24 h
    # and 1 s) holds 1200 mcg and 1 s of the least rate (1.1 ng: 1200.002 rounded up), so with
    # room for it plus the margin (5.5 mcg) the program is accepted and holds; 1 ng less is not.
    _, r, _ = run(PROGRAM_SPAN.replace("LIMIT", "1205.501"))
    assert verdicts(r, "program") == ["limit"]
    sc, r, o = run(PROGRAM_SPAN.replace("LIMIT", "1205.502"))
    assert verdicts(r, "program") == ["ok"]
    worst = rolling_24h_max_pg(r.stroke_times, o.tip)
    assert 1199 * 10**6 < worst <= 1200.5 * 10**6


# -- 1.2 a refill with a new concentration breaks the limit ---------------------------------

# Found by a random search (400 scenarios of a concentration change under a tight limit with
# boluses filling the room) against the old code: 167 violated the limit in the old code's own
# model. This one, 5000 -> 2000 mcg/mL: old code 550.0 mcg in a rolling 24 h against 540.402 in
# its own model (the reservoir's drug at the tip), 1350.0 mcg through the path. The limit has since
# grown by the margin's two new parts at 5000 mcg/mL (a runaway's 2500 nL stroke and a blocked
# line's 2000 nL, 2 x 12.5 + 10 mcg), so the boluses fill the same room: 575.402.
REFILL_FOUND = """days = 3
start = "2026-01-05T00:00"
[pump]
reservoir_ml = 40
volume_ml = 30
stroke_nl = 2500
[drug]
concentration_mcg_ml = 5000
[basal]
steps = [ {start = "00:00", mcg_per_day = 526.239} ]
[ptm]
mcg = 18.619
minutes = 18
lockout_minutes = 15
max_per_day = 24
[limits]
max_daily_mcg = 575.402
[[event]]
day = 0
time = "09:38"
action = "bolus"
mcg = 137
minutes = 54
[[event]]
day = 1
time = "07:24"
action = "refill"
volume_ml = 30
concentration_mcg_ml = 2000
[[event]]
day = 1
time = "09:37"
action = "ptm"
[[event]]
day = 1
time = "21:05"
action = "ptm"
"""

# The review's reproduction (5000 -> 1000 mcg/mL at 08:00, basal 600 mcg/day) with the limit just
# above the worst basal window plus the margin of the stronger drug: 600.007 + 13.75 mcg (3 strokes
# of 250 nL and 2000 nL at 5000 mcg/mL). Old code, whose margin was one stroke (1.25 mcg): 601.0
# mcg in its own model (601.0 with the review's 600.001 limit), 1921.0 mcg through the path.
REFILL_REVIEW = """days = 3
start = "2026-01-05T00:00"
[drug]
concentration_mcg_ml = 5000
[basal]
steps = [ {start = "00:00", mcg_per_day = 600} ]
[limits]
max_daily_mcg = LIMIT
[[event]]
day = 1
time = "08:00"
action = "refill"
volume_ml = 20
concentration_mcg_ml = 1000
"""


@pytest.mark.parametrize("text", [REFILL_FOUND, REFILL_REVIEW.replace("LIMIT", "613.757")], ids=["found", "review"])
def test_1_2_the_limit_holds_at_the_tip_across_a_refill_with_a_new_drug(text):
    sc, r, o = run(text)
    assert verdicts(r, "refill") == ["ok"]
    assert rolling_24h_max_pg(r.stroke_times, o.tip) <= sc.rx.max_daily_ng * 1000


def test_1_2_the_reviews_exact_limit_is_refused_up_front():
    # 600.001 mcg leaves no room for the 13.75 mcg margin above the 600.007 mcg worst window; nor
    # does 1 ng less than both.
    for limit in ("600.001", "613.756"):
        with pytest.raises(scenario.ScenarioError, match="margin 13.75 mcg"):
            scenario.parse(REFILL_REVIEW.replace("LIMIT", limit), "review.toml")


def test_1_2_a_weaker_drug_does_not_free_room_a_stronger_stroke_still_fills():
    # FAILS on the current firmware and on the contract as written (docs/delivery.md): the stroke
    # margin covers only the drugs still to leave the tip. Once the last 1000 mcg/mL stroke (5 mcg)
    # has left, the margin drops to a 500 mcg/mL stroke (2.5 mcg) and a PTM is granted 2.5 mcg of
    # room, but a rolling window starting just before that last strong stroke holds it too:
    # 627.5 mcg against 625.009 (the referee flags it as well). Old code: 627.5 in its own model,
    # 792.5 through the path. The margin must also cover the strongest drug that left the tip
    # within the last WINDOW_MS. A rigid line (max_stored_ul = 0) keeps the margin at three
    # strokes, 15 mcg of 1000 mcg/mL (7.5 of 500): limit 620.009 + 15.
    text = """days = 3
start = "2026-01-05T00:00"
[pump]
stroke_nl = 5000
[catheter]
max_stored_ul = 0
[drug]
concentration_mcg_ml = 1000
[basal]
steps = [ {start = "00:00", mcg_per_day = 620.001} ]
[ptm]
mcg = 5
minutes = 1
max_per_day = 24
[limits]
max_daily_mcg = 635.009
[[event]]
day = 0
time = "10:43"
action = "refill"
volume_ml = 20
concentration_mcg_ml = 500
[[event]]
day = 1
time = "03:40"
action = "ptm"
"""
    sc, r, o = run(text)
    assert verdicts(r, "refill") == ["ok"]
    worst = rolling_24h_max_pg(r.stroke_times, o.tip)
    assert worst <= sc.rx.max_daily_ng * 1000, f"{worst / 1e6} mcg in a rolling 24 h, limit 635.009"


# -- 1.3 a late wake drops the periodic bolus -------------------------------------------------

PERIODIC = """days = 3
start = "2026-01-05T00:00"
[drug]
concentration_mcg_ml = 2000
[basal]
steps = [ {start = "00:00", mcg_per_day = 400}, {start = "06:00", mcg_per_day = 450} ]
[[periodic_bolus]]
at = "08:00"
mcg = 30.001
minutes = 7
[limits]
max_daily_mcg = 600
"""


class OneMsLate(runner.Run):
    """Every wake comes exactly 1 ms after the deadline the firmware asked for."""

    def _wake_at(self, deadline):
        return self.clock.to_ms(deadline) + 1


def _judge_late(r, o, late_ms):
    T = r.stroke_times
    assert len(T) == len(o.strokes)
    lag = T - np.array(o.strokes, dtype=np.int64)
    assert lag.min() >= 0, "a stroke came before the exact rule's time"
    assert lag.max() <= late_ms, f"a stroke came {lag.max()} ms late"
    granted = [b["pump_t_ms"] for b in r.boluses if b["kind"] == "periodic" and b["granted"]]
    assert granted == [d * DAY + 8 * HOUR for d in range(3)]


def test_1_3_a_wake_1_ms_late_neither_drops_nor_stretches_a_periodic_bolus():
    # Old code, every wake 1 ms late: 0 periodic boluses in 3 days instead of 3, no event, and
    # 185 strokes (92.5 mcg) fewer than on time. Now every stroke is at most 1 ms late, never
    # early (a bolus run past its end at the old rate would make strokes early), and every
    # periodic bolus starts at its exact millisecond.
    sc = scenario.parse(PERIODIC, "late.toml")
    o = oracle.run(sc)
    _judge_late(OneMsLate(sc).run(), o, 1)


@pytest.mark.parametrize("jitter, seed", [(1, 0), (17, 1), (1000, 2)])
def test_1_3_random_late_wakes_keep_every_periodic_bolus(jitter, seed):
    sc = scenario.parse(PERIODIC, "late.toml")
    _judge_late(runner.simulate(sc, wake_jitter_ms=jitter, seed=seed), oracle.run(sc), jitter)


# -- 1.4 moving a periodic bolus later in the day ------------------------------------------

MOVED = PERIODIC + """[[event]]
day = 1
time = "09:00"
action = "program"
steps = [ {start = "00:00", mcg_per_day = 400}, {start = "06:00", mcg_per_day = 450} ]
periodic_bolus = [ { at = "10:00", mcg = 30.001, minutes = 7 } ]
"""


def test_1_4_a_periodic_bolus_moved_later_the_same_day_is_given_once():
    # At 09:00 on day 1 a program moves the 08:00 bolus to 10:00. Old code: both were given that
    # day, 497.5 mcg at the tip against 467.501 prescribed. Now the new list starts at midnight.
    sc, r, o = run(MOVED)
    T = r.stroke_times
    tip = np.asarray(o.tip, dtype=np.int64)
    stroke_pg = 250 * 2000
    for day in range(3):
        got = int(tip[(T > day * DAY) & (T <= (day + 1) * DAY)].sum())
        assert got <= (437_500 + 30_001) * 1000 + stroke_pg, f"day {day}: {got / 1e6} mcg"
    times = [(b["pump_t_ms"] // DAY, b["pump_t_ms"] % DAY // HOUR) for b in r.boluses if b["granted"]]
    assert times == [(0, 8), (1, 8), (2, 10)]
