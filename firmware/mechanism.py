# Mechanism faults: motor stall, catheter occlusion and a runaway motor, from what the HAL motor
# reports (hal/interfaces.py: faults(), load(), on_fault()). Owned by the main loop.
#
# Stall: a commanded stroke did not complete. Delivery is held with that stroke still owed, and
# retried after 15 s, 30 s, 1, 2 and 4 minutes, then every 4 minutes, with one retry exactly at
# 15 minutes: a stall that clears by then recovers without an alarm (an MRI scan); one that does
# not raises motor_stall (critical). A retry is one commanded stroke, the one owed: it is made
# only while nothing else holds delivery (a retry that falls due during a suspend, an empty
# reservoir or an occlusion waits for its end, with no timer meanwhile). The stall ends only when
# that stroke completes, at its millisecond: motor_stall_recovered and the alarm's clearing carry
# it. What the prescription asked for meanwhile is written off, never made up.
#
# Occlusion: the motor latches an overload when a stroke's load reaches OCCLUSION_LOAD (the line
# pressure rising against a blocked catheter). Delivery is held and occlusion (critical) raised;
# the load at rest is polled every minute, and below RELEASE_LOAD the block has released. The
# volume pushed against the block (strokes the motor reports completed above PRESSURE_LOAD)
# then reaches the patient at once: the hard limit's margin keeps room for one blocked line's
# store (pump.max_stored_nl plus the stroke that crossed the threshold), it is counted against
# boluses from that instant, and any excess is withheld from delivery (Controller.charge_limit).
# Nothing is added to make up for the held time.
#
# Runaway: at the first uncommanded stroke the fault handler cuts the motor's power (in interrupt
# context, before the next wake); the loop then counts the strokes against the limit, holds
# delivery for good and raises motor_runaway (critical). The pump must be replaced.

from firmware.alarms import (
    ALARM_MOTOR_RUNAWAY,
    ALARM_MOTOR_STALL,
    ALARM_OCCLUSION,
    EV_OCCLUSION,
    EV_OCCLUSION_RELEASED,
    EV_RUNAWAY,
    EV_STALL,
    EV_STALL_RECOVERED,
)
from firmware.boluses import shifted, since_ms
from firmware.controller import HOLD_OCCLUSION, HOLD_RUNAWAY, HOLD_STALL
from firmware.units import MS_PER_DAY
from hal.interfaces import MOTOR_OVERLOAD, MOTOR_STALL, MOTOR_UNCOMMANDED
from hal.train import COUNT_MASK
from micropython import const

STALL_ALARM_MS = const(900_000)  # 15 minutes
_FIRST_RETRY_MS = const(15_000)
_MAX_RETRY_MS = const(240_000)
OCCLUSION_LOAD = const(200)  # percent of the free-running load
PRESSURE_LOAD = const(110)  # above it, a completed stroke went into a pressurised line
RELEASE_LOAD = const(120)
OCCLUSION_POLL_MS = const(60_000)
# A line pressurised this long is occluded: bounds the detection delay of a soft line at a low rate
# (a 50 uL store at 0.048 mL/day would take 25 h to reach OCCLUSION_LOAD; docs/alarms.md).
PRESSURE_ALARM_MS = const(3_600_000)
_RETRY_CHECK_MS = const(100)  # a board's retried stroke is a burst in flight: look again this soon

NONE = const(0)
STALLED = const(1)  # held, waiting for the next retry
RETRYING = const(2)  # the owed stroke is commanded: its completion ends the stall, its failure resumes it


