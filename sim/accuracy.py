"""pumpsim accuracy: the delivery error as IEC 60601-2-24's trumpet curve (docs/accuracy.md).

Over an analysis period, the mass delivered at the catheter tip is sampled every 30 s. For each
observation window of P minutes (2, 5, 11, 19, 31), every window of P/0.5 consecutive samples,
sliding by one sample, gets the percentage error of its delivery against the prescribed (ideal)
delivery over the same window; Ep(max) and Ep(min) are the extremes. A is the error over the whole
period. The reference is exact (integers); the error becomes a float only in the final division.

Module-level imports are stdlib only: the CLI imports this module on every pumpsim call.
"""

import math
import os
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

WINDOWS_MIN = (2, 5, 11, 19, 31)
SAMPLE_MS = 30_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SUB_PER_PG = 86_400  # ideal mass unit of sim/referee.py: 1 sub = 1/86_400_000 ng, 1 pg = 86_400 sub
DEFAULT_FROM_HOURS = "1"  # the standard's stabilisation hour
DEFAULT_HOURS = "24"  # a whole day of the schedule: every step and the daily boluses


class AccuracyError(Exception):
    """Bad input for the analysis: the message is the one line the user sees."""


# -- the statistic ---------------------------------------------------------------------------------


def window_errors(delivered, reference, samples):
    """Percentage error of every window of `samples` sample intervals, sliding by one sample.

    delivered, reference: cumulative amounts at the sample times (same unit), numpy arrays of
    length N + 1. Returns (errors, skipped): errors a float64 array of the windows whose reference
    is positive, skipped the number of windows with zero reference (no error is defined there).
    Integer inputs stay exact until the final division."""
    import numpy as np

    d = delivered[samples:] - delivered[:-samples]
    r = reference[samples:] - reference[:-samples]
    has = r > 0
    num = (d - r)[has]
    return 100.0 * num.astype(np.float64) / r[has].astype(np.float64), int(np.count_nonzero(~has))


def trumpet(delivered, reference, windows_min=WINDOWS_MIN):
    """Rows {window_min, windows, skipped, max_error_pct, min_error_pct} and the overall error A (%).

    delivered, reference: cumulative amounts at every 30 s sample of the period (length N + 1)."""
    import numpy as np

    rows = []
    for p in windows_min:
        samples = p * 60_000 // SAMPLE_MS
        if samples >= len(delivered):
            raise AccuracyError(f"a {p} min window does not fit in the analysis period")
        errors, skipped = window_errors(delivered, reference, samples)
        rows.append({
            "window_min": p,
            "windows": len(errors),
            "skipped": skipped,
            "max_error_pct": float(errors.max()) if len(errors) else math.nan,
            "min_error_pct": float(errors.min()) if len(errors) else math.nan,
        })
    total_ref = int(reference[-1]) - int(reference[0])
    total = delivered[-1] - delivered[0]
    if not total_ref:
        overall = math.nan
    elif isinstance(total, int | np.integer):
        overall = 100 * (int(total) - total_ref) / total_ref  # a ratio of exact ints, rounded once
    else:
        overall = 100.0 * (float(total) - total_ref) / total_ref
    return rows, overall


# -- the run ---------------------------------------------------------------------------------------


def ideal_at(changes, times):
    """Prescribed mass (sub) from 0 to each of the sorted times: the running sum of the referee's
    rate changes (t_ms, delta ng/day), integrated exactly in Python ints."""
    out = []
    acc = rate = t = i = 0
    for s in times:
        while i < len(changes) and changes[i][0] <= s:
            tc, d = changes[i]
            acc += rate * (tc - t)
            t = tc
            rate += d
            i += 1
        out.append(acc + rate * (s - t))
    return out


def prime_spans(referee):
    """(start, end) ms of every prime, end its last stroke's ideal time (the run's end if unfinished)."""
    spans = []
    for i, (tp, k, p) in enumerate(referee.primes):
        if i < len(referee.prime_called) and referee.prime_called[i] < p:
            end = referee.end
        else:
            end = referee.ideal.at(k + p - 1) if p and k + p - 1 < referee.K else tp
        spans.append((tp, end))
    return spans


