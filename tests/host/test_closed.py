"""The referee's closed forms (sim/closed.py) against the stroke-by-stroke definitions they replace."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.closed import IdealMap, PathMass, Segments, Strokes, maxmod, maxmod_many, minmod, minmod_many

SUB = 86_400


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 400), st.integers(1, 10**12), st.integers(-10**15, 10**15), st.integers(-10**15, 10**15))
def test_min_and_max_of_a_progression_mod_m_are_those_of_its_terms(n, m, a, b):
    terms = [(a + b * k) % m for k in range(n)]
    assert minmod(n, m, a, b) == min(terms)
    assert maxmod(n, m, a, b) == max(terms)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10**6), st.integers(1, 2**30), st.integers(-2**40, 2**40),
                          st.integers(-2**40, 2**40)), min_size=1, max_size=40))
def test_the_vectorised_min_and_max_mod_agree_with_the_scalar_ones(rows):
    n, m, a, b = (np.array(c, dtype=np.int64) for c in zip(*rows))
    assert minmod_many(n, m, a, b).tolist() == [minmod(*r) for r in rows]
    assert maxmod_many(n, m, a, b).tolist() == [maxmod(*r) for r in rows]
    for r in rows[:5]:  # and the scalar ones against the terms, where listing them is cheap
        k = min(r[0], 2000)
        terms = [(r[2] + r[3] * j) % r[1] for j in range(k)]
        assert minmod(k, r[1], r[2], r[3]) == min(terms) and maxmod(k, r[1], r[2], r[3]) == max(terms)


def _trains(draw_runs):
    """(origin, first, period, den, from j, to j) runs in time order, as the simulated motor keeps them."""
    runs, t = [], 0
    for gap, first_ms, first_rem, period_ms, period_rem, den, count, done in draw_runs:
        period_rem %= den
        first_rem %= den
        t += gap
        period = period_ms * den + period_rem if count > 1 else 0
        first = first_ms * den + first_rem
        done = min(done, count)
        runs.append((t, first, period, den, done, count))
        last = t + max(-(-(first + (count - 1) * period) // den), 0)
        t = max(t, last)
    return runs


def _listed(runs):
    """Every stroke time, straight from the definition: stroke j at origin + max(ceil(num_j / den), 0)."""
    out = []
    for origin, first, period, den, j0, j1 in runs:
        for j in range(j0, j1):
            out.append(origin + max(-(-(first + j * period) // den), 0))
    return np.array(out, dtype=np.int64)


runs_strategy = st.lists(st.tuples(st.integers(0, 10**6), st.integers(-5000, 90_000), st.integers(0, 10**6),
                                   st.integers(0, 90_000), st.integers(0, 10**6), st.integers(1, 10**6),
                                   st.integers(1, 40), st.integers(0, 3)), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(runs_strategy, st.lists(st.integers(-1000, 4 * 10**6), max_size=30))
def test_the_trains_in_closed_form_give_every_stroke_time_and_count(draw, probes):
    runs = _trains(draw)
    T = _listed(runs)
    strokes = Strokes.from_runs(runs)
    assert strokes.n == len(T)
    assert np.array_equal(strokes.times(0, strokes.n), T)
    for k in range(0, len(T), max(1, len(T) // 7)):
        assert strokes.time(k) == T[k]
    assert np.array_equal(strokes.times_at(np.arange(len(T))), T)
    probes = probes + ([int(t) for t in T[:5]] + [int(T[-1]) - 1, int(T[-1])] if len(T) else [])
    expected = np.searchsorted(T, np.array(probes, dtype=np.int64), side="right")
    assert [strokes.count_le(t) for t in probes] == expected.tolist()
    assert strokes.count_le_many(np.array(probes, dtype=np.int64)).tolist() == expected.tolist()
    listed = Strokes.from_times(T)
    assert listed.count_le_many(np.array(probes, dtype=np.int64)).tolist() == expected.tolist()


@settings(max_examples=300, deadline=None)
@given(st.integers(50, 600), st.lists(st.tuples(st.integers(1, 3000), st.sampled_from([0, 10, 500, 2000])),
                                      min_size=1, max_size=6), st.integers(0, 10**9))
def test_the_path_mass_and_its_inverse_match_the_listed_masses(stroke_nl, widths, probe):
    pieces, x = [], 0
    for width, conc in widths:
        pieces.append((x, conc))
        x += width
    k_max = x // stroke_nl + 20
    path = PathMass(pieces, stroke_nl, k_max)

    def conc_at(v):
        c = pieces[0][1]
        for px, pc in pieces:
            if px <= v:
                c = pc
        return c

    cum = [0]
    for k in range(k_max):  # nL by nL, from the definition
        cum.append(cum[-1] + sum(conc_at(v) for v in range(k * stroke_nl, (k + 1) * stroke_nl)))
    assert [path.cum(k) for k in range(k_max + 1)] == cum
    assert path.cum_many(np.arange(k_max + 1)).tolist() == cum
    for m in (probe % (cum[-1] + 2), 0, cum[-1], cum[len(cum) // 2]):
        assert path.last_reached(m) == max(j for j in range(k_max + 1) if cum[j] <= m)


def test_the_reservoir_segments_find_the_first_stroke_below_a_volume():
    v = Segments()
    v.add(0, 1000, 100)
    v.add(7, 5000, 100)
    listed = [v.at(k) for k in range(60)]
    assert listed[:3] == [1000, 900, 800] and listed[7] == 5000
    assert v.many(np.arange(60)).tolist() == listed
    for lo, hi, limit in ((0, 60, 750), (3, 60, 750), (0, 60, -10), (7, 60, 4000), (0, 5, 0), (8, 9, 4900)):
        expected = next((k for k in range(lo, hi) if listed[k] < limit), None)
        assert v.first_below(lo, hi, limit) == expected


def test_later_ideal_assignments_overwrite_earlier_ones_piece_by_piece():
    strokes = Strokes.from_times(np.arange(100, dtype=np.int64) * 10)
    m = IdealMap(PathMass([(0, 1000)], 100, 200), SUB, strokes)
    m.assign(0, 50, (2, 7))
    m.assign(20, 30, (2, 9))
    m.clear(40, 45)
    m.assign(48, 60, (3,))  # COPY: the stroke's own time
    expected = [7] * 20 + [9] * 10 + [7] * 10 + [-1] * 5 + [7] * 3 + [k * 10 for k in range(48, 60)] + [-1] * 40
    assert m.values(0, 100).tolist() == expected
    assert [m.at(k) for k in range(100)] == expected
