"""Independent reference for the delivery rule, from the scenario and the granted boluses.

It shares no code with firmware/ or sim/: rates are converted here from mcg with big ints, and
stroke times come from exact integer piecewise integration.
"""

DAY = 86_400_000


def nl_per_day(mcg_per_day_ng, conc):
    return mcg_per_day_ng * 1000 // conc


def segments(scenario, boluses, refills, end_ms):
    """[(t_ms, rate_nl_per_day)] from basal profiles, granted boluses and concentration changes.

    boluses: [(start_ms, granted_ng, minutes)]; refills: [(t_ms, new_concentration)].
    """
    rx = scenario.rx
    tod0 = scenario.time_of_day_ms
    wd0 = scenario.weekday
    points = {0, end_ms}
    for day in range(end_ms // DAY + 2):
        for wd_profile in (rx.profiles[(wd0 + day) % 7],):
            for st in wd_profile.starts_ms:
                points.add(day * DAY + st - tod0)
    conc_at = [(0, rx.concentration)] + sorted(refills)
    for t, _ in refills:
        points.add(t)
    for start, _ng, minutes in boluses:
        points.add(start)
        points.add(start + minutes * 60_000)
    pts = sorted(p for p in points if 0 <= p <= end_ms)

    def conc(t):
        c = rx.concentration
        for tc, cc in conc_at:
            if tc <= t:
                c = cc
        return c

    out = []
    for t in pts[:-1]:
        c = conc(t)
        abs_ms = t + tod0
        day, tod = divmod(abs_ms, DAY)
        prof = rx.profiles[(wd0 + day) % 7]
        i = max(j for j, st in enumerate(prof.starts_ms) if st <= tod)
        rate = nl_per_day(prof.rates_ng_per_day[i], c)
        for start, ng, minutes in boluses:
            if start <= t < start + minutes * 60_000:
                vol = ng * 1000 // conc(start)
                rate += vol * 1440 // minutes
        out.append((t, rate))
    return out


def stroke_times(segs, stroke_nl, end_ms, suspended=()):
    """Stroke k at the first whole ms where the integrated rate reaches k strokes."""
    times = []
    acc = 0
    k = 1
    for i, (t0, rate) in enumerate(segs):
        t1 = segs[i + 1][0] if i + 1 < len(segs) else end_ms
        if rate:
            while True:
                t = t0 + -(-(k * stroke_nl * DAY - acc) // rate)
                if t > t1:
                    break
                times.append(t)
                k += 1
        acc += rate * (t1 - t0)
    return times, acc
