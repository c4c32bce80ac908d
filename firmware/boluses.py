# Active boluses (two integer-rate phases each), the patient-bolus lockout and count, and the
# ledger of granted bolus mass that the hard limit counts.
#
# Times are pump-clock pairs (day, ms of day). Tables are preallocated: granting a bolus never
# grows a list, and a full table denies rather than forgets.

from firmware.alarms import EV_BOLUS_CANCELLED, EV_BOLUS_END, LOCKOUT, MAX_PER_DAY, OK
from firmware.limits import WINDOW_MS
from firmware.units import MS_PER_DAY, MS_PER_MINUTE, muldivmod
from micropython import const

MAX_ACTIVE = const(4)
_PTM_SLOTS = const(24)
_LEDGER_SLOTS = const(64)
_FREE = const(-1)
_FAR = const(259_200_000)  # 3 days


def since_ms(day0, ms0, day, ms):
    """ms from (day0, ms0) to (day, ms); saturates beyond 2 days either way (windows here are a day)."""
    dd = day - day0
    if dd > 2:
        return _FAR
    if dd < -2:
        return -_FAR
    return dd * MS_PER_DAY + ms - ms0


def shifted(day, ms, by_ms):
    """(day, ms) moved by_ms (|by_ms| well under 2**29) on the pump clock, normalised."""
    t = ms + by_ms
    d = t // MS_PER_DAY
    return day + d, t - d * MS_PER_DAY


