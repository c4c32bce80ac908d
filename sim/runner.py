"""Runs a scenario: the firmware's own main loop (firmware/loop.py) on simulated hardware.

sim/ keeps no dosing or alarm logic. It supplies the HAL backends (the virtual clock whose wait
jumps to the earlier of the firmware's deadline and the next scenario input or fault, the motor,
the annunciator, the patient button, the programmer channel, the battery cell's ADC), feeds the
scenario's inputs and faults in at their times, records what the firmware reports, and leaves
judging the run to sim/referee.py.
"""

import datetime as dt
import random
import time
from dataclasses import dataclass, field

from firmware import alarms as A
from firmware.loop import STATE_NAMES, PumpLoop
from firmware.persist import Persist
from hal import channel as C
from sim.battery import SimCell
from sim.clock import SimClock, SimRTC
from sim.nor_flash import NorFlash, PowerCut
from sim.pump import TOP_SPEED_MS, SimPump
from sim.scenario import Fault, copy_prescription
from sim.watchdog import SimWatchdog

DAY = 86_400_000
JOURNAL_BLOCK_BYTES = 4096  # a board's erase block (rp2.Flash, esp32.Partition)
JOURNAL_BLOCKS = 16  # 64 KB for the journal
EVENT_BLOCKS = 12  # 48 KB for the event log: 1024 events and more through an erase
_RESET_FAULTS = ("power_loss", "hang", "flash_bitflip", "battery_sag")

_COMMANDS = {"bolus": C.CMD_BOLUS, "refill": C.CMD_REFILL, "program": C.CMD_PROGRAM, "prime": C.CMD_PRIME,
             "silence": C.CMD_SILENCE, "suspend": C.CMD_SUSPEND, "resume": C.CMD_RESUME,
             "cancel_bolus": C.CMD_CANCEL_BOLUS}


@dataclass
class Result:
    scenario: object
    events: list = field(default_factory=list)  # dicts, in time order
    boluses: list = field(default_factory=list)  # every bolus decision, granted or not
    # Inputs the firmware accepted: (t_ms, action, details); "after" counts the bolus decisions before it.
    inputs: list = field(default_factory=list)
    holds: list = field(default_factory=list)  # the firmware's delivery holds: dicts kind/start_ms/end_ms/keep_owed
    alarms: list = field(default_factory=list)  # {kind, class, raised_s, cleared_s, tones}
    tones: list = field(default_factory=list)  # (t_ms, alarm, class) of every tone that sounded
    muted_tones: int = 0  # tones the firmware asked for that the exhausted cell could not sound
    glitch_reads: int = 0  # battery readings an adc_glitch served
    cell_dead_ms: int | None = None  # the first of them
    releases: list = field(default_factory=list)  # (t_ms, nL) a released block let through at once
    withheld_ng: int = 0  # what the firmware withheld for the limit after releases (limit_held)
    resets: list = field(default_factory=list)  # {t_ms, seconds, cause} of every reset
    projections: list = field(default_factory=list)
    battery: dict = field(default_factory=dict)
    pump: object = None  # the simulated motor, ground truth of every stroke
    cell: object = None
    strokes: int = 0
    final_reservoir_nl: int = 0
    firmware_reservoir_nl: int = 0
    state: str = "delivering"
    wall_s: float = 0.0
    wakes: int = 0
    wake_jitter_ms: int = 0
    seed: int = 0
    _stroke_times: object = None
    strokes_given: bool = False  # stroke_times was set, not taken from the motor's trains (tests)

    @property
    def stroke_times(self):
        """Every stroke time (int64 numpy array, ms since the start), expanded on first use: the
        referee needs none of it (it judges the motor's trains in closed form)."""
        if self._stroke_times is None:
            self._stroke_times = self.pump.stroke_times()
        return self._stroke_times

    @stroke_times.setter
    def stroke_times(self, times):
        self._stroke_times = times
        self.strokes_given = True


class SimButton:
    """The patient's PTM button."""

    def __init__(self):
        self._presses = 0

    def press(self):
        self._presses += 1

    def pending(self):
        return self._presses

    def presses(self):
        n = self._presses
        self._presses = 0
        return n


