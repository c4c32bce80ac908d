# The dates a clinician plans by: when the reservoir reaches its low and empty thresholds at the
# prescription in force. Integer-only; recalculated by the main loop at start, at every refill and
# at every bolus start (not on the dosing path).
#
# Consumption is taken as uniform within each day, day by day through the weekly schedule:
# basal mass plus every periodic bolus and, for the low-reservoir date, every patient bolus the
# prescription allows (the prudent rule: Prometra projects its refill date this way). A day's
# mass is capped at the hard limit, and its volume at the pump's 24 mL/day.

from firmware.units import MS_PER_DAY, muldivmod
from micropython import const

_MAX_NL_PER_DAY = const(24_000_000)
_MINUTES_PER_DAY = const(1440)
_MAX_WEEKS = const(400)  # beyond any service life: "not within service" (-1)


def day_nl(rx, concentration, weekday, with_ptm, qr):
    """nL the prescription takes from the reservoir over that weekday."""
    p = rx.profiles[weekday]
    starts = p.starts_ms
    ng = 0
    rem = 0
    for i in range(len(starts)):
        end = starts[i + 1] if i + 1 < len(starts) else MS_PER_DAY
        ng += muldivmod(p.rates_ng_per_day[i], end - starts[i], MS_PER_DAY, qr)
        rem += qr[1]
    ng += rem // MS_PER_DAY
    cap = rx.max_daily_ng
    for i in range(len(rx.periodic)):
        ng = _capped(ng + rx.periodic[i][1].amount_ng, cap)
    if with_ptm and rx.ptm is not None:
        for _ in range(rx.ptm[2]):
            ng = _capped(ng + rx.ptm[0].amount_ng, cap)
    ng = _capped(ng, cap)
    nl = muldivmod(ng, 1000, concentration, qr)
    return nl if nl < _MAX_NL_PER_DAY else _MAX_NL_PER_DAY


def _capped(ng, cap):
    return ng if ng < cap else cap


def minutes_until(left_nl, rx, concentration, weekday, ms_of_day, with_ptm, qr):
    """Minutes from now until left_nl more has left the reservoir; 0 if left_nl <= 0, -1 if never."""
    if left_nl <= 0:
        return 0
    dn = day_nl(rx, concentration, weekday, with_ptm, qr)
    rest = muldivmod(dn, MS_PER_DAY - ms_of_day, MS_PER_DAY, qr)
    if left_nl <= rest:
        return muldivmod(left_nl, _MINUTES_PER_DAY, dn, qr)
    left_nl -= rest
    minutes = (MS_PER_DAY - ms_of_day) // 60_000
    week = 0
    for d in range(7):
        week += day_nl(rx, concentration, d, with_ptm, qr)
    if not week:
        return -1
    weeks = left_nl // week
    if weeks > _MAX_WEEKS:
        return -1
    left_nl -= weeks * week
    minutes += weeks * 7 * _MINUTES_PER_DAY
    for _ in range(8):
        weekday = (weekday + 1) % 7
        dn = day_nl(rx, concentration, weekday, with_ptm, qr)
        if left_nl <= dn:
            return minutes + (muldivmod(left_nl, _MINUTES_PER_DAY, dn, qr) if dn else 0)
        left_nl -= dn
        minutes += _MINUTES_PER_DAY
    return -1
