"""Outputs of a run: summary table, summary.json, events.jsonl, daily.csv, strokes.csv, plot.png."""

import csv
import json
import os
from pathlib import Path

MS_PER_DAY = 86_400_000


def judge(result):
    """The referee's figures and invariants for a run (sim/referee.py), attached to the result."""
    from sim.referee import judge as referee_judge

    ref, invariants = referee_judge(result.scenario, result)
    result.referee = ref
    result.invariants = invariants
    result.figures = ref.figures()
    result.daily = ref.daily()
    return invariants


def violations(result):
    """One line per violated invariant."""
    return [f"invariant {name} violated: " + ", ".join(f"{k}={v}" for k, v in inv.items() if k != "pass")
            for name, inv in result.invariants.items() if not inv["pass"]]


def summary(result):
    sc = result.scenario
    f = result.figures
    return {
        "scenario": sc.name,
        "days": sc.days,
        "start": sc.start.strftime("%Y-%m-%dT%H:%M"),
        "strokes": result.strokes,
        "stroke_nl": sc.pump.stroke_nl,
        "delivered_ml": result.strokes * sc.pump.stroke_nl / 1e6,
        "prescribed_mcg": round(f["prescribed_mcg"], 3),
        "patient_mcg": round(f["patient_mcg"], 3),
        "delivered_mcg": round(f["delivered_mcg"], 3),
        "missed_mcg": round(f["missed_mcg"], 3),
        "max_lag_nl": f["max_lag_nl"],
        "invariants": result.invariants,
        "daily": result.daily,
        "boluses": [{k: b[k] for k in ("kind", "requested_s", "granted", "mcg", "reason")} for b in result.boluses],
        "events": [
            {"kind": e["kind"], "t_s": e["t_s"]}
            for e in result.events
            if e["kind"] not in ("bolus", "bolus_end")
        ],
        "final": {
            "reservoir_ml": result.final_reservoir_nl / 1e6,
            "firmware_reservoir_ml": result.firmware_reservoir_nl / 1e6,
            "state": result.state,
        },
        "wakes": result.wakes,
        "wake_jitter_ms": result.wake_jitter_ms,
        "seed": result.seed,
        "wall_s": round(result.wall_s, 4),
    }


def table(s):
    granted = sum(1 for b in s["boluses"] if b["granted"])
    rows = [
        ("scenario", s["scenario"]),
        ("days", s["days"]),
        ("strokes", f"{s['strokes']:,} x {s['stroke_nl']} nL"),
        ("prescribed", f"{s['prescribed_mcg']:.3f} mcg (exact ideal, computed by the simulator)"),
        ("to the patient", f"{s['patient_mcg']:.3f} mcg (left the catheter tip)"),
        ("from reservoir", f"{s['delivered_ml']:.4f} mL = {s['delivered_mcg']:.3f} mcg"),
        ("missed (empty)", f"{s['missed_mcg']:.3f} mcg"),
        ("max lag", f"{s['max_lag_nl']:.6f} nL (below one {s['stroke_nl']} nL stroke when strokes are on time)"),
        ("invariants", ", ".join(f"{k} {'ok' if v['pass'] else 'VIOLATED'}" for k, v in s["invariants"].items())),
        ("boluses", f"{granted} granted, {len(s['boluses']) - granted} denied"),
        ("events", ", ".join(sorted({e['kind'] for e in s['events']})) or "none"),
        ("final reservoir", f"{s['final']['reservoir_ml']:.4f} mL ({s['final']['state']})"),
        ("wall time", f"{s['wall_s']:.3f} s ({s['wakes']:,} controller wakes)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def write(result, out_dir, plot=True, strokes=False):
    """Write every output into out_dir atomically enough: a file appears only when complete."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = summary(result)
    _atomic(out / "summary.json", lambda f: json.dump(s, f, indent=2))
    _atomic(out / "events.jsonl", lambda f: [f.write(json.dumps(e) + "\n") for e in result.events])

    def daily(f):
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["day", "patient_mcg", "prescribed_mcg"])
        for d in result.daily:
            w.writerow([d["day"], f"{d['patient_mcg']:.3f}", f"{d['prescribed_mcg']:.3f}"])

    _atomic(out / "daily.csv", daily)
    if strokes:
        import numpy as np

        t = result.stroke_times
        cum = np.arange(1, len(t) + 1, dtype=np.int64) * result.scenario.pump.stroke_nl
        tip = result.referee.tip_pg[: len(t)]

        def write_strokes(f):
            f.write("t_ms,delivered_nl,tip_pg\n")
            np.savetxt(f, np.column_stack([t, cum, tip]), fmt="%d", delimiter=",")

        _atomic(out / "strokes.csv", write_strokes)
    if plot:
        from sim.plot import plot_run

        tmp = out / ".plot.png.tmp"
        plot_run(result, tmp)
        os.replace(tmp, out / "plot.png")
    return s


def _atomic(path, fill):
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        fill(f)
    os.replace(tmp, path)
