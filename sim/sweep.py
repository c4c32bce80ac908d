"""pumpsim sweep: run every variant of a base scenario (a grid and/or seeded random ranges over any
scenario key) in parallel, locally or on a Dask cluster, one judged row per variant (docs/sweeps.md).

The CLI imports this module on every pumpsim call: module-level imports stay stdlib (numpy, tqdm,
distributed and pyarrow are imported where they are used).
"""

import copy
import csv
import itertools
import json
import math
import os
import random
import re
import sys
import time
import tomllib
import traceback
from pathlib import Path

from sim.scenario import MAX_DAYS, ScenarioError, read_text

MAX_VARIANTS = 100_000
_TOP_KEYS = ("name", "base", "days", "grid", "random")
_SPEC_KEYS = ("min", "max", "choices", "decimals")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_STDERR_LINES = 20  # violated or failed variants listed on stderr; the rest are in the outputs


class Sweep:
    """A parsed sweep file: the base scenario's TOML data and one {key: value} per variant."""

    def __init__(self, source, name, base, base_data, days, keys, variants):
        self.source = source
        self.name = name
        self.base = base  # as written in the sweep file
        self.base_data = base_data
        self.days = days  # None: the base's own length
        self.keys = keys  # swept keys, dotted, in column order
        self.variants = variants

    def variant_id(self, i):
        return f"v{i:0{max(3, len(str(len(self.variants) - 1)))}d}"

    def label(self, i):
        """The variant's id and parameters, as in messages and junit test names."""
        params = " ".join(f"{k}={_text(v)}" for k, v in self.variants[i].items())
        return f"{self.variant_id(i)} {params}"

    def variant_data(self, i):
        data = copy.deepcopy(self.base_data)
        for key, value in self.variants[i].items():
            _put(data, key.split("."), copy.deepcopy(value))
        return data

    def jobs(self):
        """(meta, data, source, days) for every variant, each parsed first: an invalid variant is bad input."""
        from sim.scenario import parse_data

        out = []
        for i in range(len(self.variants)):
            data = self.variant_data(i)
            source = f"{self.source}: variant {self.label(i)}"
            parse_data(data, source, self.days)
            params = {k: _column_value(v) for k, v in self.variants[i].items()}
            out.append(({"index": i, "id": self.variant_id(i), "params": params}, data, source, self.days))
        return out


def _text(v):
    return v if isinstance(v, str) else json.dumps(v, default=str)


def _column_value(v):
    """A swept value as one CSV/Parquet cell: scalars as they are, anything else as JSON."""
    return v if isinstance(v, bool | int | float | str) else json.dumps(v, default=str)


# -- the sweep file ------------------------------------------------------------------------------------


def _fail(source, key, message):
    raise ScenarioError(f"{source}: {key}: {message}" if key else f"{source}: {message}")


def load(path):
    """Read and check a sweep file; every problem is one ScenarioError line naming the key."""
    p = Path(path)
    return parse(read_text(path, "sweep"), str(path), p.parent, name_default=p.stem)


def parse(text, source, directory=".", name_default="sweep"):
    try:
        top = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{source}: TOML syntax error: {e}") from None
    for key in top:
        if key not in _TOP_KEYS:
            _fail(source, key, "unknown key (allowed: " + ", ".join(_TOP_KEYS) + ")")
    name = top.get("name", name_default)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        _fail(source, "name", f"{name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    days = top.get("days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS):
        _fail(source, "days", f"{days!r} must be an integer 1..{MAX_DAYS}")
    if "base" not in top:
        _fail(source, "base", 'missing (a scenario file "x.toml", relative to this file, or a built-in name)')
    base = top["base"]
    if not isinstance(base, str):
        _fail(source, "base", f"must be a string, not {type(base).__name__}")
    base_data, base_source = _base(source, base, Path(directory))
    # The base must be a valid scenario on its own: its errors name its own file.
    from sim.scenario import parse_data

    parse_data(base_data, base_source, days)

    grid = _table(source, top, "grid")
    rand = _table(source, top, "random")
    grid_keys = _grid(source, grid)
    seed, count, specs = _random(source, rand) if rand is not None else (None, 1, {})
    if not grid_keys and not specs:
        _fail(source, "", "empty sweep: give [grid] keys (lists of values) and/or [random] keys ({min, max} or {choices})")
    for key in specs:
        if key in grid_keys:
            _fail(source, f"random.{key}", "is also swept in [grid]")
    for where, key in [("grid", k) for k in grid_keys] + [("random", k) for k in specs]:
        if key == "days" and days is not None:
            _fail(source, f"{where}.days", "is swept while the sweep's days overrides it: remove one")
        _check_path(source, f"{where}.{key}", base_data, key.split("."))
    total = count * math.prod(len(v) for v in grid_keys.values())
    if total > MAX_VARIANTS:
        sizes = [f"random.count {count}"] if specs else []
        sizes += [f"grid.{k} {len(v)}" for k, v in grid_keys.items()]
        _fail(source, "", f"{total} variants ({' x '.join(sizes)}), more than {MAX_VARIANTS}")

    points = [dict(zip(grid_keys, values)) for values in itertools.product(*grid_keys.values())]
    draws = draw(seed, count, specs) if specs else [{}]
    # Each random draw crossed with the whole grid, draw by draw.
    variants = [{**d, **g} for d in draws for g in points]
    keys = list(specs) + list(grid_keys)
    return Sweep(source, name, base, base_data, days, keys, variants)


