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
    result.faults = ref.faults()
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
        "withheld_mcg": round(f["withheld_mcg"], 3),
        "max_lag_nl": f["max_lag_nl"],
        "invariants": result.invariants,
        "daily": result.daily,
        "boluses": [{k: b[k] for k in ("kind", "requested_s", "granted", "mcg", "reason")} for b in result.boluses],
        "events": [
            {"kind": e["kind"], "t_s": e["t_s"]}
            for e in result.events
            if e["kind"] not in ("bolus", "bolus_end")
        ],
        "alarms": result.alarms,
        "battery": result.battery,
        "faults": result.faults,
        "projections": {**_latest(result.projections), "history": result.projections},
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


def _latest(history):
    last = history[-1] if history else {}
    return {k: last.get(k) for k in ("low_reservoir_s", "empty_s", "eri_s", "eos_s")}


def _when(sc_start, t_s):
    """A time since the start as 'day N (YYYY-MM-DD HH:MM)'."""
    import datetime as dt

    if t_s is None:
        return "-"
    at = dt.datetime.strptime(sc_start, "%Y-%m-%dT%H:%M") + dt.timedelta(seconds=t_s)
    return f"day {t_s / 86400:.1f} ({at:%Y-%m-%d %H:%M})"


def alarm_table(s):
    """The alarms of a run, one line each, and the dates the clinician plans by."""
    lines = [f"{'alarm':<22} {'class':<13} {'raised':<30} {'cleared':<30} tones"]
    for a in s["alarms"]:
        cleared = _when(s["start"], a["cleared_s"]) if a["cleared_s"] is not None else "active"
        lines.append(f"{a['kind']:<22} {a['class']:<13} {_when(s['start'], a['raised_s']):<30} {cleared:<30} "
                     f"{a['tones']}")
    if not s["alarms"]:
        lines.append("(none)")
    p = s["projections"]
    b = s["battery"]
    lines.append("")
    lines.append("dates (as of the last recalculation)")
    for key, label in (("low_reservoir_s", "low reservoir"), ("empty_s", "empty"), ("eri_s", "ERI"),
                       ("eos_s", "end of service")):
        lines.append(f"  {label:<16} {_when(s['start'], p.get(key))}")
    lines.append(f"battery: ERI {_when(s['start'], b.get('eri_s'))}, EOS {_when(s['start'], b.get('eos_s'))}, "
                 f"{b.get('final_pct')} % left, {b.get('final_v')} V")
    for f in s["faults"]:
        lines.append(f"fault {f['kind']} at {_when(s['start'], f['start_s'])}: alarm {_when(s['start'], f['alarm_s'])}, "
                     f"missed {f['missed_mcg'] if f['missed_mcg'] is not None else '-'} mcg"
                     + (f", {f['after_release_ul']} uL in the hour after release" if f["after_release_ul"] is not None
                        else ""))
    return "\n".join(lines)


def table(s):
    granted = sum(1 for b in s["boluses"] if b["granted"])
    rows = [
        ("scenario", s["scenario"]),
        ("days", s["days"]),
        ("strokes", f"{s['strokes']:,} x {s['stroke_nl']} nL"),
        ("prescribed", f"{s['prescribed_mcg']:.3f} mcg (exact ideal, computed by the simulator)"),
        ("to the patient", f"{s['patient_mcg']:.3f} mcg (left the catheter tip)"),
        ("from reservoir", f"{s['delivered_ml']:.4f} mL = {s['delivered_mcg']:.3f} mcg"),
        ("missed", f"{s['missed_mcg']:.3f} mcg (while empty or stopped)"),
        ("withheld", f"{s['withheld_mcg']:.3f} mcg (held back for the limit after a block released)"),
        ("max lag", f"{s['max_lag_nl']:.6f} nL (below one {s['stroke_nl']} nL stroke when strokes are on time)"),
        ("invariants", ", ".join(f"{k} {'ok' if v['pass'] else 'VIOLATED'}" for k, v in s["invariants"].items())),
        ("boluses", f"{granted} granted, {len(s['boluses']) - granted} denied"),
        ("events", ", ".join(sorted({e['kind'] for e in s['events']})) or "none"),
        ("final reservoir", f"{s['final']['reservoir_ml']:.4f} mL ({s['final']['state']})"),
        ("wall time", f"{s['wall_s']:.3f} s ({s['wakes']:,} controller wakes)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows) + "\n\n" + alarm_table(s)


def write(result, out_dir, plot=True, strokes=False):
    """Write every output into out_dir atomically enough: a file appears only when complete."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = summary(result)
    _atomic(out / "summary.json", lambda f: _dump_summary(s, f))
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


def _dump_summary(s, f):
    """A key per line and a list's items one per line, each value compact: json's C encoder writes a
    7-year summary in milliseconds, where its indenting (pure Python) encoder took a third of a second."""
    items = list(s.items())
    f.write("{\n")
    for i, (k, v) in enumerate(items):
        f.write(f"  {json.dumps(k)}: ")
        if isinstance(v, list) and v:
            f.write("[\n" + ",\n".join("    " + json.dumps(x) for x in v) + "\n  ]")
        elif isinstance(v, dict) and v:
            f.write("{\n" + ",\n".join(f"    {json.dumps(k2)}: {json.dumps(v2)}" for k2, v2 in v.items()) + "\n  }")
        else:
            f.write(json.dumps(v))
        f.write(",\n" if i + 1 < len(items) else "\n")
    f.write("}\n")


def _atomic(path, fill):
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        fill(f)
    os.replace(tmp, path)
