"""Runs a scenario: the real firmware controller on the virtual clock and the simulated pump.

sim/ keeps no dosing or alarm logic: it supplies the clock, the motor and the scenario's inputs,
records what the firmware reports, and leaves judging the run to sim/referee.py.
"""

import random
import time
from dataclasses import dataclass, field

from firmware import alarms as A
from firmware.controller import Controller
from sim.clock import SimClock
from sim.pump import SimPump
from sim.scenario import copy_prescription


@dataclass
class Result:
    scenario: object
    events: list = field(default_factory=list)  # dicts, in time order
    boluses: list = field(default_factory=list)  # every bolus decision, granted or not
    # Inputs the firmware accepted: (t_ms, action, details); "after" counts the bolus decisions before it.
    inputs: list = field(default_factory=list)
    pump: object = None  # the simulated motor, ground truth of every stroke
    strokes: int = 0
    final_reservoir_nl: int = 0
    firmware_reservoir_nl: int = 0
    state: str = "delivering"
    wall_s: float = 0.0
    wakes: int = 0
    wake_jitter_ms: int = 0
    seed: int = 0
    _stroke_times: object = None

    @property
    def stroke_times(self):
        """Every stroke time (int64 numpy array, ms since the start), expanded on first use."""
        if self._stroke_times is None:
            self._stroke_times = self.pump.stroke_times()
        return self._stroke_times


class Run:
    def __init__(self, scenario, wake_jitter_ms=0, seed=0):
        if not 0 <= wake_jitter_ms <= 1000:
            raise ValueError("--wake-jitter-ms: must be 0..1000")
        self.scenario = scenario
        self.result = Result(scenario, wake_jitter_ms=wake_jitter_ms, seed=seed)
        self.clock = SimClock()
        self.pump = SimPump(self.clock, scenario.pump.stroke_nl, scenario.volume_nl)
        self._jitter = wake_jitter_ms
        self._rng = random.Random(seed)
        self._pending = {}  # kind -> requested t_ms, for the boluses list
        self.ctl = Controller(
            self.clock,
            self.pump,
            scenario.pump,
            copy_prescription(scenario.rx),
            self._emit,
            scenario.volume_nl,
            scenario.weekday,
            scenario.time_of_day_ms,
        )

    # -- event sink (the firmware's emit) -------------------------------------------------

    def _pump_t_ms(self):
        """The pump-clock time of the firmware's decision (a wake may come after it), since the start."""
        ctl = getattr(self, "ctl", None)
        if ctl is None:  # emitted from the constructor: the start instant
            return 0
        return ctl.day * 86_400_000 + ctl.ms - self.scenario.time_of_day_ms

    def _emit(self, code, a, b, c):
        t_ms = self.clock.now_ms
        r = self.result
        name = A.EVENT_NAMES[code]
        ev = {"t_s": t_ms / 1000, "kind": name}
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
        r.events.append(ev)

    def _note(self, t_ms, kind, **details):
        self.result.events.append({"t_s": t_ms / 1000, "kind": kind, **details})

    # -- inputs ---------------------------------------------------------------------------------

    def _apply(self, ev):
        ctl = self.ctl
        if ev.action == "bolus":
            self._pending["clinician"] = ev.t_ms
            ctl.request_bolus(ev.amount_ng, ev.minutes)
        elif ev.action == "ptm":
            self._pending["ptm"] = ev.t_ms
            ctl.request_ptm()
        elif ev.action == "cancel_bolus":
            if ctl.cancel_bolus() == A.OK:
                self.result.inputs.append((ev.t_ms, "cancel", {"after": len(self.result.boluses)}))
            else:
                self._note(ev.t_ms, "cancel_rejected", reason="no_active_bolus")
        elif ev.action == "refill":
            new_drug = ev.concentration != ctl.conc
            if ctl.refill(ev.volume_nl, ev.concentration) == A.OK:
                self.pump.refill(ev.volume_nl, new_drug)
                self.result.inputs.append((ev.t_ms, "refill", {"volume_nl": ev.volume_nl,
                                                              "concentration": ev.concentration}))
        elif ev.action == "program":
            try:
                if ctl.program(copy_prescription(ev.rx)) == A.OK:
                    self.result.inputs.append((ev.t_ms, "program", {"rx": ev.rx}))
            except ValueError as e:
                self._note(ev.t_ms, "program_rejected", reason=str(e))
        elif ev.action == "prime":
            if ctl.prime(ev.catheter_cm) == A.OK:
                self.result.inputs.append((ev.t_ms, "prime", {"catheter_cm": ev.catheter_cm,
                                                              "after": len(self.result.boluses)}))

    def _wake_at(self, deadline):
        """When the firmware actually wakes for a deadline: on time, or late by up to the jitter."""
        if deadline != self._jit_deadline:
            self._jit_deadline = deadline
            self._jit = self._rng.randint(0, self._jitter) if self._jitter else 0
        return self.clock.to_ms(deadline) + self._jit

    def run(self, progress=None):
        wall0 = time.perf_counter()
        sc = self.scenario
        clock, ctl, pump = self.clock, self.ctl, self.pump
        end_ms = sc.days * 86_400_000
        events = sc.events
        ei = 0
        wakes = 0
        self._jit_deadline = None
        self._jit = 0
        next_day = 86_400_000
        while True:
            t_wake = self._wake_at(ctl.deadline())
            t_event = events[ei].t_ms if ei < len(events) else end_ms
            t = min(t_wake, t_event, end_ms)
            clock.advance_to(t)
            if t == t_wake:
                ctl.service()
                wakes += 1
            while ei < len(events) and events[ei].t_ms == t:
                self._apply(events[ei])
                ei += 1
            while progress and t >= next_day:
                progress(1)
                next_day += 86_400_000
            if t >= end_ms:
                break
        ctl.service()
        pump.finish()
        r = self.result
        r.pump = pump
        r.strokes = pump.strokes_total
        r.final_reservoir_nl = pump.volume_nl
        r.firmware_reservoir_nl = ctl.reservoir.volume_nl
        r.state = "empty" if ctl.suspended() else ("priming" if ctl.priming() else (
            "low_reservoir" if ctl.alarms.active else "delivering"))
        r.wakes = wakes
        r.wall_s = time.perf_counter() - wall0
        return r


def simulate(scenario, wake_jitter_ms=0, seed=0, progress=None):
    return Run(scenario, wake_jitter_ms, seed).run(progress)
