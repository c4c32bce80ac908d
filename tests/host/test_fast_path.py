"""CPython's fast muldivmod against the small-int one MicroPython runs, over every a, b, d the firmware can pass.

firmware/units.py picks the version at import by sys.implementation.name: on CPython the exact product and
divmod, on MicroPython the two-bits-a-step loop that never leaves small ints. Both must store the same q and r
(a*b == q*d + r, 0 <= r < d) and return q, under the documented preconditions: 0 <= a, b < 2**30,
0 < d < 2**27, q a small int. The oracle is the definition itself, in Python's exact integers.
"""

import importlib.util
import itertools
import sys

from hypothesis import assume, given, settings
from hypothesis import strategies as st

import firmware.units as U
from firmware import battery, boluses, controller, dates, path, prescription
from hal import train

SMALL = 1 << 30  # a, b < 2**30 and q < 2**30: MicroPython's small ints
D_MAX = 1 << 27  # d < 2**27

# Edges of the range and of the loop in the small-int version (2 bits of the smaller factor a step), and the
# constants the firmware divides by or multiplies with.
EDGES_AB = sorted({0, 1, 2, 3, 4, 5, 7, 1000, 1440, 86_400, 60_000, 3_600_000, U.MS_PER_DAY, (1 << 15) - 1, 1 << 15,
                   (1 << 28) - 1, 1 << 28, (1 << 29) - 1, 1 << 29, SMALL - 2, SMALL - 1, 120_000_000})
EDGES_D = sorted({1, 2, 3, 7, 1000, 1440, 86_400, U.MS_PER_DAY, 120_000_000, (1 << 26) + 1, D_MAX - 2, D_MAX - 1})


def oracle(a, b, d):
    return divmod(a * b, d)


def _both(a, b, d):
    fast = [-1, -1]
    small = [-1, -1]
    q_fast = U.muldivmod(a, b, d, fast)
    q_small = U.muldivmod_small(a, b, d, small)
    return q_fast, fast, q_small, small


def _agree(a, b, d):
    q, r = oracle(a, b, d)
    q_fast, fast, q_small, small = _both(a, b, d)
    assert (q_fast, fast) == (q, [q, r]), (a, b, d)
    assert (q_small, small) == (q, [q, r]), (a, b, d)


def test_cpython_runs_the_fast_path_and_keeps_the_small_int_one():
    assert sys.implementation.name != "micropython"
    assert U.muldivmod is not U.muldivmod_small
    assert U.muldivmod.__code__.co_filename == U.muldivmod_small.__code__.co_filename  # both in firmware/units.py
    # Every firmware module bound the fast one at its import.
    for module in (battery, boluses, controller, dates, path, prescription):
        assert module.muldivmod is U.muldivmod, module.__name__


def test_micropython_selects_the_small_int_version(monkeypatch):
    # firmware/units.py loaded afresh as MicroPython sees it: no fast path, and no muldivmod_small alias either.
    monkeypatch.setattr(sys.implementation, "name", "micropython")
    spec = importlib.util.spec_from_file_location("units_as_on_micropython", U.__file__)
    mp_units = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mp_units)
    assert not hasattr(mp_units, "muldivmod_small")
    assert mp_units.muldivmod.__code__.co_firstlineno == U.muldivmod_small.__code__.co_firstlineno
    qr = [0, 0]
    assert mp_units.muldivmod(SMALL - 1, SMALL - 1, D_MAX - 1, qr) == (SMALL - 1) ** 2 // (D_MAX - 1) and \
        qr[1] == (SMALL - 1) ** 2 % (D_MAX - 1)


def test_every_pair_of_edges_agrees():
    n = 0
    for a, b, d in itertools.product(EDGES_AB, EDGES_AB, EDGES_D):
        if a * b // d < SMALL:  # q must be a small int
            _agree(a, b, d)
            n += 1
    assert n > 3000