class SimAnnunciator:
    """The buzzer: records every tone that sounds, if the cell can still supply it."""

    def __init__(self, run):
        self._run = run

    def tone(self, cls, alarm):
        run = self._run
        cell = run.cell
        if not cell.can_supply_tone():
            if run.result.cell_dead_ms is None:
                run.result.cell_dead_ms = run.clock.now_ms
            run.result.muted_tones += 1
            return
        cell.tone(A.CRITICAL_TONE_S if cls == A.CRITICAL else A.NON_CRITICAL_TONE_S)
        t = run.clock.now_ms
        run.result.tones.append((t, A.ALARM_NAMES[alarm], A.CLASS_NAMES[cls]))
        run.result.events.append({"kind": "tone", "alarm": A.ALARM_NAMES[alarm], "class": A.CLASS_NAMES[cls],
                                  "t_s": t / 1000})


class SimProgrammer(C.Channel):
    """The programmer channel, remembering which scenario event each command came from."""

    def __init__(self, run):
        super().__init__(16)
        self._run = run
        self._origin = {}

    def send_event(self, ev, command):
        self._origin[id(command)] = ev
        self._run.cell.command()
        if not self.send(command):
            raise RuntimeError("programmer channel full")

    def reply(self, command, result):
        super().reply(command, result)
        self._run.replied(self._origin.pop(id(command)), result)

    def drop(self):
        """A reset: commands sent and not yet served are lost (the programmer gets no reply)."""
        while self.pending():
            self._origin.pop(id(self.receive()), None)


class _Adc:
    """The battery ADC with the scenario's adc_glitch faults: it reads a glitch's mv from its start
    for its ms (the earliest-starting one where they overlap), the cell's voltage otherwise."""

    def __init__(self, run):
        self._run = run
        self._glitches = sorted((f.t_ms, f.t_ms + f.ms, f.mv) for f in run.scenario.faults if f.kind == "adc_glitch")

    def read_mv(self):
        run = self._run
        mv = run.cell.read_mv()  # the cell draws up to now either way
        now = run.clock.now_ms
        for start, end, glitch_mv in self._glitches:
            if start <= now < end:
                run.result.glitch_reads += 1
                return glitch_mv
        return mv


class _Reset(Exception):
    """The firmware stops here: the power fails, or the watchdog resets it."""

    def __init__(self, seconds, cause):
        super().__init__(cause)
        self.seconds = seconds
        self.cause = cause


class _Clock(SimClock):
    def __init__(self, run):
        super().__init__()
        self._run = run
        self.wait = run.wait  # the HAL clock's wait(deadline, ready) is the run's: one call a wake, not two


