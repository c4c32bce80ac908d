"""pumpsim campaign SCENARIO --power-cuts N --seed S: the scenario run N times, each with one power
cut at a random instant (some of them tearing a journal write), each judged against the
uninterrupted run (docs/journal.md, "The power-cut campaign").

The judge reads the simulated hardware's ground truth (the motor's strokes, the inputs and the
decisions reported), never the firmware's counters:
- delivered: at no instant more strokes than the uninterrupted run; at the end, no fewer than it
  less the strokes that fell due while the power was off (and those of a patient bolus pressed
  then: a press on a pump that is off does nothing), less RESET_LOSS_STROKES; a programmer's
  command sent while it was off is sent again once it answers;
- patient boluses: the same decision for every press outside the outage (a press the outage lost
  may only free a later one);
- alarms: every alarm the uninterrupted run raised is raised;
- restore: every boot restores the state, or raises critical_fault (counted; a violation unless
  bits were flipped).
Exit status 3 when any run violates any of them (one line each on stderr).
"""

import copy
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from sim.scenario import Fault, ScenarioError

RESET_LOSS_STROKES = 2  # beyond the outage: the owed fraction of a stroke, and the clock's whole second
DAY = 86_400_000


def add_arguments(p):
    p.add_argument("scenario", nargs="?", help="scenario TOML file (default: the built-in default)")
    p.add_argument("--days", type=int, help="override the scenario's length in days")
    p.add_argument("--power-cuts", type=int, default=100, metavar="N", help="runs, one cut each (1..100000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the cut instants (default 0)")
    p.add_argument("--tear-share", type=float, default=0.3, metavar="F",
                   help="share of the cuts that tear a journal write (0..1, default 0.3)")
    p.add_argument("--max-outage-s", type=int, default=3600, metavar="S",
                   help="longest outage, seconds (0..2592000, default 3600)")
    p.add_argument("--jobs", type=int, default=0, help="processes (default: one per CPU)")


def cuts(days, n, seed, tear_share, max_outage_s):
    """(t_ms, seconds, tear) of each run's cut, from the seed alone."""
    rng = random.Random(seed)
    return [(rng.randrange(days * DAY), rng.randint(0, max_outage_s), rng.random() < tear_share) for _ in range(n)]


def _load(path, days):
    from sim import scenario

    return scenario.builtin("default", days) if path is None else scenario.load(path, days)


def _run(args):
    path, days, cut = args
    from sim import runner

    sc = _load(path, days)
    if cut is not None:
        t_ms, seconds, tear = cut
        sc = copy.copy(sc)
        sc.faults = sorted(list(sc.faults) + [Fault(t_ms, 0, "", "power_loss", seconds=seconds, tear=tear)],
                           key=lambda f: f.t_ms)
    r = runner.simulate(sc, journal=True, seed=cut[0] if cut else 0)
    return _facts(r)


