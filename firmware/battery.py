# Battery gauge: counts the charge of the events the firmware causes, reads the cell voltage, and
# raises ERI (elective replacement) and EOS (end of service), which never go back down.
#
# Charge is whole mC + uC (0..999) + nC (0..999, the quiescent draw's remainder); service time is
# whole days + ms of the day. Both stay small ints over years at a hundred times the nominal draw.
# The chemistry, capacity, draws and thresholds are documented assumptions: docs/battery.md.

from firmware.units import MS_PER_DAY, muldivmod
from micropython import const

NORMAL = const(0)
ERI = const(1)
EOS = const(2)

# What raised a level (the index into firmware.alarms.BATTERY_CAUSES)
CAUSE_PROJECTION = const(1)  # the projected days of service left reached ERI_DAYS_LEFT
CAUSE_VOLTAGE = const(2)  # the cell voltage fell below the threshold
CAUSE_AFTER_ERI = const(3)  # ERI_TO_EOS_DAYS after ERI, to the ms
CAUSE_SERVICE_LIMIT = const(4)  # SERVICE_DAYS of service

ERI_TO_EOS_DAYS = const(90)
SERVICE_DAYS = const(2557)  # 7 years of 365.25 days, the design life
ERI_MARGIN_DAYS = const(30)  # usage may rise by a third after ERI and the usable charge still lasts 90 days
ERI_DAYS_LEFT = const(120)  # ERI_TO_EOS_DAYS + ERI_MARGIN_DAYS
WINDOW_DAYS = const(7)  # days_left() uses the usage of the last 7 whole days
USABLE_PERMILLE = const(900)  # usable = 90% of the rated capacity: the cell's knee begins there
MAX_MS = const(0x1FFFFFFF)  # 2**29 - 1: ms_to_next_event() when no time-driven change is ahead

# The voltage rule (docs/battery.md): ERI or EOS by voltage only after VOLTAGE_READINGS consecutive
# readings below its threshold, each at rest (REST_MS after the last stroke, tone or command the
# loop reported) and READING_SPACING_MS after the one before: a glitch cannot end the therapy.
VOLTAGE_READINGS = const(3)
READING_SPACING_MS = const(300_000)  # 5 minutes
REST_MS = const(2000)

_RING = const(8)  # day marks kept: WINDOW_DAYS + 1
_CHUNK = const(5000)  # events charged per add: 5000 x 100_000 uC < 2**29
_SAT_MC = const(0x1FFFFFFF)  # the count stops at 2**29 mC (149 Ah), far past any cell


def _check(key, value, lo, hi, unit):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError("%s: must be %d..%d%s" % (key, lo, hi, unit))
    return value


