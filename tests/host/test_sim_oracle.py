"""The simulator (the real firmware on the virtual clock) against the independent oracle.

- Hand-computed cases pin the oracle itself to docs/delivery.md.
- Every shipped scenario and a 400-day flex scenario: the simulator's stroke times equal the
  oracle's at every stroke, its bolus decisions equal the reference model's, and so do the
  verdicts on every refill, program, prime and cancel; the referee's tip masses equal the oracle's.
- The bridge: patient mcg per hour through a concentration change, against a naive pump.
- Disagreements found between the firmware and the contract: these tests fail until resolved.
"""

import glob
from collections import Counter

import numpy as np
import oracle
import pytest

from sim import report, runner, scenario

DAY = 86_400_000
HOUR = 3_600_000
MIN = 60_000
REASONS = ("lockout", "max_per_day", "limit", "rate", "reservoir_empty", "bolus_table_full", "ptm_not_configured",
           "over_capacity", "concentration_incompatible", "no_active_bolus", "priming", "path_full", "busy")


def parse(text, name="t.toml"):
    return scenario.parse(text, name)


def sim_decisions(r):
    return [(b["pump_t_ms"], b["kind"], b["ng"] if b["granted"] else b["reason"]) for b in r.boluses]


def sim_verdicts(r):
    """(t_ms, action, "ok" or reason) of every refill, program, prime and cancel, from the run."""
    out = [(t, action, "ok") for t, action, _ in r.inputs]
    for e in r.events:
        action = e["kind"].removesuffix("_rejected")
        if e["kind"].endswith("_rejected") and action in ("refill", "program", "prime", "cancel"):
            reason = e["reason"]
            if reason not in REASONS:  # the firmware raised: a program for another drug
                reason = "drug_mismatch" if "concentration" in reason else reason
            out.append((round(e["t_s"] * 1000), action, reason))
    return sorted(out)


def check(sc):
    r = runner.simulate(sc)
    o = oracle.run(sc)
    assert sim_decisions(r) == o.bolus_decisions()
    assert sim_verdicts(r) == sorted(d for d in o.decisions if d[1] in ("refill", "program", "prime", "cancel"))
    got, want = r.stroke_times, np.array(o.strokes, dtype=np.int64)
    n = min(len(got), len(want))
    diff = np.nonzero(got[:n] != want[:n])[0]
    assert len(got) == len(want) and not len(diff), (
        f"strokes: sim {len(got)}, oracle {len(want)}; first difference at stroke "
        f"{diff[0] if len(diff) else n}: sim {got[diff[:3]] if len(diff) else got[n:n + 3]} "
        f"oracle {want[diff[:3]] if len(diff) else want[n:n + 3]}")
    inv = report.judge(r)
    assert np.array_equal(r.referee.tip_pg[: len(o.tip)], np.array(o.tip, dtype=np.int64))
    return r, o, inv


# -- the oracle against hand computation ------------------------------------------------------

BASE = """days = 1
start = "2026-01-05T00:00"
[drug]
concentration_mcg_ml = 2000
[basal]
steps = [ {start = "00:00", mcg_per_day = 600} ]
[limits]
max_daily_mcg = 700
"""


def event(day, time, body):
    return f'[[event]]\nday = {day}\ntime = "{time}"\n{body}\n'


def test_oracle_flat_basal_is_one_stroke_every_72_s():
    # 600 mcg/day at 2000 mcg/mL in 250 nL (500 ng) strokes: 1200 a day, one every 72 s exactly,
    # the last on the run's final instant.
    o = oracle.run(parse(BASE))
    assert o.strokes == [72_000 * k for k in range(1, 1201)]
    assert set(o.tip) == {500_000}


