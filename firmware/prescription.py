# The prescription and pump parameters: every clinical limit is checked here, in the firmware.
#
# Inputs are integers in firmware units: drug in ng (1/1000 mcg), rates in ng/day, times of day
# in ms, durations in minutes, volumes in nL. A rejected prescription raises ValueError naming the
# field in the scenario's terms; nothing is half-built.

from firmware.units import (
    MIN_BASAL_NL_PER_DAY,
    MS_PER_DAY,
    NL_PER_ML,
    add_mass,
    max_rate_ng_per_day,
    muldiv,
    muldiv_ceil,
    muldivmod,
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
MAX_BOLUS_NG = const(200_000_000)  # more than a full 40 mL reservoir at 5000 mcg/mL
MAX_PERIODIC = const(8)


MAX_STORED_NL = const(50_000)  # the most a line may be specified to store below the occlusion threshold


class PumpParams:
    """Reservoir, stroke, thresholds, and the fluid path (internal tubing plus catheter).

    max_stored_nl: the most volume the pump and catheter hold against a blocked catheter while the
    motor load stays below the occlusion threshold (firmware/mechanism.py OCCLUSION_LOAD). It all
    reaches the patient at once when the block releases, so the hard limit keeps room for it.
    """

    def __init__(self, capacity_nl=20 * NL_PER_ML, stroke_nl=250, low_nl=2 * NL_PER_ML, empty_nl=NL_PER_ML // 2,
                 internal_path_nl=200_000, catheter_cm=50, nl_per_cm=2600, prime_nl_per_hour=NL_PER_ML,
                 max_stored_nl=2000):
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
        if not 0 <= internal_path_nl <= NL_PER_ML:
            raise ValueError("pump.internal_path_ml: must be 0..1")
        if not 5 <= catheter_cm <= 150:
            raise ValueError("catheter.length_cm: must be 5..150")
        if not 1000 <= nl_per_cm <= 10_000:
            raise ValueError("catheter.ml_per_cm: must be 0.001..0.01")
        if not NL_PER_ML // 10 <= prime_nl_per_hour <= NL_PER_ML:
            raise ValueError("pump.prime_ml_per_hour: must be 0.1..1.0")
        if not 0 <= max_stored_nl <= MAX_STORED_NL:
            raise ValueError("catheter.max_stored_ul: must be 0..50")
        self.capacity_nl = capacity_nl
        self.stroke_nl = stroke_nl
        self.low_nl = low_nl
        self.empty_nl = empty_nl
        self.internal_path_nl = internal_path_nl
        self.catheter_cm = catheter_cm
        self.nl_per_cm = nl_per_cm
        self.prime_nl_per_hour = prime_nl_per_hour
        self.path_nl = internal_path_nl + catheter_cm * nl_per_cm  # at most 2.5 mL
        self.max_stored_nl = max_stored_nl
        # The hard limit's margin, as volume of the strongest drug (docs/delivery.md, "The margin"):
        # a stroke of rounding, the runaway's one stroke before its cut, and a blocked line's store
        # (max_stored_nl below the threshold, plus the stroke that crosses it).
        self.margin_nl = 3 * stroke_nl + max_stored_nl


class Profile:
    """One day's basal: step starts (ms of day, first 0, strictly increasing) and rates in ng/day."""

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
            if not 0 <= rates_ng_per_day[i] <= MAX_BOLUS_NG:
                raise ValueError("%s[%d].mcg_per_day: must be 0..200000" % (key, i))
        self.key = key
        self.starts_ms = tuple(starts_ms)
        self.rates_ng_per_day = tuple(rates_ng_per_day)
        self.max_rate_ng_per_day = max(rates_ng_per_day)

    def check(self, concentration):
        """Raises if a step cannot run at the concentration (24 mL/day, 0.048 mL/day)."""
        for i in range(len(self.starts_ms)):
            ng = self.rates_ng_per_day[i]
            if ng > max_rate_ng_per_day(concentration):
                raise ValueError("%s[%d].mcg_per_day: %s exceeds 24 mL/day at %d mcg/mL"
                                 % (self.key, i, mcg_text(ng), concentration))
            if nl_from_ng(ng, concentration) < MIN_BASAL_NL_PER_DAY:
                # 0 included: stopping intrathecal baclofen means withdrawal; a stop is a suspend.
                raise ValueError("%s[%d].mcg_per_day: %s is below the least rate, 0.048 mL/day (%s/day at %d mcg/mL);"
                                 " to stop delivery, suspend" % (self.key, i, mcg_text(ng),
                                                                 mcg_text(min_basal_ng_per_day(concentration)),
                                                                 concentration))

    def step_at(self, ms_of_day):
        starts = self.starts_ms
        i = len(starts) - 1
        while starts[i] > ms_of_day:
            i -= 1
        return i

    def add_mass(self, lo_ms, hi_ms, acc, qr):
        """acc += basal mass over [lo_ms, hi_ms) of this day, exactly (acc = [ng, sub])."""
        starts = self.starts_ms
        n = len(starts)
        for i in range(n):
            a = starts[i] if starts[i] > lo_ms else lo_ms
            b = starts[i + 1] if i + 1 < n else MS_PER_DAY
            if b > hi_ms:
                b = hi_ms
            if b > a:
                muldivmod(self.rates_ng_per_day[i], b - a, MS_PER_DAY, qr)
                add_mass(acc, qr[0], qr[1])


def min_basal_ng_per_day(concentration):
    """The least non-stop basal: 0.048 mL/day at the concentration, in whole ng/day rounded up."""
    return muldiv_ceil(MIN_BASAL_NL_PER_DAY, concentration, 1000)


def mcg_text(ng):
    # Human-readable mcg for messages (text only, never used in arithmetic).
    s = "%d.%03d" % (ng // 1000, ng % 1000)
    s = s.rstrip("0").rstrip(".")
    return s + " mcg"


def check_bolus_args(amount_ng, minutes, key):
    """Raises ValueError naming key for a bolus that no prescription could allow; allocates nothing otherwise."""
    if amount_ng <= 0:
        raise ValueError(key + ".mcg: must be positive")
    if amount_ng > MAX_BOLUS_NG:
        raise ValueError(key + ".mcg: must be at most 200000")
    if not 1 <= minutes <= MAX_BOLUS_MINUTES:
        raise ValueError(key + ".minutes: must be 1..1440")


def bolus_top_rate(amount_ng, minutes):
    """Highest rate of the bolus, q + 1 where amount * 1440 = q * minutes + r (q if r == 0).

    Callers compare it with max_rate_ng_per_day first when it might not be a small int:
    see bolus_too_fast().
    """
    q = muldivmod(amount_ng, 1440, minutes, _qr)
    return q + 1 if _qr[1] else q


def bolus_too_fast(amount_ng, minutes, room_ng_per_day):
    """True when the bolus's top rate exceeds room_ng_per_day (<= 1.2e8), without overflowing."""
    # amount*1440/minutes > room  <=>  amount*1440 > room*minutes (room*minutes < 1.8e11: compare in ng)
    return amount_ng > muldivmod(room_ng_per_day, minutes, 1440, _qr) or bolus_top_rate(amount_ng, minutes) > room_ng_per_day


_qr = [0, 0]


class Bolus:
    def __init__(self, amount_ng, minutes, key):
        check_bolus_args(amount_ng, minutes, key)
        self.amount_ng = amount_ng
        self.minutes = minutes


class Prescription:
    """Drug, basal profiles, periodic boluses, patient bolus (PTM) and the hard 24 h limit.

    profiles: a 7-tuple (mon..sun) of Profile; periodic: tuple of (at_ms, Bolus);
    ptm: None or (Bolus, lockout_minutes, max_per_day). Rates are mass (ng/day): a refill with a
    new concentration changes no dose, only what the pump must check.
    """

    def __init__(self, concentration, profiles, periodic, ptm, max_daily_ng, drug="baclofen"):
        if not MIN_CONCENTRATION <= concentration <= MAX_CONCENTRATION:
            raise ValueError("drug.concentration_mcg_ml: must be 10..5000")
        if len(profiles) != 7:
            raise ValueError("basal: one profile per weekday is required")
        if not 0 < max_daily_ng <= MAX_BOLUS_NG:
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
        self.max_basal_ng_per_day = max(p.max_rate_ng_per_day for p in self.profiles)
        self.concentration = concentration
        self.check_concentration(concentration)
        self._worst_ng = -1

    def check_concentration(self, concentration):
        """Raises ValueError if the basal cannot run at the concentration."""
        if not MIN_CONCENTRATION <= concentration <= MAX_CONCENTRATION:
            raise ValueError("concentration_mcg_ml: must be 10..5000")
        for p in self.profiles:
            p.check(concentration)

    def worst_window_ng(self):
        """Largest basal mass in any limit window (24 h + the late-wake allowance), rounded up."""
        if self._worst_ng < 0:
            from firmware.limits import worst_window_ng

            self._worst_ng = worst_window_ng(self.profiles)
        return self._worst_ng

    def check_pump(self, pump):
        """Checks that need the pump: the hard limit against basal, bolus sizes and rates."""
        from firmware.limits import volume_mass_ng

        c = self.concentration
        margin = volume_mass_ng(pump.margin_nl, c)
        if self.worst_window_ng() + margin > self.max_daily_ng:
            raise ValueError(
                "basal: %s in 24 h plus the limit's margin %s (%d nL: 3 strokes of %d nL and a blocked line's "
                "%d nL) exceeds limits.max_daily_mcg %s"
                % (mcg_text(self.worst_window_ng()), mcg_text(margin), pump.margin_nl, pump.stroke_nl,
                   pump.max_stored_nl, mcg_text(self.max_daily_ng))
            )
        for i in range(len(self.periodic)):
            self._check_bolus(self.periodic[i][1], "periodic_bolus[%d]" % i, pump)
        if self.ptm is not None:
            self._check_bolus(self.ptm[0], "ptm", pump)

    def _check_bolus(self, bolus, key, pump):
        c = self.concentration
        if bolus.amount_ng > muldiv(pump.capacity_nl, c, 1000):  # compared in mass: no rounding
            raise ValueError(key + ".mcg: more than the reservoir holds at this concentration")
        if nl_from_ng(bolus.amount_ng, c) < pump.stroke_nl:
            raise ValueError(key + ".mcg: less than one %d nL stroke at this concentration" % pump.stroke_nl)
        room = max_rate_ng_per_day(c) - self.max_basal_ng_per_day
        if room < 0 or bolus_too_fast(bolus.amount_ng, bolus.minutes, room):
            raise ValueError(key + ".minutes: too short, basal plus bolus would exceed 24 mL/day")


def uniform_profiles(profile):
    return (profile,) * 7
