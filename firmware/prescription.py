# The prescription and pump parameters: every clinical limit is checked here, in the firmware.
#
# Inputs are integers in firmware units: drug in ng (1/1000 mcg), rates in ng/day, times of day
# in ms, durations in minutes, volumes in nL. A rejected prescription raises ValueError naming the
# field in the scenario's terms; nothing is half-built.

from firmware.units import (
    MAX_RATE_NL_PER_DAY,
    MIN_BASAL_NL_PER_DAY,
    MS_PER_DAY,
    NL_PER_ML,
    muldiv,
    muldivmod,
    ng_from_nl_ceil,
    nl_from_ng,
)
from micropython import const

MIN_CONCENTRATION = const(10)  # mcg/mL
MAX_CONCENTRATION = const(5000)
MAX_STEPS = const(13)
MIN_LOCKOUT_MINUTES = const(15)
MAX_LOCKOUT_MINUTES = const(1440)
MAX_PTM_PER_DAY = const(24)
MAX_BOLUS_MINUTES = const(1440)
MAX_PERIODIC = const(8)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PumpParams:
    def __init__(self, capacity_nl=20 * NL_PER_ML, stroke_nl=250, low_nl=2 * NL_PER_ML, empty_nl=NL_PER_ML // 2):
        if capacity_nl not in (20 * NL_PER_ML, 40 * NL_PER_ML):
            raise ValueError("pump.reservoir_ml: must be 20 or 40")
        if not 50 <= stroke_nl <= 5000:
            raise ValueError("pump.stroke_nl: must be 50..5000")
        if not NL_PER_ML // 2 <= low_nl <= 10 * NL_PER_ML:
            raise ValueError("pump.low_reservoir_ml: must be 0.5..10")
        if not 0 <= empty_nl <= 2 * NL_PER_ML:
            raise ValueError("pump.empty_ml: must be 0..2")
        if empty_nl >= low_nl:
            raise ValueError("pump.empty_ml: must be below pump.low_reservoir_ml")
        self.capacity_nl = capacity_nl
        self.stroke_nl = stroke_nl
        self.low_nl = low_nl
        self.empty_nl = empty_nl


class Profile:
    """One day's basal: step starts (ms of day, first 0, strictly increasing) and rates."""

    def __init__(self, starts_ms, rates_ng_per_day, key):
        n = len(starts_ms)
        if not 1 <= n <= MAX_STEPS or len(rates_ng_per_day) != n:
            raise ValueError(key + ": must have 1 to 13 steps")
        if starts_ms[0] != 0:
            raise ValueError(key + "[0].start: the first step must start at 00:00")
        for i in range(n):
            if not 0 <= starts_ms[i] < MS_PER_DAY:
                raise ValueError("%s[%d].start: must be a time of day 00:00..23:59" % (key, i))
            if i and starts_ms[i] <= starts_ms[i - 1]:
                raise ValueError("%s[%d].start: step starts must strictly increase" % (key, i))
            if rates_ng_per_day[i] < 0:
                raise ValueError("%s[%d].mcg_per_day: must not be negative" % (key, i))
        self.key = key
        self.starts_ms = tuple(starts_ms)
        self.rates_ng_per_day = tuple(rates_ng_per_day)
        self.rates_nl_per_day = ()

    def compile(self, concentration):
        """nL/day rates at a concentration, rounded down; raises if a step is out of range."""
        rates = []
        for i in range(len(self.starts_ms)):
            ng = self.rates_ng_per_day[i]
            # 24 mL/day at C mcg/mL is 24000*C ng/day; checking in ng first keeps the product small.
            if ng > 24_000 * concentration:
                raise ValueError(
                    "%s[%d].mcg_per_day: %s exceeds 24 mL/day at %d mcg/mL"
                    % (self.key, i, _mcg(ng), concentration)
                )
            nl = nl_from_ng(ng, concentration)
            if ng and nl < MIN_BASAL_NL_PER_DAY:
                raise ValueError(
                    "%s[%d].mcg_per_day: %s is below 0.048 mL/day at %d mcg/mL"
                    % (self.key, i, _mcg(ng), concentration)
                )
            rates.append(nl)
        self.rates_nl_per_day = tuple(rates)

    def step_at(self, ms_of_day):
        starts = self.starts_ms
        i = len(starts) - 1
        while starts[i] > ms_of_day:
            i -= 1
        return i

    def cumulative_nl(self, ms_of_day):
        """Volume delivered by this profile over [00:00, ms_of_day), as (whole nL, remainder/day)."""
        whole = 0
        rem = 0
        qr = [0, 0]
        starts = self.starts_ms
        rates = self.rates_nl_per_day
        for i in range(len(starts)):
            if starts[i] >= ms_of_day:
                break
            end = starts[i + 1] if i + 1 < len(starts) else MS_PER_DAY
            if end > ms_of_day:
                end = ms_of_day
            whole += muldivmod(rates[i], end - starts[i], MS_PER_DAY, qr)
            rem += qr[1]
        return whole + rem // MS_PER_DAY, rem % MS_PER_DAY

    def max_rate_nl_per_day(self):
        return max(self.rates_nl_per_day)


def _mcg(ng):
    # Human-readable mcg for messages (text only, never used in arithmetic).
    s = "%d.%03d" % (ng // 1000, ng % 1000)
    s = s.rstrip("0").rstrip(".")
    return s + " mcg"


class Bolus:
    def __init__(self, amount_ng, minutes, key):
        if amount_ng <= 0:
            raise ValueError(key + ".mcg: must be positive")
        if amount_ng > 200_000_000:  # more than a full 40 mL reservoir at 5000 mcg/mL
            raise ValueError(key + ".mcg: must be at most 200000")
        if not 1 <= minutes <= MAX_BOLUS_MINUTES:
            raise ValueError(key + ".minutes: must be 1..1440")
        self.amount_ng = amount_ng
        self.minutes = minutes


class Prescription:
    """Drug, basal profiles, periodic boluses, patient bolus (PTM) and the hard 24 h limit.

    profiles: a 7-tuple (mon..sun) of Profile; periodic: tuple of (at_ms, Bolus);
    ptm: None or (Bolus, lockout_minutes, max_per_day).
    """

    def __init__(self, concentration, profiles, periodic, ptm, max_daily_ng, drug="baclofen"):
        if not MIN_CONCENTRATION <= concentration <= MAX_CONCENTRATION:
            raise ValueError("drug.concentration_mcg_ml: must be 10..5000")
        if len(profiles) != 7:
            raise ValueError("basal: one profile per weekday is required")
        if not 0 < max_daily_ng <= 200_000_000:
            raise ValueError("limits.max_daily_mcg: must be 0.001..200000")
        if len(periodic) > MAX_PERIODIC:
            raise ValueError("periodic_bolus: at most 8")
        for i in range(len(periodic)):
            at_ms = periodic[i][0]
            if not 0 <= at_ms < MS_PER_DAY:
                raise ValueError("periodic_bolus[%d].at: must be a time of day" % i)
            for j in range(i):
                if periodic[j][0] == at_ms:
                    raise ValueError("periodic_bolus[%d].at: two periodic boluses at the same time" % i)
        if ptm is not None:
            lockout, max_per_day = ptm[1], ptm[2]
            if not MIN_LOCKOUT_MINUTES <= lockout <= MAX_LOCKOUT_MINUTES:
                raise ValueError("ptm.lockout_minutes: must be 15..1440")
            if not 1 <= max_per_day <= MAX_PTM_PER_DAY:
                raise ValueError("ptm.max_per_day: must be 1..24")
        self.drug = drug
        self.profiles = tuple(profiles)
        self.periodic = tuple(periodic)
        self.ptm = ptm
        self.max_daily_ng = max_daily_ng
        self.concentration = 0
        self.set_concentration(concentration)

    def set_concentration(self, concentration):
        """Recompile every nL quantity for a concentration; mcg/day stay as prescribed.

        Raises ValueError (and changes nothing) if the prescription cannot run at it.
        """
        if not MIN_CONCENTRATION <= concentration <= MAX_CONCENTRATION:
            raise ValueError("concentration_mcg_ml: must be 10..5000")
        old = [p.rates_nl_per_day for p in self.profiles]
        try:
            for p in self.profiles:
                p.compile(concentration)
        except ValueError:
            for i in range(7):
                self.profiles[i].rates_nl_per_day = old[i]
            raise
        self.concentration = concentration
        self.max_daily_nl = nl_from_ng(self.max_daily_ng, concentration)
        self.basal_max_24h_nl = self._basal_max_24h_nl()
        self.max_basal_rate_nl_per_day = max(p.max_rate_nl_per_day() for p in self.profiles)

    def bolus_nl(self, amount_ng):
        return nl_from_ng(amount_ng, self.concentration)

    def _basal_max_24h_nl(self):
        """Largest basal volume in any 24 h window, rounded up (windows may span two weekdays)."""
        best = 0
        profiles = self.profiles
        for d in range(7):
            today = profiles[d]
            tomorrow = profiles[(d + 1) % 7]
            total_w, total_r = today.cumulative_nl(MS_PER_DAY)
            # The window sum is linear between breakpoints, so its maximum is at one of them.
            for starts in (today.starts_ms, tomorrow.starts_ms):
                for m in starts:
                    a_w, a_r = today.cumulative_nl(m)
                    b_w, b_r = tomorrow.cumulative_nl(m)
                    w = total_w - a_w + b_w
                    r = total_r - a_r + b_r
                    w += r // MS_PER_DAY
                    if r % MS_PER_DAY:
                        w += 1
                    if w > best:
                        best = w
        return best

    def check_pump(self, pump):
        """Checks that need the pump: the hard limit against basal, bolus sizes against capacity."""
        limit_nl = self.max_daily_nl - self.max_daily_nl % pump.stroke_nl
        if self.basal_max_24h_nl > limit_nl:
            raise ValueError(
                "basal: %s in 24 h exceeds limits.max_daily_mcg %s (whole %d nL strokes)"
                % (_mcg(self.basal_max_24h_ng()), _mcg(self.max_daily_ng), pump.stroke_nl)
            )
        for i in range(len(self.periodic)):
            self._check_bolus(self.periodic[i][1], "periodic_bolus[%d]" % i, pump)
        if self.ptm is not None:
            self._check_bolus(self.ptm[0], "ptm", pump)

    def basal_max_24h_ng(self):
        return ng_from_nl_ceil(self.basal_max_24h_nl, self.concentration)

    def _check_bolus(self, bolus, key, pump):
        nl = self.bolus_nl(bolus.amount_ng)
        if nl > pump.capacity_nl:
            raise ValueError(key + ".mcg: more than the reservoir holds at this concentration")
        if nl < pump.stroke_nl:
            raise ValueError(key + ".mcg: less than one %d nL stroke at this concentration" % pump.stroke_nl)
        rate = bolus_rate_nl_per_day(nl, bolus.minutes)
        if rate + self.max_basal_rate_nl_per_day > MAX_RATE_NL_PER_DAY:
            raise ValueError(key + ".minutes: too short, basal plus bolus would exceed 24 mL/day")


def bolus_rate_nl_per_day(volume_nl, minutes):
    """Rate that spreads volume_nl evenly over minutes, rounded down; > 24 mL/day is reported as such."""
    # Compare before multiplying: volume*1440/minutes may not fit a small int.
    if volume_nl > muldiv(MAX_RATE_NL_PER_DAY, minutes, 1440) + 1:
        return MAX_RATE_NL_PER_DAY + 1
    return muldiv(volume_nl, 1440, minutes)


def uniform_profiles(profile):
    return (profile,) * 7