def _base(source, base, directory):
    """The base scenario's TOML data and the source name its messages use."""
    if base.endswith(".toml"):
        path = directory / base
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            _fail(source, "base", f"{str(path)!r}: no such file")
        except (OSError, UnicodeDecodeError) as e:
            _fail(source, "base", f"{str(path)!r}: cannot read: {e}")
        where = str(path)
    else:
        from importlib import resources

        root = resources.files("sim.scenarios")
        known = sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))
        if not re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)?", base) or not root.joinpath(f"{base}.toml").is_file():
            _fail(source, "base", f"{base!r} is not a built-in scenario ({', '.join(known)}, or faults/<name>) "
                  "nor a file ending in .toml")
        text = root.joinpath(f"{base}.toml").read_text(encoding="utf-8")
        where = f"<built-in {base}>"
    try:
        return tomllib.loads(text), where
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{where}: TOML syntax error: {e}") from None


def _table(source, top, key):
    if key not in top:
        return None
    if not isinstance(top[key], dict):
        _fail(source, key, f"must be a table, not {type(top[key]).__name__}")
    return top[key]


def _flatten(table, prefix, is_leaf):
    """Dotted keys, quoted ("pump.stroke_nl" = ...) or written as nested TOML tables, to their values."""
    for k, v in table.items():
        path = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v and not is_leaf(v):
            yield from _flatten(v, path, is_leaf)
        else:
            yield path, v


def _grid(source, grid):
    out = {}
    for key, values in _flatten(grid or {}, "", lambda v: False):
        where = f"grid.{key}"
        if not isinstance(values, list):
            _fail(source, where, f"must be a list of values, not {type(values).__name__} {values!r}")
        if not values:
            _fail(source, where, "empty list of values")
        if len(values) > MAX_VARIANTS:
            _fail(source, where, f"{len(values)} values, more than {MAX_VARIANTS}")
        out[key] = values
    return out


def _random(source, rand):
    def integer(key, lo, hi):
        if key not in rand:
            _fail(source, f"random.{key}", f"missing (an integer {lo}..{hi})")
        v = rand[key]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            _fail(source, f"random.{key}", f"{v!r} must be an integer {lo}..{hi}")
        return v

    seed = integer("seed", 0, 2**63 - 1)
    count = integer("count", 1, MAX_VARIANTS)
    body = {k: v for k, v in rand.items() if k not in ("seed", "count")}
    specs = {}
    for key, spec in _flatten(body, "", lambda v: any(k in _SPEC_KEYS for k in v)):
        specs[key] = _spec(source, f"random.{key}", spec)
    return seed, count, specs