class Run:
    def __init__(self, scenario, wake_jitter_ms=0, seed=0, journal=False, link_port=None):
        if not 0 <= wake_jitter_ms <= 1000:
            raise ValueError("--wake-jitter-ms: must be 0..1000")
        self.scenario = scenario
        self.result = Result(scenario, wake_jitter_ms=wake_jitter_ms, seed=seed)
        self.clock = _Clock(self)
        self.pump = SimPump(self.clock, scenario.pump.stroke_nl, scenario.volume_nl, scenario.compliance_nl)
        self.cell = SimCell(self.clock, scenario.battery, lambda: self.pump.strokes_total)
        self.result.cell = self.cell
        self.button = SimButton()
        self.programmer = SimProgrammer(self)
        self._jitter = wake_jitter_ms
        self._rng = random.Random(seed)
        self._jit_deadline = None
        self._jit = 0
        self._conc = scenario.rx.concentration  # the drug in the simulated reservoir
        self._pending = {}  # bolus kind -> requested t_ms, for the boluses list
        self._open_alarms = {}
        self._hold_open = {}
        self.end_ms = scenario.days * DAY
        self.link_port = link_port  # a LinkPort (hal/interfaces.py) the firmware serves: pumpsim serve
        self._ei = 0
        self._edges = self._fault_edges()
        self._next_input()
        self._runaway_left = 0
        self._runaway_next = None
        self._progress = None
        self._next_day = DAY
        self.loop = None
        # The journal's flash and the real-time clock: with a journal the firmware boots from its
        # state after every reset (power_loss, hang) as a board does (firmware/persist.py).
        self.journal = journal or any(f.kind in _RESET_FAULTS for f in scenario.faults)
        self.flash = NorFlash(JOURNAL_BLOCK_BYTES, JOURNAL_BLOCKS) if self.journal else None
        self.event_flash = NorFlash(JOURNAL_BLOCK_BYTES, EVENT_BLOCKS) if self.journal else None
        self.rtc = SimRTC(self.clock)
        self.moved_ms = 0  # what set_clock settings moved the pump's clock by, in all ...
        self._relabelled_ms = 0  # ... and its (day, ms) (firmware Controller.clock_shift_ms)
        self._off = False  # the firmware is off (an outage): inputs go nowhere
        self._tear_seconds = 0
        self._deferred = []  # programmer commands sent while the pump was off
        # The watchdog (sim/watchdog.py), with the journal only: a reset recovers from the journal's
        # state (without one a board would boot the config's prescription again). A `hang` stops the
        # loop: it no longer wakes or feeds, and the watchdog's bite resets it.
        self.dog = None
        self._hung = False
        self._hung_at = 0  # when the loop hung
        self.loop = self._boot()
        self._note_projection()

    def _boot(self):
        """The firmware starts on the simulated hardware: from its journal when it has one."""
        scenario = self.scenario
        persist = Persist(self.flash, self.rtc, self.event_flash) if self.journal else None
        self.dog = SimWatchdog(self.clock) if self.journal else None  # started again at every boot
        self.loop = None
        loop = PumpLoop(
            self.clock,
            self.pump,
            SimAnnunciator(self),
            self.button,
            self.programmer,
            _Adc(self) if any(f.kind == "adc_glitch" for f in scenario.faults) else self.cell,
            scenario.pump,
            copy_prescription(scenario.rx),
            self._emit,
            scenario.volume_nl,
            scenario.weekday,
            scenario.time_of_day_ms,
            scenario.battery,
            scenario.critical_repeat_minutes,
            persist,
            self.dog,
            **({"link_port": self.link_port} if self.link_port is not None else {}),
        )
        self.loop = loop
        return loop

    def _outage(self, seconds, cause):
        """The power fails now (or the watchdog resets the firmware): the motor stops, the firmware
        is gone until the power is back `seconds` later, then it boots again."""
        hung_ms = self.clock.now_ms - self._hung_at if self._hung else 0
        self._hung = False
        t = self.clock.now_ms
        self.pump.stop()
        self.flash.tear_after(-1)
        self._off = True
        # To the referee the time off is a delivery hold: the ideal is missed, nothing is owed after.
        # A hung loop was off from when it hung (the motor only ran out the train it had started).
        self._hold_start(t - hung_ms, "power_off", False)
        # hung_ms: how long the loop had hung before the watchdog reset it (its inputs went nowhere)
        self.result.resets.append({"t_ms": t, "seconds": seconds, "cause": cause, "hung_ms": hung_ms})
        self._note(t, "reset", cause=cause, seconds=seconds)
        end = t + seconds * 1000
        while True:  # the world goes on while the pump is off: inputs are lost, faults apply
            nxt = self._next_in
            if nxt > end or nxt >= self.end_ms:
                break
            self._pace(nxt, False)
            self.clock.advance_to(nxt)
            self._externals(nxt)
        self._pace(min(end, self.end_ms), False)
        self.clock.advance_to(min(end, self.end_ms))
        self._hold_end(self.clock.now_ms, "power_off")
        self._off = False
        self.programmer.drop()
        self.button.presses()
        loop = self._boot()
        deferred, self._deferred = self._deferred, []
        for ev in deferred:
            self._input(ev)
        return loop

    # -- the world outside the firmware -----------------------------------------------------------

    def _fault_edges(self):
        edges = []
        for f in self.scenario.faults:
            if f.kind in ("motor_stall", "magnetic_field"):
                edges += [(f.t_ms, 0, "stall_on", f), (f.end_ms, 1, "stall_off", f)]
            elif f.kind == "occlusion":
                edges += [(f.t_ms, 0, "block_on", f), (f.end_ms, 1, "block_off", f)]
            elif f.kind == "battery_drain":
                edges.append((f.t_ms, 0, "drain", f))
            elif f.kind in _RESET_FAULTS or f.kind == "set_clock":
                edges.append((f.t_ms, 0, f.kind, f))
            elif f.kind == "adc_glitch":  # served by _Adc; the edges only note it
                edges += [(f.t_ms, 0, "glitch_on", f), (f.t_ms + f.ms, 1, "glitch_off", f)]
            else:
                edges.append((f.t_ms, 0, "runaway", f))
        edges.sort(key=lambda e: (e[0], e[1]))
        return edges

    def _next_input(self):
        """The end, the next scenario input or the next fault edge, whichever is first (_externals moves it)."""
        t = self.end_ms
        events = self.scenario.events
        if self._ei < len(events):
            t = min(t, events[self._ei].t_ms)
        if self._edges:
            t = min(t, self._edges[0][0])
        self._next_in = t

    def _next_external(self):
        t = self._next_in
        pump = self.pump
        if pump.stalled or pump.blocked:  # else the motor reports nothing by itself
            p = pump.next_event_ms()
            if p is not None and p < t:
                t = p
        if self._runaway_next is not None and self._runaway_next < t:
            t = self._runaway_next
        return t

    def _externals(self, t):
        while self._edges and self._edges[0][0] == t:
            self._fault_edge(*self._edges.pop(0)[2:])
        events = self.scenario.events
        if self._ei < len(events) and events[self._ei].t_ms == t:
            # One input at a time: the firmware serves each before the next of the same ms, in file order.
            self._input(events[self._ei])
            self._ei += 1
        if self._runaway_next == t:
            if self._runaway_left and self.pump.uncommanded_stroke():
                self._runaway_left -= 1
                self._runaway_next = t + TOP_SPEED_MS if self._runaway_left else None
            else:
                self._runaway_next = None
        self._next_input()
        self.pump.poke()

    def _fault_edge(self, what, f):
        pump = self.pump
        t = self.clock.now_ms
        self._note(t, "fault_" + what, fault=f.kind)
        if what in ("stall_on", "block_on"):
            pump._count_to(t - 1)  # strokes due before this ms are not affected
            if what == "stall_on":
                pump.stalled = True
            else:
                pump.blocked = True
                pump.block_strokes = 0
        elif what == "stall_off":
            pump.stalled = False
        elif what == "block_off":
            pump._count_to(t - 1)
            stored = pump.block_strokes * pump.stroke_nl
            pump.blocked = False
            pump.block_strokes = 0
            self.result.releases.append((t, stored))
        elif what == "drain":
            pump._count_to(t - 1)  # strokes before this ms drew at the old factor
            self.cell.set_factor(f.factor)
        elif what == "runaway":
            self._runaway_left = f.strokes
            self._runaway_next = t
        elif what == "flash_bitflip":
            region = self.flash.block_size * self.flash.blocks * 8
            for _ in range(f.count):
                self.flash.flip(self._rng.randrange(region))
        elif what == "set_clock":
            self._set_clock(f)
        elif self._off:
            return  # no firmware to cut or hang
        elif what == "power_loss":
            if f.tear:
                # the cut comes in the middle of the next journal write
                self.flash.tear_after(self._rng.randint(0, 200))
                self._tear_seconds = f.seconds
            else:
                raise _Reset(f.seconds, "power_loss")
        elif what == "hang":
            # The loop stops where it is: no more wakes, no feed; the motor runs out its train. Inputs
            # find no firmware (as during an outage) until the watchdog resets it (wait()).
            self._hung = True
            self._hung_at = t
            self._off = True
        elif what == "battery_sag":
            # The 2009-2011 field failure: the cell sags under a stroke's load below the brown-out
            # level and the controller restarts at once (no time off).
            self.pump._count_to(t)
            raise _Reset(0, "battery_sag")

    def _set_clock(self, f):
        """The clinician's programmer sets the pump's clock: the time it shows now, so a setting
        deferred by an outage is f.to plus the wait (the jump is the same)."""
        t = self.clock.now_ms
        if self._off:
            self._note(t, "input_deferred", action="set_clock")
            self._deferred.append(f)
            return
        weekday, ms_of_day = self.shown(t + f.jump_ms)
        self.programmer.send_event(f, (C.CMD_SET_CLOCK, weekday, ms_of_day))

    def shown(self, t_ms):
        """(weekday, ms of the day) the pump's clock shows at run time t_ms, by the settings so far."""
        local = self.scenario.start + dt.timedelta(milliseconds=t_ms + self.moved_ms)
        return local.weekday(), ((local.hour * 60 + local.minute) * 60 + local.second) * 1000 + local.microsecond // 1000

    def _input(self, ev):
        if isinstance(ev, Fault):  # a set_clock deferred by an outage
            self._set_clock(ev)
            return
        if self._off:
            if ev.action == "ptm":  # a press on a pump that is off does nothing
                self._note(self.clock.now_ms, "input_lost", action=ev.action)
            else:  # the programmer finds no pump and tries again once it answers (at boot)
                self._note(self.clock.now_ms, "input_deferred", action=ev.action)
                self._deferred.append(ev)
            return
        if ev.action == "ptm":
            self._pending["ptm"] = ev.t_ms
            self.button.press()
            return
        op = _COMMANDS[ev.action]
        if ev.action == "bolus":
            self._pending["clinician"] = ev.t_ms
            command = (op, ev.amount_ng, ev.minutes)
        elif ev.action == "refill":
            command = (op, ev.volume_nl, ev.concentration)
        elif ev.action == "program":
            command = (op, copy_prescription(ev.rx))
        elif ev.action == "prime":
            command = (op, ev.catheter_cm)
        else:
            command = (op,)
        self.programmer.send_event(ev, command)

    def wait(self, deadline, ready):
        """The HAL clock's wait: jump to the deadline (late by the wake jitter), or to the next
        scenario input or fault the firmware would notice, whichever is first. The watchdog bites
        (raising _Reset) if its expiry comes first: a hung loop never wakes."""
        if ready() and not self._hung:
            return True
        t_wake = self._wake_at(deadline)
        while True:
            t = self._next_external()
            if self._hung:
                t_wake = t + 1  # never reached: the loop is stuck
            external = t <= t_wake
            if not external:
                t = t_wake
            if self.dog is not None and self.dog.expires_ms() < t and self.dog.expires_ms() < self.end_ms:
                self.clock.advance_to(self.dog.expires_ms())
                raise _Reset(0, "watchdog")
            reached = self._pace(t, not self._hung)
            if reached < t:  # pumpsim serve: bytes on the link before t; the firmware wakes for them
                self.clock.advance_to(reached)
                return True
            self.clock.advance_to(t)
            while self._progress and t >= self._next_day:
                self._progress(1)
                self._next_day += DAY
            if external:
                self._externals(t)
            if t >= self.end_ms:
                return False
            if not self._hung and (t == t_wake or ready()):
                return True

    def _pace(self, t_ms, wake):
        """Before the clock moves to t_ms. A run does not wait; pumpsim serve (sim/serve.py) waits here
        for the wall clock, returning earlier (the ms reached) when wake and the link has bytes."""
        return t_ms

    def _wake_at(self, deadline):
        """When the firmware actually wakes for a deadline: on time, or late by up to the jitter."""
        if deadline != self._jit_deadline:
            self._jit_deadline = deadline
            self._jit = self._rng.randint(0, self._jitter) if self._jitter else 0
        t = self.clock.to_ms(deadline)
        return (t if t > self.clock.now_ms else self.clock.now_ms) + self._jit  # an overdue deadline: now

    # -- what the firmware reports ------------------------------------------------------------------

    def _pump_t_ms(self):
        """The pump-clock time of the firmware's decision (a wake may come after it), since the start."""
        if self.loop is None:  # emitted while starting up: the start instant
            return 0
        ctl = self.loop.ctl
        return ctl.day * DAY + ctl.ms - self.scenario.time_of_day_ms - self._relabelled_ms

    def _emit(self, code, a, b, c):
        if code == A.EV_PROJECTION:  # the most frequent, with tones (recorded by SimAnnunciator)
            if self.loop is not None:  # else emitted while starting up: Run() notes the first itself
                self._note_projection()
            return
        if code == A.EV_TONE:
            return
        t_ms = self.clock.now_ms
        r = self.result
        ev = {"t_s": t_ms / 1000, "kind": A.EVENT_NAMES[code]}
        if code == A.EV_CLOCK_SET:  # the pump's (day, ms) moved by this: the run's time did not
            self._relabelled_ms += self.loop.ctl.clock_shift_ms
            ev.update(jump_s=c)
        if code == A.EV_BOLUS:
            kind = A.KIND_NAMES[a]
            reason = A.REASON_NAMES[b] or None
            ev.update(bolus=kind, granted=b == A.OK, mcg=c / 1000, reason=reason)
            requested = self._pending.pop(kind, t_ms)
            r.boluses.append({"kind": kind, "requested_s": requested / 1000, "t_ms": t_ms,
                              "pump_t_ms": self._pump_t_ms(), "granted": b == A.OK, "ng": c, "mcg": c / 1000,
                              "reason": reason})
        elif code == A.EV_LIMIT_TRUNCATED:
            ev.update(bolus=A.KIND_NAMES[a], requested_mcg=b / 1000, granted_mcg=c / 1000)
        elif code in (A.EV_BOLUS_END, A.EV_BOLUS_CANCELLED):
            ev.update(bolus=A.KIND_NAMES[a])
        elif code in (A.EV_REFILL_REJECTED, A.EV_PROGRAM_REJECTED, A.EV_PRIME_REJECTED):
            ev.update(reason=A.REASON_NAMES[a])
        elif code == A.EV_REFILL:
            ev.update(reservoir_ml=a / 1e6, concentration_mcg_ml=b)
        elif code in (A.EV_LOW_RESERVOIR, A.EV_LOW_RESERVOIR_CLEARED, A.EV_EMPTY_RESERVOIR, A.EV_DELIVERY_RESUMED):
            ev.update(reservoir_ml=a / 1e6)
        elif code == A.EV_UNDER_DELIVERY:
            ev.update(mcg=a / 1000)
        elif code in (A.EV_PRIME, A.EV_PRIME_DONE):
            ev.update(volume_ml=a / 1e6)
        elif code == A.EV_ALARM:
            self._alarm(t_ms, a, b)
            ev = {"t_s": t_ms / 1000, "kind": "alarm_raised" if b else "alarm_cleared", "alarm": A.ALARM_NAMES[a],
                  "class": A.CLASS_NAMES[A.CRITICAL if (1 << a) & A.CRITICAL_ALARMS else A.NON_CRITICAL]}
        elif code == A.EV_SILENCED:
            ev.update(alarms=[A.ALARM_NAMES[i] for i in range(A.N_ALARMS) if a >> i & 1])
        elif code == A.EV_COMMAND_REJECTED:
            ev = {"t_s": t_ms / 1000, "kind": A.COMMAND_NAMES[a] + "_rejected", "reason": A.REASON_NAMES[b]}
        elif code == A.EV_STALL:
            self._hold_start(t_ms, "stall", True)
        elif code == A.EV_STALL_RECOVERED:
            ev.update(duration_s=a, missed_mcg=(b * 1_000_000 + c) / 1000)
            self._hold_end(t_ms, "stall")
        elif code == A.EV_OCCLUSION:
            ev.update(load_pct=a)
            self._hold_start(t_ms, "occlusion", False)
        elif code == A.EV_OCCLUSION_RELEASED:
            ev.update(counted_nl=a)
            self._hold_end(t_ms, "occlusion")
        elif code == A.EV_LIMIT_HELD:
            ev.update(withhold_mcg=a / 1000)
            r.withheld_ng += a
            self._hold_start(t_ms, "limit", False)
        elif code == A.EV_LIMIT_HOLD_ENDED:
            ev.update(withheld_mcg=a / 1000)
            self._hold_end(t_ms, "limit")
        elif code == A.EV_RUNAWAY:
            ev.update(strokes_counted=a)  # since the last wake, commanded or not: the excess is the referee's
            self._hold_start(t_ms, "runaway", False)
        elif code == A.EV_BATTERY_LOW_READING:
            ev.update(mv=a, readings=b, threshold_mv=c)
        elif code in (A.EV_ERI, A.EV_EOS):
            r.battery["eri_s" if code == A.EV_ERI else "eos_s"] = t_ms / 1000
            if code == A.EV_EOS:
                self._hold_start(t_ms, "end_of_service", False)
        elif code == A.EV_SUSPENDED:
            self._hold_start(t_ms, "suspended", False)
        elif code == A.EV_RESUMED:
            self._hold_end(t_ms, "suspended")
        r.events.append(ev)

    def _alarm(self, t_ms, alarm, raised):
        name = A.ALARM_NAMES[alarm]
        if raised:
            cls = A.CRITICAL if (1 << alarm) & A.CRITICAL_ALARMS else A.NON_CRITICAL
            entry = {"kind": name, "class": A.CLASS_NAMES[cls], "raised_s": t_ms / 1000, "cleared_s": None,
                     "tones": 0}
            self._open_alarms[name] = entry
            self.result.alarms.append(entry)
        else:
            entry = self._open_alarms.pop(name, None)
            if entry is not None:
                entry["cleared_s"] = t_ms / 1000

    def _hold_start(self, t_ms, kind, keep_owed):
        h = {"kind": kind, "start_ms": t_ms, "end_ms": None, "keep_owed": keep_owed,
             "after": len(self.result.boluses)}
        self._hold_open[kind] = h
        self.result.holds.append(h)

    def _hold_end(self, t_ms, kind):
        h = self._hold_open.pop(kind, None)
        if h is not None:
            h["end_ms"] = t_ms

    def _note_projection(self):
        loop = self.loop
        t = self.clock.now_ms

        def at(value, unit_ms):
            return None if value < 0 else (t + value * unit_ms) / 1000

        self.result.projections.append({
            "t_s": t / 1000,
            "low_reservoir_s": at(loop.low_reservoir_min, 60_000),
            "empty_s": at(loop.empty_min, 60_000),
            "eri_s": at(loop.eri_days, DAY),
            "eos_s": at(loop.eos_days, DAY),
        })

    def _note(self, t_ms, kind, **details):
        self.result.events.append({"t_s": t_ms / 1000, "kind": kind, **details})

    def replied(self, ev, result):
        """The firmware's answer to a programmer command from scenario event ev."""
        t = self.clock.now_ms
        r = self.result
        if isinstance(ev, Fault):  # set_clock
            if result != A.OK:
                self._note(t, "set_clock_rejected", reason=str(result))
                return
            # The pump's real-time clock is set with it (firmware/persist.py reads it after a reset).
            self.moved_ms += ev.jump_ms
            self.rtc.epoch_s += ev.jump_ms // 1000
            r.inputs.append((t, "set_clock", {"jump_ms": ev.jump_ms}))
            return
        if isinstance(result, ValueError):
            self._note(t, ev.action + "_rejected", reason=str(result))
            return
        if result != A.OK:
            if ev.action == "cancel_bolus":
                self._note(t, "cancel_rejected", reason=A.REASON_NAMES[result])
            return
        after = {"after": len(r.boluses)}
        if ev.action == "refill":
            self.pump.refill(ev.volume_nl, ev.concentration != self._conc)
            self._conc = ev.concentration
            r.inputs.append((t, "refill", {"volume_nl": ev.volume_nl, "concentration": ev.concentration}))
        elif ev.action == "program":
            r.inputs.append((t, "program", {"rx": ev.rx}))
        elif ev.action == "prime":
            r.inputs.append((t, "prime", {"catheter_cm": ev.catheter_cm, **after}))
        elif ev.action == "cancel_bolus":
            r.inputs.append((t, "cancel", after))
        elif ev.action in ("suspend", "resume"):
            r.inputs.append((t, ev.action, after))

    # -- the run ------------------------------------------------------------------------------------------

    def run(self, progress=None):
        wall0 = time.perf_counter()
        self._progress = progress
        loop = self.loop
        while True:
            try:
                loop.run()
                break
            except _Reset as cut:
                loop = self._outage(cut.seconds, cut.cause)
            except PowerCut:  # a torn journal write
                loop = self._outage(self._tear_seconds, "power_loss_torn")
        if not self._hung:  # a hung loop stays stuck to the end
            loop.service()  # the run's last instant
        pump = self.pump
        pump.finish()
        r = self.result
        r.pump = pump
        r.strokes = pump.strokes_total
        r.final_reservoir_nl = pump.volume_nl
        r.firmware_reservoir_nl = loop.ctl.reservoir.volume_nl
        r.state = STATE_NAMES[loop.state()]
        r.wakes = loop.wakes
        r.battery.setdefault("eri_s", None)
        r.battery.setdefault("eos_s", None)
        r.battery["final_pct"] = round(self.cell.percent_left(), 3)
        r.battery["final_v"] = round(self.cell.read_mv() / 1000, 3)
        for t, alarm, _cls in r.tones:
            for entry in r.alarms:
                if entry["kind"] == alarm and entry["raised_s"] * 1000 <= t and (
                        entry["cleared_s"] is None or t <= entry["cleared_s"] * 1000):
                    entry["tones"] += 1
                    break
        r.wall_s = time.perf_counter() - wall0
        return r


def simulate(scenario, wake_jitter_ms=0, seed=0, progress=None, journal=False):
    return Run(scenario, wake_jitter_ms, seed, journal).run(progress)