class MotorWatch:
    def __init__(self, clock, motor, ctl, alarms, emit):
        self._clock = clock
        self._motor = motor
        self._ctl = ctl
        self._alarms = alarms
        self._emit = emit
        self.bits = 0  # fault bits latched by the handler, taken by service()
        self.stall = NONE
        self.stalls = 0  # episodes, and how many raised the alarm
        self.stall_alarms = 0
        self._stall_day = 0  # when the episode started, on the pump clock (episodes may last years)
        self._stall_ms = 0
        self._retry_tick = 0
        self._retry_ms = 0
        self._alarm_due = False
        self._missed_big = 0
        self._missed_small = 0
        self.occluded = False
        self._poll_tick = 0
        self.pressed_nl = 0  # pushed into a pressurised line since the load was last normal
        self.pressure = False  # ... and that began at _pressure_tick (the line not at rest since)
        self._pressure_tick = 0
        self.by_pressure = False  # the occlusion was raised by time: released only at rest
        self.runaway = False
        self._seen = motor.strokes()
        self._n = 0
        self._handler = self.on_fault  # bound once: the handler runs in interrupt context
        motor.set_load_limit(OCCLUSION_LOAD)
        motor.set_pressure_load(PRESSURE_LOAD)
        motor.on_fault(self._handler)

    def on_fault(self, bits):
        """The motor's fault handler (interrupt context on a board: no allocation)."""
        if bits & MOTOR_UNCOMMANDED:
            self._motor.enable(False)
        self.bits |= bits

    def pending(self):
        return self.bits

    def service(self, now):
        """Acts on what the motor reported. The controller has been synced to now."""
        bits = self.bits | self._motor.faults()
        self.bits = 0
        self._n = (self._motor.strokes() - self._seen) & COUNT_MASK
        self._seen = (self._seen + self._n) & COUNT_MASK
        if self.runaway:
            return
        if bits & MOTOR_UNCOMMANDED:
            self._runaway()
            return
        if self._n:
            self.pressed_nl += self._motor.pressed() * self._ctl.pump.stroke_nl
            if not self.occluded and self._motor.load() <= PRESSURE_LOAD:
                self.pressed_nl = 0  # the line is at rest: what was pressed has flowed on
        if bits & MOTOR_OVERLOAD and not self.occluded:
            self._occlusion()
        elif self.pressure or self.pressed_nl and not self.occluded:
            self._pressurised(now)
        if bits & MOTOR_STALL:
            self._stalled(now)
        elif self.stall == RETRYING and self._n:
            self._recovered(now)
        elif self.stall == STALLED and self._clock.ticks_diff(now, self._retry_tick) >= 0:
            if self._ctl.held == HOLD_STALL:
                self._retry(now)
            else:  # another hold: the retry waits for its end; kept due now, so the tick never goes stale
                self._retry_tick = now
        if self.occluded and self._clock.ticks_diff(now, self._poll_tick) >= 0:
            self._poll(now)

    def ms_to_next(self, now):
        """ms to this watch's next timer (0 if due), or -1 if none."""
        if self.runaway:
            return -1
        t = -1
        if self.stall == STALLED:
            if self._ctl.held == HOLD_STALL:  # another hold: the retry waits for its end, untimed
                t = _not_past(self._clock.ticks_diff(self._retry_tick, now))
        elif self.stall == RETRYING:
            t = _RETRY_CHECK_MS
        if self.occluded:
            p = _not_past(self._clock.ticks_diff(self._poll_tick, now))
            if t < 0 or p < t:
                t = p
        elif self.pressure:
            p = _not_past(PRESSURE_ALARM_MS - self._clock.ticks_diff(now, self._pressure_tick))
            if t < 0 or p < t:
                t = p
        return t

    # -- stall --------------------------------------------------------------------------------

    def clock_set(self, by_ms):
        """The pump clock was set (Controller.set_clock): a stall episode keeps its elapsed time
        (one begun more than a window before day 0 of the relabelled clock starts at day 0)."""
        if self.stall != NONE:
            self._stall_day, self._stall_ms = shifted(self._stall_day, self._stall_ms, by_ms)
            if self._stall_day < 0:
                self._stall_day, self._stall_ms = 0, 0

    def _stalled(self, now):
        ctl = self._ctl
        ctl.hold(HOLD_STALL, True)
        if self.stall == NONE:
            self.stalls += 1
            self._stall_day = ctl.day
            self._stall_ms = ctl.ms
            self._alarm_due = True
            self._retry_ms = _FIRST_RETRY_MS
            self._missed_big = ctl.missed.big
            self._missed_small = ctl.missed.small
            self._emit(EV_STALL, 0, 0, 0)
        elif self._retry_ms < _MAX_RETRY_MS:
            self._retry_ms *= 2
        self.stall = STALLED
        # Timed on the pump clock: a stall held up by a suspend can outlast the ticks' range.
        stalled_ms = since_ms(self._stall_day, self._stall_ms, ctl.day, ctl.ms)
        if self._alarm_due and stalled_ms >= STALL_ALARM_MS:
            self._alarm_due = False
            self.stall_alarms += 1
            self._alarms.raise_(ALARM_MOTOR_STALL, 0, 0)
        self._retry_tick = self._clock.ticks_add(now, self._retry_ms)
        if self._alarm_due and self._retry_ms > STALL_ALARM_MS - stalled_ms:  # one retry exactly at 15 minutes
            self._retry_tick = self._clock.ticks_add(now, STALL_ALARM_MS - stalled_ms)

    def _retry(self, now):
        # Releasing the hold plans a train whose first stroke, the owed one, is overdue: the motor
        # starts it at once. The simulated motor completes it in this millisecond; a board's burst
        # completes a few ms later, seen by the RETRYING check.
        self.stall = RETRYING
        self._ctl.release(HOLD_STALL)
        self._n = (self._motor.strokes() - self._seen) & COUNT_MASK
        if self._n:
            self._seen = (self._seen + self._n) & COUNT_MASK
            self._recovered(now)

    def _recovered(self, now):
        ctl = self._ctl
        self.stall = NONE
        seconds = (ctl.day - self._stall_day) * (MS_PER_DAY // 1000) + (ctl.ms - self._stall_ms) // 1000
        self._emit(EV_STALL_RECOVERED, seconds, ctl.missed.big - self._missed_big,
                   ctl.missed.small - self._missed_small)
        self._alarms.clear(ALARM_MOTOR_STALL, 0, 0)

    # -- occlusion ------------------------------------------------------------------------------

    def _pressurised(self, now):
        """Strokes went into a pressurised line (not occluded): times how long it stays so."""
        if not self.pressed_nl:  # back at rest
            self.pressure = False
        elif not self.pressure:
            self.pressure = True
            self._pressure_tick = now
        elif self._clock.ticks_diff(now, self._pressure_tick) >= PRESSURE_ALARM_MS:
            self.pressure = False
            if self._motor.load() > PRESSURE_LOAD:
                self.by_pressure = True
                self._occlusion()
            else:  # at rest since the last stroke: what was pressed has flowed on
                self.pressed_nl = 0

    def _occlusion(self):
        self.pressure = False
        self.occluded = True
        self._ctl.hold(HOLD_OCCLUSION)
        self._alarms.raise_(ALARM_OCCLUSION, EV_OCCLUSION, self._motor.load())
        self._poll_tick = self._clock.ticks_add(self._clock.ticks_ms(), OCCLUSION_POLL_MS)

    def _poll(self, now):
        load = self._motor.load()
        if load >= RELEASE_LOAD or self.by_pressure and load > PRESSURE_LOAD:
            self._poll_tick = self._clock.ticks_add(now, OCCLUSION_POLL_MS)
            return
        self.occluded = False
        self.by_pressure = False
        ctl = self._ctl
        self._emit(EV_OCCLUSION_RELEASED, self.pressed_nl, 0, 0)
        self._alarms.clear(ALARM_OCCLUSION, 0, 0)
        ctl.charge_limit(self.pressed_nl)  # may hold delivery for the limit before this hold ends
        self.pressed_nl = 0
        ctl.release(HOLD_OCCLUSION)

    # -- runaway ----------------------------------------------------------------------------------

    def _runaway(self):
        self.runaway = True
        self._motor.enable(False)
        self._ctl.hold(HOLD_RUNAWAY)  # counts every stroke the motor made, commanded or not
        self._alarms.raise_(ALARM_MOTOR_RUNAWAY, EV_RUNAWAY, self._n)


def _not_past(ms):
    return ms if ms > 0 else 0
