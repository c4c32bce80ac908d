"""pumpsim sweep: grid and random expansion, local and Dask executors, violations, bad input, outputs."""

import csv
import itertools
import re
import tomllib
import xml.etree.ElementTree as ET
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from test_cli import _run  # pumpsim main() with argparse exits as exit codes

from sim import sweep

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "sim" / "scenarios" / "default.toml"
STROKES = [100, 250, 500]
NIGHT = [400, 600]


def _write(tmp_path, body, name="s.toml"):
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


GRID = f"""
name = "g"
base = "default"
days = 2
[grid]
"pump.stroke_nl" = {STROKES}
basal.steps.0.mcg_per_day = {NIGHT}   # unquoted: nested TOML tables, the same dotted key
"""


def test_grid_is_the_cartesian_product_in_file_order(tmp_path):
    sw = sweep.load(_write(tmp_path, GRID + '"ptm.lockout_minutes" = [60, 120]\n'))
    expected = [{"pump.stroke_nl": s, "basal.steps.0.mcg_per_day": n, "ptm.lockout_minutes": m}
                for s, n, m in itertools.product(STROKES, NIGHT, [60, 120])]
    assert sw.variants == expected
    assert sw.keys == ["pump.stroke_nl", "basal.steps.0.mcg_per_day", "ptm.lockout_minutes"]
    assert sw.days == 2 and sw.name == "g"
    # Each variant is the base with exactly those values set.
    base = tomllib.loads(DEFAULT.read_text())
    for i, v in enumerate(expected):
        want = tomllib.loads(DEFAULT.read_text())
        want["pump"]["stroke_nl"] = v["pump.stroke_nl"]
        want["basal"]["steps"][0]["mcg_per_day"] = v["basal.steps.0.mcg_per_day"]
        want["ptm"]["lockout_minutes"] = v["ptm.lockout_minutes"]
        assert sw.variant_data(i) == want
    assert sw.base_data == base  # untouched by the variants
    ids = [meta["id"] for meta, *_ in sw.jobs()]
    assert ids == [f"v{i:03d}" for i in range(12)]


def test_a_missing_table_takes_the_scenario_defaults_but_array_entries_must_exist(tmp_path):
    sw = sweep.load(_write(tmp_path, 'base = "default"\ndays = 2\n[grid]\n"battery.capacity_mah" = [300, 720]\n'))
    assert [sw.variant_data(i)["battery"] for i in (0, 1)] == [{"capacity_mah": 300}, {"capacity_mah": 720}]
    assert len(sw.jobs()) == 2


RANDOM = """
base = "default"
days = 2
[random]
seed = {seed}
count = 40
"pump.stroke_nl" = {{ min = 100, max = 500 }}
"basal.steps.1.mcg_per_day" = {{ min = 350.5, max = 450, decimals = 2 }}
"event.0.time" = {{ min = "09:15", max = "11:45" }}
"ptm.mcg" = {{ choices = [10, 15, 20] }}
"""


def _hhmm(text):
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def test_random_draws_are_reproducible_within_range_and_typed(tmp_path):
    a = sweep.load(_write(tmp_path, RANDOM.format(seed=7), "a.toml")).variants
    again = sweep.load(_write(tmp_path, RANDOM.format(seed=7), "b.toml")).variants
    other = sweep.load(_write(tmp_path, RANDOM.format(seed=8), "c.toml")).variants
    assert a == again and a != other and len(a) == len(other) == 40
    for v in a + other:
        assert type(v["pump.stroke_nl"]) is int and 100 <= v["pump.stroke_nl"] <= 500
        rate = v["basal.steps.1.mcg_per_day"]
        assert type(rate) is float and 350.5 <= rate <= 450 and round(rate, 2) == rate
        assert re.fullmatch(r"\d\d:\d\d", v["event.0.time"]) and 9 * 60 + 15 <= _hhmm(v["event.0.time"]) <= 11 * 60 + 45
        assert v["ptm.mcg"] in (10, 15, 20)
    # 40 draws from 401 strokes and 3 choices: a draw that never varies would be a bug, not luck.
    assert len({v["pump.stroke_nl"] for v in a}) > 10 and {v["ptm.mcg"] for v in a} == {10, 15, 20}


