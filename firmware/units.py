# Integer units and exact small-int arithmetic for the dosing core.
#
# Volumes are nL, drug amounts ng, rates nL/day or ng/day, times ms. Every value stays within
# MicroPython's small-int range (+-2**30) over the whole prescribable range.

from micropython import const

MS_PER_DAY = const(86_400_000)
MS_PER_MINUTE = const(60_000)
NL_PER_ML = const(1_000_000)
MAX_RATE_NL_PER_DAY = const(24_000_000)  # 24 mL/day, basal plus active boluses
MIN_BASAL_NL_PER_DAY = const(48_000)  # 0.048 mL/day for a non-zero basal step


def muldivmod(a, b, d, qr):
    """Stores q, r with a*b == q*d + r, 0 <= r < d into qr[0], qr[1] and returns q.

    Never forms a*b, and allocates nothing (qr is the caller's preallocated pair; a returned
    tuple would be a heap object on MicroPython). Needs 0 <= a, 0 <= b < 2**30, 0 < d < 2**27,
    and q must itself be a small int. Two bits of b per step keep every intermediate below
    7*d < 2**30.
    """
    whole = a // d
    a -= whole * d
    q = 0
    r = 0
    shift = 28
    while shift > 0 and not b >> shift:
        shift -= 2
    while shift >= 0:
        t = r * 4 + ((b >> shift) & 3) * a
        qd = t // d
        r = t - qd * d
        q = q * 4 + qd
        shift -= 2
    q += whole * b
    qr[0] = q
    qr[1] = r
    return q


_scratch = [0, 0]


def muldiv(a, b, d):
    """floor(a*b/d) under the same conditions as muldivmod (not for interrupt handlers)."""
    return muldivmod(a, b, d, _scratch)


def muldiv_ceil(a, b, d):
    q = muldivmod(a, b, d, _scratch)
    return q + 1 if _scratch[1] else q


def nl_from_ng(amount_ng, concentration_mcg_per_ml):
    """Volume holding amount_ng at the concentration, rounded down (never more drug)."""
    # 1 ng at C mcg/mL is 1000/C nL.
    return muldiv(amount_ng, 1000, concentration_mcg_per_ml)


def ng_from_nl(volume_nl, concentration_mcg_per_ml):
    """Drug in volume_nl at the concentration, rounded down."""
    return muldiv(volume_nl, concentration_mcg_per_ml, 1000)


def rescale_nl(volume_nl, old_concentration, new_concentration):
    """nL of the new concentration holding the drug of volume_nl at the old one, rounded up (safe
    side for limits). Saturates at 2**29 where the true volume would not fit a small int."""
    ng = muldiv_ceil(volume_nl, old_concentration, 1000)
    if ng > muldiv(1 << 29, new_concentration, 1000):
        return 1 << 29
    return muldiv_ceil(ng, 1000, new_concentration)


def ng_from_nl_ceil(volume_nl, concentration_mcg_per_ml):
    return muldiv_ceil(volume_nl, concentration_mcg_per_ml, 1000)
