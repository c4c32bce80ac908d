# Active boluses, the patient-bolus lockout and count, and the rolling 24 h limit ledger.
#
# Times are pump-clock pairs (day, ms of day). Tables are preallocated: granting a bolus never
# grows a list, and a full table denies rather than forgets.

from firmware.alarms import EV_BOLUS_CANCELLED, EV_BOLUS_END, LOCKOUT, MAX_PER_DAY, OK
from firmware.units import MS_PER_DAY, rescale_nl
from micropython import const

MAX_ACTIVE = const(4)
_PTM_SLOTS = const(24)
_LEDGER_SLOTS = const(64)


def since_ms(day0, ms0, day, ms):
    """ms from (day0, ms0) to (day, ms); saturates beyond 2 days, as every window here is 24 h."""
    dd = day - day0
    if dd > 2:
        return 3 * MS_PER_DAY
    return dd * MS_PER_DAY + ms - ms0


class Boluses:
    def __init__(self):
        self.kind = [0] * MAX_ACTIVE
        self.rate = [0] * MAX_ACTIVE  # nL/day; 0 marks a free slot
        self.end_day = [0] * MAX_ACTIVE
        self.end_ms = [0] * MAX_ACTIVE
        self.rate_sum = 0
        self._ptm_day = [0] * _PTM_SLOTS
        self._ptm_ms = [0] * _PTM_SLOTS
        self._ptm_n = 0  # grants recorded, newest at index (_ptm_n - 1) % _PTM_SLOTS
        # Ledger of granted boluses still inside some 24 h window: end time and volume.
        self._led_day = [0] * _LEDGER_SLOTS
        self._led_ms = [0] * _LEDGER_SLOTS
        self._led_nl = [0] * _LEDGER_SLOTS

    def active_count(self):
        n = 0
        for i in range(MAX_ACTIVE):
            if self.rate[i]:
                n += 1
        return n

    def next_end_ms(self, day, ms, horizon_ms):
        """ms until the next active bolus ends, or horizon_ms if none ends sooner."""
        best = horizon_ms
        for i in range(MAX_ACTIVE):
            if self.rate[i]:
                left = -since_ms(self.end_day[i], self.end_ms[i], day, ms)
                if left < best:
                    best = left
        return best

    def expire(self, day, ms, emit):
        for i in range(MAX_ACTIVE):
            if self.rate[i] and since_ms(self.end_day[i], self.end_ms[i], day, ms) >= 0:
                self.rate_sum -= self.rate[i]
                self.rate[i] = 0
                emit(EV_BOLUS_END, self.kind[i], i, 0)

    def cancel(self, emit):
        """Stop every active bolus; returns how many. The ledger keeps their full volume (safe side)."""
        n = 0
        for i in range(MAX_ACTIVE):
            if self.rate[i]:
                self.rate_sum -= self.rate[i]
                self.rate[i] = 0
                emit(EV_BOLUS_CANCELLED, self.kind[i], i, 0)
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

    def ledger_nl(self, day, ms):
        """Volume of granted boluses that can still share a 24 h window with one starting now."""
        total = 0
        for i in range(_LEDGER_SLOTS):
            if self._led_nl[i]:
                if since_ms(self._led_day[i], self._led_ms[i], day, ms) >= MS_PER_DAY:
                    self._led_nl[i] = 0  # ended a day ago: in no window with anything from now on
                else:
                    total += self._led_nl[i]
        return total

    def free_slot(self):
        for i in range(MAX_ACTIVE):
            if not self.rate[i]:
                for j in range(_LEDGER_SLOTS):
                    if not self._led_nl[j]:
                        return i
                return -1
        return -1

    def add(self, slot, kind, rate_nl_per_day, end_day, end_ms, volume_nl):
        self.kind[slot] = kind
        self.rate[slot] = rate_nl_per_day
        self.end_day[slot] = end_day
        self.end_ms[slot] = end_ms
        self.rate_sum += rate_nl_per_day
        for j in range(_LEDGER_SLOTS):
            if not self._led_nl[j]:
                self._led_day[j] = end_day
                self._led_ms[j] = end_ms
                self._led_nl[j] = volume_nl
                return
        raise RuntimeError("ledger full")  # free_slot() is checked first

    def rescale(self, old_concentration, new_concentration):
        """New concentration: ledger volumes become the nL of the same drug, rounded up (safe side).

        Active boluses are not rescaled: a refill with a new concentration stops them first.
        """
        for j in range(_LEDGER_SLOTS):
            if self._led_nl[j]:
                self._led_nl[j] = rescale_nl(self._led_nl[j], old_concentration, new_concentration)