def test_each_random_draw_is_crossed_with_the_whole_grid(tmp_path):
    body = RANDOM.format(seed=3).replace("count = 40", "count = 3") + '[grid]\n"pump.empty_ml" = [0.5, 1.0]\n'
    sw = sweep.load(_write(tmp_path, body))
    draws = sweep.load(_write(tmp_path, RANDOM.format(seed=3).replace("count = 40", "count = 3"), "d.toml")).variants
    assert sw.variants == [{**d, "pump.empty_ml": e} for d in draws for e in (0.5, 1.0)]
    assert len(sw.jobs()) == 6


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_local_and_dask_executors_give_identical_rows(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    sw = sweep.load(_write(tmp_path, GRID))
    jobs = sw.jobs()
    with ProcessPoolExecutor(2) as pool:
        local = sweep.run(jobs, pool)
    code, out, err = _run(["sweep", str(tmp_path / "s.toml"), "--jobs", "2", "--out", str(tmp_path / "local.csv")], capsys)
    assert code == 0, err
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            dask = sweep.run(jobs, client.get_executor())
        code, out, err = _run(["sweep", str(tmp_path / "s.toml"), "--dask", cluster.scheduler_address,
                               "--out", str(tmp_path / "dask.csv")], capsys)
    assert code == 0, err
    assert f"on Dask {cluster.scheduler_address}" in out
    local_rows = [row for row, _d, _w in local]
    assert local_rows == [row for row, _d, _w in dask]
    assert [r["index"] for r in local_rows] == list(range(6))  # variant order, whatever finished first
    assert all(r["ok"] and r["error"] is None for r in local_rows)
    assert [(r["pump.stroke_nl"], r["basal.steps.0.mcg_per_day"]) for r in local_rows] == list(
        itertools.product(STROKES, NIGHT))
    assert (tmp_path / "local.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()
    assert len(_rows(tmp_path / "local.csv")) == 6


def _early_for(stroke_nl, monkeypatch):
    """A firmware whose trains fire every stroke 5 ms early, but only in runs with this stroke volume.
    The sweep runs in this process (--jobs 1), so the patch is seen; the referee must catch it alone."""
    from firmware.controller import Controller
    from sim import runner

    now = {}
    real_init, real_first = runner.Run.__init__, Controller._first

    def init(self, scenario, *a, **k):
        now["stroke_nl"] = scenario.pump.stroke_nl
        real_init(self, scenario, *a, **k)

    def first(self):
        real_first(self)
        if now["stroke_nl"] == stroke_nl:
            self.train.first_ms -= 5

    monkeypatch.setattr(runner.Run, "__init__", init)
    monkeypatch.setattr(Controller, "_first", first)


def test_a_violating_variant_exits_3_names_itself_in_junit_and_its_row(tmp_path, capsys, monkeypatch):
    _early_for(250, monkeypatch)
    path = _write(tmp_path, GRID)
    out, junit = tmp_path / "o" / "rows.csv", tmp_path / "o" / "junit.xml"
    code, stdout, err = _run(["sweep", str(path), "--jobs", "1", "--out", str(out), "--junit-xml", str(junit)], capsys)
    assert code == 3
    rows = _rows(out)
    bad = [r for r in rows if r["ok"] == "False"]
    assert [r["pump.stroke_nl"] for r in bad] == ["250", "250"]
    assert all(r["inv_never_ahead"] == "False" and "never_ahead" in r["violated"].split(";") for r in bad)
    assert all(r["ok"] == "True" and r["violated"] == "" for r in rows if r["pump.stroke_nl"] != "250")
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("pumpsim: variant v00") and "never_ahead" in line for line in lines)
    assert "6 variants, 4 ok, 2 violated, 0 errors" in stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == "6" and suite.get("failures") == "2" and suite.get("errors") == "0"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        f"v{i:03d} pump.stroke_nl={s} basal.steps.0.mcg_per_day={n}"
        for i, (s, n) in enumerate(itertools.product(STROKES, NIGHT))]
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert sorted(failed) == ["v002 pump.stroke_nl=250 basal.steps.0.mcg_per_day=400",
                              "v003 pump.stroke_nl=250 basal.steps.0.mcg_per_day=600"]
    assert all("never_ahead" in f.get("message") and "invariant never_ahead violated" in f.text for f in failed.values())


