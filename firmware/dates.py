# The dates a clinician plans by: when the reservoir reaches its low and empty thresholds at the
# prescription in force. Integer-only; recalculated by the main loop at start, at every refill and
# at every bolus start (not on the dosing path).
#
# Consumption is taken as uniform within each day, day by day through the weekly schedule:
# basal mass plus every periodic bolus and, for the low-reservoir date, every patient bolus the
# prescription allows (the prudent rule: Prometra projects its refill date this way). A day's
# mass is capped at the hard limit, and its volume at the pump's 24 mL/day.

from firmware.units import MS_PER_DAY, MS_PER_MINUTE, muldivmod
from micropython import const

_MAX_NL_PER_DAY = const(24_000_000)
_MINUTES_PER_DAY = const(1440)
_MINUTES_PER_WEEK = const(10_080)
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


def fill_week(week, rx, concentration, with_ptm, qr):
    """Stores day_nl for each weekday 0..6 into week (the caller's list of 7)."""
    for d in range(7):
        week[d] = day_nl(rx, concentration, d, with_ptm, qr)


def minutes_until(left_nl, rx, concentration, weekday, ms_of_day, with_ptm, qr):
    """Minutes from now until left_nl more has left the reservoir; 0 if left_nl <= 0, -1 if never."""
    week = [0] * 7
    fill_week(week, rx, concentration, with_ptm, qr)
    return minutes_in_week(left_nl, week, weekday, ms_of_day, qr)


# minutes_in_week runs at every bolus start, on the steady path. MicroPython puts a call frame on
# the heap when its locals plus its value stack exceed 11 words (py/objfun.c,
# VM_MAX_STATE_ON_STACK), so the work is split into three small frames; measured in
# tests/core/test_dates.py.


def minutes_in_week(left_nl, week, weekday, ms_of_day, qr):
    """minutes_until, from a week table fill_week() made (the main loop keeps one per prescription)."""
    if left_nl <= 0:
        return 0
    rest = muldivmod(week[weekday], MS_PER_DAY - ms_of_day, MS_PER_DAY, qr)  # what today still takes
    if left_nl <= rest:
        return muldivmod(left_nl, _MINUTES_PER_DAY, week[weekday], qr)
    left_nl -= rest
    rest = _after_today(left_nl, week, weekday, qr)
    if rest < 0:
        return -1
    return rest + (MS_PER_DAY - ms_of_day) // MS_PER_MINUTE


def _after_today(left_nl, week, weekday, qr):
    """Minutes from the midnight after weekday until left_nl has left; -1 if never."""
    total = 0
    weeks = 0
    while weeks < 7:
        total += week[weeks]
        weeks += 1
    if not total:
        return -1
    weeks = left_nl // total
    if weeks > _MAX_WEEKS:
        return -1
    left_nl -= weeks * total
    total = _within_a_week(left_nl, week, weekday, qr)
    return total + weeks * _MINUTES_PER_WEEK if total >= 0 else -1


def _within_a_week(left_nl, week, weekday, qr):
    """Minutes from the midnight after weekday until left_nl (at most a week's nL) has left."""
    minutes = 0
    days = 8
    while days:
        weekday = weekday + 1 if weekday < 6 else 0
        if left_nl <= week[weekday]:
            if not week[weekday]:
                return minutes
            return muldivmod(left_nl, _MINUTES_PER_DAY, week[weekday], qr) + minutes
        left_nl -= week[weekday]
        minutes += _MINUTES_PER_DAY
        days -= 1
    return -1