def _spec(source, where, spec):
    """A random key's range: ("choices", list), ("int", lo, hi), ("float", lo, hi, decimals) or ("time", lo, hi)."""
    if not isinstance(spec, dict):
        _fail(source, where, "must be {min = .., max = ..} or {choices = [..]}")
    for k in spec:
        if k not in _SPEC_KEYS:
            _fail(source, f"{where}.{k}", "unknown key (allowed: " + ", ".join(_SPEC_KEYS) + ")")
    if "choices" in spec:
        if len(spec) > 1:
            _fail(source, where, "choices excludes min, max and decimals")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            _fail(source, f"{where}.choices", "must be a non-empty list")
        return ("choices", choices)
    if "min" not in spec or "max" not in spec:
        _fail(source, where, "needs both min and max (or choices)")
    lo, hi = spec["min"], spec["max"]
    if isinstance(lo, str) and isinstance(hi, str):
        a, b = _HHMM.match(lo), _HHMM.match(hi)
        if not a or not b:
            _fail(source, where, f"times {lo!r}..{hi!r} must be HH:MM (00:00..23:59)")
        lo_min, hi_min = int(a[1]) * 60 + int(a[2]), int(b[1]) * 60 + int(b[2])
        if lo_min > hi_min or "decimals" in spec:
            _fail(source, where, f"bad range {lo}..{hi}" if lo_min > hi_min else "decimals is for numbers")
        return ("time", lo_min, hi_min)
    for k, v in (("min", lo), ("max", hi)):
        if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, float) and not math.isfinite(v)):
            _fail(source, f"{where}.{k}", f"must be a number (or both HH:MM times), not {v!r}")
    if lo > hi:
        _fail(source, where, f"bad range: min {lo} is above max {hi}")
    if isinstance(lo, int) and isinstance(hi, int):
        if "decimals" in spec:
            _fail(source, f"{where}.decimals", "is for float ranges (write min or max with a decimal point)")
        return ("int", lo, hi)
    decimals = spec.get("decimals", 3)
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
        _fail(source, f"{where}.decimals", f"{decimals!r} must be an integer 0..6")
    return ("float", float(lo), float(hi), decimals)


