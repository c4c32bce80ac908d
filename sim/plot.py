"""plot.png: four panels on one time axis, in days since the start.

1. reservoir (ground truth) against the low-reservoir and empty thresholds;
2. cumulative drug to the patient against the exact prescription, boluses and events marked;
3. battery: percent of the rated charge left and, on a twin axis, the cell voltage against the
   ERI and EOS thresholds; the moments ERI and EOS were declared, and the moment the exhausted
   cell first could not sound a tone;
4. alarms: one row per alarm kind, a bar from raised to cleared (or to the end while still active),
   critical red and non-critical amber, a tick under it wherever a tone sounded; delivery holds
   (stall, occlusion, runaway, suspend, end of service) on a grey row of their own.

The runner keeps no battery time series, only the cell as it was at the end. The series is
replayed here on a fresh cell of the run's own class from what the run recorded of every draw on
it (the strokes, the tones that sounded, the programmer commands, the drain-factor changes) and
sampled at most MAX_POINTS times, so it costs the same for a 3-day and a 7-year run. Its last
point is the run's battery.final_pct.
"""

from collections import Counter
from types import SimpleNamespace

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from firmware import alarms as A

MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000
MAX_POINTS = 1500  # battery samples per run (at most one an hour)
TICK_BINS = 1200  # tone ticks: at most one per 1/TICK_BINS of the time axis and alarm kind
DENIED_BINS = 150  # denied-bolus crosses: at most one per 1/DENIED_BINS of the time axis
MIN_BAR = 0.002  # alarm bars at least this fraction of the time axis wide, so a short one shows

CRITICAL = "#d62728"
NON_CRITICAL = "#f0a000"
HELD = "#808080"
HELD_FILL = "#d8d8d8"
TONE = "#303030"
CLASS_COLOURS = {"critical": CRITICAL, "non_critical": NON_CRITICAL}
_TONE_S = {"critical": A.CRITICAL_TONE_S, "non_critical": A.NON_CRITICAL_TONE_S}

_MARKS = {
    "low_reservoir": ("#d62728", "low reservoir"),
    "empty_reservoir": ("#7f0000", "empty"),
    "refill": ("#2ca02c", "refill"),
    "limit_truncated": ("#ff7f0e", "limit truncated"),
    "program": ("#9467bd", "program"),
    "prime": ("#e377c2", "prime"),
    "limit_held": ("#bcbd22", "limit held"),
}


def _samples(result):
    """(day, reservoir_ml, patient_mcg cumulative, prescribed_mcg cumulative) at each day's end."""
    sc = result.scenario
    days = np.array([0] + [d["day"] + 1 for d in result.daily], dtype=np.int64)
    ref = result.referee  # the strokes and the reservoir in closed form: no stroke is listed
    i = ref.strokes.count_le_many(days * MS_PER_DAY)
    vol = np.where(i > 0, ref.volume.many(np.maximum(i - 1, 0)), sc.volume_nl)
    vol[0] = sc.volume_nl
    pat = np.concatenate([[0.0], np.cumsum([d["patient_mcg"] for d in result.daily])])
    pres = np.concatenate([[0.0], np.cumsum([d["prescribed_mcg"] for d in result.daily])])
    return days.astype(float), vol / 1e6, pat, pres


