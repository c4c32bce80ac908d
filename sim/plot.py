"""plot.png: reservoir against its thresholds, and cumulative delivered against prescribed."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MS_PER_DAY = 86_400_000
_MARKS = {
    "low_reservoir": ("#d62728", "low reservoir"),
    "empty_reservoir": ("#7f0000", "empty"),
    "refill": ("#2ca02c", "refill"),
    "limit_truncated": ("#ff7f0e", "limit truncated"),
    "program": ("#9467bd", "program"),
    "prime": ("#e377c2", "prime"),
}


def _samples(result):
    """(day, reservoir_ml, patient_mcg cumulative, prescribed_mcg cumulative) at each day's end."""
    ref = result.referee
    T = result.stroke_times
    out = [(0.0, result.scenario.volume_nl / 1e6, 0.0, 0.0)]
    pat = pres = 0.0
    for d in result.daily:
        end = (d["day"] + 1) * MS_PER_DAY
        i = int((T <= end).sum())
        vol = ref.volume_after[i - 1] if i else result.scenario.volume_nl
        pat += d["patient_mcg"]
        pres += d["prescribed_mcg"]
        out.append((d["day"] + 1, vol / 1e6, pat, pres))
    return out


def plot_run(result, path):
    sc = result.scenario
    samples = _samples(result)
    t = [s[0] for s in samples]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True, constrained_layout=True)
    fig.suptitle(f"{sc.name}: {sc.rx.drug} {sc.rx.concentration} mcg/mL, {sc.pump.capacity_nl // 10**6} mL pump")

    ax1.plot(t, [s[1] for s in samples], color="#1f77b4", lw=1.6, label="reservoir (ground truth)")
    ax1.axhline(sc.pump.low_nl / 1e6, color="#d62728", ls="--", lw=1, label=f"low alarm {sc.pump.low_nl / 1e6:g} mL")
    ax1.axhline(sc.pump.empty_nl / 1e6, color="#7f0000", ls=":", lw=1, label=f"empty {sc.pump.empty_nl / 1e6:g} mL")
    ax1.set_ylabel("reservoir (mL)")
    ax1.set_ylim(0, sc.pump.capacity_nl / 1e6 * 1.05)

    ax2.plot(t, [s[3] for s in samples], color="#7f7f7f", lw=3, alpha=0.5, label="prescribed + granted (exact)")
    ax2.plot(t, [s[2] for s in samples], color="#1f77b4", lw=1.2, label="to the patient (catheter tip)")
    ax2.set_ylabel("cumulative drug (mcg)")
    ax2.set_xlabel("day")

    colours = {"clinician": "#8c564b", "periodic": "#bcbd22", "ptm": "#17becf"}
    for kind, colour in colours.items():
        xs = [b["requested_s"] * 1000 / MS_PER_DAY for b in result.boluses if b["kind"] == kind and b["granted"]]
        if xs and kind != "periodic":
            ax2.vlines(xs, 0, 1, transform=ax2.get_xaxis_transform(), color=colour, lw=0.8, alpha=0.6,
                       label=f"{kind} bolus")
    denied = [b["requested_s"] * 1000 / MS_PER_DAY for b in result.boluses if not b["granted"]]
    if denied:
        ax2.plot(denied, [0.02] * len(denied), "x", color="#d62728", transform=ax2.get_xaxis_transform(),
                 label="bolus denied")
    seen = set()
    for e in result.events:
        if e["kind"] in _MARKS:
            colour, label = _MARKS[e["kind"]]
            x = e["t_s"] * 1000 / MS_PER_DAY
            for ax in (ax1, ax2):
                ax.axvline(x, color=colour, lw=1, alpha=0.8, label=None if label in seen else label)
            seen.add(label)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left" if ax is ax2 else "lower left", fontsize=8, ncol=2)
    ax1.set_xlim(0, sc.days)
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