def draw(seed, count, specs):
    """count draws of every key, in file order, from random.Random(seed): the same seed, the same draws."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        d = {}
        for key, spec in specs.items():
            kind = spec[0]
            if kind == "choices":
                d[key] = rng.choice(spec[1])
            elif kind == "int":
                d[key] = rng.randint(spec[1], spec[2])
            elif kind == "time":
                m = rng.randint(spec[1], spec[2])
                d[key] = f"{m // 60:02d}:{m % 60:02d}"
            else:  # scenario numbers take at most 3 (mcg) or 6 (mL) decimals: round, and stay in range
                d[key] = min(max(round(rng.uniform(spec[1], spec[2]), spec[3]), spec[1]), spec[2])
        out.append(d)
    return out


def _check_path(source, where, data, parts):
    """A swept key must lead somewhere in the base: tables may be new (the scenario's defaults), array
    entries must exist. What the key may hold is checked by parsing every variant."""
    node = data
    for i, part in enumerate(parts):
        here = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                _fail(source, where, f"{'.'.join(parts[:i])} in the base has {len(node)} entries: "
                      f"{part!r} is not an index 0..{len(node) - 1}")
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                if i + 1 < len(parts) and parts[i + 1].isdigit():
                    _fail(source, where, f"{here} is not in the base scenario (no entry {parts[i + 1]} to change)")
                return
            node = node[part]
        else:
            _fail(source, where, f"{'.'.join(parts[:i])} is a value in the base scenario, not a table")


def _put(data, parts, value):
    node = data
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


# -- one variant (in a worker) ------------------------------------------------------------------------


def run_variant(meta, data, source, days):
    """Run and judge one variant: (row, details, wall_s). Top level, so it pickles to any executor.

    details are the violated invariants' lines, or the traceback of an internal error (the row's
    error column). Wall time stays out of the row, so rows are the same on every executor.
    """
    t0 = time.perf_counter()
    row = {"index": meta["index"], "id": meta["id"], **meta["params"], "ok": False, "error": None, "violated": None}
    try:
        from sim import report, runner
        from sim.scenario import parse_data

        result = runner.simulate(parse_data(data, source, days))
        report.judge(result)
        row.update(_figures(result))
        details = report.violations(result)
    except Exception as e:  # an internal error: kept in the row and the junit case, never lost
        row["error"] = f"{type(e).__name__}: {e}".splitlines()[0]
        details = traceback.format_exc()
    return row, details, time.perf_counter() - t0


def _day(t_s):
    return None if t_s is None else round(t_s / 86400, 4)


def _figures(result):
    from sim import report

    s = report.summary(result)
    inv = result.invariants
    out = {"ok": all(v["pass"] for v in inv.values()),
           "violated": ";".join(k for k, v in inv.items() if not v["pass"]) or None}
    for name, v in inv.items():
        out[f"inv_{name}"] = bool(v["pass"])
    latest = s["projections"]
    granted = sum(1 for b in s["boluses"] if b["granted"])
    out.update({
        "days": s["days"],
        "strokes": s["strokes"],
        "stroke_nl": s["stroke_nl"],
        "delivered_ml": round(s["delivered_ml"], 6),
        "prescribed_mcg": s["prescribed_mcg"],
        "patient_mcg": s["patient_mcg"],
        "delivered_mcg": s["delivered_mcg"],
        "missed_mcg": s["missed_mcg"],
        "withheld_mcg": s["withheld_mcg"],
        "max_lag_nl": s["max_lag_nl"],
        "worst_24h_mcg": inv["rolling_24h_limit"].get("worst_mcg"),
        "boluses_granted": granted,
        "boluses_denied": len(s["boluses"]) - granted,
        "alarms_raised": len(s["alarms"]),
        "critical_alarms": sum(1 for a in s["alarms"] if a["class"] == "critical"),
        "alarm_kinds": ";".join(sorted({a["kind"] for a in s["alarms"]})) or None,
        "critical_tones": sum(1 for _t, _a, cls in result.tones if cls == "critical"),
        "wakes": s["wakes"],
        "final_state": s["final"]["state"],
        "final_reservoir_ml": round(s["final"]["reservoir_ml"], 6),
        "battery_pct": s["battery"]["final_pct"],
        "eri_day": _day(s["battery"]["eri_s"]),
        "eos_day": _day(s["battery"]["eos_s"]),
        "low_reservoir_day": _day(latest["low_reservoir_s"]),
        "empty_day": _day(latest["empty_s"]),
    })
    return out


# -- running them -------------------------------------------------------------------------------------


def run(jobs, executor, progress=False):
    """Submit every job to a concurrent.futures executor (local pool or Dask's); results in variant order."""
    from concurrent.futures import as_completed

    from tqdm import tqdm

    futures = {executor.submit(run_variant, *job): i for i, job in enumerate(jobs)}
    results = [None] * len(jobs)
    bar = tqdm(total=len(jobs), unit="variant", file=sys.stderr, disable=not progress, leave=False)
    try:
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                results[i] = fut.result()
            except Exception as e:  # the executor's own failure (a lost worker, pickling): still one row
                meta = jobs[i][0]
                row = {"index": i, "id": meta["id"], **meta["params"], "ok": False,
                       "error": f"{type(e).__name__}: {e}".splitlines()[0], "violated": None}
                results[i] = (row, "".join(traceback.format_exception(e)), 0.0)
            bar.update()
    finally:
        bar.close()
        for fut in futures:
            fut.cancel()
    return results


def columns(rows):
    """Every row's keys, first seen first (an errored row has no invariant or figure columns)."""
    seen = {}
    for row in rows:
        for k in row:
            seen.setdefault(k, None)
    return list(seen)


def table(rows):
    """Rows with every column, and one type per column (ints and floats mixed become floats, other
    mixes text), so the CSV and the Parquet file hold the same values."""
    cols = columns(rows)
    full = [{c: row.get(c) for c in cols} for row in rows]
    for c in cols:
        kinds = {type(r[c]) for r in full if r[c] is not None}
        if len(kinds) > 1:
            to = float if kinds == {int, float} else _text
            for r in full:
                if r[c] is not None:
                    r[c] = to(r[c])
    return cols, full


def write_csv(path, rows):
    cols, full = table(rows)

    def fill(f):
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(full)

    _atomic(Path(path), fill)


def write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols, full = table(rows)
    t = pa.Table.from_pylist(full, schema=None) if full else pa.table({c: [] for c in cols})
    p = Path(path)
    tmp = p.with_name("." + p.name + ".tmp")
    pq.write_table(t.select(cols), tmp)
    os.replace(tmp, p)


def write_junit(path, sweep, results, wall_s):
    import xml.etree.ElementTree as ET

    failures = sum(1 for row, _d, _w in results if row["error"] is None and not row["ok"])
    errors = sum(1 for row, _d, _w in results if row["error"] is not None)
    attrs = {"name": f"pumpsim sweep {sweep.name}", "tests": str(len(results)), "failures": str(failures),
             "errors": str(errors), "skipped": "0", "time": f"{wall_s:.3f}"}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", attrs)
    props = ET.SubElement(suite, "properties")
    for k, v in (("sweep", sweep.source), ("base", sweep.base), ("days", sweep.days)):
        if v is not None:
            ET.SubElement(props, "property", name=k, value=str(v))
    for row, details, w in results:
        case = ET.SubElement(suite, "testcase", classname=f"pumpsim.sweep.{sweep.name}", name=sweep.label(row["index"]),
                             time=f"{w:.3f}")
        if row["error"] is not None:
            ET.SubElement(case, "error", message=row["error"], type="InternalError").text = details
        elif not row["ok"]:
            ET.SubElement(case, "failure", message=f"invariants violated: {row['violated'].replace(';', ', ')}",
                          type="InvariantViolated").text = "\n".join(details)
    ET.indent(root)
    _atomic(Path(path), lambda f: f.write(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"))


def _atomic(path, fill):
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        fill(f)
    os.replace(tmp, path)


# -- the command --------------------------------------------------------------------------------------


def add_arguments(p):
    p.add_argument("sweep", help="sweep TOML file (docs/sweeps.md)")
    p.add_argument("--out", help="rows: .csv, or .parquet with pyarrow (default runs/sweeps/<name>.csv)")
    p.add_argument("--junit-xml", metavar="FILE", help="also write one JUnit test case per variant")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="local worker processes (default: the machine's cores; 1 runs in this process)")
    p.add_argument("--dask", metavar="ADDRESS", help="run on an existing Dask cluster, e.g. tcp://scheduler:8786")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (none either when stderr is not a tty)")


def _executor(args, n):
    """A concurrent.futures executor, the Dask client to close after it, and a description."""
    if args.dask:
        try:
            from distributed import Client
        except ImportError:
            raise ScenarioError(f"--dask {args.dask}: needs Dask's distributed (pip install distributed)") from None
        try:
            client = Client(args.dask)
        except (OSError, ValueError) as e:  # unreachable, timed out, or not an address
            raise ScenarioError(f"--dask {args.dask}: cannot connect: {e}") from None
        return client.get_executor(), client, f"Dask {args.dask}"
    jobs = args.jobs or os.cpu_count() or 1
    if jobs == 1:  # in this process: a debugger, a profiler or a test's patch sees the run
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(1), None, "1 worker in this process"
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # forkserver (spawn where there is none): a worker never inherits a forked copy of this process's threads.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    workers = min(jobs, n)
    return (ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method)), None,
            f"{workers} local worker processes")


