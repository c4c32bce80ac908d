# The pump's main loop: the one loop the simulator and every board run.
#
# It owns the controller (dosing), the alarm manager (what sounds, and when), the battery gauge
# and the mechanism watch (stall, occlusion, runaway). Hardware comes in as arguments (see
# hal/interfaces.py): each iteration waits on the clock until the next deadline or an input,
# services whatever is due, then sounds what must sound. Nothing here allocates on the steady
# path; commands from the programmer may (they are rare).

from firmware.alarms import (
    ALARM_CLOCK_LOST,
    ALARM_ELECTIVE_REPLACEMENT,
    ALARM_END_OF_SERVICE,
    ALARM_LOW_RESERVOIR,
    ALARM_SUSPENDED,
    ALREADY_SUSPENDED,
    EV_BATTERY_LOW_READING,
    EV_COMMAND_REJECTED,
    EV_EOS,
    EV_ERI,
    EV_PROJECTION,
    EV_RESUMED,
    EV_SUSPENDED,
    EV_TONE,
    NOT_SUSPENDED,
    OK,
    Alarms,
)
from firmware.battery import EOS, ERI, BatteryParams, Gauge
from firmware.controller import (
    HOLD_EMPTY,
    HOLD_EOS,
    HOLD_LIMIT,
    HOLD_OCCLUSION,
    HOLD_STALL,
    HOLD_SUSPENDED,
    Controller,
)
from firmware.dates import fill_week, minutes_in_week
from firmware.eventlog import EventLog
from firmware.link import Link
from firmware.mechanism import MotorWatch
from firmware.prescription import Prescription
from firmware.selftest import SelfTest
from hal.channel import (
    CMD_BOLUS,
    CMD_CANCEL_BOLUS,
    CMD_PRIME,
    CMD_PROGRAM,
    CMD_REFILL,
    CMD_RESUME,
    CMD_SET_CLOCK,
    CMD_SILENCE,
    CMD_SUSPEND,
)
from hal.train import COUNT_MASK
from micropython import const

HOUSEKEEPING_MS = const(21_600_000)  # the battery is checked at every wake, and at least every 6 hours

# Pump states, most severe first (PumpLoop.state())
DELIVERING = const(0)
LOW_RESERVOIR = const(1)
EMPTY = const(2)
SUSPENDED = const(3)
STALLED = const(4)
OCCLUDED = const(5)
MOTOR_FAULT = const(6)
END_OF_SERVICE = const(7)
LIMIT_HELD = const(8)
STATE_NAMES = ("delivering", "low_reservoir", "empty", "suspended", "stalled", "occluded", "motor_fault",
               "end_of_service", "limit_held")

_ARITY = (3, 3, 2, 2, 1, 1, 1, 1, 3)  # tuple length of each command (hal/channel.py)


