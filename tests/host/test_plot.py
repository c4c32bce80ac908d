"""plot.png (sim/plot.py): it is written for the default scenario and the fault scenarios, and its
battery and alarm panels say what the run's summary says. Expectations come from sim.report.summary
(alarms, battery) and the scenario, and the figure is read back as a reader would: by its axis
labels, tick labels, legend and the bars and lines drawn, never from sim/plot.py's helpers."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from sim import report, runner, scenario  # noqa: E402
from sim.plot import figure, plot_run  # noqa: E402

DAY_S = 86_400
PNG = b"\x89PNG\r\n\x1a\n"
FAULTS = ["mri", "occlusion", "runaway", "suspend"]  # battery-drain is 7 years: see DRAIN below

# The cell drained 100-fold from the start: ERI, EOS and an exhausted cell within a few days.
DRAIN = """
name = "fast-drain"
days = 6
[battery]
capacity_mah = 100
[drug]
concentration_mcg_ml = 2000
[basal]
steps = [ { start = "00:00", mcg_per_day = 600 } ]
[limits]
max_daily_mcg = 700
[[fault]]
day = 0
time = "06:00"
kind = "battery_drain"
factor = 100
"""

_cache = {}


def run(name):
    """(result, summary) of a scenario: "default", a fault file's name, or "drain"."""
    if name not in _cache:
        if name == "default":
            sc = scenario.builtin("default")
        elif name == "drain":
            sc = scenario.parse(DRAIN, "<test drain>")
        else:
            sc = scenario.load(f"sim/scenarios/faults/{name}.toml")
        r = runner.simulate(sc)
        report.judge(r)
        _cache[name] = (r, report.summary(r))
    return _cache[name]


def drawn(r):
    fig = figure(r)
    FigureCanvasAgg(fig).draw()
    return fig


def by_ylabel(fig):
    return {ax.get_ylabel(): ax for ax in fig.axes}


def row_of(ax):
    """Tick label text -> row position, on the alarm axis."""
    return {t.get_text(): pos for t, pos in zip(ax.get_yticklabels(), ax.get_yticks())}


def bars(ax, label):
    """(x0, x1, facecolor) of every bar drawn on the row with that tick label."""
    pos = row_of(ax)[label]
    return sorted((p.get_x(), p.get_x() + p.get_width(), p.get_facecolor()) for p in ax.patches
                  if isinstance(p, Rectangle) and abs(p.get_y() + p.get_height() / 2 - pos) < 1e-9)


def legend_colour(ax, text):
    leg = ax.get_legend()
    for handle, t in zip(leg.legend_handles, leg.get_texts()):
        if t.get_text() == text:
            return handle.get_facecolor()
    raise AssertionError(f"no legend entry {text!r}: {[t.get_text() for t in leg.get_texts()]}")


@pytest.mark.parametrize("name", ["default", *FAULTS])
def test_writes_a_png(name, tmp_path):
    r, _s = run(name)
    path = tmp_path / "plot.png"
    plot_run(r, path)
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 20_000


@pytest.mark.parametrize("name", ["default", "runaway", "drain"])
def test_four_panels_on_one_time_axis_in_days(name):
    r, s = run(name)
    fig = drawn(r)
    axes = by_ylabel(fig)
    for label in ("reservoir (mL)", "charge left (% of rated)", "cell voltage (V)", "alarms"):
        assert label in axes, sorted(axes)
    assert any(k.startswith("cumulative drug (") for k in axes)
    for ax in fig.axes:
        assert ax.get_xlim() == pytest.approx((0, s["days"]))
    assert axes["alarms"].get_xlabel() == "time since the start (days)"
    assert fig.get_suptitle().startswith(s["scenario"] + ":")