class Boluses:
    """A bolus of A ng over M minutes: A*1440 = q*M + r; q+1 ng/day for r minutes, then q ng/day."""

    def __init__(self):
        self.kind = [_FREE] * MAX_ACTIVE
        self.base = [0] * MAX_ACTIVE  # q, ng/day
        self.extra = [0] * MAX_ACTIVE  # 1 during the first r minutes, then 0
        self.hi_left = [0] * MAX_ACTIVE  # ms until the q+1 phase ends ...
        self.end_left = [0] * MAX_ACTIVE  # ... and until the bolus ends
        self.rate_sum = 0  # ng/day of every active bolus
        self.n_active = 0  # most wakes have none: the slot loops are skipped
        self._ptm_day = [0] * _PTM_SLOTS
        self._ptm_ms = [0] * _PTM_SLOTS
        self._ptm_n = 0  # grants recorded, newest at index (_ptm_n - 1) % _PTM_SLOTS
        # Granted mass that can still share a limit window with what comes: end time and ng.
        self._led_day = [0] * _LEDGER_SLOTS
        self._led_ms = [0] * _LEDGER_SLOTS
        self._led_ng = [0] * _LEDGER_SLOTS
        self._led_top = 0  # slots from here on were never used (0 ng): ledger_ng() stops here
        self._qr = [0, 0]

    def active_count(self):
        n = 0
        for i in range(MAX_ACTIVE):
            if self.kind[i] != _FREE:
                n += 1
        return n

    def next_change_ms(self, horizon_ms):
        """ms until the next phase change or end of an active bolus, or horizon_ms if none is sooner."""
        if not self.n_active:
            return horizon_ms
        for i in range(MAX_ACTIVE):
            if self.kind[i] != _FREE:
                if self.extra[i] and self.hi_left[i] < horizon_ms:
                    horizon_ms = self.hi_left[i]
                if self.end_left[i] < horizon_ms:
                    horizon_ms = self.end_left[i]
        return horizon_ms

    def elapse(self, ms):
        """ms of pump time passed (never beyond the next change: the controller stops there)."""
        if not self.n_active:
            return
        for i in range(MAX_ACTIVE):
            if self.kind[i] != _FREE:
                self.hi_left[i] -= ms
                self.end_left[i] -= ms

    def at(self, emit):
        """Phase changes and ends due now."""
        if not self.n_active:
            return
        for i in range(MAX_ACTIVE):
            if self.kind[i] != _FREE:
                if self.extra[i] and self.hi_left[i] <= 0:
                    self.extra[i] = 0
                    self.rate_sum -= 1
                if self.end_left[i] <= 0:
                    self._stop(i, EV_BOLUS_END, emit)

    def _stop(self, i, code, emit):
        self.rate_sum -= self.base[i] + self.extra[i]
        self.n_active -= 1
        kind = self.kind[i]
        self.kind[i] = _FREE
        self.extra[i] = 0
        emit(code, kind, i, 0)

    def cancel(self, emit):
        """Stop every active bolus; returns how many. The ledger keeps their full mass (safe side)."""
        n = 0
        for i in range(MAX_ACTIVE):
            if self.kind[i] != _FREE:
                self._stop(i, EV_BOLUS_CANCELLED, emit)
                n += 1
        return n

    def ptm_check(self, day, ms, lockout_ms, max_per_day):
        """OK, LOCKOUT or MAX_PER_DAY for a patient bolus asked for now."""
        n = self._ptm_n if self._ptm_n < _PTM_SLOTS else _PTM_SLOTS
        in_day = 0
        for back in range(n):
            i = (self._ptm_n - 1 - back) % _PTM_SLOTS
            age = since_ms(self._ptm_day[i], self._ptm_ms[i], day, ms)
            if back == 0 and age < lockout_ms:
                return LOCKOUT
            if age < MS_PER_DAY:
                in_day += 1
        return MAX_PER_DAY if in_day >= max_per_day else OK

    def record_ptm(self, day, ms):
        i = self._ptm_n % _PTM_SLOTS
        self._ptm_day[i] = day
        self._ptm_ms[i] = ms
        self._ptm_n += 1
        if self._ptm_n >= 2 * _PTM_SLOTS:  # keep the counter small; the ring position is unchanged
            self._ptm_n -= _PTM_SLOTS

    def ledger_ng(self, day, ms):
        """Granted mass that can still share a limit window with anything from now on."""
        total = 0
        i = self._led_top  # the slots above were never used; the order of a sum does not matter
        while i:
            i -= 1
            if self._led_ng[i]:
                if since_ms(self._led_day[i], self._led_ms[i], day, ms) >= WINDOW_MS:
                    self._led_ng[i] = 0
                else:
                    total += self._led_ng[i]
        return total

    def shift(self, by_ms):
        """The pump clock was set by by_ms: every recorded time moves with it, so lockouts, counts
        and limit windows keep running on elapsed time (a clock set forward shortens none)."""
        for i in range(_PTM_SLOTS):
            self._ptm_day[i], self._ptm_ms[i] = shifted(self._ptm_day[i], self._ptm_ms[i], by_ms)
        for j in range(self._led_top):
            if self._led_ng[j]:
                self._led_day[j], self._led_ms[j] = shifted(self._led_day[j], self._led_ms[j], by_ms)

    def free_slot(self):
        """An active slot, with a ledger slot free for it, or -1."""
        for i in range(MAX_ACTIVE):
            if self.kind[i] == _FREE:
                for j in range(_LEDGER_SLOTS):
                    if not self._led_ng[j]:
                        return i
                return -1
        return -1

    def add(self, slot, kind, amount_ng, minutes):
        """Starts a bolus now; the caller has checked its top rate and the limit, and records it."""
        r_minutes = _phase_minutes(amount_ng, minutes, self._qr)
        self.kind[slot] = kind
        self.n_active += 1
        self.base[slot] = self._qr[0]
        self.extra[slot] = 1 if r_minutes else 0
        self.hi_left[slot] = r_minutes * MS_PER_MINUTE
        self.end_left[slot] = minutes * MS_PER_MINUTE
        self.rate_sum += self._qr[0] + self.extra[slot]

    def record(self, amount_ng, minutes, day, ms):
        """The ledger keeps a granted bolus's mass until a limit window after its end."""
        end = ms + minutes * MS_PER_MINUTE
        for j in range(_LEDGER_SLOTS):
            if not self._led_ng[j]:
                self._led_day[j] = day + end // MS_PER_DAY
                self._led_ms[j] = end % MS_PER_DAY
                self._led_ng[j] = amount_ng
                if j >= self._led_top:
                    self._led_top = j + 1
                return
        raise RuntimeError("ledger full")  # free_slot() is checked first

    def charge(self, amount_ng, day, ms):
        """Mass reaching the patient now outside any bolus (a released block): the limit counts it
        for a window from now. With the ledger full it joins the entry that lasts longest, kept
        at least as long as this one needs."""
        best = 0
        for j in range(_LEDGER_SLOTS):
            if not self._led_ng[j]:
                self._led_day[j] = day
                self._led_ms[j] = ms
                self._led_ng[j] = amount_ng
                if j >= self._led_top:
                    self._led_top = j + 1
                return
            if since_ms(self._led_day[best], self._led_ms[best], self._led_day[j], self._led_ms[j]) > 0:
                best = j
        if since_ms(self._led_day[best], self._led_ms[best], day, ms) > 0:
            self._led_day[best] = day
            self._led_ms[best] = ms
        self._led_ng[best] += amount_ng


def _phase_minutes(amount_ng, minutes, qr):
    """q (into qr[0]) and r: amount*1440 = q*minutes + r; returns r, the minutes at q+1 ng/day."""
    muldivmod(amount_ng, 1440, minutes, qr)
    return qr[1]