def test_oracle_bolus_phases():
    assert oracle.bolus_phases(7, 3) == (3360, 0)  # 7 ng over 3 min: 3360 ng/day throughout
    q, r = oracle.bolus_phases(7, 11)  # 7 ng over 11 min: 917 ng/day for 4 min, then 916
    assert (q, r) == (916, 4) and (917 * 4 + 916 * 7) * MIN == 7 * DAY
    assert oracle.top_rate(7, 11) == 917 and oracle.top_rate(7, 3) == 3360


def test_oracle_two_phase_bolus_strokes():
    # The least basal, 0.48 mcg/day at 10 mcg/mL, in 50 nL (0.5 ng) strokes, and 7 ng over 11 min
    # from 00:00: 7 x 1440 = 916 x 11 + 4, so 917 ng/day for 4 min (240 000 ms), then 916. The
    # ideal runs at 1397 ng/day, then 1396 until 11 min, then 480: stroke k at the first ms at
    # which it reaches k x 0.5 ng, i.e. k x 43 200 000 in 1/86 400 000 ng.
    text = """days = 1
start = "2026-01-05T00:00"
[pump]
stroke_nl = 50
[drug]
concentration_mcg_ml = 10
[basal]
steps = [ {start = "00:00", mcg_per_day = 0.48} ]
[limits]
max_daily_mcg = 1
""" + event(0, "00:00", 'action = "bolus"\nmcg = 0.007\nminutes = 11')
    o = oracle.run(parse(text))
    u = 43_200_000
    first = [-(-u * k // 1397) for k in range(1, 8)]
    at_4_min = 1397 * 240_000
    second = [240_000 - (-(u * k - at_4_min) // 1396) for k in range(8, 22)]
    at_11_min = at_4_min + 1396 * 420_000
    assert at_11_min // u == 21  # 10.67 ng by the bolus's end
    after = [660_000 - (-(u * k - at_11_min) // 480) for k in range(22, 975)]
    assert o.strokes == first + second + after and first[-1] <= 240_000 < second[0] and second[-1] <= 660_000
    assert after[-1] <= DAY < 660_000 - (-(u * 975 - at_11_min) // 480)
    assert o.bolus_decisions() == [(0, "clinician", 7)]


def test_oracle_bridge_by_hand():
    # A 5000 nL path (5 cm x 0.001 mL) and 1000 nL strokes, 1000 mcg/day at 1000 mcg/mL: a 1000 ng
    # stroke every 86.4 s. At 100 s, 2000 mcg/mL: strokes 2-6 still push the old drug out (86.4 s
    # apart), then 2000 ng strokes every 172.8 s.
    text = """days = 1
start = "2026-01-05T00:00"
[pump]
stroke_nl = 1000
internal_path_ml = 0
[catheter]
length_cm = 5
ml_per_cm = 0.001
[drug]
concentration_mcg_ml = 1000
[basal]
steps = [ {start = "00:00", mcg_per_day = 1000} ]
[limits]
max_daily_mcg = 1100
""" + event(0, "00:01:40", 'action = "refill"\nvolume_ml = 20\nconcentration_mcg_ml = 2000')
    o = oracle.run(parse(text))
    n = len(o.strokes)
    assert o.strokes == [86_400 * k for k in range(1, 7)] + [518_400 + 172_800 * (k - 6) for k in range(7, n + 1)]
    assert o.tip == [10**6] * 6 + [2 * 10**6] * (n - 6) and o.strokes[-1] == DAY


def test_oracle_priming_then_the_prescription():
    # The whole 0.33 mL path at 1 mL/h: 1320 strokes 900 ms apart pushing nothing out of the tip;
    # the prescription starts at the last one and owes nothing for the 19.8 minutes.
    o = oracle.run(parse(BASE + event(0, "00:00", 'action = "prime"')))
    assert o.strokes[:1320] == [900 * k for k in range(1, 1321)] and set(o.tip[:1320]) == {0}
    assert o.strokes[1320:] == [1_188_000 + 72_000 * j for j in range(1, 1184)]
    assert set(o.tip[1320:]) == {500_000}
    # At 0.7 mL/h the prime strokes fall at ceil(k * 250 nL / 0.7 mL/h).
    o = oracle.run(parse(BASE.replace("[drug]", "[pump]\nprime_ml_per_hour = 0.7\n[drug]")
                         + event(0, "00:00", 'action = "prime"')))
    assert o.strokes[:1320] == [-(-k * 250 * HOUR // 700_000) for k in range(1, 1321)]


def test_oracle_limit_room_truncation_and_denial():
    # Margin: 3 strokes and a blocked line's 2 uL, 2750 nL: 5500 ng. Worst window: 600 mcg/day over
    # 24 h + 1 s = 600 006.94 -> 600 007 ng. Room: 700 000 - 5500 - 600 007 = 94 493 ng. 150 mcg is
    # truncated to it; a second is denied.
    bolus = 'action = "bolus"\nmcg = 150\nminutes = 10'
    o = oracle.run(parse(BASE + event(0, "06:00", bolus) + event(0, "07:00", bolus)))
    assert o.bolus_decisions() == [(6 * HOUR, "clinician", 94_493), (7 * HOUR, "clinician", "limit")]
    # 94 493 ng in one minute needs 136 069 920 ng/day, above 24 mL/day at 2000 mcg/mL less basal.
    o = oracle.run(parse(BASE + event(0, "06:00", 'action = "bolus"\nmcg = 150\nminutes = 1')))
    assert o.bolus_decisions() == [(6 * HOUR, "clinician", "rate")]


def test_oracle_window_across_a_program_change():
    # The window ending on day 1 12:00 holds the old program's 1200 mcg/day afternoon and the new
    # one's morning: 1 200 000 ng, and 1 s of the least rate (96 mcg/day) in the window 1 s longer:
    # 1 200 002 ng rounded up. With the 5500 ng margin the program needs 1205.502 mcg.
    text = """days = 2
start = "2026-01-05T00:00"
[drug]
concentration_mcg_ml = 2000
[basal]
steps = [ {start = "00:00", mcg_per_day = 96}, {start = "12:00", mcg_per_day = 1200} ]
[limits]
max_daily_mcg = LIMIT
""" + event(1, "00:00", 'action = "program"\nmax_daily_mcg = LIMIT\n'
            'steps = [ {start = "00:00", mcg_per_day = 1200}, {start = "12:00", mcg_per_day = 96} ]')
    for limit, verdict in (("1205.502", "ok"), ("1205.501", "limit")):
        o = oracle.run(parse(text.replace("LIMIT", limit)))
        assert [d for d in o.decisions if d[1] == "program"] == [(DAY, "program", verdict)]
    assert oracle.Oracle(parse(BASE)).worst(oracle.Program(parse(text.replace("LIMIT", "1300")).events[0].rx)) \
        == 648_014  # 12 h at 1200 mcg/day, 12 h at the least (96), and 1 s at 1200 (13.9 ng)


def test_oracle_ptm_lockout_and_rolling_count_edges():
    ptm = 'action = "ptm"'
    text = BASE.replace("days = 1", "days = 2").replace("700", "1000") + """[ptm]
mcg = 10
minutes = 5
lockout_minutes = 60
max_per_day = 2
""" + "".join(event(d, t, ptm) for d, t in [(0, "00:00"), (0, "00:59:59"), (0, "01:00"), (0, "23:59:59"),
                                            (1, "00:00")])
    o = oracle.run(parse(text))
    assert [d[2] for d in o.bolus_decisions()] == [10_000, "lockout", 10_000, "max_per_day", 10_000]


# -- the simulator against the oracle ----------------------------------------------------------

@pytest.mark.parametrize("path", sorted(glob.glob("sim/scenarios/*.toml")))
def test_every_shipped_scenario_matches_the_oracle_at_every_stroke(path):
    r, o, inv = check(scenario.load(path))
    assert len(o.strokes) > 1000
    assert all(v["pass"] for v in inv.values()), report.violations(r)


FLEX_HEAD = """
name = "flex-400"
days = 400
start = "2026-03-06T07:45"   # a Friday, not at midnight
[pump]
reservoir_ml = 40
volume_ml = 40
stroke_nl = 250
internal_path_ml = 0.15
prime_ml_per_hour = 0.5
[catheter]
length_cm = 60
ml_per_cm = 0.0026
[drug]
concentration_mcg_ml = 1500
[basal]
steps = [ {start = "00:00", mcg_per_day = 333.3}, {start = "05:45", mcg_per_day = 512},
          {start = "13:10", mcg_per_day = 240}, {start = "14:00", mcg_per_day = 701.257} ]
[basal.weekdays]
sat = [ {start = "00:00", mcg_per_day = 250}, {start = "10:00", mcg_per_day = 444} ]
sun = [ {start = "00:00", mcg_per_day = 260}, {start = "10:30", mcg_per_day = 430},
        {start = "22:00", mcg_per_day = 300} ]
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

PTM = 'action = "ptm"'
CANCEL = 'action = "cancel_bolus"'


def _bolus(mcg, minutes):
    return f'action = "bolus"\nmcg = {mcg}\nminutes = {minutes}'


def _refill(ml, conc):
    return f'action = "refill"\nvolume_ml = {ml}\nconcentration_mcg_ml = {conc}'


def _program(steps, extra=""):
    s = ", ".join(f'{{start = "{a}", mcg_per_day = {r}}}' for a, r in steps)
    return f'action = "program"\nsteps = [ {s} ]' + ("\n" + extra if extra else "")


def _prime(cm=None):
    return 'action = "prime"' + (f"\ncatheter_cm = {cm}" if cm else "")


def flex_400_text():
    ev = []
    for d in range(0, 400, 3):  # a PTM, then one inside the lockout
        ev += [(d, "09:00:07", PTM), (d, "09:30", PTM)]
    for d in (4, 100, 200):  # seven PTM requests an hour apart: the last ones hit the daily count
        ev += [(d, f"{10 + i:02d}:{i:02d}", PTM) for i in range(7)]
    for d in range(1, 400, 17):  # a clinician bolus across midnight, cancelled after it
        ev += [(d, "23:55", _bolus(40.007, 11)), (d + 1, "00:01", CANCEL)]
    ev += [(10, "15:00", _bolus(1, 30))] * 5  # the fifth finds the table full
    ev += [(11, "15:00", _bolus(30, 1)), (12, "15:00", CANCEL)]  # over 24 mL/day; nothing to cancel
    # Refills: the same drug (one over capacity), new drugs, one that cannot run the basal, one
    # after running dry (day 139), and a stronger drug refused for its stroke margin while a
    # truncated bolus fills the room (day 160).
    ev += [(50, "12:00", _refill(30, 1500)), (50, "12:05", _refill(15, 1500)), (90, "12:00", _refill(30, 900)),
           (90, "13:00", _refill(5, 10)), (140, "12:00", _refill(35, 1500)), (200, "12:00", _refill(10, 1500)),
           (230, "12:00", _refill(20, 2000)), (290, "12:00", _refill(25, 2000))]
    ev += [(160, "03:00", _bolus(600, 60)), (160, "03:05", _bolus(50, 5)), (160, "03:30", _refill(20, 5000))]
    # Programs: a new basal and periodic list (from the next midnight), one keeping the list, one
    # moving a bolus later the same day, a window doubled across the change (refused), four in a
    # day (all remembered by the limit), and new weekday profiles, PTM and limit.
    periodic_a = 'periodic_bolus = [ { at = "06:30", mcg = 20, minutes = 20 }, { at = "07:07", mcg = 10, minutes = 5 } ]'
    periodic_b = 'periodic_bolus = [ { at = "09:30", mcg = 20, minutes = 20 }, { at = "07:07", mcg = 10, minutes = 5 } ]'
    ev += [(55, "08:00", _program([("00:00", 300), ("06:00", 520)], periodic_a)),
           (56, "09:00", _program([("00:00", 320), ("06:00", 500)])),
           (60, "07:30", _program([("00:00", 320), ("06:00", 500)], periodic_b)),
           (70, "00:00", _program([("00:00", 1400), ("12:00", 72)]))]
    for i, h in enumerate((1, 5, 9, 13)):
        ev += [(75, f"{h:02d}:00", _program([("00:00", 300 + 100 * i), ("06:00", 500 - 100 * i)]))]
    ev += [(80, "06:00", _program([("00:00", 333.3), ("05:45", 512), ("13:10", 240), ("14:00", 701.257)],
                                  "max_daily_mcg = 950\nptm = { mcg = 15, minutes = 10, lockout_minutes = 90, "
                                  "max_per_day = 4 }\nweekdays = { sat = [ {start = \"00:00\", mcg_per_day = 250}, "
                                  "{start = \"10:00\", mcg_per_day = 444} ] }"))]
    # Priming: a catheter revision (20 cm); the whole path at 06:50, which the 07:07 periodic bolus,
    # a PTM, a clinician bolus and a second prime meet.
    ev += [(130, "10:00", _prime(20)),
           (250, "06:50", _prime()), (250, "07:00", PTM), (250, "07:01", _bolus(5, 5)), (250, "07:02", _prime())]
    ev += [(330, "12:00", _refill(40, 2000))]  # over capacity
    text = FLEX_HEAD
    for d, time, body in sorted(ev, key=lambda e: (e[0], e[1])):
        text += f'\n[[event]]\nday = {d}\ntime = "{time}"\n{body}\n'
    return text


def test_a_400_day_flex_scenario_matches_the_oracle_at_every_stroke():
    r, o, inv = check(parse(flex_400_text(), "flex-400.toml"))
    assert len(o.strokes) > 400 * 1000
    # What the run went through, so that the equalities above cover it.
    reasons = Counter(d[2] if isinstance(d[2], str) else "granted" for d in o.bolus_decisions())
    assert {"granted", "lockout", "max_per_day", "limit", "rate", "bolus_table_full", "priming",
            "reservoir_empty"} <= set(reasons)
    assert any(e["kind"] == "limit_truncated" for e in r.events)
    verdicts = Counter((a, v) for _, a, v in o.decisions if a in ("refill", "program", "prime"))
    assert {("refill", "ok"), ("refill", "over_capacity"), ("refill", "concentration_incompatible"),
            ("refill", "limit"), ("program", "ok"), ("program", "limit"), ("prime", "ok"),
            ("prime", "priming")} <= set(verdicts)
    assert verdicts[("program", "ok")] >= 8 and verdicts[("refill", "ok")] == 6
    assert {e["concentration_mcg_ml"] for e in r.events if e["kind"] == "refill"} == {1500, 900, 2000}
    assert all(v["pass"] for v in inv.values()), report.violations(r)


def test_the_bridge_doses_mcg_at_the_tip_through_a_concentration_change():
    # 2000 -> 500 mcg/mL on day 1 at 10:00, 620 mcg/day. The path (0.2 mL + 50 cm x 2.6 uL/cm =
    # 330 uL) still holds the old drug. A naive pump pacing strokes by the reservoir's new drug at
    # once pushes that old drug out 4 times too fast: 330 uL x (2000 - 500) mcg/mL = 495 mcg too
    # much within 6.4 h. The path model paces the old drug at its own concentration (25.5 h).
    rate_ng = 620_000
    text = f"""days = 4
start = "2026-01-05T00:00"
[pump]
reservoir_ml = 40
volume_ml = 30
[drug]
concentration_mcg_ml = 2000
[basal]
steps = [ {{start = "00:00", mcg_per_day = {rate_ng / 1000}}} ]
[limits]
max_daily_mcg = 700
""" + event(1, "10:00", _refill(30, 500))
    r, o, inv = check(parse(text))
    T = r.stroke_times
    tip = np.array(o.tip, dtype=np.int64)
    change = DAY + 10 * HOUR
    path_nl, s = 330_000, 250

    # Naive: the strokes before the change as they were; from it, strokes of 250 nL paced as if
    # they held 500 mcg/mL (125 ng), from what was owed, while the tip gives out the path's old
    # drug (500 ng a stroke) first.
    before = T <= change
    owed_pg = rate_ng * 1000 * change // DAY - int(tip[before].sum())
    n = 4 * rate_ng * 1000 // (s * 500) + 10
    k = np.arange(1, n + 1, dtype=np.int64)
    naive_t = np.concatenate([T[before], change + (-(-(k * s * 500 - owed_pg) * DAY // (rate_ng * 1000)))])
    naive_tip = np.concatenate([tip[before], np.full(path_nl // s, s * 2000), np.full(n - path_nl // s, s * 500)])

    hours = np.arange(change, change + 30 * HOUR + 1, HOUR)

    def cum_mcg(times, masses):  # mass out of the tip by each hour mark
        c = np.concatenate([[0], np.cumsum(masses)])
        return c[np.searchsorted(times, hours, side="right")] / 1e6

    ideal = rate_ng / 1000 * hours / DAY
    real_err = cum_mcg(T, tip) - ideal
    naive_err = cum_mcg(naive_t, naive_tip) - ideal
    # The real pump: never ahead, never a full stroke (0.5 mcg of the old drug) behind, every hour.
    assert np.all(real_err <= 0) and np.all(real_err > -0.5), real_err
    # The naive one: 4 x 25.8 mcg/h while the old drug leaves, 495 mcg too much once it is out.
    assert np.diff(cum_mcg(naive_t, naive_tip)).max() > 100, naive_err
    bridge_excess = path_nl * (2000 - 500) / 1e6
    assert np.all(np.abs(naive_err[8:] - bridge_excess) < 0.5), naive_err


# -- disagreements with the contract: these fail until the firmware or docs/delivery.md change ---

def test_a_fifth_program_within_a_window_is_rejected_busy():
    # docs/delivery.md: a fifth change within WINDOW_MS is rejected, reason `busy`. The firmware
    # rejects it, but its reason code (BUSY = 6) is named "bolus_table_full" in REASON_NAMES.
    text = BASE.replace("700", "900") + "".join(
        event(0, f"{h:02d}:00", _program([("00:00", 600 + 10 * i)])) for i, h in enumerate((1, 2, 3, 4, 5)))
    r, o, inv = check(parse(text))
    assert [v for _, a, v in o.decisions if a == "program"] == ["ok"] * 4 + ["busy"]


def test_a_periodic_bolus_at_the_last_priming_stroke_is_granted():
    # The prime (0.33 mL at 0.33 mL/h) ends with its last stroke exactly at 10:00:00.000, the
    # periodic time. Strokes at an instant come before the decisions at it, and a clinician bolus
    # at that instant is granted; the firmware denies the periodic bolus `priming` (its _changes
    # decides periodic boluses before it ends the prime).
    text = BASE.replace("[drug]", "[pump]\nprime_ml_per_hour = 0.33\n[drug]") + """[[periodic_bolus]]
at = "10:00"
mcg = 5
minutes = 10
""" + event(0, "09:00", _prime())
    check(parse(text))


def test_a_periodic_bolus_at_the_emptying_stroke_is_denied():
    # 0.6 mL, 0.5 mL of it below the empty threshold: stroke 400 at 08:00:00.000 empties the
    # pump. A clinician bolus at that instant is denied `reservoir_empty`; the firmware grants the
    # periodic bolus (it checks the reservoir after deciding), then cancels it at once.
    text = BASE.replace("[drug]", "[pump]\nvolume_ml = 0.6\n[drug]") + """[[periodic_bolus]]
at = "08:00"
mcg = 5
minutes = 10
"""
    check(parse(text))