def test_an_internal_error_is_kept_in_the_row_and_junit_and_exits_1(tmp_path, capsys, monkeypatch):
    from sim import runner

    real = runner.simulate

    def broken(scenario, *a, **k):
        if scenario.pump.stroke_nl == 500:
            raise RuntimeError("motor model exploded")
        return real(scenario, *a, **k)

    monkeypatch.setattr(runner, "simulate", broken)
    out, junit = tmp_path / "rows.csv", tmp_path / "junit.xml"
    code, stdout, err = _run(["sweep", str(_write(tmp_path, GRID)), "--jobs", "1", "--out", str(out),
                              "--junit-xml", str(junit)], capsys)
    assert code == 1
    rows = _rows(out)
    assert [r["error"] for r in rows] == [""] * 4 + ["RuntimeError: motor model exploded"] * 2
    assert [r["ok"] for r in rows] == ["True"] * 4 + ["False"] * 2
    errors = [c for c in ET.parse(junit).getroot().iter("testcase") if c.find("error") is not None]
    assert [c.get("name").split()[0] for c in errors] == ["v004", "v005"]
    assert "motor model exploded" in errors[0].find("error").text and "Traceback" in errors[0].find("error").text
    assert "2 errors" in stdout and err.count("internal error: RuntimeError") == 2


