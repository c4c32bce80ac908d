"""make bench: whole-process CPU time of pumpsim against a SimPy model, the referee's cost, peak memory, scaling.

Every timed program runs as its own process; its CPU seconds (user + sys) and peak RSS come from
os.wait4, so imports, parsing, the referee and the outputs are all counted. pumpsim runs through
`python -m sim.bench child TIMINGS ARGS...`, which is sim.cli.main(ARGS) with runner.simulate and
report.judge wrapped in CPU timers (docs/bench.md). Results: a table on stdout,
runs/bench/results.json and runs/bench/scaling.png.

The 7-year scenario with everything on (bench_text/bench_scenario): the battery gauge and cell to
ERI/EOS, the alarm manager and its tones, the mechanism watch, and the inputs a real pump sees:
patient boluses (PTM) on most days, a clinician bolus and a refill every 90 days until end of service,
a yearly MRI scan, one long motor stall, one occlusion and a suspend for surgery."""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Only the standard library at the top: `python -m sim.bench child` is inside every pumpsim timing.

DAYS = 2557
ROOT = Path(__file__).resolve().parent.parent
EOS_DAY = 2489  # where bench-7y's cell reaches end of service (day 2489.3): delivery stops for good, so refills stop
MS_PER_DAY = 86_400_000

TARGET_SIMPY_RATIO = 10.0
TARGET_REFEREE_RATIO = 1.5  # referee time at 50 nL strokes over its time at 250 nL
TARGET_PEAK_MB = 150.0
TARGET_US_PER_WAKE = 20.0
TARGET_RUN_S = 1.5

ROW_FIELDS = ("name", "program", "days", "stroke_nl", "runs", "cpu_s", "wall_s", "peak_mb", "strokes", "wakes",
              "simulate_s", "judge_s", "days_per_s", "strokes_per_s", "us_per_wake")
POINT_FIELDS = ("days", "stroke_nl", "steps", "boluses_per_day", "cpu_s", "wall_s", "peak_mb", "strokes", "wakes",
                "simulate_s", "judge_s")
# Events that mean a bench scenario did not run as designed (a refill refused, the pump ran low or dry).
_BAD_EVENTS = ("refill_rejected", "low_reservoir", "empty_reservoir", "prime_rejected", "program_rejected")


# ---------------------------------------------------------------- scenarios


def _event(day, time, body):
    return f'\n[[event]]\nday = {day}\ntime = "{time}"\n{body}\n'


def _fault(day, time, body):
    return f'\n[[fault]]\nday = {day}\ntime = "{time}"\n{body}\n'


def bench_text(days=DAYS):
    # A dead pump is not refilled: after EOS the reservoir no longer drains and a refill would overfill it.
    refills = "".join(_event(d, "12:00", 'action = "refill"\nvolume_ml = {fill}') for d in range(90, min(days, EOS_DAY), 90))
    visits = "".join(_event(d, "12:30", 'action = "bolus"\nmcg = 30\nminutes = 20') for d in range(90, days, 90))
    ptm = "".join(_event(d, "17:00", 'action = "ptm"') for d in range(1, days) if d % 7 not in (0, 3))
    mri = "".join(_fault(d, "10:00", 'kind = "magnetic_field"\nminutes = 12') for d in range(200, days, 365))
    incidents = (_fault(1000, "03:00", 'kind = "motor_stall"\nminutes = 40') if days > 1000 else "") + (
        _fault(1500, "02:00", 'kind = "occlusion"\nminutes = 60') if days > 1500 else "") + (
        _event(1800, "07:00", 'action = "suspend"') + _event(1800, "07:20", 'action = "silence"')
        + _event(1800, "11:00", 'action = "resume"') if days > 1800 else "")
    return f"""
name = "bench-7y"
days = {days}
[pump]
reservoir_ml = 40
stroke_nl = 250
[drug]
concentration_mcg_ml = 2000
[basal]
steps = [ {{start = "00:00", mcg_per_day = 700}}, {{start = "06:00", mcg_per_day = 400}},
          {{start = "12:00", mcg_per_day = 500}}, {{start = "18:00", mcg_per_day = 600}} ]
[[periodic_bolus]]
at = "08:00"
mcg = 50
minutes = 10
[ptm]
mcg = 20
minutes = 10
lockout_minutes = 180
max_per_day = 3
[limits]
max_daily_mcg = 800
[alarms]
critical_repeat_minutes = 10
[battery]
capacity_mah = 720
quiescent_ua = 10
uc_per_stroke = 50
[catheter]
compliance_ul = 2.0
{refills}{visits}{ptm}{mri}{incidents}"""


