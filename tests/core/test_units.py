# Exact small-int arithmetic, against plain (big) integer arithmetic.

from firmware.units import MS_PER_DAY, add_mass, muldiv, muldivmod, nl_from_ng, sub_mass

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
    assert muldiv(7, 3, 2) == 10


def test_mass_accumulators_stay_normalised():
    acc = [0, 0]
    for _ in range(13):
        add_mass(acc, 5, MS_PER_DAY - 1)
        assert 0 <= acc[1] < MS_PER_DAY
    assert acc == [5 * 13 + 12, MS_PER_DAY - 13]
    sub_mass(acc, 77, MS_PER_DAY - 12)
    assert acc == [-1, MS_PER_DAY - 1]