def main(args):
    sweep = load(args.sweep)
    if args.jobs is not None and not 1 <= args.jobs <= 1024:
        raise ScenarioError(f"--jobs: {args.jobs} is out of range 1..1024")
    if args.jobs is not None and args.dask:
        raise ScenarioError("--jobs: the Dask cluster's workers set the parallelism; give --jobs or --dask, not both")
    out = Path(args.out or f"runs/sweeps/{sweep.name}.csv")
    if out.suffix not in (".csv", ".parquet"):
        raise ScenarioError(f"--out {out}: must end in .csv or .parquet")
    if out.suffix == ".parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise ScenarioError(f"--out {out}: writing Parquet needs pyarrow (pip install pyarrow), "
                                "or write .csv") from None
    jobs = sweep.jobs()  # every variant parsed before anything runs or is written

    wall0 = time.perf_counter()
    executor, client, where = _executor(args, len(jobs))
    try:
        progress = not args.no_progress and sys.stderr.isatty()
        results = run(jobs, executor, progress)
    finally:
        executor.shutdown(wait=True)
        if client is not None:
            client.close()
    wall_s = time.perf_counter() - wall0

    rows = [row for row, _d, _w in results]
    out.parent.mkdir(parents=True, exist_ok=True)
    (write_parquet if out.suffix == ".parquet" else write_csv)(out, rows)
    if args.junit_xml:
        Path(args.junit_xml).parent.mkdir(parents=True, exist_ok=True)
        write_junit(args.junit_xml, sweep, results, wall_s)

    bad = [(row, d) for row, d, _w in results if row["error"] is not None or not row["ok"]]
    for row, details in bad[:_STDERR_LINES]:
        what = f"internal error: {row['error']}" if row["error"] is not None else "; ".join(details)
        print(f"pumpsim: variant {sweep.label(row['index'])}: {what}", file=sys.stderr)
    if len(bad) > _STDERR_LINES:
        print(f"pumpsim: ... and {len(bad) - _STDERR_LINES} more variants (see {out})", file=sys.stderr)
    violated = sum(1 for row in rows if row["error"] is None and not row["ok"])
    errors = sum(1 for row in rows if row["error"] is not None)
    print(f"sweep {sweep.name}: {len(rows)} variants, {len(rows) - violated - errors} ok, {violated} violated, "
          f"{errors} errors; {wall_s:.2f} s wall on {where}; rows in {out}"
          + (f", junit in {args.junit_xml}" if args.junit_xml else ""))
    # A violation is the safety finding: it outranks an internal error of another variant.
    return 3 if violated else 1 if errors else 0
