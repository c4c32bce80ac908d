# Integer units and exact small-int arithmetic for the dosing core.
#
# Drug is ng, rates ng/day, volumes nL, stroke tip masses pg (nL x mcg/mL), times ms. A sub-ng
# remainder is kept in 1/MS_PER_DAY ng, so a rate of R ng/day accrues exactly R of them per ms.
# Every value stays within MicroPython's small-int range (+-2**30) over the prescribable range.

import sys

from micropython import const

MS_PER_DAY = const(86_400_000)
MS_PER_MINUTE = const(60_000)
MS_PER_HOUR = const(3_600_000)
NL_PER_ML = const(1_000_000)
SUB_PER_PG = const(86_400)  # MS_PER_DAY / 1000: a pg in 1/MS_PER_DAY ng
MAX_ML_PER_DAY = const(24)  # stroke volume, basal plus active boluses
MIN_BASAL_NL_PER_DAY = const(48_000)  # 0.048 mL/day for a non-zero basal step
_SMALL_MAX = const(0x3FFFFFFF)  # 2**30 - 1, the largest small int on a 32-bit port


def muldivmod(a, b, d, qr):
    """Stores q, r with a*b == q*d + r, 0 <= r < d into qr[0], qr[1] and returns q.

    Never forms a*b, and allocates nothing (qr is the caller's preallocated pair; a returned
    tuple would be a heap object on MicroPython). Needs 0 <= a, b < 2**30, 0 < d < 2**27, and q
    must itself be a small int. Two bits of the smaller factor per step keep every intermediate
    below 7*d < 2**30.
    """
    if b <= _SMALL_MAX // (a if a else 1):  # a*b is itself a small int: divide it directly
        q = a * b
        qr[0] = q // d
        qr[1] = q - qr[0] * d
        return qr[0]
    if b > a:  # the loop runs per 2 bits of b: walk the smaller factor
        q = a
        a = b
        b = q
    q = a // d
    a -= q * d
    qr[0] = q * b
    r = 0
    s = 28
    while s > 0 and not b >> s:
        s -= 2
    q = 0
    while s >= 0:
        r = r * 4 + ((b >> s) & 3) * a
        q = q * 4 + r // d
        r %= d
        s -= 2
    qr[0] += q
    qr[1] = r
    return qr[0]


if sys.implementation.name != "micropython":
    # CPython: ints are unbounded, so the exact product is one multiplication and divmod, with the same q
    # and r. MicroPython keeps the small-int version above (its boards would allocate a big int);
    # tests/host/test_fast_path.py checks that both agree over every a, b, d the firmware can pass.
    muldivmod_small = muldivmod

    def muldivmod(a, b, d, qr):  # noqa: F811 -- the CPython fast path, chosen once at import
        q, qr[1] = divmod(a * b, d)
        qr[0] = q
        return q


_scratch = [0, 0]


def muldiv(a, b, d):
    """floor(a*b/d) under the same conditions as muldivmod (not for interrupt handlers)."""
    return muldivmod(a, b, d, _scratch)


def muldiv_ceil(a, b, d):
    q = muldivmod(a, b, d, _scratch)
    return q + 1 if _scratch[1] else q


def nl_from_ng(amount_ng, concentration_mcg_per_ml):
    """Volume holding amount_ng at the concentration, rounded down (1 ng at C mcg/mL is 1000/C nL)."""
    return muldiv(amount_ng, 1000, concentration_mcg_per_ml)


def max_rate_ng_per_day(concentration_mcg_per_ml):
    """24 mL/day of stroke volume at the concentration, in ng/day (at most 1.2e8)."""
    return MAX_ML_PER_DAY * 1000 * concentration_mcg_per_ml


def add_mass(acc, ng, sub):
    """acc = [ng, sub] += (ng, sub), kept normalised (0 <= sub < MS_PER_DAY) after every add."""
    acc[1] += sub
    if acc[1] >= MS_PER_DAY:
        acc[1] -= MS_PER_DAY
        ng += 1
    acc[0] += ng


def ceil_ng(acc):
    return acc[0] + 1 if acc[1] else acc[0]


def sub_mass(acc, ng, sub):
    """acc = [ng, sub] -= (ng, sub) with 0 <= sub < MS_PER_DAY; acc[0] may go negative."""
    acc[1] -= sub
    if acc[1] < 0:
        acc[1] += MS_PER_DAY
        ng += 1
    acc[0] -= ng