class BatteryParams:
    """The gauge's nominal figures. Defaults: a 720 mAh lithium primary cell (see docs/battery.md)."""

    def __init__(self, capacity_mah=720, quiescent_ua=10, uc_per_stroke=50, uc_per_tone_s=3000,
                 uc_per_command=5000, eri_mv=2800, eos_mv=2600):
        self.capacity_mah = _check("battery.capacity_mah", capacity_mah, 100, 5000, " mAh")
        self.quiescent_ua = _check("battery.quiescent_ua", quiescent_ua, 1, 100, " uA")
        self.uc_per_stroke = _check("battery.uc_per_stroke", uc_per_stroke, 1, 10_000, " uC")
        self.uc_per_tone_s = _check("battery.uc_per_tone_s", uc_per_tone_s, 0, 100_000, " uC")
        self.uc_per_command = _check("battery.uc_per_command", uc_per_command, 0, 100_000, " uC")
        self.eri_mv = _check("battery.eri_mv", eri_mv, 2000, 3600, " mV")
        self.eos_mv = _check("battery.eos_mv", eos_mv, 1800, 3500, " mV")
        if eos_mv >= eri_mv:
            raise ValueError("battery.eos_mv: must be below battery.eri_mv")

    def usable_mc(self):
        return self.capacity_mah * (3600 * USABLE_PERMILLE // 1000)


class Gauge:
    """Coulomb counter and level of the cell. adc: read_mv() -> the cell voltage in mV (HAL).

    The loop reports what it does: elapse(ms) for time, strokes(n), tone(seconds), command();
    it calls check() at least once a day and at ms_to_next_event(). Nothing here allocates but
    __init__ and bad input.
    """

    def __init__(self, adc, params):
        self._adc = adc
        self.params = params
        self._q_ua = params.quiescent_ua
        self._s_uc = params.uc_per_stroke
        self._t_uc = params.uc_per_tone_s
        self._k_uc = params.uc_per_command
        self._eri_mv = params.eri_mv
        self._eos_mv = params.eos_mv
        self._usable_mc = params.usable_mc()
        self._pct_mc = params.capacity_mah * 36  # mC in 1% of the capacity
        self.level = NORMAL
        self.service_day = 0  # whole days of service counted by elapse() ...
        self.service_ms = 0  # ... and ms of the current day (0..MS_PER_DAY-1)
        self._mc = 0  # charge counted: mC ...
        self._uc = 0  # ... uC (0..999) ...
        self._nc = 0  # ... nC (0..999)
        self._marks = [0] * _RING  # mC counted at the start of day d, at [d % _RING]
        self._win_mc = 0  # mC counted over the window days_left() projects from, and its whole days:
        self._win_days = 0  # set at each new day (days_left() runs at every wake)
        self._qr = [0, 0]
        self.mv = 0  # the last voltage read by check()
        self.eri_day = -1  # when ERI and EOS were reached (day, ms of the day), -1 before
        self.eri_ms = 0
        self.eri_cause = 0
        self.eos_day = -1
        self.eos_ms = 0
        self.eos_cause = 0
        # The voltage rule: ms since the last load the loop reported (a tone's end is ahead: < 0) and
        # since the last reading counted, both held at READING_SPACING_MS; consecutive readings
        # counted below eri_mv and below eos_mv.
        self._rest_ms = READING_SPACING_MS
        self._gap_ms = READING_SPACING_MS
        self._n_eri = 0
        self._n_eos = 0
        self.low = 0  # the threshold the last reading fell below without raising its level (0: none) ...
        self.low_n = 0  # ... and the readings counted towards it so far (0..VOLTAGE_READINGS-1)
        self.proj_eri_day = -1  # service days of the projected ERI and EOS (project())
        self.proj_eos_day = SERVICE_DAYS
        self.project()

    # ---- what the loop reports

    def elapse(self, ms):
        """ms (0..2**30-1) of service: the quiescent draw, and the service clock advances."""
        step = ms if ms < READING_SPACING_MS else READING_SPACING_MS  # held there: small ints
        self._rest_ms += step
        if self._rest_ms > READING_SPACING_MS:
            self._rest_ms = READING_SPACING_MS
        self._gap_ms += step
        if self._gap_ms > READING_SPACING_MS:
            self._gap_ms = READING_SPACING_MS
        while ms > 0:
            step = MS_PER_DAY - self.service_ms
            if step > ms:
                step = ms
            self._quiescent(step)
            ms -= step
            self.service_ms += step
            if self.service_ms >= MS_PER_DAY:
                self._new_day()

    def _quiescent(self, ms):
        # uA x ms = nC
        self._add_uc(muldivmod(self._q_ua, ms, 1000, self._qr))
        self._nc += self._qr[1]
        if self._nc >= 1000:
            self._nc -= 1000
            self._add_uc(1)

    def _new_day(self):
        self.service_ms = 0
        self.service_day += 1
        day = self.service_day
        self._marks[day % _RING] = self._mc
        if day >= WINDOW_DAYS:
            self._win_mc = self._mc - self._marks[(day - WINDOW_DAYS) % _RING]
            self._win_days = WINDOW_DAYS
        else:
            self._win_mc = self._mc
            self._win_days = day

    def strokes(self, n):
        """n strokes since the last report: the motor ran, up to now for all the gauge knows."""
        if 0 < n <= _CHUNK:  # a wake's strokes: one add
            self._add_uc(n * self._s_uc)
        else:
            self._add_n(n, self._s_uc)
        if n > 0 and self._rest_ms > 0:
            self._rest_ms = 0

    def tone(self, seconds):
        """A tone of that many seconds starts now: the cell is under load until it ends."""
        self._add_n(seconds, self._t_uc)
        if seconds > 0:
            seconds = -1000 * seconds if seconds < 3600 else -3_600_000  # ms until it ends
            if seconds < self._rest_ms:
                self._rest_ms = seconds

    def command(self):
        self._add_uc(self._k_uc)
        if self._rest_ms > 0:  # the programmer session's telemetry just ran
            self._rest_ms = 0

    def _add_n(self, n, uc):
        while n > _CHUNK:
            self._add_uc(_CHUNK * uc)
            n -= _CHUNK
        if n > 0:
            self._add_uc(n * uc)

    def _add_uc(self, uc):
        uc += self._uc
        if uc >= 1000:
            self._mc += uc // 1000
            uc %= 1000
            if self._mc > _SAT_MC:
                self._mc = _SAT_MC
        self._uc = uc

    # ---- level

    def check(self):
        """Reads the ADC; raises ERI and EOS as due (never lowers the level) and returns the level.
        low and low_n tell the loop of a low reading that raised nothing (yet)."""
        self.mv = self._adc.read_mv()
        self.low = 0
        if self.level != EOS:
            self._timed()
            self._voltage()
            if self.level == NORMAL and 0 <= self.days_left() <= ERI_DAYS_LEFT:
                self._raise(ERI, self.service_day, self.service_ms, CAUSE_PROJECTION)
        return self.level

    def _voltage(self):
        # The voltage rule. A reading at or above a threshold resets its count, at rest or not (a
        # loaded cell reads lower, never higher). A low one counts if taken at rest, and spaced
        # from the last one counted while a confirmation runs; a reading below eos_mv is below
        # eri_mv too, so it counts for both.
        mv = self.mv
        if mv >= self._eri_mv:
            self._n_eri = 0
        if mv >= self._eos_mv:
            self._n_eos = 0
        if mv >= (self._eri_mv if self.level == NORMAL else self._eos_mv):
            return  # not low for the next level
        if self._rest_ms >= REST_MS and (self._gap_ms >= READING_SPACING_MS or not self._n_eri):
            self._gap_ms = 0
            self._n_eri += 1
            if mv < self._eos_mv:
                self._n_eos += 1
                if self._n_eos >= VOLTAGE_READINGS:
                    self._raise(EOS, self.service_day, self.service_ms, CAUSE_VOLTAGE)
                    return
            if self.level == NORMAL and self._n_eri >= VOLTAGE_READINGS:
                self._raise(ERI, self.service_day, self.service_ms, CAUSE_VOLTAGE)
        if mv < self._eos_mv:
            self.low = self._eos_mv
            self.low_n = self._n_eos
        elif self.level == NORMAL:
            self.low = self._eri_mv
            self.low_n = self._n_eri

    def _timed(self):
        # EOS at its exact instant, however late the check: ERI + 90 days or the service limit.
        # ERI comes at the latest 90 days before the service limit: the 90-day warning is kept.
        if self.level == NORMAL and self.service_day >= SERVICE_DAYS - ERI_TO_EOS_DAYS:
            self._raise(ERI, SERVICE_DAYS - ERI_TO_EOS_DAYS, 0, CAUSE_SERVICE_LIMIT)
        if self.level == ERI and self.eri_day + ERI_TO_EOS_DAYS < SERVICE_DAYS:
            if self._reached(self.eri_day + ERI_TO_EOS_DAYS, self.eri_ms):
                self._raise(EOS, self.eri_day + ERI_TO_EOS_DAYS, self.eri_ms, CAUSE_AFTER_ERI)
        elif self.service_day >= SERVICE_DAYS:
            self._raise(EOS, SERVICE_DAYS, 0, CAUSE_SERVICE_LIMIT)

    def _reached(self, day, ms):
        return self.service_day > day or (self.service_day == day and self.service_ms >= ms)

    def _raise(self, level, day, ms, cause):
        if self.level == NORMAL:  # EOS first: ERI at the same instant
            self.eri_day = day
            self.eri_ms = ms
            self.eri_cause = cause
        if level == EOS:
            self.eos_day = day
            self.eos_ms = ms
            self.eos_cause = cause
        self.level = level
        self.project()

    def ms_to_next_event(self):
        """ms until the next reading the voltage rule needs (after a low one: when the cell will
        have rested REST_MS and, while a confirmation runs, READING_SPACING_MS have passed since
        the last reading counted) or the next time-driven level change (ERI + 90 days, or the
        service limit), whichever is first; 0 if overdue, MAX_MS if none is within MAX_MS."""
        ms = self._timed_ms()
        if self.low:
            wait = REST_MS - self._rest_ms
            if self._n_eri and READING_SPACING_MS - self._gap_ms > wait:
                wait = READING_SPACING_MS - self._gap_ms
            if wait < ms:
                ms = wait if wait > 0 else 0
        return ms

    def _timed_ms(self):
        if self.level == EOS:
            return MAX_MS
        day = SERVICE_DAYS - ERI_TO_EOS_DAYS if self.level == NORMAL else SERVICE_DAYS
        ms = 0
        if self.level == ERI and self.eri_day + ERI_TO_EOS_DAYS < SERVICE_DAYS:
            day = self.eri_day + ERI_TO_EOS_DAYS
            ms = self.eri_ms
        day -= self.service_day
        if day > 7:  # over 7 days, less one day's ms: more than MAX_MS
            return MAX_MS
        ms += day * MS_PER_DAY - self.service_ms
        if ms < 0:
            return 0
        return ms if ms < MAX_MS else MAX_MS

    # ---- projections

    def days_left(self):
        """Whole days until the charge counted reaches the usable capacity at the usage of the last
        WINDOW_DAYS whole days (all whole days so far before that); 0 once reached; -1 while no
        usage is known: on day 0, whose fraction of a day (the implant's prime, the first tones)
        would project a service life of minutes, and while nothing was counted in the window."""
        if self._win_mc <= 0:  # day 0 (nothing counted yet) included
            return -1
        if self._mc >= self._usable_mc:
            return 0
        return (self._usable_mc - self._mc) * self._win_days // self._win_mc

    def eri_in_days(self):
        """Whole days from now to the projected ERI; 0 once reached; -1 while unknown."""
        if self.level:
            return 0
        latest = SERVICE_DAYS - ERI_TO_EOS_DAYS - self.service_day - (1 if self.service_ms else 0)
        left = self.days_left()
        if left < 0:
            return latest if latest > 0 else 0
        left = left - ERI_DAYS_LEFT if left > ERI_DAYS_LEFT else 0
        return left if left < latest else (latest if latest > 0 else 0)

    def eos_in_days(self):
        """Whole days from now to the projected EOS: the earliest of ERI + 90 days, the service limit
        and the charge projection; 0 once reached. Never -1: the service limit is always known."""
        if self.level == EOS:
            return 0
        end = SERVICE_DAYS - self.service_day - (1 if self.service_ms else 0)
        if self.level == ERI:
            days = self.eri_day + ERI_TO_EOS_DAYS - self.service_day - (1 if self.eri_ms < self.service_ms else 0)
        else:
            days = self.eri_in_days()
            if days >= 0:
                days += ERI_TO_EOS_DAYS
        if 0 <= days < end:
            end = days
        days = self.days_left()
        if 0 <= days < end:
            end = days
        return end if end > 0 else 0

    def project(self):
        """Recalculates the projected ERI and EOS service days (proj_eri_day, -1 while unknown, and
        proj_eos_day): at start, and when the loop asks (every refill and bolus start)."""
        days = self.eri_in_days()
        self.proj_eri_day = self.eri_day if self.level else (self.service_day + days if days >= 0 else -1)
        self.proj_eos_day = self.eos_day if self.level == EOS else self.service_day + self.eos_in_days()

    # ---- reports

    def used_mc(self):
        return self._mc

    def percent_left(self):
        """0..100: the rated capacity not yet counted, in whole percent (rounded down)."""
        left = self.params.capacity_mah * 3600 - self._mc
        return left // self._pct_mc if left > 0 else 0