def bench_text_filled(days=DAYS):
    # About 614 mcg/day (basal 550, the daily 50, PTM on 5 days in 7) at 2000 mcg/mL use about 27.66 mL in
    # 90 days. A 28 mL refill was more than that: the first one, after 90.5 days from a full 40 mL pump,
    # would have made 40.2 mL and was refused (over_capacity), so the pump ran dry at day 128. 27.5 mL
    # is a little less than the use: the reservoir sinks about 0.16 mL a refill and stays above 7 mL,
    # far from the 2 mL low-reservoir threshold, which never sounds. The refill due after EOS (day 2520)
    # would overfill the pump that no longer delivers: refills stop at EOS.
    return bench_text(days).replace("{fill}", "27.5")


def bench_scenario(days=DAYS):
    from sim import scenario

    return scenario.parse(bench_text_filled(days), "<bench-7y>")


def _hhmm(minute):
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _steps(n):
    """n basal steps (1, 4 or 13) averaging close to the SimPy schedule's 550 mcg/day."""
    from sim import bench_simpy as S

    if n == len(S.BASAL):
        return S.BASAL
    if n == 1:
        return ((0, 550),)
    return tuple((i * (1440 // n), 500 if i % 2 == 0 else 600) for i in range(n))


def simpy_text(days=DAYS, stroke_nl=None, steps=4, boluses_per_day=1, name="simpy-7y"):
    """The SimPy comparison schedule (sim/bench_simpy.py) as a pumpsim scenario; steps and boluses_per_day
    vary it for the complexity panel. Up to 8 boluses a day are periodic (the firmware's limit); beyond
    that, patient boluses (PTM) make up the rest. The day's bolus mass stays 50 mcg."""
    from sim import bench_simpy as S

    stroke_nl = stroke_nl or S.STROKE_NL
    basal = _steps(steps)
    periodic = min(boluses_per_day, 8)
    ptm_per_day = boluses_per_day - periodic
    bolus_mcg = round(S.BOLUS_MCG / boluses_per_day, 3) if boluses_per_day else 0
    if periodic == 1:
        at = [S.BOLUS_AT_MINUTE]
    else:
        at = [60 + i * (1440 // periodic) for i in range(periodic)]
    periodic_text = "".join(f'\n[[periodic_bolus]]\nat = "{_hhmm(m)}"\nmcg = {bolus_mcg}\nminutes = {S.BOLUS_MINUTES}\n'
                            for m in at)
    ptm_text = ""
    ptm_events = ""
    if ptm_per_day:
        gap = 1440 // ptm_per_day  # presses between the periodic ones, never at the same minute
        ptm_text = f"\n[ptm]\nmcg = {bolus_mcg}\nminutes = {S.BOLUS_MINUTES}\nlockout_minutes = 15\nmax_per_day = 24\n"
        ptm_events = "".join(_event(d, _hhmm(15 + k * gap), 'action = "ptm"')
                             for d in range(days) for k in range(ptm_per_day))
    if steps == len(S.BASAL) and boluses_per_day == 1:
        refill_nl = S.REFILL_NL
    else:
        # What the schedule uses in 90 days, rounded down to a microlitre, less 0.2 mL: never over capacity.
        day_ng = sum(rate * 1000 * ((basal[i + 1][0] if i + 1 < len(basal) else 1440) - start)
                     for i, (start, rate) in enumerate(basal)) // 1440 + bolus_mcg * 1000 * boluses_per_day
        refill_nl = int(day_ng * 90 * 1000 / S.CONCENTRATION_MCG_ML) // 1000 * 1000 - 200_000  # 1 ng = 1000/C nL
    refills = "".join(_event(d, _hhmm(S.REFILL_AT_MINUTE), f'action = "refill"\nvolume_ml = {refill_nl / 1e6}')
                      for d in range(S.REFILL_EVERY_DAYS, days, S.REFILL_EVERY_DAYS))
    steps_text = ", ".join(f'{{start = "{_hhmm(m)}", mcg_per_day = {r}}}' for m, r in basal)
    # The default 720 mAh cell reaches EOS at about day 2494 of this schedule, and delivery stops there: a 1500 mAh
    # cell keeps the battery gauge running while the SimPy model need not model a cell (the 7-year service life
    # still ends at day 2557, the run's last ms, after its last stroke). A stroke's charge scales with its
    # volume, so every stroke size draws the same charge a day.
    return f"""
name = "{name}"
days = {days}
[pump]
reservoir_ml = {S.RESERVOIR_NL // 1_000_000}
stroke_nl = {stroke_nl}
[drug]
concentration_mcg_ml = {S.CONCENTRATION_MCG_ML}
[basal]
steps = [ {steps_text} ]
{periodic_text}{ptm_text}
[limits]
max_daily_mcg = 1000
[battery]
capacity_mah = 1500
uc_per_stroke = {max(1, 50 * stroke_nl // 250)}
{refills}{ptm_events}"""


# ---------------------------------------------------------------- measuring a process


def _child(argv):
    """`python -m sim.bench child TIMINGS ARGS...`: pumpsim's own main on ARGS, with the simulation and the
    referee timed in CPU seconds inside the process and written to TIMINGS as JSON."""
    timings_path, cli_argv = argv[0], argv[1:]
    from sim import cli, report, runner

    spent = {"simulate_s": 0.0, "judge_s": 0.0}

    def timed(key, fn):
        def wrapper(*args, **kwargs):
            t0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[key] += time.process_time() - t0

        return wrapper

    runner.simulate = timed("simulate_s", runner.simulate)
    report.judge = timed("judge_s", report.judge)
    rc = cli.main(cli_argv)
    Path(timings_path).write_text(json.dumps(spent), encoding="utf-8")
    return rc


class BenchError(Exception):
    pass


def measure(cmd):
    """Run cmd as a child process: its CPU seconds (user + sys), wall seconds, peak RSS in MB, exit status, output."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall_s = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall_s,
                "peak_mb": usage.ru_maxrss / (1 << 20 if sys.platform == "darwin" else 1 << 10),
                "rc": p.returncode, "stdout": out.read().decode(errors="replace"),
                "stderr": err.read().decode(errors="replace")}


def run_pumpsim(text, workdir, plot=False):
    """One whole pumpsim process on a scenario text (or the built-in default when text is None, whose refill
    comes when the low-reservoir alarm is due: only the bench's own scenarios must never run low)."""
    workdir = Path(workdir)
    n = len(list(workdir.glob("run*")))
    out = workdir / f"run{n}"
    timings = workdir / f"timings{n}.json"
    args = ["run"]
    if text is not None:
        scenario_file = workdir / f"scenario{n}.toml"
        scenario_file.write_text(text, encoding="utf-8")
        args.append(str(scenario_file))
    args += ["--out", str(out)] + ([] if plot else ["--no-plot"])
    m = measure([sys.executable, "-m", "sim.bench", "child", str(timings)] + args)
    if m["rc"] != 0:
        raise BenchError(f"pumpsim {' '.join(args)} exited {m['rc']}: {m['stderr'].strip()[-500:]}")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    bad = [e for e in summary["events"] if e["kind"] in _BAD_EVENTS] if text is not None else []
    if bad:
        raise BenchError(f"scenario {summary['scenario']} did not run as designed: {bad[0]['kind']} at day "
                         f"{bad[0]['t_s'] / 86_400:.2f} ({len(bad)} such events)")
    m.update(json.loads(timings.read_text(encoding="utf-8")), strokes=summary["strokes"], wakes=summary["wakes"],
             days=summary["days"], stroke_nl=summary["stroke_nl"], battery=summary["battery"])
    return m


def run_simpy(days, stroke_nl=None):
    from sim import bench_simpy as S

    stroke_nl = stroke_nl or S.STROKE_NL
    m = measure([sys.executable, "-m", "sim.bench_simpy", str(days), str(stroke_nl)])
    if m["rc"] != 0:
        raise BenchError(f"the SimPy model exited {m['rc']}: {m['stderr'].strip()[-500:]}")
    m.update(strokes=int(m["stdout"].split()[-1]), days=days, stroke_nl=stroke_nl)
    return m


# ---------------------------------------------------------------- rows and scaling


def _median(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def row(name, program, runs):
    """One table row from repeated runs: medians of the times, the highest peak memory."""
    first = runs[0]
    r = {"name": name, "program": program, "days": first["days"], "stroke_nl": first["stroke_nl"], "runs": len(runs),
         "cpu_s": _median(runs, "cpu_s"), "wall_s": _median(runs, "wall_s"), "peak_mb": max(x["peak_mb"] for x in runs),
         "strokes": first["strokes"], "wakes": first.get("wakes"), "simulate_s": _median(runs, "simulate_s"),
         "judge_s": _median(runs, "judge_s")}
    r["days_per_s"] = r["days"] / r["cpu_s"]
    r["strokes_per_s"] = r["strokes"] / r["cpu_s"]
    r["us_per_wake"] = r["simulate_s"] / r["wakes"] * 1e6 if r["wakes"] and r["simulate_s"] is not None else None
    return r


def point(m, steps=4, boluses_per_day=1):
    return {"days": m["days"], "stroke_nl": m["stroke_nl"], "steps": steps, "boluses_per_day": boluses_per_day,
            **{k: m.get(k) for k in POINT_FIELDS if k not in ("days", "stroke_nl", "steps", "boluses_per_day")}}


def plan(quick):
    if quick:
        return {"repeats": 1, "days": 30, "days_axis": (1, 7, 30), "stroke_axis": (500, 250, 100, 50),
                "stroke_days": 30, "steps_axis": (1, 13), "boluses_axis": (0, 24), "complexity_days": 7}
    return {"repeats": 5, "days": DAYS, "days_axis": (1, 7, 30, 90, 365, 1000, 2557), "stroke_axis": (500, 250, 100, 50),
            "stroke_days": DAYS, "steps_axis": (1, 4, 13), "boluses_axis": (0, 1, 4, 24), "complexity_days": 365}


ERASE_CYCLES = 100_000  # a NOR flash block's rated erase cycles
TARGET_JOURNAL_YEARS = 10.0


def wear_text(days):
    """The highest prescribable rate, 24 mL/day (12 000 mcg/day at 500 mcg/mL), refilled every noon."""
    refills = "".join(_event(d, "12:00", 'action = "refill"\nvolume_ml = 24.0') for d in range(days))
    return (f'name = "wear"\ndays = {days}\nstart = "2026-01-05T00:00"\n'
            '[pump]\nreservoir_ml = 40\nvolume_ml = 28.0\n[drug]\nconcentration_mcg_ml = 500\n'
            '[basal]\nsteps = [ { start = "00:00", mcg_per_day = 12000 } ]\n[limits]\nmax_daily_mcg = 13000\n'
            + refills)


def journal_wear(days):
    """The journal at the highest prescribable rate (in process: a figure, not a timing): bytes
    written a day, erases per block, and the years until the most-erased block reaches ERASE_CYCLES."""
    from sim import runner, scenario

    run = runner.Run(scenario.parse(wear_text(days), "<wear>"), journal=True)
    r = run.run()
    j = run.loop.persist.journal
    worst = max(run.flash.erases)
    return {"days": days, "strokes_per_day": r.strokes / days, "bytes_per_day": j.bytes_written / days,
            "erases_per_block": list(run.flash.erases), "blocks": run.flash.blocks,
            "block_bytes": run.flash.block_size, "compactions": j.compactions,
            "years": ERASE_CYCLES * days / worst / 365.25 if worst else float("inf")}


def bench(quick=False, out="runs/bench", say=print):
    p = plan(quick)
    days, repeats = p["days"], p["repeats"]
    rows, checks = [], []
    scaling = {"days": [], "stroke_nl": [], "complexity": []}
    with tempfile.TemporaryDirectory(prefix="pumpbench-") as tmp:
        # pumpsim and the SimPy model alternate, so a change in the machine's load falls on both.
        say(f"simpy-7y: pumpsim and the SimPy model, {days} days, {repeats} runs each")
        ours, theirs = [], []
        for _ in range(repeats):
            ours.append(run_pumpsim(simpy_text(days), tmp))
            theirs.append(run_simpy(days))
        strokes = {r["strokes"] for r in ours} | {r["strokes"] for r in theirs}
        if len(strokes) != 1:
            eos_s = ours[0]["battery"].get("eos_s")
            raise BenchError(f"stroke counts differ: pumpsim {ours[0]['strokes']}, the SimPy model {theirs[0]['strokes']}"
                             + (f" (pumpsim reached EOS at day {eos_s / 86_400:.2f})" if eos_s is not None else ""))
        checks.append({"name": "strokes equal (pumpsim, SimPy)", "value": ours[0]["strokes"], "pass": True})
        rows += [row("simpy-7y", "pumpsim --no-plot", ours), row("simpy-7y", "SimPy model", theirs)]

        say(f"bench-7y: everything on, {days} days")
        everything = [run_pumpsim(bench_text_filled(days), tmp) for _ in range(max(1, repeats // 2))]
        if days >= EOS_DAY:
            eos_s = everything[0]["battery"].get("eos_s")
            checks.append({"name": "bench-7y: every refill accepted, never low, EOS at day",
                           "value": None if eos_s is None else round(eos_s / 86_400, 2), "pass": eos_s is not None})
        rows.append(row("bench-7y", "pumpsim --no-plot", everything))

        say(f"stroke size: 500, 100 and 50 nL strokes, {p['stroke_days']} days")
        by_stroke = {}
        for stroke_nl in p["stroke_axis"]:
            if stroke_nl == 250 and p["stroke_days"] == days:
                by_stroke[250] = ours
            else:
                n = repeats if stroke_nl == 50 else 1  # 50 nL is a target row: as many runs as its 250 nL reference
                by_stroke[stroke_nl] = [run_pumpsim(simpy_text(p["stroke_days"], stroke_nl), tmp) for _ in range(n)]
            scaling["stroke_nl"].append(point(row("", "", by_stroke[stroke_nl])))
        small = row(f"simpy-7y-{p['stroke_axis'][-1]}nl", "pumpsim --no-plot", by_stroke[p["stroke_axis"][-1]])
        base = row("", "", by_stroke[250])
        rows.append(small)

        say("make run: the default scenario, plot included")
        default = [run_pumpsim(None, tmp, plot=True) for _ in range(repeats)]
        run_row = row("default", "pumpsim (plot)", default)
        rows.append(run_row)

        say(f"simulated days: {', '.join(map(str, p['days_axis']))}")
        for d in p["days_axis"]:
            runs = ours if d == days else [run_pumpsim(simpy_text(d), tmp)]
            scaling["days"].append(point(row("", "", runs)))

        say(f"complexity: {p['steps_axis']} basal steps x {p['boluses_axis']} boluses a day, {p['complexity_days']} days")
        for steps in p["steps_axis"]:
            for b in p["boluses_axis"]:
                m = run_pumpsim(simpy_text(p["complexity_days"], steps=steps, boluses_per_day=b, name="complexity"), tmp)
                scaling["complexity"].append(point(m, steps, b))

    wear_days = 10 if quick else 30
    say(f"journal wear: 24 mL/day with a journal, {wear_days} days")
    wear = journal_wear(wear_days)

    simpy_cpu, ours_cpu = _median(theirs, "cpu_s"), _median(ours, "cpu_s")
    ratio = simpy_cpu / ours_cpu
    referee_ratio = small["judge_s"] / base["judge_s"] if base["judge_s"] else None
    wake_rows = [r for r in rows if r["program"] == "pumpsim --no-plot"]
    worst_wake = max(wake_rows, key=lambda r: r["us_per_wake"])
    targets = [
        {"name": "SimPy model / pumpsim (CPU, whole process)", "value": ratio, "target": f">= {TARGET_SIMPY_RATIO:g}",
         "pass": ratio >= TARGET_SIMPY_RATIO},
        {"name": f"referee {small['stroke_nl']} nL / {base['stroke_nl']} nL", "value": referee_ratio,
         "target": f"<= {TARGET_REFEREE_RATIO:g}",
         "pass": referee_ratio is not None and referee_ratio <= TARGET_REFEREE_RATIO},
        {"name": f"peak memory at {small['stroke_nl']} nL, MB", "value": small["peak_mb"], "target": f"< {TARGET_PEAK_MB:g}",
         "pass": small["peak_mb"] < TARGET_PEAK_MB},
        {"name": f"us per wake (worst: {worst_wake['name']})", "value": worst_wake["us_per_wake"],
         "target": f"<= {TARGET_US_PER_WAKE:g}", "pass": worst_wake["us_per_wake"] <= TARGET_US_PER_WAKE},
        {"name": "make run, wall s (CPU s: %.2f)" % run_row["cpu_s"], "value": run_row["wall_s"],
         "target": f"< {TARGET_RUN_S:g}", "pass": run_row["wall_s"] < TARGET_RUN_S},
        {"name": "journal at 24 mL/day: %.0f B/day, %d x %d B blocks, years to %d erases of the most-erased block"
                 % (wear["bytes_per_day"], wear["blocks"], wear["block_bytes"], ERASE_CYCLES),
         "value": wear["years"], "target": f">= {TARGET_JOURNAL_YEARS:g}", "pass": wear["years"] >= TARGET_JOURNAL_YEARS},
    ]
    results = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "implementation": platform.python_implementation()},
        "commit": _commit(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": quick,
        "repeats": repeats,
        "rows": rows,
        "simpy": {"days": days, "strokes": ours[0]["strokes"], "pumpsim_cpu_s": ours_cpu, "simpy_cpu_s": simpy_cpu,
                  "ratio": ratio},
        "targets": targets,
        "checks": checks,
        "journal_wear": wear,
        "scaling": {**scaling, "complexity_days": p["complexity_days"], "stroke_days": p["stroke_days"]},
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    plot(results, out / "scaling.png")
    return results


def _commit():
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if r.returncode != 0:
        return None
    return r.stdout.strip() or None


# ---------------------------------------------------------------- output


def _fmt(v, digits=2):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def table(results):
    head = ("row", "program", "days", "stroke nL", "runs", "CPU s", "wall s", "days/s", "strokes/s", "wakes",
            "sim s", "us/wake", "referee s", "peak MB")
    lines = [head]
    for r in results["rows"]:
        lines.append((r["name"], r["program"], _fmt(r["days"]), _fmt(r["stroke_nl"]), _fmt(r["runs"]), _fmt(r["cpu_s"]),
                      _fmt(r["wall_s"]), _fmt(r["days_per_s"], 0), _fmt(r["strokes_per_s"], 0), _fmt(r["wakes"]),
                      _fmt(r["simulate_s"]), _fmt(r["us_per_wake"], 1), _fmt(r["judge_s"]), _fmt(r["peak_mb"], 0)))
    widths = [max(len(x[i]) for x in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(x, widths))) for x in lines]
    s = results["simpy"]
    text.append("")
    text.append(f"SimPy comparison, {s['days']} days, {s['strokes']:,} strokes each: pumpsim {s['pumpsim_cpu_s']:.2f} s, "
                f"the SimPy model {s['simpy_cpu_s']:.2f} s (CPU, whole process, median of {results['repeats']}): "
                f"ratio {s['ratio']:.2f}x")
    text.append("")
    for t in results["targets"] + results["checks"]:
        value = _fmt(t["value"]) if isinstance(t["value"], float) else str(t["value"])
        text.append(f"  {'PASS' if t['pass'] else 'FAIL'}  {t['name']}: {value} (target {t.get('target', 'ok')})")
    return "\n".join(text)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sc = results["scaling"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    ax = axes[0]
    xs = [p["days"] for p in sc["days"]]
    ax.plot(xs, [p["cpu_s"] for p in sc["days"]], "o-", label="whole process (CPU s)")
    ax.plot(xs, [p["judge_s"] for p in sc["days"]], "s--", label="referee (CPU s)")
    ax.plot(xs, [p["simulate_s"] for p in sc["days"]], "^:", label="simulation (CPU s)")
    ax.set_xscale("log")
    ax.set_yscale("log")  # linear growth is a slope of 1
    ax.set_xlabel("simulated days")
    ax.set_ylabel("seconds")
    ax.set_title("SimPy schedule, 250 nL strokes")
    ax.legend()
    ax = axes[1]
    xs = [p["stroke_nl"] for p in sc["stroke_nl"]]
    ax.plot(xs, [p["cpu_s"] for p in sc["stroke_nl"]], "o-", label="whole process")
    ax.plot(xs, [p["judge_s"] for p in sc["stroke_nl"]], "s--", label="referee")
    ax.plot(xs, [p["simulate_s"] for p in sc["stroke_nl"]], "^:", label="simulation")
    ax.set_xscale("log")
    ax.invert_xaxis()  # smaller strokes, more of them, to the right
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.minorticks_off()
    ax.set_xlabel("stroke nL (log)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"stroke size, {sc['stroke_days']} days (referee flat = its target)")
    ax.legend()
    ax = axes[2]
    for steps in sorted({p["steps"] for p in sc["complexity"]}):
        pts = [p for p in sc["complexity"] if p["steps"] == steps]
        line, = ax.plot([p["boluses_per_day"] for p in pts], [p["cpu_s"] for p in pts], "o-",
                        label=f"{steps} steps, whole process")
        ax.plot([p["boluses_per_day"] for p in pts], [p["judge_s"] for p in pts], "s--", color=line.get_color(),
                label=f"{steps} steps, referee")
    ax.set_xlabel("boluses a day (over 8: patient boluses)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"schedule complexity, {sc['complexity_days']} days")
    ax.legend(fontsize="small")
    fig.suptitle(f"pumpsim CPU seconds, whole process ({results['commit'] or 'no commit'}, "
                 f"{results['machine']['cpu_count']} cores{', quick' if results['quick'] else ''})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        return _child(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one run each, short spans (for the tests)")
    ap.add_argument("--out", default="runs/bench", help="where results.json and scaling.png go (default runs/bench)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)
    say = lambda s: print(s, file=sys.stderr, flush=True)
    try:
        results = bench(args.quick, args.out, say)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    print(table(results))
    print(f"\nresults in {args.out}/results.json, scaling plot in {args.out}/scaling.png")
    return 1 if args.strict and not all(t["pass"] for t in results["targets"]) else 0


if __name__ == "__main__":
    sys.exit(main())
