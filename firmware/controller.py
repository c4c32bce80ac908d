# The controller: paces strokes by drug mass at the catheter tip, and serves requests.
#
# Delivery rule (docs/delivery.md): stroke k fires at the first whole millisecond at which the
# ideal cumulative drug mass reaches the mass that strokes 1..k push out of the tip. The
# controller keeps only `due` = ideal - delivered (under one stroke while delivering), so nothing
# grows over years. Every schedule change is applied at its exact millisecond, however late the
# wake. Hot methods are small and keep their state in attributes: MicroPython puts a frame of
# more than about 11 words on the heap.

import sys

from firmware.alarms import (
    ALARM_EMPTY_RESERVOIR,
    ALARM_UNDER_DELIVERY,
    BUSY,
    CAPACITY,
    CLINICIAN,
    CONCENTRATION,
    EMPTY,
    EV_BOLUS,
    EV_CLOCK_SET,
    EV_LIMIT_HELD,
    EV_LIMIT_HOLD_ENDED,
    EV_LIMIT_TRUNCATED,
    EV_PRIME,
    EV_PRIME_DONE,
    EV_PRIME_REJECTED,
    EV_PROGRAM,
    EV_PROGRAM_REJECTED,
    EV_REFILL,
    EV_REFILL_REJECTED,
    EV_UNDER_DELIVERY,
    LIMIT,
    NO_BOLUS,
    NOT_CONFIGURED,
    OK,
    PATH_FULL,
    PERIODIC,
    PRIMING,
    PROGRAMS_FULL,
    PTM,
    RATE,
    STOPPED,
    Alarms,
)
from firmware.boluses import Boluses, shifted, since_ms
from firmware.limits import LATE_WAKE_MS, WINDOW_MS, transition_max_ng, volume_mass_ng
from firmware.path import Path
from firmware.prescription import bolus_too_fast, check_bolus_args
from firmware.reservoir import Reservoir
from firmware.schedule import basal_ng_per_day, next_change_ms
from firmware.units import (
    MS_PER_DAY,
    MS_PER_HOUR,
    MS_PER_MINUTE,
    NL_PER_ML,
    SUB_PER_PG,
    add_mass,
    max_rate_ng_per_day,
    muldiv_ceil,
    muldivmod,
    nl_from_ng,
    sub_mass,
)
from hal.train import COUNT_MASK, StrokeTrain
from micropython import const

_MAX_HISTORY = const(4)  # programs replaced within a limit window that the limit still counts
UNDER_DELIVERY_PERCENT = const(10)  # of the prescription asked in the window, missed: under_delivery (docs/alarms.md)
_WINDOW_HOURS = const(24)
_WEEK_MS = const(604_800_000)
_HALF_WEEK_MS = const(302_400_000)  # set_clock moves the clock at most this far either way

# Why delivery is held (Controller.held, a bit each): no stroke is planned and nothing accrues
# while any is set; what would have accrued is written off as missed, never made up.
HOLD_EMPTY = const(1)  # the reservoir is at its empty threshold (until a refill)
HOLD_SUSPENDED = const(2)  # a clinician's suspend (until resume)
HOLD_STALL = const(4)  # a stroke did not complete (until a retry completes one)
HOLD_OCCLUSION = const(8)  # the load crossed the occlusion threshold (until the block releases)
HOLD_EOS = const(16)  # end of service: for good
HOLD_RUNAWAY = const(32)  # the motor moved uncommanded: power cut, for good
HOLD_LIMIT = const(64)  # a released block let through more than the margin covers: until that much is withheld
HOLD_FAULT = const(128)  # critical_fault: the journal or a self-test failed: for good
# Holds whose write-off the under-delivery window does not count as missed: a clinician's suspend
# (asked for), and delivery stopped for good (its critical alarm stands until the pump is replaced).
_NOT_MISSED = const(178)  # HOLD_SUSPENDED | HOLD_EOS | HOLD_RUNAWAY | HOLD_FAULT


class Totals:
    """A lifetime amount as whole units of 10**6 + the rest: years of it fit small ints."""

    def __init__(self):
        self.big = 0
        self.small = 0

    def add(self, amount):
        self.small += amount
        if self.small >= NL_PER_ML:
            self.big += self.small // NL_PER_ML
            self.small %= NL_PER_ML

    def total(self):
        """As one int: for hosts and tests only (years of it do not fit a small int)."""
        return self.big * NL_PER_ML + self.small


class MissedWindow:
    """The prescription's mass asked and missed over the last 24 hours of the pump clock, in ng, one
    bucket per pump-clock hour: the current hour so far and the 23 whole hours before it (23 to 24
    h). Fixed lists of small ints (at most 24 mL/day at 5000 mcg/mL: 1.2e8 ng a day), nothing
    allocated after construction.

    Starts as if the pump had run the day before at seed_ng_per_day with nothing missed, so a miss
    in the first hours is judged against a day's dose, not against the minutes delivered so far."""

    def __init__(self, ms_of_day, seed_ng_per_day):
        per_hour = seed_ng_per_day // _WINDOW_HOURS
        self.asked = [per_hour] * _WINDOW_HOURS
        self.missed = [0] * _WINDOW_HOURS
        self.i = ms_of_day // MS_PER_HOUR  # the current bucket (hour of the pump clock mod 24) ...
        self.pos = ms_of_day % MS_PER_HOUR  # ... and ms into it
        self.asked[self.i] = muldivmod(seed_ng_per_day, self.pos, MS_PER_DAY, [0, 0])  # its part before the start
        self.asked_ng = per_hour * (_WINDOW_HOURS - 1) + self.asked[self.i]
        self.missed_ng = 0

    def roll(self, ms):
        """The pump clock moves ms on from the current bucket's position (ms < one hour past its end)."""
        self.pos += ms
        if self.pos >= MS_PER_HOUR:  # a new hour: its bucket held the hour 24 h ago
            self.pos -= MS_PER_HOUR
            self.i = (self.i + 1) % _WINDOW_HOURS
            self.asked_ng -= self.asked[self.i]
            self.missed_ng -= self.missed[self.i]
            self.asked[self.i] = 0
            self.missed[self.i] = 0

    def add(self, asked_ng, missed_ng):
        self.asked[self.i] += asked_ng
        self.asked_ng += asked_ng
        self.missed[self.i] += missed_ng
        self.missed_ng += missed_ng

    def over(self):
        """More than UNDER_DELIVERY_PERCENT of the asked missed (never forming missed * 100)."""
        return self.missed_ng > self.asked_ng // (100 // UNDER_DELIVERY_PERCENT)