def analyse(result, from_ms, period_ms, mechanism=None):
    """The trumpet of a judged run over [from_ms, from_ms + period_ms]; a dict of everything reported."""
    import numpy as np

    from sim.mechanism_model import stroke_volumes_nl

    sc = result.scenario
    ref = result.referee
    end_ms = from_ms + period_ms
    for a, b in prime_spans(ref):
        if a <= end_ms and b >= from_ms:
            after = -(-(b + 1) // (HOUR_MS // 4)) * (HOUR_MS // 4)  # a quarter hour: exact in decimal hours
            raise AccuracyError(f"the analysis period {from_ms / HOUR_MS:g} h to {end_ms / HOUR_MS:g} h overlaps "
                                f"priming ({a / HOUR_MS:g} h to {b / HOUR_MS:.4f} h): start it after, e.g. "
                                f"--from-hours {after / HOUR_MS:g}")
    times = np.arange(from_ms, end_ms + 1, SAMPLE_MS, dtype=np.int64)
    T = np.asarray(result.stroke_times, dtype=np.int64)
    tip = np.asarray(ref.tip_pg[: len(T)], dtype=np.int64)  # what each commanded stroke pushed out of the tip
    mech = mechanism or getattr(sc, "mechanism", None)
    volumes = stroke_volumes_nl(sc, T, result.inputs, mech)
    if mech is None or mech.exact:
        per_stroke = tip  # exact integers
    else:
        # The tip's concentration is the nominal stroke's: tip mass scales with the actual volume.
        per_stroke = tip * (volumes / sc.pump.stroke_nl)
    cum = np.concatenate([np.zeros(1, dtype=per_stroke.dtype), np.cumsum(per_stroke)])
    delivered = cum[np.searchsorted(T, times, side="right")]  # a stroke at a sample's ms counts in it
    ideal = ideal_at(ref.changes, [int(t) for t in times])
    base = ideal[0]
    reference = [x - base for x in ideal]
    if reference[-1] <= 0:
        raise AccuracyError(f"nothing to analyse: nothing was prescribed from {from_ms / HOUR_MS:g} h to "
                            f"{end_ms / HOUR_MS:g} h")
    # Both in sub: the reference stays exact. int64 holds over two years at the top rate; beyond, Python ints.
    delivered = delivered - delivered[0]
    if reference[-1] < 2**62:
        reference_sub = np.array(reference, dtype=np.int64)
    else:
        reference_sub = np.array(reference, dtype=object)
        if delivered.dtype.kind == "i":
            delivered = np.array([int(x) for x in delivered], dtype=object)
    delivered_sub = delivered * SUB_PER_PG
    rows, overall = trumpet(delivered_sub, reference_sub)
    # The firmware's own bound (docs/accuracy.md): a window's delivery is within one stroke of its ideal.
    in_period = (T > from_ms) & (T <= end_ms)
    stroke_pg = int(tip[in_period].max()) if in_period.any() else sc.pump.stroke_nl * sc.rx.concentration
    for row in rows:
        samples = row["window_min"] * 60_000 // SAMPLE_MS
        r = reference_sub[samples:] - reference_sub[:-samples]
        r = r[r > 0]
        row["bound_pct"] = 100.0 * stroke_pg * SUB_PER_PG / float(r.min()) if len(r) else math.nan
    return {
        "scenario": sc.name,
        "mechanism": (mech.describe() if mech is not None else "exact mechanism"),
        "from_hours": from_ms / HOUR_MS,
        "hours": period_ms / HOUR_MS,
        "samples": len(times) - 1,
        "strokes": int(np.count_nonzero(in_period)),
        "stroke_nl": sc.pump.stroke_nl,
        "actual_ml": float(volumes[in_period].sum()) / 1e6,
        "rows": rows,
        "overall_error_pct": overall,
    }


# -- CLI -------------------------------------------------------------------------------------------


def add_arguments(p):
    p.add_argument("scenario", nargs="?", help="scenario TOML file (the built-in default without it)")
    p.add_argument("--from-hours", default=DEFAULT_FROM_HOURS, metavar="H",
                   help=f"start of the analysis period, hours from the start (default {DEFAULT_FROM_HOURS}: "
                        "after the standard's stabilisation hour)")
    p.add_argument("--hours", default=DEFAULT_HOURS, metavar="H",
                   help=f"length of the analysis period in hours (default {DEFAULT_HOURS}); both whole 30 s samples")
    p.add_argument("--out", help="output directory (default runs/<scenario name>)")
    p.add_argument("--no-plot", action="store_true", help="do not write trumpet.png")
    p.add_argument("--tolerance-pct", type=float, metavar="PCT",
                   help="override [mechanism] stroke_tolerance_pct (-10..10)")
    p.add_argument("--stroke-error-pct", type=float, metavar="PCT",
                   help="override [mechanism] stroke_error_pct, per-stroke sd (0..10)")
    p.add_argument("--drift-pct", type=float, metavar="PCT",
                   help="override [mechanism] pressure_drift_pct, full to empty (-10..10)")
    p.add_argument("--seed", type=int, help="override [mechanism] seed")


def _hours_ms(option, text):
    try:
        h = Decimal(text)
    except InvalidOperation:
        raise AccuracyError(f"{option}: {text!r} is not a number of hours") from None
    if not h.is_finite():
        raise AccuracyError(f"{option}: {text!r} is not a number of hours")
    ms = h * HOUR_MS
    if ms != ms.to_integral_value() or int(ms) % SAMPLE_MS:
        raise AccuracyError(f"{option}: {text} h is not a whole number of 30 s samples")
    return int(ms)


def _mechanism(args, sc):
    from dataclasses import replace

    from sim.mechanism_model import EXACT, check

    mech = sc.mechanism or EXACT
    over = {k: v for k, v in (("stroke_tolerance_pct", args.tolerance_pct), ("stroke_error_pct", args.stroke_error_pct),
                              ("pressure_drift_pct", args.drift_pct), ("seed", args.seed)) if v is not None}
    mech = replace(mech, **over)
    problem = check(mech)
    if problem:
        key = problem.split(":")[0]
        flag = {"stroke_tolerance_pct": "--tolerance-pct", "stroke_error_pct": "--stroke-error-pct",
                "pressure_drift_pct": "--drift-pct", "seed": "--seed"}[key]
        raise AccuracyError(f"{flag if key in over else '[mechanism] ' + key}:{problem.split(':', 1)[1]}")
    return mech


def table(a):
    lines = [f"{a['scenario']}: {a['mechanism']}; analysis {a['from_hours']:g} h to {a['from_hours'] + a['hours']:g} h, "
             f"{a['samples']} samples of 30 s, {a['strokes']} strokes of {a['stroke_nl']} nL",
             f"{'window':>8} {'windows':>8} {'skipped':>8} {'Ep(max) %':>10} {'Ep(min) %':>10} {'firmware bound %':>17}"]
    for r in a["rows"]:
        lines.append(f"{r['window_min']:>6} m {r['windows']:>8} {r['skipped']:>8} {r['max_error_pct']:>10.3f} "
                     f"{r['min_error_pct']:>10.3f} {'+-':>8}{r['bound_pct']:.3f}")
    lines.append(f"overall error A over the period: {a['overall_error_pct']:+.4f} %")
    return "\n".join(lines)


def write_csv(a, path):
    import csv

    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["window_min", "windows", "skipped", "max_error_pct", "min_error_pct", "bound_pct",
                    "overall_error_pct"])
        for r in a["rows"]:
            w.writerow([r["window_min"], r["windows"], r["skipped"], f"{r['max_error_pct']:.6f}",
                        f"{r['min_error_pct']:.6f}", f"{r['bound_pct']:.6f}", f"{a['overall_error_pct']:.6f}"])
    os.replace(tmp, path)