class PumpLoop:
    """clock, motor, annunciator, button, programmer, adc: hal/interfaces.py backends. pump, rx,
    volume_nl, weekday and time_of_day_ms as for the Controller; battery: BatteryParams (the
    gauge's nominal draws); critical_repeat_minutes: 1..60; persist: firmware/persist.py's Persist
    (the journal) or None; watchdog: hal/interfaces.py Watchdog or None.

    The watchdog is fed at the end of a service() only when the loop's health checks pass
    (_healthy, docs/alarms.md "Watchdog"), and the loop wakes at least every timeout_ms // 2 to
    feed it. link_port: hal/interfaces.py LinkPort, or None: with one, the loop owns self.link
    (firmware/link.py), serves it at every wake and wakes early when the port has bytes."""

    def __init__(self, clock, motor, annunciator, button, programmer, adc, pump, rx, emit, volume_nl=-1,
                 weekday=0, time_of_day_ms=0, battery=None, critical_repeat_minutes=10, persist=None,
                 watchdog=None, link_port=None):
        if isinstance(critical_repeat_minutes, bool) or not isinstance(critical_repeat_minutes, int) \
                or not 1 <= critical_repeat_minutes <= 60:
            raise ValueError("alarms.critical_repeat_minutes: must be an integer 1..60")
        self._clock = clock
        self._motor = motor
        self._button = button
        self._programmer = programmer
        self._emit = emit
        # Every event goes through _event: into the event log, and (with a journal) marking the
        # state changed, then to the caller's emit.
        self.log = EventLog()
        self.persist = persist
        self.watchdog = watchdog
        # the longest wait: a watchdog's half timeout, so a wake comes before the dog bites
        self._wait_max_ms = HOUSEKEEPING_MS
        if watchdog is not None and watchdog.timeout_ms // 2 < HOUSEKEEPING_MS:
            self._wait_max_ms = watchdog.timeout_ms // 2
        self.unfed = 0  # wakes whose health checks failed (the watchdog not fed)
        event = self._event
        self.alarms = Alarms(event, clock, annunciator, critical_repeat_minutes * 60_000)
        self.gauge = Gauge(adc, battery if battery is not None else BatteryParams())
        self.ctl = Controller(clock, motor, pump, rx, event, volume_nl, weekday, time_of_day_ms, self.alarms)
        self.watch = MotorWatch(clock, motor, self.ctl, self.alarms, event)
        self.log.clock = self.ctl  # pyright: ignore[reportAttributeAccessIssue] (None until the controller exists)
        if persist is not None:
            self.ctl.reserve_end = self.ctl.stroke_count  # no stroke before the journal reserves it
        self.ready = self._ready  # bound once: the clock's wait polls it
        self._qr = [0, 0]
        # nL per weekday at the prescription in force, with and without every allowed patient
        # bolus; refilled only when the prescription or the concentration changes.
        self._week_ptm = [0] * 7
        self._week = [0] * 7
        self._week_rx = None
        self._week_conc = 0
        self._last = clock.ticks_ms()
        self._strokes = motor.strokes()
        self._started = self.ctl.started
        # The dates (section "Dates" in docs/alarms.md), as of the last recalculation: minutes
        # (reservoir) and days (battery) from then; -1 where never or unknown.
        self.low_reservoir_min = -1
        self.empty_min = -1
        self.eri_days = -1
        self.eos_days = -1
        self.wakes = 0
        self.refused = 0  # zero-length waits refused (a timer due again right after its service: a bug)
        self._next = self._last
        self._project()
        self._link_port = link_port
        self.link = Link(self, link_port) if link_port is not None else None
        self.selftest = SelfTest(self, clock, persist.rtc if persist is not None else None)
        if persist is not None:
            persist.start(self)  # restores the journal's state, or formats an empty region
        self.selftest.start(clock.ticks_ms())  # the checks run in the first service()
        self.service()

    # -- the loop -------------------------------------------------------------------------------

    def run(self):
        """Runs until the clock's backend stops (a board: for ever)."""
        wait = self._clock.wait
        while wait(self._next, self.ready):
            self.service()

    def deadline(self):
        return self._next

    def _ready(self):
        return self.watch.bits or self._button.pending() or self._programmer.pending() \
            or (self._link_port is not None and self._link_port.any())

    def service(self):
        """One iteration after the wait: account, act on faults and inputs, sound, plan the next wake."""
        self.wakes += 1
        now = self._clock.ticks_ms()
        # The watch acts between accounting and planning, so a stroke that just stalled is held
        # before it could be commanded again in the same millisecond.
        self.ctl.sync()
        self.watch.service(now)
        if self.persist is not None:
            self.persist.before_plan()  # the journal's reservation, written ahead of the strokes
        if not self.watch.bits:  # a fault reported meanwhile (a retry that stalled): act on it first
            self.ctl.plan()
        self._battery(now)
        took = self._button.pending() or self._programmer.pending()
        if took:
            self._inputs()
        if self.link is not None and self.link.service(now):  # authenticated commands, like the programmer's
            took = True
        if self.selftest.is_due(now):  # after the battery's reading and any program command
            self.selftest.run(now)
        if self.ctl.started != self._started:  # a bolus started: the low-reservoir date moved
            self._started = self.ctl.started
            self._project()
        tone_s = self.alarms.sound()
        if tone_s:
            self.gauge.tone(tone_s)
        refused = self.refused
        t = self._ms_to_next(now)
        if not t and not took and self._clock.ticks_diff(self.ctl.deadline(), now) > 0:
            # Another pass in the same ms only when the controller asks (a train whose overdue
            # stroke the motor completed as it started: the next pass counts it, so it ends) or
            # after inputs, which act after the watch (a resume makes a stall's retry due now).
            # Any other timer still due after its owner was serviced is a bug that would spin the
            # loop and drain the cell: refused, the wait made 1 ms, and counted.
            self.refused += 1
            t = 1
        self._next = self._clock.ticks_add(now, t)
        if self.persist is not None:
            self.persist.after_service()
        if self.watchdog is not None:
            if self._healthy(now, refused):
                self.watchdog.feed()
            else:
                self.unfed += 1

    def _healthy(self, now, refused):
        """The checks before a feed (docs/alarms.md "Watchdog"): no zero-length wait refused this
        pass; the next wake in the future or now, and before the dog bites; the reservoir count
        within the reservoir; and, while delivering, the controller's next change not overdue after
        it was serviced (a stuck controller would never make its strokes)."""
        if self.refused != refused:
            return False
        clock = self._clock
        t = clock.ticks_diff(self._next, now)
        if t < 0 or t > self._wait_max_ms:
            return False
        ctl = self.ctl
        if ctl is None:
            return False
        v = ctl.reservoir.volume_nl
        if v < 0 or v > ctl.pump.capacity_nl:
            return False
        return ctl.held or self.watch.bits or clock.ticks_diff(ctl.deadline(), now) >= 0

    # -- events -----------------------------------------------------------------------------------

    def _event(self, code, a, b, c):
        if code != EV_TONE and code != EV_PROJECTION:
            self._log(code, a, b, c)
        self._emit(code, a, b, c)

    def _log(self, code, a, b, c):
        self.log.add(code, a, b, c)
        if self.persist is not None:
            self.persist.changed = True
            self.persist.log_event(self.log)

    def set_critical_repeat(self, minutes):
        """The critical tone's repeat (1..60 minutes, checked by the caller): a setting, so the
        self-tests' CRC of the settings is taken again and the next snapshot holds it."""
        self.alarms.critical_repeat_ms = minutes * 60_000
        self.selftest.rebase()
        if self.persist is not None:
            self.persist.changed = True

    def emit_event(self, code, a, b, c):
        """An event of the loop's own (boot, self-tests): logged, journaled and passed on."""
        self._event(code, a, b, c)

    def restarted(self):
        """Boot from the journal is done: the dates again, from the restored state."""
        self._last = self._clock.ticks_ms()
        self._strokes = self._motor.strokes()
        self._started = self.ctl.started
        self._project()

    def _ms_to_next(self, now):
        t = self._clock.ticks_diff(self.ctl.deadline(), now)
        if t > self._wait_max_ms:
            t = self._wait_max_ms
        # Most wakes have no alarm and no mechanism fault: then neither has a timer (-1), so skip the calls.
        if self.alarms.active or self.alarms.fresh:
            a = self.alarms.ms_to_next(now)
            if 0 <= a < t:
                t = a
        if self.watch.stall or self.watch.occluded:
            a = self.watch.ms_to_next(now)
            if 0 <= a < t:
                t = a
        if self.ctl.held:  # the prescription written off meanwhile: under_delivery on time
            a = self.ctl.ms_to_under_delivery()
            if 0 <= a < t:
                t = a
        a = self.gauge.ms_to_next_event()
        if 0 <= a < t:
            t = a
        a = self.selftest.ms_to_next(now)
        if 0 <= a < t:
            t = a
        if self.link is not None and (self.link.locked or self.link.plain_n):  # logged on time
            a = self.link.ms_to_next(now)
            if 0 <= a < t:
                t = a
        return t if t > 0 else 0

    # -- battery ---------------------------------------------------------------------------------

    def _battery(self, now):
        g = self.gauge
        g.elapse(self._clock.ticks_diff(now, self._last))
        self._last = now
        n = (self._motor.strokes() - self._strokes) & COUNT_MASK
        if n:
            self._strokes = (self._strokes + n) & COUNT_MASK
            g.strokes(n)
        was = g.level
        if g.check() != was:
            self._battery_level(was)
        if g.low:  # a low reading that raised nothing (yet): the gauge asks for the next one
            self._event(EV_BATTERY_LOW_READING, g.mv, g.low_n, g.low)

    def _battery_level(self, was):
        level = self.gauge.level
        if level >= ERI and was < ERI:
            self.alarms.raise_(ALARM_ELECTIVE_REPLACEMENT, EV_ERI, self.gauge.eri_cause)
        if level >= EOS and was < EOS:
            # Delivery stops for good: strokes up to this ms were counted first.
            self.ctl.hold(HOLD_EOS)
            self.alarms.raise_(ALARM_END_OF_SERVICE, EV_EOS, self.gauge.eos_cause)
        self._project()

    # -- inputs -----------------------------------------------------------------------------------

    def _inputs(self):
        for _ in range(self._button.presses()):
            self.ctl.request_ptm()
        programmer = self._programmer
        while programmer.pending():
            command = programmer.receive()
            self.gauge.command()
            try:
                result = self._command(command)
            except ValueError as e:  # names the bad field; nothing changed
                result = e
            programmer.reply(command, result)

    def _command(self, command):
        if not isinstance(command, tuple) or not command or not isinstance(command[0], int) \
                or not 0 <= command[0] < len(_ARITY):
            raise ValueError("programmer: unknown command " + repr(command)[:40])
        op = command[0]
        if len(command) != _ARITY[op]:
            raise ValueError("programmer: command %d takes %d arguments, not %d" % (op, _ARITY[op] - 1, len(command) - 1))
        for arg in command[1:]:
            if op != CMD_PROGRAM and (isinstance(arg, bool) or not isinstance(arg, int)):
                raise ValueError("programmer: command %d: arguments must be integers" % op)
        ctl = self.ctl
        if op == CMD_REFILL:
            result = ctl.refill(command[1], command[2])
        elif op == CMD_BOLUS:
            result = ctl.request_bolus(command[1], command[2])
        elif op == CMD_PROGRAM:
            if not isinstance(command[1], Prescription):
                raise ValueError("program: must be a Prescription")
            result = ctl.program(command[1])
        elif op == CMD_PRIME:
            result = ctl.prime(command[1])
        elif op == CMD_SILENCE:
            result = self.alarms.silence()
        elif op == CMD_SUSPEND:
            result = self._suspend()
        elif op == CMD_RESUME:
            result = self._resume()
        elif op == CMD_SET_CLOCK:
            result = ctl.set_clock(command[1], command[2])
            self.watch.clock_set(ctl.clock_shift_ms)
            self.selftest.clock_set()
            self.alarms.clear(ALARM_CLOCK_LOST, 0, 0)  # the clinician gave the pump its time again
        else:
            assert op == CMD_CANCEL_BOLUS
            result = ctl.cancel_bolus()
        if result != OK and op >= CMD_SILENCE:
            self._event(EV_COMMAND_REJECTED, op, result, 0)
        if result == OK:
            if op == CMD_PROGRAM or op == CMD_REFILL:  # the prescription set (a refill sets its
                self.selftest.rebase()  # concentration): the self-tests' reference CRC
            self._project()
        return result

    def _suspend(self):
        if self.ctl.held & HOLD_SUSPENDED:
            return ALREADY_SUSPENDED
        self.ctl.hold(HOLD_SUSPENDED)
        self.alarms.raise_(ALARM_SUSPENDED, EV_SUSPENDED, 0)
        return OK

    def _resume(self):
        if not self.ctl.held & HOLD_SUSPENDED:
            return NOT_SUSPENDED
        self.ctl.release(HOLD_SUSPENDED)
        self.alarms.clear(ALARM_SUSPENDED, EV_RESUMED, 0)
        return OK

    # -- status -----------------------------------------------------------------------------------

    def _project(self):
        """Recalculates the dates: at start, refill, bolus start, program and battery changes."""
        ctl = self.ctl
        pump = ctl.pump
        volume = ctl.reservoir.volume_nl
        wd = ctl.weekday()
        if ctl.rx is not self._week_rx or ctl.conc != self._week_conc:
            fill_week(self._week_ptm, ctl.rx, ctl.conc, True, self._qr)
            fill_week(self._week, ctl.rx, ctl.conc, False, self._qr)
            self._week_rx = ctl.rx
            self._week_conc = ctl.conc
        self.low_reservoir_min = minutes_in_week(volume - pump.low_nl, self._week_ptm, wd, ctl.ms, self._qr)
        self.empty_min = minutes_in_week(ctl.reservoir.strokes_available() * pump.stroke_nl, self._week, wd, ctl.ms,
                                         self._qr)
        self.eri_days = self.gauge.eri_in_days()
        self.eos_days = self.gauge.eos_in_days()
        self._event(EV_PROJECTION, 0, 0, 0)

    def state(self):
        """The pump's state, most severe first (STATE_NAMES)."""
        held = self.ctl.held
        if self.watch.runaway:
            return MOTOR_FAULT
        if held & HOLD_EOS:
            return END_OF_SERVICE
        if held & HOLD_OCCLUSION:
            return OCCLUDED
        if held & HOLD_STALL or self.watch.stall:
            return STALLED
        if held & HOLD_EMPTY:
            return EMPTY
        if held & HOLD_SUSPENDED:
            return SUSPENDED
        if held & HOLD_LIMIT:
            return LIMIT_HELD
        if self.alarms.active & ALARM_LOW_RESERVOIR:
            return LOW_RESERVOIR
        return DELIVERING
