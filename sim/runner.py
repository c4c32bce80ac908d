"""Runs a scenario: the real firmware controller on the virtual clock and the simulated pump."""

import time
from dataclasses import dataclass, field

from firmware import alarms as A
from firmware.controller import Controller
from sim.clock import SimClock
from sim.pump import SimPump
from sim.scenario import copy_prescription

MS_PER_DAY = 86_400_000


@dataclass
class Result:
    scenario: object
    events: list = field(default_factory=list)  # dicts, in time order
    boluses: list = field(default_factory=list)
    daily: list = field(default_factory=list)  # dicts per day
    samples: list = field(default_factory=list)  # (t_ms, reservoir_nl, delivered_mcg, prescribed_mcg)
    strokes: int = 0
    delivered_nl: int = 0
    delivered_mcg: float = 0.0
    prescribed_mcg: float = 0.0
    missed_mcg: float = 0.0
    max_lag_nl: float = 0.0
    final_reservoir_nl: int = 0
    firmware_reservoir_nl: int = 0
    state: str = "delivering"
    stroke_times: object = None
    wall_s: float = 0.0
    wakes: int = 0


class Run:
    def __init__(self, scenario, record_strokes=False):
        self.scenario = scenario
        self.result = Result(scenario)
        self.clock = SimClock()
        self.pump = SimPump(self.clock, scenario.pump.stroke_nl, scenario.volume_nl, record_strokes)
        self._pending_requests = {}  # kind -> requested t_ms, for the boluses list
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
        self._conc = scenario.rx.concentration
        self._ideal_nl = 0
        self._delivered_nl = 0
        self._missed_nl = 0
        self._day_delivered = 0.0
        self._day_prescribed = 0.0

    # -- event sink (the firmware's emit) -------------------------------------------------

    def _emit(self, code, a, b, c):
        t_ms = self.clock.now_ms
        r = self.result
        name = A.EVENT_NAMES[code]
        ev = {"t_s": t_ms / 1000, "kind": name}
        if code == A.EV_BOLUS:
            kind = A.KIND_NAMES[a]
            ev.update(bolus=kind, granted=b == A.OK, mcg=c / 1000, reason=A.REASON_NAMES[b] or None)
            requested = self._pending_requests.pop(kind, t_ms)
            r.boluses.append(
                {
                    "kind": kind,
                    "requested_s": requested / 1000,
                    "granted": b == A.OK,
                    "mcg": c / 1000,
                    "reason": A.REASON_NAMES[b] or None,
                }
            )
        elif code == A.EV_LIMIT_TRUNCATED:
            ev.update(bolus=A.KIND_NAMES[a], requested_mcg=b / 1000, granted_mcg=c / 1000)
        elif code in (A.EV_BOLUS_END, A.EV_BOLUS_CANCELLED):
            ev.update(bolus=A.KIND_NAMES[a])
        elif code in (A.EV_REFILL_REJECTED, A.EV_PROGRAM_REJECTED):
            ev.update(reason=A.REASON_NAMES[a])
        elif code == A.EV_REFILL:
            ev.update(reservoir_ml=a / 1e6, concentration_mcg_ml=b)
        elif code in (A.EV_LOW_RESERVOIR, A.EV_LOW_RESERVOIR_CLEARED, A.EV_EMPTY_RESERVOIR, A.EV_DELIVERY_RESUMED):
            ev.update(reservoir_ml=a / 1e6)
        elif code == A.EV_UNDER_DELIVERY:
            ev.update(nl=a)
        r.events.append(ev)

    # -- bookkeeping --------------------------------------------------------------------------

    def _account(self):
        """Fold the firmware's counters since the last call into mcg at the concentration in force."""
        ctl = self.ctl
        ideal = ctl.ideal.total_nl()
        delivered = ctl.delivered.total_nl()
        missed = ctl.missed.total_nl()
        to_mcg = self._conc / 1e6
        d_del = (delivered - self._delivered_nl) * to_mcg
        d_ideal = (ideal - self._ideal_nl) * to_mcg
        r = self.result
        r.delivered_mcg += d_del
        r.prescribed_mcg += d_ideal
        r.missed_mcg += (missed - self._missed_nl) * to_mcg
        self._day_delivered += d_del
        self._day_prescribed += d_ideal
        self._ideal_nl, self._delivered_nl, self._missed_nl = ideal, delivered, missed
        self._conc = ctl.rx.concentration
        r.samples.append((self.clock.now_ms, self.pump.volume_nl, r.delivered_mcg, r.prescribed_mcg))

    def _close_day(self, day):
        self.result.daily.append(
            {"day": day, "delivered_mcg": round(self._day_delivered, 3), "prescribed_mcg": round(self._day_prescribed, 3)}
        )
        self._day_delivered = self._day_prescribed = 0.0

    def _apply(self, ev):
        ctl = self.ctl
        if ev.action == "bolus":
            self._pending_requests["clinician"] = ev.t_ms
            ctl.request_bolus(ev.amount_ng, ev.minutes)
        elif ev.action == "ptm":
            self._pending_requests["ptm"] = ev.t_ms
            ctl.request_ptm()
        elif ev.action == "cancel_bolus":
            if ctl.cancel_bolus() != A.OK:
                self.result.events.append({"t_s": ev.t_ms / 1000, "kind": "cancel_rejected", "reason": "no_active_bolus"})
        elif ev.action == "refill":
            ctl.service()
            self._account()  # the old concentration's mcg end here
            new_drug = ev.concentration != ctl.rx.concentration
            if ctl.refill(ev.volume_nl, ev.concentration) == A.OK:
                self.pump.refill(ev.volume_nl, new_drug)
            self._account()
        elif ev.action == "program":
            try:
                ctl.program(copy_prescription(ev.rx))
            except ValueError as e:
                self.result.events.append({"t_s": ev.t_ms / 1000, "kind": "program_rejected", "reason": str(e)})

    def run(self, progress=None):
        wall0 = time.perf_counter()
        sc = self.scenario
        clock, ctl, pump = self.clock, self.ctl, self.pump
        end_ms = sc.days * MS_PER_DAY
        events = sc.events
        ei = 0
        # Pump-clock midnights, where daily totals close.
        next_midnight = MS_PER_DAY - sc.time_of_day_ms
        day = 0
        wakes = 0
        self._account()
        while True:
            t_wake = clock.to_ms(ctl.deadline())
            t_event = events[ei].t_ms if ei < len(events) else end_ms
            t = min(t_wake, t_event, next_midnight, end_ms)
            clock.advance_to(t)
            if t == t_wake:
                ctl.service()
                wakes += 1
            if t == next_midnight:
                if t != t_wake:
                    ctl.service()
                self._account()
                self._close_day(day)
                day += 1
                next_midnight += MS_PER_DAY
                if progress:
                    progress(1)
            while ei < len(events) and events[ei].t_ms == t:
                self._apply(events[ei])
                ei += 1
            if t >= end_ms:
                break
        ctl.service()
        self._account()
        if self._day_delivered or self._day_prescribed or len(self.result.daily) < sc.days:
            self._close_day(day)
        pump.finish()
        r = self.result
        r.strokes = pump.strokes
        r.delivered_nl = ctl.delivered.total_nl()
        r.max_lag_nl = pump.max_lag_nl()
        r.final_reservoir_nl = pump.volume_nl
        r.firmware_reservoir_nl = ctl.reservoir.volume_nl
        r.state = "empty" if ctl.suspended() else ("low_reservoir" if ctl.alarms.active else "delivering")
        if pump.record_strokes:
            import numpy as np

            r.stroke_times = np.concatenate(pump.stroke_times) if pump.stroke_times else np.zeros(0, dtype=np.int64)
        r.wakes = wakes
        r.wall_s = time.perf_counter() - wall0
        return r


def simulate(scenario, record_strokes=False, progress=None):
    return Run(scenario, record_strokes).run(progress)
