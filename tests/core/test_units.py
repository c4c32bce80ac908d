# Exact small-int arithmetic, against plain (big) integer arithmetic.

from firmware.units import muldiv, muldivmod, ng_from_nl, nl_from_ng, rescale_nl

_SMALL = 1 << 30


def _lcg(seed):
    state = [seed]

    def next_below(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] % n

    return next_below


def test_muldivmod_matches_big_int_arithmetic():
    rnd = _lcg(7)
    qr = [0, 0]
    checked = 0
    for _ in range(3000):
        d = 1 + rnd(134_217_727)
        a = rnd(_SMALL)
        b = rnd(_SMALL) >> rnd(30)
        q, r = a * b // d, a * b % d
        if q >= _SMALL:
            continue
        assert muldivmod(a, b, d, qr) == q
        assert qr[1] == r
        checked += 1
    assert checked > 500


def test_muldivmod_edges():
    qr = [0, 0]
    assert muldivmod(0, 5, 7, qr) == 0 and qr[1] == 0
    assert muldivmod(24_000_000, 86_400_000, 86_400_000, qr) == 24_000_000 and qr[1] == 0
    assert muldivmod(5000, 86_400_000, 48_000, qr) == 9_000_000 and qr[1] == 0
    assert muldivmod(86_399_999, 24_000_000, 86_400_000, qr) == 23_999_999
    assert qr[1] == 86_399_999 * 24_000_000 - 23_999_999 * 86_400_000


def test_conversions_round_down():
    assert nl_from_ng(600_000, 2000) == 300_000  # 600 mcg at 2000 mcg/mL = 0.3 mL
    assert nl_from_ng(1, 3000) == 0
    assert nl_from_ng(120_000_000, 5000) == 24_000_000
    assert ng_from_nl(250, 2000) == 500
    assert ng_from_nl(40_000_000, 5000) == 200_000_000
    assert muldiv(7, 3, 2) == 10


def test_rescale_keeps_the_drug_rounds_up_and_saturates():
    assert rescale_nl(25_000, 2000, 1000) == 50_000  # 50 mcg: 25 uL at 2000, 50 uL at 1000 mcg/mL
    assert rescale_nl(3, 1000, 3000) == 1  # 3 ng -> 1 nL at 3000 mcg/mL (exactly)
    assert rescale_nl(4, 1000, 3000) == 2  # 4 ng -> 1.33 nL, rounded up
    # 24 mL at 5000 mcg/mL diluted to 10 mcg/mL would be 12 L: it saturates inside the small ints.
    assert rescale_nl(24_000_000, 5000, 10) == 1 << 29