def test_parquet_and_csv_hold_the_same_rows(tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    path = _write(tmp_path, RANDOM.format(seed=11).replace("count = 40", "count = 4"))
    for name in ("rows.csv", "rows.parquet"):
        code, _out, err = _run(["sweep", str(path), "--jobs", "1", "--out", str(tmp_path / name)], capsys)
        assert code == 0, err
    table = pq.read_table(tmp_path / "rows.parquet")
    from_csv = _rows(tmp_path / "rows.csv")
    assert table.column_names == list(from_csv[0])
    assert [{k: "" if v is None else str(v) for k, v in row.items()} for row in table.to_pylist()] == from_csv
    schema = table.schema
    assert str(schema.field("pump.stroke_nl").type) == "int64" and str(schema.field("ok").type) == "bool"
    assert str(schema.field("basal.steps.1.mcg_per_day").type) == "double"


def test_parquet_without_pyarrow_is_bad_input(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)  # import now raises ImportError
    out = tmp_path / "rows.parquet"
    code, _out, err = _run(["sweep", str(_write(tmp_path, GRID)), "--out", str(out)], capsys)
    assert code == 2 and "pyarrow" in err and err.count("\n") == 1 and not out.exists()


BAD = [
    ('base = "default"\nfoo = 1\n[grid]\n"pump.stroke_nl" = [100]\n', "foo: unknown key"),
    ('[grid]\n"pump.stroke_nl" = [100]\n', "base: missing"),
    ('base = "nope"\n[grid]\n"pump.stroke_nl" = [100]\n', "base: 'nope' is not a built-in scenario"),
    ('base = "missing.toml"\n[grid]\n"pump.stroke_nl" = [100]\n', "missing.toml'"),
    ('base = "default"\n', "empty sweep"),
    ('base = "default"\n[grid]\n"pump.stroke_nl" = []\n', "grid.pump.stroke_nl: empty list"),
    ('base = "default"\n[grid]\n"pump.stroke_nl" = 100\n', "grid.pump.stroke_nl: must be a list"),
    ('base = "default"\n[grid]\n"fault.0.minutes" = [5]\n', "grid.fault.0.minutes: fault is not in the base"),
    ('base = "default"\n[grid]\n"event.99.day" = [5]\n', "grid.event.99.day: event in the base has 9 entries"),
    ('base = "default"\n[grid]\n"days.x" = [5]\n', "grid.days.x: days is a value"),
    ('base = "default"\ndays = 2\n[grid]\n"days" = [3]\n', "grid.days: is swept while"),
    ('base = "default"\n[random]\ncount = 2\n"pump.stroke_nl" = {min = 1, max = 2}\n', "random.seed: missing"),
    ('base = "default"\n[random]\nseed = 1\ncount = 0\n"pump.stroke_nl" = {min = 1, max = 2}\n',
     "random.count: 0 must be an integer 1..100000"),
    ('base = "default"\n[random]\nseed = 1\ncount = 2\n"pump.stroke_nl" = {min = 300, max = 100}\n',
     "random.pump.stroke_nl: bad range"),
    ('base = "default"\n[random]\nseed = 1\ncount = 2\n"pump.stroke_nl" = {min = 300}\n',
     "random.pump.stroke_nl: needs both min and max"),
    ('base = "default"\n[random]\nseed = 1\ncount = 2\n"pump.stroke_nl" = {min = 1, max = 2, step = 1}\n',
     "random.pump.stroke_nl.step: unknown key"),
    ('base = "default"\n[random]\nseed = 1\ncount = 2\n"pump.empty_ml" = {min = 0.1, max = 2.0, decimals = 9}\n',
     "random.pump.empty_ml.decimals"),
    ('base = "default"\n[random]\nseed = 1\ncount = 2\n"pump.stroke_nl" = {min = 1, max = 2}\n'
     '[grid]\n"pump.stroke_nl" = [100]\n', "random.pump.stroke_nl: is also swept in [grid]"),
    ('base = "default"\n[random]\nseed = 1\ncount = 1000\n"pump.stroke_nl" = {min = 100, max = 200}\n'
     '[grid]\n"pump.empty_ml" = ' + str([0.5] * 101) + "\n", "more than 100000"),
    # Every variant is parsed first: the invalid one is named with its parameters and the scenario's error.
    ('base = "default"\ndays = 2\n[grid]\n"pump.stroke_nl" = [250, 6000]\n',
     "variant v001 pump.stroke_nl=6000: pump.stroke_nl: 6000 is out of range 50..5000"),
    ('base = "default"\ndays = 2\n[grid]\n"pump.stroke_nll" = [250]\n', "pump.stroke_nll: unknown key"),
    ('base = "default"\n[grid\n', "TOML syntax error"),
]


@pytest.mark.parametrize("body,message", BAD, ids=[m for _b, m in BAD])
def test_bad_sweep_files_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, body, message):
    path = _write(tmp_path, body)
    out, junit = tmp_path / "out" / "rows.csv", tmp_path / "out" / "junit.xml"
    code, stdout, err = _run(["sweep", str(path), "--out", str(out), "--junit-xml", str(junit)], capsys)
    assert code == 2
    assert err.startswith("pumpsim: ") and err.count("\n") == 1 and message in err, err
    assert stdout == "" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args,message", [(["--out", "x.txt"], "must end in .csv or .parquet"),
                                          (["--jobs", "0"], "--jobs: 0 is out of range"),
                                          (["--jobs", "2", "--dask", "tcp://127.0.0.1:1"], "--jobs or --dask")])
def test_bad_options_exit_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, _out, err = _run(["sweep", str(_write(tmp_path, GRID)), *args], capsys)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists() and not (tmp_path / "x.txt").exists()


def test_the_example_sweeps_are_valid():
    found = sorted((ROOT / "sim" / "scenarios" / "sweeps").glob("*.toml"))
    assert found
    for path in found:
        sw = sweep.load(path)
        assert len(sw.jobs()) == len(sw.variants) > 1
