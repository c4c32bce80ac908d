# The hard limit's basal bound: exact basal mass over limit windows, across weekdays and programs.
#
# Windows are WINDOW_MS long (24 h plus the late-wake allowance, see docs/delivery.md). Times here
# are ms relative to the midnight that starts the current pump day (negative in the past); a basal
# window function is piecewise linear, so its maximum is at a window end t where t or t - WINDOW_MS
# is a rate breakpoint. These run on requests and programs, never on the steady-state path.

from firmware.units import MS_PER_DAY, ceil_ng, muldiv_ceil
from micropython import const

LATE_WAKE_MS = const(1000)  # strokes may be this late; older arrears are written off
WINDOW_MS = const(86_401_000)  # 24 h + LATE_WAKE_MS


def volume_mass_ng(volume_nl, concentration):
    """The drug in volume_nl at the concentration, rounded up to whole ng."""
    return muldiv_ceil(volume_nl, concentration, 1000)


class Programs:
    """Basal programs in force over time: profiles[i] until ends[i] (relative ms), the last for ever."""

    def __init__(self, weekday):
        self.weekday = weekday  # weekday of relative day 0
        self.profiles = []
        self.ends = []

    def add(self, profiles, end_ms):
        self.profiles.append(profiles)
        self.ends.append(end_ms)

    def mass(self, a, b, acc, qr):
        """acc += basal mass over [a, b) under the programs in force."""
        lo = a
        for i in range(len(self.profiles)):
            end = self.ends[i]
            hi = b if end is None or end > b else end
            if hi > lo:
                _profiles_mass(self.profiles[i], self.weekday, lo, hi, acc, qr)
                lo = hi
            if lo >= b:
                return

    def breakpoints(self, a, b):
        """Every rate breakpoint in [a, b]: step starts of the program in force, and program changes."""
        out = []
        d = a // MS_PER_DAY
        while d * MS_PER_DAY <= b:
            for i in range(len(self.profiles)):
                start = self.ends[i - 1] if i else None
                end = self.ends[i]
                for s in self.profiles[i][(self.weekday + d) % 7].starts_ms:
                    p = d * MS_PER_DAY + s
                    if a <= p <= b and (start is None or p >= start) and (end is None or p < end):
                        out.append(p)
            d += 1
        for e in self.ends:
            if e is not None and a <= e <= b:
                out.append(e)
        return out

    def window_max_ng(self, t_lo, t_hi):
        """Largest basal mass in a window (t - WINDOW_MS, t] over t_lo <= t <= t_hi, rounded up."""
        best = 0
        acc = [0, 0]
        qr = [0, 0]
        cands = self.breakpoints(t_lo - WINDOW_MS, t_hi)
        for p in cands + [t_lo - WINDOW_MS, t_hi - WINDOW_MS]:
            for t in (p, p + WINDOW_MS):
                if t_lo <= t <= t_hi:
                    acc[0] = 0
                    acc[1] = 0
                    self.mass(t - WINDOW_MS, t, acc, qr)
                    if ceil_ng(acc) > best:
                        best = ceil_ng(acc)
        return best


def _profiles_mass(profiles, weekday, a, b, acc, qr):
    """acc += mass of a 7-day profile set over [a, b) in relative ms."""
    d = a // MS_PER_DAY
    while a < b:
        day_end = (d + 1) * MS_PER_DAY
        hi = b if b < day_end else day_end
        profiles[(weekday + d) % 7].add_mass(a - d * MS_PER_DAY, hi - d * MS_PER_DAY, acc, qr)
        a = hi
        d += 1


def worst_window_ng(profiles):
    """Largest basal mass in any window of one program in force for ever (periodic in a week)."""
    p = Programs(0)
    p.add(profiles, None)
    days = 1 if all(x is profiles[0] for x in profiles) else 7
    return p.window_max_ng(0, days * MS_PER_DAY)


def transition_max_ng(history, new_profiles, weekday, now_ms):
    """Largest basal mass in the windows that span a program change at now_ms (relative ms).

    history: [(profiles, end_ms)], oldest first, the programs in force before now_ms (the last
    ends at now_ms). Windows ending in (now_ms, now_ms + WINDOW_MS] mix them with the new one.
    """
    p = Programs(weekday)
    for profiles, end in history:
        p.add(profiles, end)
    p.add(new_profiles, None)
    return p.window_max_ng(now_ms, now_ms + WINDOW_MS)