def plot(a, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["window_min"] for r in a["rows"]]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    ax.plot(x, [r["max_error_pct"] for r in a["rows"]], "o-", color="tab:red", label="Ep(max)")
    ax.plot(x, [r["min_error_pct"] for r in a["rows"]], "o-", color="tab:blue", label="Ep(min)")
    ax.plot(x, [r["bound_pct"] for r in a["rows"]], ":", color="grey", label="firmware bound (one stroke)")
    ax.plot(x, [-r["bound_pct"] for r in a["rows"]], ":", color="grey")
    ax.axhline(a["overall_error_pct"], color="black", lw=1.2, label=f"A = {a['overall_error_pct']:+.2f} %")
    ax.axhline(0, color="black", lw=0.5, ls="--")
    ax.set_xticks(x)
    ax.set_xlabel("observation window P (min)")
    ax.set_ylabel("error of the mean delivery (%)")
    ax.set_title(f"{a['scenario']}: trumpet curve, {a['mechanism']}\n"
                 f"{a['from_hours']:g} h to {a['from_hours'] + a['hours']:g} h, samples every 30 s", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name("." + path.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def main(args):
    from sim import report, runner, scenario
    from sim.scenario import ScenarioError

    try:
        from_ms = _hours_ms("--from-hours", args.from_hours)
        period_ms = _hours_ms("--hours", args.hours)
        if from_ms < 0:
            raise AccuracyError(f"--from-hours: {args.from_hours} is negative")
        if period_ms < WINDOWS_MIN[-1] * 60_000:
            raise AccuracyError(f"--hours: {args.hours} h is shorter than the longest window ({WINDOWS_MIN[-1]} min)")
        src = args.scenario
        sc = scenario.builtin("default") if src is None else scenario.load(src)
        end_ms = from_ms + period_ms
        if end_ms > sc.days * DAY_MS:
            raise AccuracyError(f"--from-hours + --hours: the analysis period ends at {end_ms / HOUR_MS:g} h, after the "
                                f"end of the {sc.days}-day run ({sc.days * 24} h)")
        mech = _mechanism(args, sc)
        # Run only as far as the period needs (a day past its end at most): nothing before the end depends on it.
        days = min(sc.days, end_ms // DAY_MS + 1)
        if days < sc.days:
            sc = scenario.builtin("default", days) if src is None else scenario.load(src, days)
        sc.mechanism = mech
        result = runner.simulate(sc)
        report.judge(result)
        a = analyse(result, from_ms, period_ms, mech)
        out = Path(args.out or f"runs/{sc.name}")
        out.mkdir(parents=True, exist_ok=True)
        write_csv(a, out / "trumpet.csv")
        if not args.no_plot:
            plot(a, out / "trumpet.png")
        print(table(a))
        print(f"outputs in {out}/")
        bad = report.violations(result)
        for line in bad:
            print(f"pumpsim: {line}", file=sys.stderr)
        return 3 if bad else 0
    except (AccuracyError, ScenarioError) as e:
        print(f"pumpsim: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"pumpsim: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