def _facts(r):
    """What the judge needs of a run, small enough to send between processes."""
    sc = r.scenario
    alarms = sorted({a["kind"] for a in r.alarms})
    ptm = [(b["requested_s"], b["granted"], b["reason"], b["ng"]) for b in r.boluses if b["kind"] == "ptm"]
    faults = [e for e in r.events if e["kind"] == "critical_fault"]
    return {"times": r.stroke_times, "resets": r.resets, "alarms": alarms, "ptm": ptm, "faults": len(faults),
            "strokes": r.strokes, "ng_per_stroke": sc.pump.stroke_nl * sc.rx.concentration // 1000}


def judge(base, run):
    """Violations of run (one cut) against base (uninterrupted), and its figures."""
    import numpy as np

    bad = []
    reset = run["resets"][0] if run["resets"] else None
    if reset is None:  # the cut fell after the end (a tear whose next write never came)
        return bad, {"lost": 0, "ahead": 0, "restored": True}
    t_back = reset["t_ms"] + reset["seconds"] * 1000
    t_cut = reset["t_ms"] - reset.get("hung_ms", 0)  # a hang: the firmware stopped when the loop hung
    bt, ct = base["times"], run["times"]
    # never ahead of the uninterrupted run: at each of the cut run's strokes, as many or more in base
    k = np.arange(1, len(ct) + 1)
    ahead = int((k - np.searchsorted(bt, ct, side="right")).max()) if len(ct) else 0
    if ahead > 0:
        bad.append(f"{ahead} strokes ahead of the uninterrupted run")
    due_off = int(np.searchsorted(bt, t_back, side="left") - np.searchsorted(bt, t_cut, side="left"))
    # A patient bolus pressed while the pump was off was never given: its strokes are not owed.
    pressed_off = sum(ng for t, g, _, ng in base["ptm"] if g and t_cut / 1000 <= t <= t_back / 1000)
    due_off += -(-pressed_off // base["ng_per_stroke"]) if pressed_off else 0
    lost = len(bt) - len(ct) - due_off
    if lost > RESET_LOSS_STROKES:
        bad.append(f"{lost} strokes lost beyond the {due_off} due while off (bound {RESET_LOSS_STROKES})")
    # patient boluses outside the outage
    lost_grant = any(t_cut / 1000 <= t <= t_back / 1000 and g for t, g, _, _ in base["ptm"])
    decided = {t: (g, why) for t, g, why, _ in run["ptm"]}
    for t, g, why, _ in base["ptm"]:
        if t_cut / 1000 <= t <= t_back / 1000:
            continue
        got = decided.get(t)
        if got is None:
            bad.append(f"the press at {t:g} s got no decision")
        elif got[0] != g and not (got[0] and lost_grant):
            bad.append(f"the press at {t:g} s: {'granted' if got[0] else got[1]}, uninterrupted "
                       f"{'granted' if g else why}")
    missing = sorted(set(base["alarms"]) - set(run["alarms"]))
    if missing:
        bad.append("alarms never raised: " + ", ".join(missing))
    if run["faults"]:
        bad.append("critical_fault at boot: the state was not restored")
    return bad, {"lost": lost, "ahead": ahead, "restored": not run["faults"]}


def main(args):
    if not 1 <= args.power_cuts <= 100_000:
        raise ScenarioError(f"--power-cuts: {args.power_cuts} is out of range 1..100000")
    if not 0 <= args.tear_share <= 1:
        raise ScenarioError(f"--tear-share: {args.tear_share} is out of range 0..1")
    if not 0 <= args.max_outage_s <= 30 * 86_400:
        raise ScenarioError(f"--max-outage-s: {args.max_outage_s} is out of range 0..2592000")
    sc = _load(args.scenario, args.days)  # bad input fails here, before any run
    plan = cuts(sc.days, args.power_cuts, args.seed, args.tear_share, args.max_outage_s)
    wall0 = time.perf_counter()
    jobs = args.jobs or os.cpu_count() or 1
    work = [(args.scenario, args.days, c) for c in plan]
    with ProcessPoolExecutor(jobs) as pool:
        base = pool.submit(_run, (args.scenario, args.days, None)).result()
        results = _progress(pool.map(_run, work, chunksize=max(1, len(work) // (jobs * 8))), len(work))
    rows = []
    for cut, run in zip(plan, results):
        bad, fig = judge(base, run)
        rows.append((cut, bad, fig))
    return _report(sc, args, rows, time.perf_counter() - wall0)


def _progress(results, total):
    if not sys.stderr.isatty():
        return list(results)
    from tqdm import tqdm

    return list(tqdm(results, total=total, unit="run", file=sys.stderr, leave=False))


def _report(sc, args, rows, wall_s):
    tears = sum(1 for (_, _, tear), _, _ in rows if tear)
    bad_rows = [(c, b) for c, b, _ in rows if b]
    worst_lost = max((f["lost"] for _, _, f in rows), default=0)
    worst_ahead = max((f["ahead"] for _, _, f in rows), default=0)
    restored = sum(1 for _, _, f in rows if f["restored"])
    print(f"campaign: {sc.name}, {sc.days} days, {len(rows)} power cuts (seed {args.seed}), {wall_s:.1f} s")
    print(f"  {'runs':<34}{len(rows):>8}")
    print(f"  {'cuts tearing a journal write':<34}{tears:>8}")
    print(f"  {'boots that restored the state':<34}{restored:>8}")
    print(f"  {'worst strokes repeated (ahead)':<34}{max(worst_ahead, 0):>8}")
    print(f"  {'worst strokes lost beyond outage':<34}{max(worst_lost, 0):>8}   (bound {RESET_LOSS_STROKES})")
    print(f"  {'violations':<34}{len(bad_rows):>8}")
    for (t_ms, seconds, tear), bad in bad_rows[:20]:
        for line in bad:
            print(f"pumpsim campaign: cut at {t_ms} ms, {seconds} s off{', torn' if tear else ''}: {line}",
                  file=sys.stderr)
    return 3 if bad_rows else 0
