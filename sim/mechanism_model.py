"""The simulated mechanism's volume error: what each fired stroke really pushes (docs/accuracy.md).

The firmware commands nominal strokes and cannot know this error; the referee judges the commanded
strokes. Only `pumpsim accuracy` uses the actual volumes. Stroke k pushes

    stroke_nl x (1 + (tolerance + drift x (1 - fill_k / capacity) + sd x z_k) / 100)

where fill_k is the reservoir volume just before stroke k (counted with nominal strokes, as the
firmware and the referee count it) and z_k is the k-th draw of a seeded standard normal stream, so
the same seed gives the same volumes and a longer run keeps the volumes of a shorter one.
"""

from dataclasses import dataclass

# [mechanism] keys (percent): the allowed range of each.
RANGES = {
    "stroke_tolerance_pct": (-10, 10),  # this unit's systematic stroke-volume bias
    "stroke_error_pct": (0, 10),  # per-stroke random error, standard deviation
    "pressure_drift_pct": (-10, 10),  # stroke-volume change from a full to an empty reservoir
}
SEED_MAX = 2**63 - 1


@dataclass(frozen=True)
class MechanismParams:
    stroke_tolerance_pct: float = 0
    stroke_error_pct: float = 0
    pressure_drift_pct: float = 0
    seed: int = 0

    @property
    def exact(self):
        return not (self.stroke_tolerance_pct or self.stroke_error_pct or self.pressure_drift_pct)

    def describe(self):
        if self.exact:
            return "exact mechanism"
        parts = []
        if self.stroke_tolerance_pct:
            parts.append(f"tolerance {self.stroke_tolerance_pct:+g}%")
        if self.stroke_error_pct:
            parts.append(f"per-stroke sd {self.stroke_error_pct:g}% (seed {self.seed})")
        if self.pressure_drift_pct:
            parts.append(f"drift {self.pressure_drift_pct:+g}% full to empty")
        return "mechanism " + ", ".join(parts)


EXACT = MechanismParams()


def check(params):
    """The problem with params as one line naming the key, or None."""
    for key, (lo, hi) in RANGES.items():
        v = getattr(params, key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:  # NaN fails too
            return f"{key}: {v!r} is out of range {lo}..{hi} %"
    if isinstance(params.seed, bool) or not isinstance(params.seed, int) or not 0 <= params.seed <= SEED_MAX:
        return f"seed: {params.seed!r} is out of range 0..{SEED_MAX}"
    return None


def reservoir_before_nl(scenario, stroke_times, inputs):
    """Reservoir volume (nL) just before each stroke, as sim/referee.py counts it: nominal strokes,
    a refill of the same drug adds, a refill of a new concentration replaces what was left."""
    import numpy as np

    T = np.asarray(stroke_times, dtype=np.int64)
    s = scenario.pump.stroke_nl
    before = np.empty(len(T), dtype=np.int64)
    v = scenario.volume_nl
    c = scenario.rx.concentration
    k = 0
    for t, action, d in list(inputs) + [(None, "end", {})]:
        j = len(T) if t is None else int(np.searchsorted(T, t, side="right"))  # strokes at or before t first
        if j > k:
            before[k:j] = v - s * np.arange(0, j - k, dtype=np.int64)
            v -= s * (j - k)
            k = j
        if action == "refill":
            if d["concentration"] != c:
                v, c = d["volume_nl"], d["concentration"]
            else:
                v += d["volume_nl"]
    return before


def stroke_volumes_nl(scenario, stroke_times, inputs, params=None):
    """Actual volume (nL, float64) of every fired stroke; exactly stroke_nl for an exact mechanism."""
    import numpy as np

    params = params or getattr(scenario, "mechanism", None) or EXACT
    n = len(stroke_times)
    nominal = float(scenario.pump.stroke_nl)
    if params.exact:
        return np.full(n, nominal)
    pct = np.full(n, float(params.stroke_tolerance_pct))
    if params.pressure_drift_pct:
        fill = reservoir_before_nl(scenario, stroke_times, inputs) / scenario.pump.capacity_nl
        pct += params.pressure_drift_pct * (1.0 - np.clip(fill, 0.0, 1.0))
    if params.stroke_error_pct:
        pct += params.stroke_error_pct * np.random.default_rng(params.seed).standard_normal(n)
    # A stroke cannot pull back: beyond -100% (not reachable within the ranges above) it pushes nothing.
    return nominal * np.maximum(1.0 + pct / 100.0, 0.0)