@pytest.mark.parametrize("name", ["default", *FAULTS, "drain"])
def test_one_bar_per_alarm_from_raised_to_cleared_or_the_end(name):
    r, s = run(name)
    ax = by_ylabel(drawn(r))["alarms"]
    days = s["days"]
    kinds = sorted({a["kind"] for a in s["alarms"]})
    assert s["alarms"], "every scenario here raises an alarm"
    expected = {}
    for a in s["alarms"]:
        end = a["cleared_s"] if a["cleared_s"] is not None else days * DAY_S
        expected.setdefault(a["kind"].replace("_", " "), []).append((a["raised_s"] / DAY_S, end / DAY_S, a["class"]))
    labels = set(row_of(ax))
    assert {k.replace("_", " ") for k in kinds} <= labels
    assert labels - set(expected) <= {"delivery held"}
    colour = {"critical": legend_colour(ax, "critical alarm"), "non_critical": legend_colour(ax, "non-critical alarm")}
    assert colour["critical"] != colour["non_critical"]
    for label, spans in expected.items():
        got = bars(ax, label)
        assert len(got) == len(spans), (label, got, spans)
        for (x0, x1, face), (e0, e1, cls) in zip(got, sorted(spans)):
            assert x0 == pytest.approx(e0, abs=1e-9)
            # A short alarm may be widened to stay visible, by at most 1% of the time axis.
            assert e1 - 1e-9 <= x1 <= max(e1, e0 + 0.01 * days) + 1e-9, (label, x1, e1)
            assert tuple(face) == tuple(colour[cls])


@pytest.mark.parametrize("name", ["runaway", "suspend", "mri"])
def test_delivery_holds_on_their_own_row(name):
    r, s = run(name)
    ax = by_ylabel(drawn(r))["alarms"]
    got = bars(ax, "delivery held")
    assert len(got) == len(r.holds) > 0
    for (x0, x1, _f), h in zip(got, sorted(r.holds, key=lambda h: h["start_ms"])):
        end = h["end_ms"] if h["end_ms"] is not None else s["days"] * DAY_S * 1000
        assert x0 == pytest.approx(h["start_ms"] / 86_400_000)
        assert end / 86_400_000 - 1e-9 <= x1 <= max(end / 86_400_000, x0 + 0.01 * s["days"]) + 1e-9


@pytest.mark.parametrize("name", ["default", "suspend", "drain"])
def test_battery_panel_ends_at_the_runs_final_charge_and_voltage(name):
    r, s = run(name)
    axes = by_ylabel(drawn(r))
    (pct,) = [ln for ln in axes["charge left (% of rated)"].get_lines() if ln.get_label() == "charge left (% of rated)"]
    (volts,) = [ln for ln in axes["cell voltage (V)"].get_lines() if ln.get_label() == "cell voltage"]
    b = s["battery"]
    assert pct.get_xdata()[0] == 0 and pct.get_xdata()[-1] == pytest.approx(s["days"])
    assert pct.get_ydata()[0] == pytest.approx(100)
    assert pct.get_ydata()[-1] == pytest.approx(b["final_pct"], abs=0.01)
    assert volts.get_ydata()[-1] == pytest.approx(b["final_v"], abs=0.002)
    assert list(pct.get_ydata()) == sorted(pct.get_ydata(), reverse=True)  # charge only ever drawn
    assert len(pct.get_xdata()) <= 1501  # downsampled: a 7-year run costs the same


def test_eri_and_eos_marked_when_reached_and_not_otherwise():
    r, s = run("drain")
    b = s["battery"]
    assert b["eri_s"] is not None and b["eos_s"] is not None, b
    ax = by_ylabel(drawn(r))["charge left (% of rated)"]
    marks = {ln.get_label().split(" declared")[0]: ln.get_xdata()[0] for ln in ax.get_lines()
             if " declared" in ln.get_label()}
    assert marks == {"ERI": pytest.approx(b["eri_s"] / DAY_S), "EOS": pytest.approx(b["eos_s"] / DAY_S)}
    r, s = run("default")
    assert s["battery"]["eri_s"] is None
    ax = by_ylabel(drawn(r))["charge left (% of rated)"]
    assert not [ln for ln in ax.get_lines() if " declared" in ln.get_label()]


@pytest.mark.parametrize("name", ["default", "drain"])
def test_legends_cover_no_panel(name):
    r, _s = run(name)
    fig = drawn(r)
    renderer = fig.canvas.get_renderer()
    panels = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_ylabel() != "cell voltage (V)"]
    legends = [ax.get_legend().get_window_extent(renderer) for ax in fig.axes if ax.get_legend()]
    assert len(legends) == 4
    for leg in legends:
        for panel in panels:
            assert not leg.overlaps(panel), (leg, panel)