def _grid_ms(end_ms):
    """Sample times: 0, the end, and evenly between, at most one an hour and MAX_POINTS in all."""
    n = max(2, min(end_ms // MS_PER_HOUR, MAX_POINTS))
    return np.unique(np.linspace(0, end_ms, n + 1).round().astype(np.int64))


def battery_series(result):
    """(t_days, percent of the rated charge left, cell volts) over the run, replayed on a fresh
    cell of the run's own class from every draw the run recorded."""
    sc = result.scenario
    end = sc.days * MS_PER_DAY
    fired = result.referee.strokes
    grid = _grid_ms(end)
    factors = dict(result.cell.factor_changes)  # ms -> factor from then on
    commands = Counter(ev.t_ms for ev in sc.events if ev.action != "ptm" and ev.t_ms <= end)
    tone_t = np.array([t for t, _a, _c in result.tones], dtype=np.int64)
    tone_cum = np.concatenate([[0], np.cumsum([_TONE_S.get(c, 0) for _t, _a, c in result.tones])]).astype(np.int64)

    clock = SimpleNamespace(now_ms=0, started=False)

    def strokes():
        return fired.count_le(clock.now_ms) if clock.started else 0

    cell = type(result.cell)(clock, result.cell.params, strokes)
    clock.started = True
    wanted = set(grid.tolist())
    stops = np.unique(np.concatenate([grid, np.fromiter(factors, np.int64), np.fromiter(commands, np.int64)]))
    t_out, pct, volts = [], [], []
    drawn = 0  # tones drawn for so far
    for t in stops.tolist():
        clock.now_ms = t
        # Tones before t were drawn at the factor in force before t; those at the end, at the end.
        j = int(np.searchsorted(tone_t, t, side="right" if t >= end else "left"))
        if j > drawn:
            cell.tone(int(tone_cum[j] - tone_cum[drawn]))
            drawn = j
        if t in factors:
            cell.set_factor(factors[t])
        for _ in range(commands.get(t, 0)):
            cell.command()
        if t in wanted:
            t_out.append(t / MS_PER_DAY)
            pct.append(cell.percent_left())
            volts.append(cell.read_mv() / 1000)
    return np.array(t_out), np.array(pct), np.array(volts)


def _legend_above(ax, handles=None, ncol=5):
    """The panel's legend in a strip above it, so it never covers the data."""
    if handles is None:
        handles, _labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=min(ncol, len(handles)),
                  fontsize=8, frameon=False, borderaxespad=0.2, handlelength=1.8, columnspacing=1.2)


def _reservoir_and_delivery(result, ax1, ax2):
    sc = result.scenario
    t, vol, pat, pres = _samples(result)
    ax1.plot(t, vol, color="#1f77b4", lw=1.6, label="reservoir (ground truth)")
    ax1.axhline(sc.pump.low_nl / 1e6, color="#d62728", ls="--", lw=1, label=f"low alarm {sc.pump.low_nl / 1e6:g} mL")
    ax1.axhline(sc.pump.empty_nl / 1e6, color="#7f0000", ls=":", lw=1, label=f"empty {sc.pump.empty_nl / 1e6:g} mL")
    ax1.set_ylabel("reservoir (mL)")
    ax1.set_ylim(0, sc.pump.capacity_nl / 1e6 * 1.05)

    unit, scale = ("mg", 1e3) if max(pres[-1], pat[-1]) >= 1e5 else ("mcg", 1)
    ax2.plot(t, pres / scale, color="#7f7f7f", lw=3, alpha=0.5, label="prescribed + granted (exact)")
    ax2.plot(t, pat / scale, color="#1f77b4", lw=1.2, label="to the patient (catheter tip)")
    ax2.set_ylabel(f"cumulative drug ({unit})")

    colours = {"clinician": "#8c564b", "ptm": "#17becf"}
    for kind, colour in colours.items():
        xs = [b["requested_s"] * 1000 / MS_PER_DAY for b in result.boluses if b["kind"] == kind and b["granted"]]
        if xs:
            ax2.vlines(xs, 0, 1, transform=ax2.get_xaxis_transform(), color=colour, lw=0.8, alpha=0.6,
                       label=f"{kind} bolus")
    denied = np.array([b["requested_s"] * 1000 / MS_PER_DAY for b in result.boluses if not b["granted"]])
    if len(denied) > DENIED_BINS:  # one cross per 1/DENIED_BINS of the axis, so they stay crosses
        res = sc.days / DENIED_BINS
        denied = np.unique(np.floor(denied / res)) * res + res / 2
    if len(denied):
        ax2.plot(denied, [0.03] * len(denied), "x", color="#d62728", ms=4, mew=0.8, ls="none",
                 transform=ax2.get_xaxis_transform(), label="bolus denied")
    marks = {}
    for e in result.events:
        if e["kind"] in _MARKS:
            marks.setdefault(e["kind"], []).append(e["t_s"] * 1000 / MS_PER_DAY)
    for kind, xs in marks.items():
        colour, label = _MARKS[kind]
        if kind == "limit_held":
            label += f" ({round(result.figures['withheld_mcg'], 3):g} mcg withheld)"
        for ax in (ax1, ax2):
            ax.vlines(xs, 0, 1, transform=ax.get_xaxis_transform(), color=colour, lw=1, alpha=0.8, label=label)


def _battery(result, ax):
    p = result.cell.params
    b = result.battery
    t, pct, volts = battery_series(result)
    ax.plot(t, pct, color="#1f5fa0", lw=1.8, label="charge left (% of rated)")
    ax.set_ylabel("charge left (% of rated)")
    ax.set_ylim(0, 105)
    av = ax.twinx()
    av.plot(t, volts, color="#7b3f9e", lw=1.2, label="cell voltage")
    av.axhline(p.eri_mv / 1000, color=NON_CRITICAL, ls=":", lw=1, label=f"ERI voltage {p.eri_mv / 1000:.2f} V")
    av.axhline(p.eos_mv / 1000, color=CRITICAL, ls=":", lw=1, label=f"EOS voltage {p.eos_mv / 1000:.2f} V")
    av.set_ylabel("cell voltage (V)", color="#7b3f9e")
    av.tick_params(axis="y", colors="#7b3f9e")
    av.set_ylim(1.6, 3.4)
    for key, colour, name in (("eri_s", NON_CRITICAL, "ERI"), ("eos_s", CRITICAL, "EOS")):
        if b.get(key) is not None:
            x = b[key] / 86400
            ax.axvline(x, color=colour, lw=1.6, ls="--", label=f"{name} declared, day {x:.1f}")
    if result.cell_dead_ms is not None:
        x = result.cell_dead_ms / MS_PER_DAY
        ax.axvline(x, color="black", lw=1.2, ls="-.", label=f"cell exhausted, tones muted, day {x:.1f}")
    h1, _ = ax.get_legend_handles_labels()
    h2, _ = av.get_legend_handles_labels()
    _legend_above(ax, h1[:1] + h2 + h1[1:], ncol=4)
    return av


def _alarm_rows(result):
    rows = []
    for a in result.alarms:
        if a["kind"] not in rows:
            rows.append(a["kind"])
    return rows


def _alarms(result, ax):
    days = result.scenario.days
    end = float(days)
    minw = MIN_BAR * days
    rows = _alarm_rows(result)
    y = {kind: i for i, kind in enumerate(rows)}
    h = 0.5
    for cls, colour in CLASS_COLOURS.items():
        spans = [(a["raised_s"] / 86400, (a["cleared_s"] / 86400 if a["cleared_s"] is not None else end), a["kind"])
                 for a in result.alarms if a["class"] == cls]
        if spans:
            ax.barh([y[k] for _s, _e, k in spans], [max(e - s, minw) for s, e, _k in spans],
                    left=[s for s, _e, _k in spans], height=h, color=colour, edgecolor=colour, lw=0.5)
    res = days / TICK_BINS
    for kind in rows:
        ts = np.array([t for t, alarm, _c in result.tones if alarm == kind], dtype=float) / MS_PER_DAY
        if len(ts):
            xs = np.unique(np.floor(ts / res)) * res + res / 2 if len(ts) > TICK_BINS else ts
            ax.vlines(xs, y[kind] + h / 2 + 0.04, y[kind] + h / 2 + 0.2, color=TONE, lw=0.6)
    if result.holds:
        row = len(rows)
        rows.append("delivery held")
        ax.barh([row] * len(result.holds),
                [max(((hd["end_ms"] if hd["end_ms"] is not None else days * MS_PER_DAY) - hd["start_ms"])
                     / MS_PER_DAY, minw) for hd in result.holds],
                left=[hd["start_ms"] / MS_PER_DAY for hd in result.holds], height=h, facecolor=HELD_FILL, edgecolor=HELD,
                lw=0.8, hatch="////")
    ax.set_yticks(range(len(rows)), [r.replace("_", " ") for r in rows], fontsize=8.5)
    for label, kind in zip(ax.get_yticklabels(), rows):
        cls = next((a["class"] for a in result.alarms if a["kind"] == kind), None)
        label.set_color(CLASS_COLOURS.get(cls, "#404040"))
    ax.set_ylim(len(rows) - 0.4 if rows else 1, -0.6)
    ax.set_ylabel("alarms")
    ax.set_axisbelow(True)
    if not rows:
        ax.text(0.5, 0.5, "no alarms raised, delivery never held", transform=ax.transAxes, ha="center",
                va="center", color="#606060")
    held_kinds = sorted({hd["kind"].replace("_", " ") for hd in result.holds})
    handles = [Patch(color=CRITICAL, label="critical alarm"), Patch(color=NON_CRITICAL, label="non-critical alarm"),
               Line2D([], [], color=TONE, lw=0, marker="|", markersize=8, label="tone sounded")]
    if held_kinds:
        handles.append(Patch(facecolor=HELD_FILL, edgecolor=HELD, hatch="////",
                             label=f"delivery held ({', '.join(held_kinds)})"))
    _legend_above(ax, handles)


def figure(result):
    """The run's figure (a matplotlib Figure, no pyplot state): reservoir, delivery, battery, alarms."""
    sc = result.scenario
    n_rows = len(_alarm_rows(result)) + (1 if result.holds else 0)
    alarm_h = min(3.0, max(1.1, 0.5 + 0.4 * n_rows))
    ratios = [3.0, 3.0, 2.4, alarm_h]
    fig = Figure(figsize=(11, sum(ratios) + 2.4))
    ax1, ax2, ax3, ax4 = fig.subplots(4, 1, sharex=True, height_ratios=ratios)
    fig.suptitle(f"{sc.name}: {sc.rx.drug} {sc.rx.concentration} mcg/mL, {sc.pump.capacity_nl // 10**6} mL pump, "
                 f"{sc.days} days from {sc.start:%Y-%m-%d}")
    _reservoir_and_delivery(result, ax1, ax2)
    _battery(result, ax3)
    _alarms(result, ax4)
    for ax in (ax1, ax2, ax3, ax4):
        ax.grid(alpha=0.3)
    ax4.grid(axis="y", visible=False)
    _legend_above(ax1)
    _legend_above(ax2)
    ax4.set_xlabel("time since the start (days)")
    ax1.set_xlim(0, sc.days)
    _layout(fig, (ax1, ax2, ax3, ax4))
    return fig


def _legend_in(ax):
    """Inches the legend strip above a panel takes (rows of 8-point entries)."""
    leg = ax.get_legend()
    if leg is None:
        return 0.0
    rows = -(-len(leg.legend_handles) // max(leg._ncols, 1))
    return 0.08 + 0.21 * rows


def _layout(fig, axes):
    """Margins in inches, from the title, the legend strips and the labels: a fixed layout costs a
    third of the constrained layout engine's drawing time, which runs its solver at every draw."""
    w, h = fig.get_size_inches()
    top_in = 0.5 + _legend_in(axes[0])
    gap_in = 0.12 + max(_legend_in(ax) for ax in axes[1:])
    # the alarm rows' names (8.5 pt, about 0.065 in a character) are the widest labels on the left
    names = max((len(t.get_text()) for t in axes[-1].get_yticklabels()), default=0)
    bottom_in, left_in, right_in = 0.55, max(0.8, 0.3 + 0.065 * names), 0.75
    span_in = h - top_in - bottom_in
    avg_in = (span_in - gap_in * (len(axes) - 1)) / len(axes)
    fig.subplots_adjust(left=left_in / w, right=1 - right_in / w, top=1 - top_in / h, bottom=bottom_in / h,
                        hspace=gap_in / avg_in)
    fig.suptitle(fig._suptitle.get_text(), y=1 - 0.12 / h, va="top")


def plot_run(result, path):
    # zlib level 1: a seventh larger file, a tenth of the drawing time less
    figure(result).savefig(path, dpi=110, format="png", pil_kwargs={"compress_level": 1})
