# The controller loop: wakes only when the schedule changes, hands the motor exact stroke trains.
#
# Delivery rule: stroke k fires at the first whole millisecond at which the ideal cumulative
# volume (basal plus granted boluses, each at its integer nL/day rate) reaches k strokes. The
# controller keeps only `due` = ideal - delivered (< one stroke), so nothing grows over years.

from firmware.alarms import (
    ALARM_EMPTY_RESERVOIR,
    BUSY,
    CAPACITY,
    CLINICIAN,
    CONCENTRATION,
    EMPTY,
    EV_BOLUS,
    EV_LIMIT_TRUNCATED,
    EV_PROGRAM,
    EV_PROGRAM_REJECTED,
    EV_REFILL,
    EV_REFILL_REJECTED,
    EV_UNDER_DELIVERY,
    LIMIT,
    NO_BOLUS,
    NOT_CONFIGURED,
    OK,
    PERIODIC,
    PTM,
    RATE,
    Alarms,
)
from firmware.boluses import Boluses, since_ms
from firmware.prescription import MAX_PERIODIC, Bolus, bolus_rate_nl_per_day
from firmware.reservoir import Reservoir
from firmware.schedule import basal_rate_nl_per_day, next_change_ms
from firmware.units import MAX_RATE_NL_PER_DAY, MS_PER_DAY, MS_PER_MINUTE, NL_PER_ML, muldivmod, ng_from_nl, rescale_nl
from hal.train import StrokeTrain
from micropython import const

_MAX_WAKE_MS = const(86_400_000)  # one day; also keeps every tick delta far inside ticks_diff's +-2**29


class Totals:
    """A lifetime volume as whole mL + nL (+ a fraction in 1/MS_PER_DAY nL): years fit small ints."""

    def __init__(self):
        self.ml = 0
        self.nl = 0
        self.frac = 0

    def add(self, nl, frac):
        self.frac += frac
        if self.frac >= MS_PER_DAY:
            self.frac -= MS_PER_DAY
            nl += 1
        self.nl += nl
        if self.nl >= NL_PER_ML:
            more = self.nl // NL_PER_ML
            self.ml += more
            self.nl -= more * NL_PER_ML

    def total_nl(self):
        """Whole nL as one int: for hosts and tests only (years of it do not fit a small int)."""
        return self.ml * NL_PER_ML + self.nl