class Controller:
    """Hardware comes in as arguments: clock (hal.interfaces Clock), motor (Motor), and emit, the
    event sink emit(code, a, b, c). weekday (0 = Monday) and time_of_day_ms set the pump clock."""

    def __init__(self, clock, motor, pump, rx, emit, volume_nl=-1, weekday=0, time_of_day_ms=0, alarms=None):
        rx.check_pump(pump)
        if not 0 <= weekday < 7:
            raise ValueError("weekday: must be 0..6")
        if not 0 <= time_of_day_ms < MS_PER_DAY:
            raise ValueError("time_of_day_ms: must be 0..86399999")
        self._clock = clock
        self._motor = motor
        self._emit = emit
        self.pump = pump
        self.rx = rx  # basal, PTM and limit in force
        self.rx_periodic = rx  # whose periodic list applies today (a program's applies from midnight)
        self.conc = rx.concentration  # drug in the reservoir
        self.alarms = alarms if alarms is not None else Alarms(emit, clock)
        self.held = 0  # HOLD_* bits
        self.started = 0  # boluses started (wraps): the main loop recalculates its dates on a change
        self.reservoir = Reservoir(pump, pump.capacity_nl if volume_nl < 0 else volume_nl, self.alarms)
        self.path = Path(pump.path_nl, self.conc)
        self.boluses = Boluses()
        # Two trains: the next is planned in the spare while the motor still walks the other.
        self.train = StrokeTrain()
        self._spare = StrokeTrain()
        self.weekday0 = weekday
        self.day = 0
        self.ms = time_of_day_ms
        self.rate = 0  # accrual in force: ng/day of the prescription, or nL/day while priming
        self.due = [0, 0]  # ideal minus delivered: ng (nL while priming) and 1/MS_PER_DAY of one
        self.priming_left = 0  # prime strokes still to deliver
        self._priming = False
        self._prime_nl = 0
        self._planned = -1  # strokes of the train in force (-1: it has ended) ...
        self._fired = 0  # ... and how many of them the motor reported
        self._lost_ng = 0
        self._done_day = -1  # the instant whose changes were applied last
        self._kind = 0  # the bolus being decided: kind, dose asked, minutes, slot, dose granted
        self._ask_ng = 0
        self._minutes = 0
        self._slot = 0
        self._granted_ng = 0
        self._done_ms = -1
        self.missed = Totals()  # ng of the prescription written off (empty, motor behind, very late wake)
        self.delivered = Totals()  # nL that left the reservoir
        self._qr = [0, 0]
        self._end = [0, 0]
        self._m_ng = 0  # the next stroke's target: whole units ...
        self._m_sub = 0  # ... and 1/MS_PER_DAY of one
        self._m_milli = 0  # ... as thousandths (pg while dosing)
        self._cap = 0  # strokes the train may hold
        self._to_change = 0  # ms from the pump clock to the next change point (schedule or train cap)
        self._writeoff = 0  # ms of a late wake's arrears still to write off
        self._trans_ng = 0  # basal bound of windows spanning the last program change ...
        self._trans_day = -2  # ... valid until WINDOW_MS after it
        self._trans_ms = 0
        self._hist = []  # programs replaced: (profiles, end day, end ms), oldest first
        self._gone_conc = 0  # the strongest drug that left the tip within a window ...
        self._gone_day = -2  # ... and when a drug last left it
        self._gone_ms = 0
        self._withhold = [0, 0]  # mass still to withhold under HOLD_LIMIT: ng and 1/MS_PER_DAY of one
        self._withholding = 0  # ng this limit hold withholds in all
        self.withheld = Totals()  # ng withheld for the limit (HOLD_LIMIT), over the pump's life
        # Strokes counted over the pump's life (mod 2**29), and the journal's reservation: strokes
        # may go up to reserve_end (-1: no journal, no limit; firmware/persist.py keeps it ahead).
        self.stroke_count = 0
        self.reserve_end = -1
        self.clock_shift_ms = 0  # what recorded times moved by at the last set_clock
        self._seen = motor.strokes()
        self._tick = clock.ticks_ms()
        self._deadline = self._tick
        # What the prescription asked for and what the pump missed of it (not while suspended or
        # priming) over the last 24 h: the under_delivery alarm (docs/alarms.md).
        self.window = MissedWindow(self.ms, basal_ng_per_day(rx, weekday, self.ms))
        self._changes()
        self._plan()

    # -- the loop ---------------------------------------------------------------------------

    def deadline(self):
        """Tick by which service() must be called (the next change point)."""
        return self._deadline

    def service(self):
        """Account for what happened since the last wake, apply due changes, plan the next train."""
        self._sync()
        self._plan()
        return self._deadline

    def weekday(self):
        return (self.weekday0 + self.day) % 7

    def strokes_seen(self):
        """The motor's stroke count as of the last wake (a display adds the strokes since)."""
        return self._seen

    def suspended(self):
        """Delivery held because the reservoir is empty."""
        return self.held & HOLD_EMPTY

    def priming(self):
        return self._priming

    def _sync(self):
        now = self._clock.ticks_ms()
        elapsed = self._clock.ticks_diff(now, self._tick)
        self._tick = now
        self._take_strokes()
        # A wake more than LATE_WAKE_MS past the planned one: the arrears beyond it are written off.
        self._writeoff = elapsed - self._to_change - LATE_WAKE_MS
        self._lost_ng = 0
        while elapsed > 0 or not self._to_change:
            elapsed -= self._advance(elapsed)
        if self._lost_ng:
            self._emit(EV_UNDER_DELIVERY, self._lost_ng, 0, 0)
        if self.window.over():
            if not self.alarms.active & ALARM_UNDER_DELIVERY:
                self.alarms.raise_(ALARM_UNDER_DELIVERY, 0, 0)
        elif self.alarms.active & ALARM_UNDER_DELIVERY:
            self.alarms.clear(ALARM_UNDER_DELIVERY, 0, 0)

    # service() in two halves, each one call at every wake: sync() accounts up to now (the main loop's
    # fault watch then acts on a synced controller, before any stroke is planned) ...
    sync = _sync

    def _advance(self, elapsed):
        """Accrue up to the next change point (or elapsed ms); apply the changes there."""
        step = self._to_change if self._to_change < elapsed else elapsed
        if self._writeoff > 0 and self._planned < 0:
            if self._writeoff < step:
                step = self._writeoff
            self._writeoff -= step
            self._accrue(step, True)
            self._tally(step, True)
        else:
            self._accrue(step, self.held)
            self._tally(step, self.held)
        self._to_change -= step
        if self.boluses.n_active:
            self.boluses.elapse(step)
        self.ms += step
        if self.ms >= MS_PER_DAY:
            self.ms -= MS_PER_DAY
            self.day += 1
        if self._to_change == 0:
            self._end_of_train()
            self._changes()
        return step

    def _accrue(self, ms, lost):
        if self.rate and ms:
            muldivmod(self.rate, ms, MS_PER_DAY, self._qr)
            if not lost:
                add_mass(self.due, self._qr[0], self._qr[1])
            elif not self._priming:  # written off, never made up (sub-ng parts are not totalled)
                self.missed.add(self._qr[0])
                if not self.held:
                    self._lost_ng += self._qr[0]
                elif self.held & HOLD_LIMIT:
                    sub_mass(self._withhold, self._qr[0], self._qr[1])

    def _tally(self, ms, lost):
        """The prescription over the next ms into the 24 h window, hour by hour: asked, and missed
        if written off (lost) for a cause other than _NOT_MISSED. Nothing of it while priming."""
        w = self.window
        if lost and self.held & _NOT_MISSED:
            lost = False
        while ms > 0:
            piece = MS_PER_HOUR - w.pos
            if piece > ms:
                piece = ms
            if self.rate and not self._priming:
                muldivmod(self.rate, piece, MS_PER_DAY, self._qr)
                w.add(self._qr[0], self._qr[0] if lost else 0)
            w.roll(piece)
            ms -= piece

    def _end_of_train(self):
        # Every stroke of the train is due by its end. The last may still be completing as the
        # count is read (the next train's numbering absorbs it), but two or more missing mean the
        # motor fell behind: that is written off, never made up in a burst.
        if self._planned > self._fired + 1 and not self._priming:
            self._lost_ng += self.due[0] if self.due[0] > 0 else 0
            self._write_off_due(True)
        self._planned = -1

    def _take_strokes(self):
        n = (self._motor.strokes() - self._seen) & COUNT_MASK
        if n:
            self._seen = (self._seen + n) & COUNT_MASK
            self._fired += n
            self.stroke_count = (self.stroke_count + n) & COUNT_MASK
            self._deliver(n * self.pump.stroke_nl)

    def _deliver(self, volume_nl):
        self.reservoir.volume_nl -= volume_nl  # Reservoir.take(), inline: a call less at every wake
        self.delivered.add(volume_nl)
        if self._priming:
            self.priming_left -= volume_nl // self.pump.stroke_nl
            sub_mass(self.due, volume_nl, 0)
            self.path.push(volume_nl, self.conc)
        else:
            self.path.flow(volume_nl, self.due)

    def _changes(self):
        """Everything due at this instant. The strokes come first: what they did (the reservoir's
        thresholds, the end of priming, drug leaving the tip), then midnight, bolus phases and
        ends, and periodic starts."""
        self._check_reservoir()
        if self._priming and self.priming_left <= 0:
            # Primed: the prescription starts now, owing nothing.
            self._priming = False
            self.due[0] = 0
            self.due[1] = 0
            self._emit(EV_PRIME_DONE, self._prime_nl, 0, 0)
        if self.path.gone:
            self._gone()
        if self.boluses.n_active:  # bolus phases run on elapsed time (at() is idempotent)
            self.boluses.at(self._emit)
        d = self.day - self._done_day
        if d > 0 or not d and self.ms > self._done_ms:
            # Once per instant, and never again at a time the clock was set back over (_done stays
            # at the latest local time reached): a periodic bolus is given at most once a local day.
            self._done_ms = self.ms
            self._done_day = self.day
            if self.ms == 0:
                self.rx_periodic = self.rx
            self._periodic()
        self._set_rate()
        self._schedule()

    def _schedule(self):
        """ms to the next change point: the schedule's, a bolus's, or the end of a limit hold."""
        self._to_change = next_change_ms(self.rx, self.rx_periodic.periodic, (self.weekday0 + self.day) % 7, self.ms)
        if self.boluses.n_active:
            self._to_change = self.boluses.next_change_ms(self._to_change)
        if self.held & HOLD_LIMIT:
            self._limit_hold()

    def _limit_hold(self):
        """Ends the limit hold once its mass is written off; else wakes when it will be."""
        w = self._withhold
        if w[0] < 0 or not w[0] and not w[1]:
            self.held &= ~HOLD_LIMIT
            w[0] = 0
            w[1] = 0
            self._emit(EV_LIMIT_HOLD_ENDED, self._withholding, 0, 0)
            return
        if not self.rate:
            return
        muldivmod(self.rate, self._to_change, MS_PER_DAY, self._qr)
        if self._qr[0] > w[0]:  # written off within this span: ceil((w_ng * MS_PER_DAY + w_sub) / rate) ms
            muldivmod(w[0], MS_PER_DAY, self.rate, self._qr)
            t = self._qr[1] + w[1]
            self._to_change = self._qr[0] + t // self.rate + (1 if t % self.rate else 0)

    def _periodic(self):
        periodic = self.rx_periodic.periodic
        for i in range(len(periodic)):
            if periodic[i][0] == self.ms:
                self._grant(PERIODIC, periodic[i][1].amount_ng, periodic[i][1].minutes)

    def _prime_rate(self):
        return self.pump.prime_nl_per_hour * 24

    def _set_rate(self):
        if self._priming:
            self.rate = self._prime_rate()
        else:
            self.rate = basal_ng_per_day(self.rx, (self.weekday0 + self.day) % 7, self.ms) + self.boluses.rate_sum

    def _check_reservoir(self):
        self.reservoir.check()
        if self.alarms.active & ALARM_EMPTY_RESERVOIR:
            if not self.held & HOLD_EMPTY:
                self._hold(HOLD_EMPTY, False)
        else:
            self.held &= ~HOLD_EMPTY

    def _hold(self, bit, keep_owed):
        if not self.held:
            # Stopped: what was owed is written off (a stalled stroke stays owed: it is retried),
            # boluses in progress end, and nothing is made up on resuming.
            if not keep_owed:
                self._write_off_due(not bit & _NOT_MISSED)
            self.boluses.cancel(self._emit)
        self.held |= bit

    def ms_to_under_delivery(self):
        """While a hold writes the prescription off as missed: ms to a wake at or before the window
        can pass UNDER_DELIVERY_PERCENT (at the latest its next hour), so the alarm is on time
        however long the hold; -1 otherwise (nothing is being missed between wakes)."""
        if not self.held or self.held & _NOT_MISSED or self._priming or not self.rate \
                or self.alarms.active & ALARM_UNDER_DELIVERY:
            return -1
        w = self.window
        t = MS_PER_HOUR - w.pos
        gap = w.asked_ng // (100 // UNDER_DELIVERY_PERCENT) + 1 - w.missed_ng  # ng still to miss
        if 0 < gap and gap * _WINDOW_HOURS < self.rate:  # within the hour: missed grows at the rate, so not sooner than this
            muldivmod(gap, MS_PER_DAY, self.rate, self._qr)
            if self._qr[0] + 1 < t:
                t = self._qr[0] + 1
        return t

    def _write_off_due(self, counted):
        """counted: missed in the under-delivery window too (not a suspend's or a prime's)."""
        if self.due[0] > 0 and not self._priming:
            self.missed.add(self.due[0])
            if counted:
                self.window.add(0, self.due[0])
        self.due[0] = 0
        self.due[1] = 0

    # -- planning ----------------------------------------------------------------------------

    def _plan(self):
        span = self._to_change
        self._fired = 0
        self._planned = 0
        train = self._spare
        self._spare = self.train
        self.train = train
        if self.rate and not self.held and self._target():
            self._planned = self._count(span)
            if self._planned:
                span = self._train(self._planned)
                self._motor.start(self.train)
                if span < 1:
                    span = self._overdue_span()
                self._deadline = self._clock.ticks_add(self._tick, span)
                self._to_change = span
                return self._deadline
        self.train.clear(self._tick, self._seen)
        self._motor.start(self.train)
        self._deadline = self._clock.ticks_add(self._tick, span)
        return self._deadline

    # ... then plan() applies due changes and plans the next train; returns the deadline.
    plan = _plan

    def _overdue_span(self):
        # The capped train's last stroke is overdue (a retried stroke, a late wake). A motor that
        # completed it as it started (the simulator's) is accounted for in this ms; a board's burst
        # takes real ms: look again in 1 ms rather than spin at once.
        return 0 if (self._motor.strokes() - self._seen) & COUNT_MASK >= self._planned else 1

    def _target(self):
        """The next stroke's target and how many strokes the train may hold; False if none can fire."""
        s = self.pump.stroke_nl
        if self._priming:
            self._m_milli = s * 1000
            cap = self.priming_left
        else:
            self._m_milli = self.path.tip_pg(s)
            cap = self.path.tip_strokes(s)
        self._m_ng = self._m_milli // 1000
        self._m_sub = (self._m_milli % 1000) * SUB_PER_PG
        self._cap = self.reservoir.strokes_available()
        low = self.reservoir.strokes_to_low()
        if 0 < low < self._cap:
            self._cap = low
        if cap < self._cap:
            self._cap = cap
        if self.reserve_end >= 0:
            self._reserved_cap()
        return self._cap > 0 and self._m_milli > 0

    def _reserved_cap(self):
        """No stroke beyond the journal's reservation (firmware/persist.py): what a reset forgets
        is then strokes counted but not made, never strokes made twice."""
        left = (self.reserve_end - self.stroke_count) & COUNT_MASK
        if left > COUNT_MASK >> 1:  # past it (an uncommanded stroke): none
            left = 0
        if left < self._cap:
            self._cap = left

    def _count(self, span):
        """Strokes whose target is reached within span ms (at most _cap)."""
        end = self._end
        end[0] = self.due[0]
        end[1] = self.due[1]
        muldivmod(self.rate, span, MS_PER_DAY, self._qr)
        add_mass(end, self._qr[0], self._qr[1])
        if end[0] < 0:
            return 0
        # floor((end_ng * 1000 + end_sub // SUB_PER_PG) / m_milli), never forming end_ng * 1000
        n = muldivmod(end[0], 1000, self._m_milli, self._qr)
        n += (self._qr[1] + end[1] // SUB_PER_PG) // self._m_milli
        return n if n < self._cap else self._cap

    def _train(self, count):
        """Sets the train for count strokes; returns the ms to the next wake."""
        self._first()
        if count > 1:  # the period fits only when a second stroke falls inside the span
            self._period()
        else:
            self.train.period(0, 0)
        self.train.set(self._tick, self._seen, count, self.rate)
        if count < self._cap:
            return self._to_change
        return self._cap_ms(count)

    def _first(self):
        # tau_1 = (m - due) / rate ms, as whole ms + a remainder over the rate; m - due < 0 is overdue.
        need = self._end
        need[0] = self._m_ng
        need[1] = self._m_sub
        sub_mass(need, self.due[0], self.due[1])
        if need[0] >= 0:
            muldivmod(need[0], MS_PER_DAY, self.rate, self._qr)
            t = self._qr[1] + need[1]
            self.train.first_ms = self._qr[0] + t // self.rate  # train.first(), without a call
            self.train.first_rem = t % self.rate
        else:
            muldivmod(-need[0], MS_PER_DAY, self.rate, self._qr)
            t = need[1] - self._qr[1]
            self.train.first_ms = t // self.rate - self._qr[0]
            self.train.first_rem = t % self.rate

    def _period(self):
        muldivmod(self._m_ng, MS_PER_DAY, self.rate, self._qr)
        t = self._qr[1] + self._m_sub
        self.train.period_ms = self._qr[0] + t // self.rate  # train.period(), without a call
        self.train.period_rem = t % self.rate

    def _cap_ms(self, count):
        # Wake at the last stroke the train may hold: ceil(tau_1 + (count-1) * period).
        train = self.train
        muldivmod(count - 1, train.period_rem, train.den, self._qr)
        t = train.first_rem + self._qr[1]
        t = train.first_ms + (count - 1) * train.period_ms + self._qr[0] + t // train.den + (1 if t % train.den else 0)
        return t if t > 0 else 0

    # -- the limit ---------------------------------------------------------------------------

    def _gone(self):
        # A drug's last part left the tip now (a train always ends on that stroke, so this is its
        # exact time). Its strokes stay in windows for WINDOW_MS: so does its margin.
        if since_ms(self._gone_day, self._gone_ms, self.day, self.ms) >= WINDOW_MS or self.path.gone > self._gone_conc:
            self._gone_conc = self.path.gone
        self._gone_day = self.day
        self._gone_ms = self.ms
        self.path.gone = 0

    def _strongest(self, concentration):
        """The strongest drug that can be in a window from now: reservoir, path, or recently gone."""
        c = self.path.max_concentration(concentration)
        if self._gone_conc > c and since_ms(self._gone_day, self._gone_ms, self.day, self.ms) < WINDOW_MS:
            c = self._gone_conc
        return c

    def margin_ng(self):
        """The margin's volume (pump.margin_nl) of the strongest drug that can be in a limit window
        from now on."""
        return volume_mass_ng(self.pump.margin_nl, self._strongest(self.conc))

    def basal_cap_ng(self):
        """Largest basal mass in any limit window from now on (docs/delivery.md)."""
        cap = self.rx.worst_window_ng()
        if self._trans_ng > cap and since_ms(self._trans_day, self._trans_ms, self.day, self.ms) < WINDOW_MS:
            cap = self._trans_ng
        return cap

    def headroom_ng(self):
        """Bolus mass that still fits the hard limit in every window from now on."""
        return (self.rx.max_daily_ng - self.margin_ng() - self.basal_cap_ng()
                - self.boluses.ledger_ng(self.day, self.ms))

    def _rate_room(self, rx, concentration):
        """ng/day left for boluses under 24 mL/day at every drug still to be pushed through."""
        return (max_rate_ng_per_day(self.path.min_concentration(concentration))
                - rx.max_basal_ng_per_day - self.boluses.rate_sum)

    # -- requests -----------------------------------------------------------------------------

    def _deny(self, kind, reason):
        self._emit(EV_BOLUS, kind, reason, 0)
        return reason

    def _grant(self, kind, amount_ng, minutes):
        # The request lives in attributes: small frames keep the periodic path allocation-free.
        self._kind = kind
        self._ask_ng = amount_ng
        self._minutes = minutes
        reason = self._decide()
        if reason:
            return self._deny(kind, reason)
        return self._start()

    def _decide(self):
        """OK, or why the bolus asked for is denied; sets the dose to grant (maybe truncated)."""
        if self._priming:
            return PRIMING
        if self.held:
            return EMPTY if self.held & HOLD_EMPTY else STOPPED
        self._slot = self.boluses.free_slot()
        if self._slot < 0:
            return BUSY
        self._granted_ng = self._ask_ng
        room = self.headroom_ng()
        if self._granted_ng > room:
            # Truncate to whole ng, so the dose delivered is exactly the dose reported.
            self._granted_ng = room if room > 0 else 0
            if nl_from_ng(self._granted_ng, self.conc) < self.pump.stroke_nl:
                return LIMIT
        room = self._rate_room(self.rx, self.conc)
        if room < 0 or bolus_too_fast(self._granted_ng, self._minutes, room):
            return RATE
        return OK

    def _start(self):
        self.started = (self.started + 1) & COUNT_MASK
        self.boluses.add(self._slot, self._kind, self._granted_ng, self._minutes)
        self.boluses.record(self._granted_ng, self._minutes, self.day, self.ms)
        if self._granted_ng != self._ask_ng:
            self._emit(EV_LIMIT_TRUNCATED, self._kind, self._ask_ng, self._granted_ng)
        self._emit(EV_BOLUS, self._kind, OK, self._granted_ng)
        self._set_rate()
        self._to_change = self.boluses.next_change_ms(self._to_change)
        return OK

    def request_bolus(self, amount_ng, minutes):
        """Clinician bolus. Returns OK or the reason it was denied (also emitted)."""
        check_bolus_args(amount_ng, minutes, "bolus")  # ValueError names the bad field; nothing changes
        self._sync()
        reason = self._grant(CLINICIAN, amount_ng, minutes)
        self._plan()
        return reason

    def request_ptm(self):
        """The patient asks for a bolus: granted only outside lockout and under the daily count."""
        self._sync()
        ptm = self.rx.ptm
        if ptm is None:
            reason = self._deny(PTM, NOT_CONFIGURED)
        else:
            reason = self.boluses.ptm_check(self.day, self.ms, ptm[1] * MS_PER_MINUTE, ptm[2])
            if reason:
                self._deny(PTM, reason)
            else:
                reason = self._grant(PTM, ptm[0].amount_ng, ptm[0].minutes)
                if reason == OK:
                    self.boluses.record_ptm(self.day, self.ms)
        self._plan()
        return reason

    def cancel_bolus(self):
        """Stops every bolus in progress. Returns OK, or NO_BOLUS if none was."""
        self._sync()
        reason = OK if self.boluses.cancel(self._emit) else NO_BOLUS
        self._set_rate()
        self._plan()
        return reason

    def refill(self, volume_nl, concentration):
        """Drug added to the reservoir. A new concentration means the old drug was withdrawn first,
        so the reservoir then holds exactly volume_nl; the prescribed mcg/day stay, and the drug
        already in the path keeps its own concentration until it has left the tip."""
        if not 0 < volume_nl <= self.pump.capacity_nl:
            raise ValueError("refill.volume_ml: must be more than 0 and at most the reservoir capacity")
        if not 10 <= concentration <= 5000:
            raise ValueError("refill.concentration_mcg_ml: must be 10..5000")
        self._sync()
        reason = self._refill(volume_nl, concentration)
        if reason:
            self._emit(EV_REFILL_REJECTED, reason, 0, 0)
        else:
            self._emit(EV_REFILL, self.reservoir.volume_nl, concentration, 0)
            self._check_reservoir()
            self._set_rate()
        self._plan()
        return reason

    def _refill(self, volume_nl, concentration):
        if concentration == self.conc:
            if self.reservoir.volume_nl + volume_nl > self.pump.capacity_nl:
                return CAPACITY
            self.reservoir.volume_nl += volume_nl
            return OK
        if not self.path.can_change():
            return PATH_FULL
        rx = self.rx
        try:
            rx.check_concentration(concentration)
        except ValueError:
            return CONCENTRATION
        if self._rate_room(rx, concentration) < 0:
            return CONCENTRATION
        margin = volume_mass_ng(self.pump.margin_nl, self._strongest(concentration))
        if rx.max_daily_ng - margin - self.basal_cap_ng() - self.boluses.ledger_ng(self.day, self.ms) < 0:
            return LIMIT
        old = rx.concentration
        try:
            rx.concentration = concentration
            rx.check_pump(self.pump)  # bolus sizes and rates at the new drug
        except ValueError:
            rx.concentration = old
            return CONCENTRATION
        self.conc = concentration
        self.path.push(0, concentration)
        self.reservoir.volume_nl = volume_nl
        return OK

    def program(self, rx):
        """Replace the prescription (validated Prescription at the same concentration). Its basal,
        PTM and limit apply at once; its periodic list from the next pump midnight."""
        rx.check_pump(self.pump)
        if rx.concentration != self.conc:
            raise ValueError("program: drug.concentration_mcg_ml must match the drug in the reservoir")
        self._sync()
        reason = self._program(rx)
        if reason:
            self._emit(EV_PROGRAM_REJECTED, reason, 0, 0)
        else:
            self._emit(EV_PROGRAM, 0, 0, 0)
            self._set_rate()
            self._schedule()
        self._plan()
        return reason

    def _program(self, rx):
        hist = [h for h in self._hist if since_ms(h[1], h[2], self.day, self.ms) < WINDOW_MS]
        if len(hist) >= _MAX_HISTORY:
            return PROGRAMS_FULL
        if self._rate_room(rx, self.conc) < 0:
            return RATE
        past = [(h[0], (h[1] - self.day) * MS_PER_DAY + h[2]) for h in hist]
        past.append((self.rx.profiles, self.ms))
        trans = transition_max_ng(past, rx.profiles, self.weekday(), self.ms)
        cap = rx.worst_window_ng()
        if trans > cap:
            cap = trans
        if self._trans_ng > trans and since_ms(self._trans_day, self._trans_ms, self.day, self.ms) < WINDOW_MS:
            # An earlier bound still in force (a clock set, whose past the history cannot replay) stays.
            trans = self._trans_ng
        if trans > cap:
            cap = trans
        if rx.max_daily_ng - self.margin_ng() - cap - self.boluses.ledger_ng(self.day, self.ms) < 0:
            return LIMIT
        hist.append((self.rx.profiles, self.day, self.ms))
        self._hist = hist
        self._trans_ng = trans
        self._trans_day = self.day
        self._trans_ms = self.ms
        self.rx = rx
        return OK

    def prime(self, catheter_cm=0):
        """Fill the unprimed path: the whole path (catheter_cm 0, after implant) or a new catheter
        piece of catheter_cm at the tip. Delivers exactly floor(empty / stroke) strokes at the
        prime rate, then starts the prescription; nothing of it accrues meanwhile."""
        if not 0 <= catheter_cm <= self.pump.catheter_cm:
            raise ValueError("prime.catheter_cm: must be 1..catheter.length_cm (or absent for the whole path)")
        self._sync()
        empty_nl = self.pump.path_nl if catheter_cm == 0 else catheter_cm * self.pump.nl_per_cm
        strokes = empty_nl // self.pump.stroke_nl
        reason = OK
        if self._priming:
            reason = PRIMING
        elif self.held & ~HOLD_EMPTY:
            reason = STOPPED
        elif self.reservoir.strokes_available() < strokes:
            reason = EMPTY
        elif not self.path.empty_tip(empty_nl):
            reason = PATH_FULL
        if reason:
            self._emit(EV_PRIME_REJECTED, reason, 0, 0)
        else:
            self.boluses.cancel(self._emit)
            self._write_off_due(False)
            self.priming_left = strokes
            self._priming = True
            self._prime_nl = strokes * self.pump.stroke_nl
            self._emit(EV_PRIME, self._prime_nl, 0, 0)
            if not strokes:
                self._priming = False
                self._emit(EV_PRIME_DONE, 0, 0, 0)
            self._set_rate()
        self._plan()
        return reason

    def set_clock(self, weekday, ms_of_day):
        """The clinician sets the pump clock to weekday (0 = Monday) and ms_of_day: the clock moves
        to the nearest such time (at most half a week either way). Elapsed time is untouched: the
        ideal delivery and what is owed carry on (nothing accrues or is lost for the jump), boluses
        in progress run their remaining minutes, and every recorded time (limit ledger, PTM
        grants, program history, the drug gone) moves with the clock, so lockouts and limit
        windows run on elapsed time. The basal follows the new time's profile step from now.
        Periodic boluses: one set back over is not given again that local day; one jumped over
        forward is given now (never skipped). Returns OK; self.clock_shift_ms is what every
        recorded time moved by (the loop moves its own)."""
        if not 0 <= weekday < 7:
            raise ValueError("set_clock.weekday: must be 0..6")
        if not 0 <= ms_of_day < MS_PER_DAY:
            raise ValueError("set_clock.ms_of_day: must be 0..86399999")
        self._sync()
        self.boluses.ledger_ng(self.day, self.ms)  # drops expired entries: those kept are within a window
        old_wd = self.weekday()
        old_ms = self.ms
        jump = ((weekday - old_wd) % 7) * MS_PER_DAY + ms_of_day - old_ms
        if jump > _HALF_WEEK_MS:
            jump -= _WEEK_MS
        # Windows spanning the jump mix the basal before it and the new time's: bound them before
        # moving (the basal a window ending now held, plus the new program's worst window).
        bound = self.basal_cap_ng() + self.rx.worst_window_ng()
        peak = muldiv_ceil(self._peak_ng_per_day(), WINDOW_MS, MS_PER_DAY)
        if peak < bound:
            bound = peak
        t = old_ms + jump
        day = self.day + t // MS_PER_DAY
        # Relabel the days so that nothing within a window of now is before day 0 (firmware/state.py).
        k = 2 - day if jump < 0 and day < 2 else 0
        shift = jump + k * MS_PER_DAY
        self.boluses.shift(shift)
        hist = [h for h in self._hist if since_ms(h[1], h[2], self.day, self.ms) < WINDOW_MS]
        self._hist = [(h[0],) + shifted(h[1], h[2], shift) for h in hist]
        if since_ms(self._gone_day, self._gone_ms, self.day, self.ms) < WINDOW_MS:
            self._gone_day, self._gone_ms = shifted(self._gone_day, self._gone_ms, shift)
        else:
            self._gone_day, self._gone_ms = -2, 0
        self._done_day += k  # a local time, not an elapsed one: only relabelled
        self.weekday0 = (self.weekday0 - k) % 7
        if day > self.day:  # forward over midnight: the list a program set for the next day applies
            self.rx_periodic = self.rx
        self.day = day + k
        self.ms = t % MS_PER_DAY
        self.clock_shift_ms = shift
        self._trans_ng = bound
        self._trans_day = self.day
        self._trans_ms = self.ms
        self._emit(EV_CLOCK_SET, old_ms, old_wd, jump // 1000)
        if jump > 0:
            periodic = self.rx_periodic.periodic
            for i in range(len(periodic)):
                off = (periodic[i][0] - old_ms) % MS_PER_DAY
                if 0 < off < jump and periodic[i][0] != self.ms:  # the one at the new time: _changes()
                    self._grant(PERIODIC, periodic[i][1].amount_ng, periodic[i][1].minutes)
        self._changes()
        self._plan()
        return OK

    def _peak_ng_per_day(self):
        peak = self.rx.max_basal_ng_per_day
        for h in self._hist:
            for p in h[0]:
                if p.max_rate_ng_per_day > peak:
                    peak = p.max_rate_ng_per_day
        return peak

    # -- holds ----------------------------------------------------------------------------------

    def hold(self, bit, keep_owed=False):
        """Stop delivery for a cause (a HOLD_* bit) from now. Strokes the motor completed up to now
        are counted first. keep_owed: the stroke owed now stays owed (a stalled stroke, retried)."""
        self._sync()
        self._hold(bit, keep_owed)
        self._set_rate()
        self._plan()

    def resume_after_reset(self, strokes, off_s):
        """Boot from the journal (firmware/persist.py), after the state was restored as of its last
        snapshot: `strokes` were reserved since then and may have been made; `off_s` passed since
        the snapshot, delivering at first, then off. The reserved strokes are counted as made (a
        reset never repeats one; those not made are lost, never made up). The prescription accrues
        over off_s as it would have, the pump clock, boluses and schedule moving on through it;
        what it asked for beyond the strokes counted is written off as missed, day by day (each
        under_delivery event a small int), never made up (up to `strokes` of those counted may not
        have been made: the missed figure is short by at most as many). Returns the ng written off
        (at most 2**30 - 1: the small ints)."""
        self._tick = self._clock.ticks_ms()
        self._seen = self._motor.strokes()
        self._planned = -1
        self._fired = 0
        if strokes:
            self.stroke_count = (self.stroke_count + strokes) & COUNT_MASK
            self._deliver(strokes * self.pump.stroke_nl)
        lost = 0
        while True:
            piece = (off_s if off_s < MS_PER_DAY // 1000 else MS_PER_DAY // 1000) * 1000
            off_s -= piece // 1000
            self._lost_ng = 0
            while piece > 0:
                piece -= self._advance(piece)
            owed = self._lost_ng + (self.due[0] if self.due[0] > 0 and not self._priming else 0)
            # What is owed is written off, never made up. Strokes counted beyond the prescription
            # (due < 0: reserved, and perhaps not made) are not paid back either: a stroke fires only
            # once the prescription reaches it, so those made never exceeded it.
            self._write_off_due(not self.held & _NOT_MISSED)
            if owed:
                lost = lost + owed if lost < 0x3FFFFFFF - owed else 0x3FFFFFFF
                self._emit(EV_UNDER_DELIVERY, owed, 0, 0)
            if off_s <= 0:
                break
        self._plan()
        return lost

    def release(self, bit):
        """The cause is gone: delivery restarts from now once no hold is left."""
        self._sync()
        self.held &= ~bit
        self._set_rate()
        self._plan()

    def charge_limit(self, volume_nl):
        """volume_nl held back by a block reached the patient now, at the strongest drug it can be.

        The margin keeps room for one blocked line's store (pump.max_stored_nl and the stroke that
        crossed the threshold), so a store within it changes no delivery. It is also counted
        against boluses for a window from now. Beyond it, delivery is held, basal included, until
        as much drug as the excess has been withheld (HOLD_LIMIT, event limit_held).
        Returns the ng withheld for it (0 within the margin)."""
        self._sync()
        c = self._strongest(self.conc)
        self.boluses.charge(volume_mass_ng(volume_nl, c), self.day, self.ms)
        excess = volume_nl - self.pump.max_stored_nl - self.pump.stroke_nl
        ng = 0
        if excess > 0 and not self._priming:  # prime strokes push no drug out of the tip
            ng = volume_mass_ng(excess, c)
            add_mass(self._withhold, ng, 0)
            self._withholding = ng + (self._withholding if self.held & HOLD_LIMIT else 0)
            self.withheld.add(ng)
            self._emit(EV_LIMIT_HELD, ng, 0, 0)
            self._hold(HOLD_LIMIT, False)
            self._set_rate()
            self._schedule()
        self._plan()
        return ng


if sys.implementation.name != "micropython":
    # CPython: the planning arithmetic of every wake on exact integers, a mass as one int of 1/MS_PER_DAY ng,
    # with the same results as the small-int methods above (MicroPython keeps those: these products would
    # be big ints on its boards). tests/host/test_fast_path.py cross-checks both over the prescribable range.
    # The small-int versions stay reachable for that test (and for _accrue's rarer cases).
    Controller._count_small = Controller._count  # pyright: ignore[reportAttributeAccessIssue]
    Controller._first_small = Controller._first  # pyright: ignore[reportAttributeAccessIssue]
    Controller._period_small = Controller._period  # pyright: ignore[reportAttributeAccessIssue]
    Controller._accrue_small = Controller._accrue  # pyright: ignore[reportAttributeAccessIssue]

    def _count(self, span):
        end = self.due[0] * MS_PER_DAY + self.due[1] + self.rate * span
        if end < 0:
            return 0
        n = (end // MS_PER_DAY * 1000 + end % MS_PER_DAY // SUB_PER_PG) // self._m_milli
        return n if n < self._cap else self._cap

    def _first(self):
        self.train.first_ms, self.train.first_rem = divmod(
            (self._m_ng - self.due[0]) * MS_PER_DAY + self._m_sub - self.due[1], self.rate)

    def _period(self):
        self.train.period_ms, self.train.period_rem = divmod(self._m_ng * MS_PER_DAY + self._m_sub, self.rate)

    def _accrue(self, ms, lost):
        if not lost and self.rate and ms:  # the usual case: due += rate * ms, kept normalised
            q, self.due[1] = divmod(self.due[1] + self.rate * ms, MS_PER_DAY)
            self.due[0] += q
        else:
            self._accrue_small(ms, lost)

    Controller._count = _count
    Controller._accrue = _accrue
    Controller._first = _first
    Controller._period = _period