def _b_max(a, d):
    """The largest b < 2**30 that keeps q = a*b // d a small int."""
    return SMALL - 1 if a == 0 else min(SMALL - 1, (SMALL * d - 1) // a)


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, SMALL - 1), st.integers(1, D_MAX - 1), st.data())
def test_the_two_paths_agree_over_the_whole_range(a, d, data):
    b_max = _b_max(a, d)
    b = data.draw(st.one_of(st.integers(0, b_max), st.sampled_from([0, 1, b_max // 2, b_max - 1, b_max])), "b")
    _agree(a, b, d)
    _agree(b, a, d)  # either factor may be the larger


def _near(edges, lo, hi):
    """An edge, or a value within 3 of one, kept inside [lo, hi]."""
    return st.builds(lambda e, k: min(hi, max(lo, e + k)), st.sampled_from(edges), st.integers(-3, 3))


@settings(max_examples=1500, deadline=None)
@given(st.one_of(_near(EDGES_AB, 0, SMALL - 1), st.integers(0, SMALL - 1)),
       st.one_of(_near(EDGES_AB, 0, SMALL - 1), st.integers(0, SMALL - 1)),
       st.one_of(_near(EDGES_D, 1, D_MAX - 1), st.integers(1, D_MAX - 1)))
def test_the_two_paths_agree_near_the_edges(a, b, d):
    assume(a * b // d < SMALL)
    _agree(a, b, d)


# The firmware's own call shapes, each over its whole prescribable range: rate (ng/day, at most 24 mL/day at
# 5000 mcg/mL) x ms over a day, the next stroke's mass x MS_PER_DAY over the rate, the tip's pg over a stroke,
# a bolus's ng x 1440 over its minutes, the quiescent uA x ms over 1000, nL x mcg/mL over 1000.
RATE = st.integers(1, U.max_rate_ng_per_day(5000))
SHAPES = [
    st.tuples(RATE, st.integers(0, (1 << 29) - 1), st.just(U.MS_PER_DAY)),
    st.tuples(st.integers(0, 50_000_000), st.just(U.MS_PER_DAY), RATE),
    st.tuples(st.integers(0, 200_000_000), st.just(1000), st.integers(1, 10_000 * 5000)),
    st.tuples(st.integers(0, 200_000), st.just(1440), st.integers(1, 1440)),
    st.tuples(st.integers(1, 100), st.integers(0, U.MS_PER_DAY), st.just(1000)),
    st.tuples(st.integers(0, 40_000_000), st.integers(0, 5000), st.just(1000)),
]


@settings(max_examples=2000, deadline=None)
@given(st.one_of(*SHAPES))
def test_the_two_paths_agree_at_the_firmwares_call_shapes(abd):
    a, b, d = abd
    assume(a * b // d < SMALL)
    _agree(a, b, d)


@settings(max_examples=500, deadline=None)
@given(st.integers(0, SMALL - 1), st.integers(0, SMALL - 1), st.integers(1, D_MAX - 1))
def test_muldiv_and_muldiv_ceil_through_the_fast_path(a, b, d):
    assume(a * b // d < SMALL - 1)
    assert U.muldiv(a, b, d) == a * b // d
    assert U.muldiv_ceil(a, b, d) == -(-(a * b) // d)


# The controller's planning arithmetic at every wake has a CPython version too (firmware/controller.py, chosen
# at import): _count, _first, _period and _accrue's usual case on exact integers. Both are run here on the same
# state and must leave the same results: the train's fields, the strokes counted, the mass owed.

Controller = controller.Controller


class _State:
    """The attributes those methods read and write, as a Controller holds them."""

    _accrue_small = Controller._accrue_small  # the fast _accrue hands it every case but the usual one

    def __init__(self, due_ng, due_sub, rate, m_milli, cap):
        self.due = [due_ng, due_sub]
        self.rate = rate
        self._m_milli = m_milli
        self._m_ng = m_milli // 1000
        self._m_sub = m_milli % 1000 * U.SUB_PER_PG
        self._cap = cap
        self._end = [0, 0]
        self._qr = [0, 0]
        self.train = train.StrokeTrain()


def test_the_controller_runs_the_fast_planning_on_cpython():
    for name in ("_count", "_first", "_period", "_accrue"):
        assert getattr(Controller, name) is not getattr(Controller, name + "_small"), name


# Prescribable ranges: a rate up to 24 mL/day at 5000 mcg/mL (priming's nL/day is below it); a stroke's tip
# mass up to 10 uL x 5000 mcg/mL in pg (pg x 1000 while priming: below it); what is owed, under a stroke either
# way and far beyond after a late wake; spans up to two days; a cap up to COUNT_MASK strokes.
M_MILLI = st.one_of(st.integers(1, 10_000 * 5000), st.sampled_from([1, 999, 1000, 1001, 500_000, 10_000 * 5000]))
DUE_NG = st.one_of(st.integers(-50_000_000, 50_000_000), st.integers(-1000, 1000))
DUE_SUB = st.one_of(st.integers(0, U.MS_PER_DAY - 1), st.sampled_from([0, 1, U.SUB_PER_PG, U.MS_PER_DAY - 1]))
SPAN = st.one_of(st.integers(0, 2 * U.MS_PER_DAY), st.sampled_from([0, 1, U.MS_PER_DAY]))
CAP = st.one_of(st.integers(1, train.COUNT_MASK), st.integers(1, 10))


@settings(max_examples=1500, deadline=None)
@given(DUE_NG, DUE_SUB, RATE, M_MILLI, CAP, SPAN)
def test_count_first_and_period_agree(due_ng, due_sub, rate, m_milli, cap, span):
    fast = _State(due_ng, due_sub, rate, m_milli, cap)
    small = _State(due_ng, due_sub, rate, m_milli, cap)
    assert Controller._count(fast, span) == Controller._count_small(small, span)
    Controller._first(fast)
    Controller._first_small(small)
    Controller._period(fast)
    Controller._period_small(small)
    for t in (fast.train, small.train):
        # tau_1 and the period by their definition: (m - due) / rate and m / rate ms, floored, remainder over rate
        m = fast._m_ng * U.MS_PER_DAY + fast._m_sub
        assert (t.first_ms, t.first_rem) == divmod(m - (due_ng * U.MS_PER_DAY + due_sub), rate)
        assert (t.period_ms, t.period_rem) == divmod(m, rate)
    assert fast.due == small.due == [due_ng, due_sub]  # planning owes nothing


@settings(max_examples=1000, deadline=None)
@given(DUE_NG, DUE_SUB, st.one_of(st.just(0), RATE), st.integers(0, (1 << 29) - 1))
def test_accrue_agrees(due_ng, due_sub, rate, ms):
    fast = _State(due_ng, due_sub, rate, 1, 1)
    small = _State(due_ng, due_sub, rate, 1, 1)
    Controller._accrue(fast, ms, 0)
    Controller._accrue_small(small, ms, 0)
    assert fast.due == small.due
    assert fast.due[0] * U.MS_PER_DAY + fast.due[1] == due_ng * U.MS_PER_DAY + due_sub + rate * ms
    assert 0 <= fast.due[1] < U.MS_PER_DAY