class Controller:
    """Hardware comes in as arguments: clock (hal.interfaces Clock), motor (Motor), and emit, the
    event sink emit(code, a, b, c). weekday (0 = Monday) and time_of_day_ms set the pump clock."""

    def __init__(self, clock, motor, pump, rx, emit, volume_nl=-1, weekday=0, time_of_day_ms=0):
        rx.check_pump(pump)
        if not 0 <= weekday < 7:
            raise ValueError("weekday: must be 0..6")
        if not 0 <= time_of_day_ms < MS_PER_DAY:
            raise ValueError("time_of_day_ms: must be 0..86399999")
        self._clock = clock
        self._motor = motor
        self._emit = emit
        self.pump = pump
        self.rx = rx
        self.alarms = Alarms(emit)
        self.reservoir = Reservoir(pump, pump.capacity_nl if volume_nl < 0 else volume_nl, self.alarms)
        self.boluses = Boluses()
        self.train = StrokeTrain()
        self.weekday0 = weekday
        self.day = 0
        self.ms = time_of_day_ms
        self.rate = 0  # ideal rate in force, nL/day: basal plus active boluses
        self.due_nl = 0  # ideal minus delivered, whole nL ...
        self.due_frac = 0  # ... plus this many 1/MS_PER_DAY nL
        self.ideal = Totals()  # everything prescribed and granted, including while suspended
        self.delivered = Totals()
        self.missed = Totals()  # ideal volume not delivered (reservoir empty); never made up
        self._qr = [0, 0]
        self._periodic_day = [-1] * MAX_PERIODIC
        self._prev_basal_nl = 0  # basal 24 h maximum of the program replaced ...
        self._prev_day = -2  # ... at this pump time; it bounds windows for 24 h
        self._prev_ms = 0
        self._seen = 0
        self._tick = clock.ticks_ms()
        self._deadline = self._tick
        self._step()

    # -- the loop ---------------------------------------------------------------------------

    def deadline(self):
        """Tick by which service() must be called (the next schedule change)."""
        return self._deadline

    def service(self):
        """Account for what happened since the last wake, apply due changes, plan the next train."""
        self._sync()
        self._step()
        return self._deadline

    def weekday(self):
        return (self.weekday0 + self.day) % 7

    def suspended(self):
        return self.alarms.active & ALARM_EMPTY_RESERVOIR

    def _sync(self):
        clock = self._clock
        now = clock.ticks_ms()
        elapsed = clock.ticks_diff(now, self._tick)
        self._tick = now
        strokes = self._motor.emitted() - self._seen
        self._seen += strokes
        qr = self._qr
        while elapsed > 0:
            span = elapsed if elapsed < _MAX_WAKE_MS else _MAX_WAKE_MS
            muldivmod(self.rate, span, MS_PER_DAY, qr)
            self.ideal.add(qr[0], qr[1])
            if self.suspended():
                self.missed.add(qr[0], qr[1])
            else:
                self.due_frac += qr[1]
                if self.due_frac >= MS_PER_DAY:
                    self.due_frac -= MS_PER_DAY
                    self.due_nl += 1
                self.due_nl += qr[0]
            self.ms += span
            if self.ms >= MS_PER_DAY:
                self.ms -= MS_PER_DAY
                self.day += 1
            elapsed -= span
        if strokes:
            volume = strokes * self.pump.stroke_nl
            self.due_nl -= volume
            self.delivered.add(volume, 0)
            self.reservoir.take(strokes)

    def _step(self):
        """Changes due now (bolus ends and starts, thresholds), then the next train."""
        day = self.day
        ms = self.ms
        self.boluses.expire(day, ms, self._emit)
        periodic = self.rx.periodic
        for i in range(len(periodic)):
            if periodic[i][0] == ms and self._periodic_day[i] != day:
                self._periodic_day[i] = day
                bolus = periodic[i][1]
                self._grant(PERIODIC, bolus.amount_ng, bolus.minutes)
        self._check_reservoir()
        self._plan()

    def _check_reservoir(self):
        was = self.suspended()
        self.reservoir.check()
        if self.suspended() and not was:
            # Stopped: what was due is written off, and never made up after a refill.
            self.missed.add(self.due_nl, self.due_frac)
            self.due_nl = 0
            self.due_frac = 0
            self.boluses.cancel(self._emit)

    def _plan(self):
        rx = self.rx
        s = self.pump.stroke_nl
        qr = self._qr
        self.rate = basal_rate_nl_per_day(rx, self.weekday(), self.ms) + self.boluses.rate_sum
        span = next_change_ms(rx, self.weekday(), self.ms)
        span = self.boluses.next_end_ms(self.day, self.ms, span)
        rate = self.rate
        train = self.train
        if self.due_nl >= s:  # the motor fell a whole stroke behind: never catch up in a burst
            behind = self.due_nl - self.due_nl % s
            self.due_nl -= behind
            self.missed.add(behind, 0)
            self._emit(EV_UNDER_DELIVERY, behind, 0, 0)
        count = 0
        if rate and not self.suspended():
            muldivmod(rate, span, MS_PER_DAY, qr)
            end_nl = self.due_nl + qr[0] + (1 if self.due_frac + qr[1] >= MS_PER_DAY else 0)
            count = end_nl // s
        if count:
            # tau_1 = (need * MS_PER_DAY - due_frac) / rate ms, kept as first_ms + first_rem/rate.
            muldivmod(s - self.due_nl, MS_PER_DAY, rate, qr)
            first_ms = qr[0]
            t = qr[1] - self.due_frac  # may be negative: floor division normalises it
            carry = t // rate
            first_ms += carry
            first_rem = t - carry * rate
            period_ms = 0
            period_rem = 0
            if count > 1:  # the period fits only when a second stroke falls inside the span
                muldivmod(s, MS_PER_DAY, rate, qr)
                period_ms = qr[0]
                period_rem = qr[1]
            cap = self.reservoir.strokes_available()
            low = self.reservoir.strokes_to_low()
            if 0 < low < cap:
                cap = low
            if count > cap:
                # Wake at the stroke that crosses a threshold: tau_cap = tau_1 + (cap-1) * period.
                count = cap
                muldivmod(cap - 1, period_rem, rate, qr)
                t = first_rem + qr[1]
                at_ms = first_ms + (cap - 1) * period_ms + qr[0] + t // rate
                span = at_ms + (1 if t % rate else 0)
            train.set(self._tick, count, first_ms, first_rem, period_ms, period_rem, rate)
        else:
            train.clear(self._tick)
        self._motor.start(train)
        self._seen = 0
        self._deadline = self._clock.ticks_add(self._tick, span)

    # -- requests -----------------------------------------------------------------------------

    def _basal_cap_nl(self):
        cap = self.rx.basal_max_24h_nl
        if self._prev_basal_nl > cap and since_ms(self._prev_day, self._prev_ms, self.day, self.ms) < MS_PER_DAY:
            cap = self._prev_basal_nl
        return cap

    def headroom_nl(self):
        """Bolus volume that still fits the hard limit in every 24 h window from now on.

        Conservative: the worst 24 h of basal (of this program and one replaced within 24 h), plus
        every bolus that can share a window with one starting now. The limit is rounded down to
        whole strokes, so delivered strokes never exceed it either.
        """
        limit = self.rx.max_daily_nl
        limit -= limit % self.pump.stroke_nl
        return limit - self._basal_cap_nl() - self.boluses.ledger_nl(self.day, self.ms)

    def _grant(self, kind, amount_ng, minutes):
        emit = self._emit
        if self.suspended():
            emit(EV_BOLUS, kind, EMPTY, 0)
            return EMPTY
        slot = self.boluses.free_slot()
        if slot < 0:
            emit(EV_BOLUS, kind, BUSY, 0)
            return BUSY
        rx = self.rx
        volume = rx.bolus_nl(amount_ng)
        granted_ng = amount_ng
        room = self.headroom_nl()
        if volume > room:
            # Truncate to whole ng, and deliver exactly the dose that is reported as granted.
            granted_ng = ng_from_nl(room, rx.concentration) if room > 0 else 0
            volume = rx.bolus_nl(granted_ng)
            if volume < self.pump.stroke_nl:
                emit(EV_BOLUS, kind, LIMIT, 0)
                return LIMIT
        rate = bolus_rate_nl_per_day(volume, minutes)
        if rate + rx.max_basal_rate_nl_per_day + self.boluses.rate_sum > MAX_RATE_NL_PER_DAY:
            emit(EV_BOLUS, kind, RATE, 0)
            return RATE
        end_ms = self.ms + minutes * MS_PER_MINUTE
        end_day = self.day + end_ms // MS_PER_DAY
        self.boluses.add(slot, kind, rate, end_day, end_ms % MS_PER_DAY, volume)
        if granted_ng != amount_ng:
            emit(EV_LIMIT_TRUNCATED, kind, amount_ng, granted_ng)
        emit(EV_BOLUS, kind, OK, granted_ng)
        return OK

    def request_bolus(self, amount_ng, minutes):
        """Clinician bolus. Returns OK or the reason it was denied (also emitted)."""
        Bolus(amount_ng, minutes, "bolus")  # ValueError names the bad field; nothing changes
        self._sync()
        self._step()
        reason = self._grant(CLINICIAN, amount_ng, minutes)
        self._plan()
        return reason

    def request_ptm(self):
        """The patient asks for a bolus: granted only outside lockout and under the daily count."""
        self._sync()
        self._step()
        ptm = self.rx.ptm
        reason = NOT_CONFIGURED if ptm is None else self.boluses.ptm_check(
            self.day, self.ms, ptm[1] * MS_PER_MINUTE, ptm[2])
        if ptm is None or reason:
            self._emit(EV_BOLUS, PTM, reason, 0)
            return reason
        bolus = ptm[0]
        reason = self._grant(PTM, bolus.amount_ng, bolus.minutes)
        if reason == OK:
            self.boluses.record_ptm(self.day, self.ms)
            self._plan()
        return reason

    def cancel_bolus(self):
        """Stops every bolus in progress. Returns OK, or NO_BOLUS if none was."""
        self._sync()
        self._step()
        if not self.boluses.cancel(self._emit):
            return NO_BOLUS
        self._plan()
        return OK

    def refill(self, volume_nl, concentration):
        """Drug added to the reservoir. A new concentration means the old drug was withdrawn first,
        so the reservoir then holds exactly volume_nl; the prescribed mcg/day stay."""
        if not 0 < volume_nl <= self.pump.capacity_nl:
            raise ValueError("refill.volume_ml: must be more than 0 and at most the reservoir capacity")
        if not 10 <= concentration <= 5000:
            raise ValueError("refill.concentration_mcg_ml: must be 10..5000")
        self._sync()
        self._step()
        rx = self.rx
        old = rx.concentration
        if concentration == old:
            if self.reservoir.volume_nl + volume_nl > self.pump.capacity_nl:
                self._emit(EV_REFILL_REJECTED, CAPACITY, 0, 0)
                return CAPACITY
            self.reservoir.volume_nl += volume_nl
        else:
            try:
                rx.set_concentration(concentration)
                rx.check_pump(self.pump)
            except ValueError:
                rx.set_concentration(old)
                self._emit(EV_REFILL_REJECTED, CONCENTRATION, 0, 0)
                return CONCENTRATION
            self.boluses.cancel(self._emit)  # their nL rates belong to the old drug
            self.boluses.rescale(old, concentration)
            if self._prev_basal_nl:
                self._prev_basal_nl = rescale_nl(self._prev_basal_nl, old, concentration)
            self.reservoir.volume_nl = volume_nl
        self._emit(EV_REFILL, self.reservoir.volume_nl, concentration, 0)
        self._check_reservoir()
        self._plan()
        return OK

    def program(self, rx):
        """Replace the prescription (validated Prescription at the same concentration)."""
        rx.check_pump(self.pump)
        if rx.concentration != self.rx.concentration:
            raise ValueError("program: drug.concentration_mcg_ml must match the drug in the reservoir")
        self._sync()
        self._step()
        old_basal = self._basal_cap_nl()
        limit = rx.max_daily_nl - rx.max_daily_nl % self.pump.stroke_nl
        worst = rx.basal_max_24h_nl if rx.basal_max_24h_nl > old_basal else old_basal
        if limit - worst - self.boluses.ledger_nl(self.day, self.ms) < 0:
            self._emit(EV_PROGRAM_REJECTED, LIMIT, 0, 0)
            return LIMIT
        if rx.max_basal_rate_nl_per_day + self.boluses.rate_sum > MAX_RATE_NL_PER_DAY:
            self._emit(EV_PROGRAM_REJECTED, RATE, 0, 0)
            return RATE
        self._prev_basal_nl = old_basal
        self._prev_day = self.day
        self._prev_ms = self.ms
        self.rx = rx
        for i in range(MAX_PERIODIC):  # a new periodic list starts from tomorrow where its time is past
            self._periodic_day[i] = self.day if i < len(rx.periodic) and rx.periodic[i][0] <= self.ms else -1
        self._emit(EV_PROGRAM, 0, 0, 0)
        self._plan()
        return OK
