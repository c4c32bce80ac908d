"""Stateful property test: long mixed sequences of programs, refills, boluses, cancels, primes and
late wakes, checked at every step against the referee's invariants and the independent oracle.

Each rule appends one input to a scenario at the current time; the invariant runs the scenario so
far through the firmware (with the machine's wake latency) and judges it. `make soak` runs the
large profile (tests/conftest.py).
"""

import os

from hypothesis import assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from test_properties import check_run

from sim import scenario

DAY = 86_400_000
MIN = 60_000
SOAK = os.environ.get("HYPOTHESIS_PROFILE") == "soak"


def _steps(draw_rates, starts):
    return ", ".join(f'{{start = "{m // 60:02d}:{m % 60:02d}", mcg_per_day = {r}}}' for m, r in zip(starts, draw_rates))


class PumpMachine(RuleBasedStateMachine):
    @initialize(
        conc=st.sampled_from([500, 1000, 2000, 3000]),
        stroke=st.sampled_from([100, 250, 500]),
        reservoir=st.sampled_from([20, 40]),
        fill=st.sampled_from([1.0, 2.6, 8.0, 20.0]),
        start_min=st.integers(0, 1439),
        basal=st.lists(st.integers(100, 900), min_size=1, max_size=4),
        periodic=st.lists(st.tuples(st.integers(0, 1439), st.integers(5, 60), st.integers(5, 90)), max_size=2,
                          unique_by=lambda x: x[0]),
        ptm=st.tuples(st.integers(5, 40), st.integers(1, 30), st.integers(15, 240), st.integers(1, 6)),
        headroom=st.integers(30, 400),
        jitter=st.sampled_from([0, 0, 0, 1, 250, 1000]),
        seed=st.integers(0, 9),
    )
    def setup(self, conc, stroke, reservoir, fill, start_min, basal, periodic, ptm, headroom, jitter, seed):
        self.conc = conc
        self.jitter, self.seed = jitter, seed
        self.now = 0
        self.tod0 = start_min * MIN
        starts = [0] + [int(1440 * (i + 1) / (len(basal) + 1)) for i in range(len(basal) - 1)]
        self.limit = max(basal) + headroom
        head = f"""days = 1
start = "2026-01-05T{start_min // 60:02d}:{start_min % 60:02d}"
[pump]
reservoir_ml = {reservoir}
volume_ml = {fill}
stroke_nl = {stroke}
[drug]
concentration_mcg_ml = {conc}
[basal]
steps = [ {_steps(basal, starts)} ]
[ptm]
mcg = {ptm[0]}
minutes = {ptm[1]}
lockout_minutes = {ptm[2]}
max_per_day = {ptm[3]}
[limits]
max_daily_mcg = {self.limit}
"""
        for at, mcg, minutes in periodic:
            head += f'[[periodic_bolus]]\nat = "{at // 60:02d}:{at % 60:02d}"\nmcg = {mcg}\nminutes = {minutes}\n'
        self.head = head
        self.events = []
        self.faults = []
        try:
            scenario.parse(self._text(), "machine.toml")
        except scenario.ScenarioError:
            assume(False)

    def _text(self):
        days = (self.tod0 + self.now) // DAY + 1
        return self.head.replace("days = 1", f"days = {days}", 1) + "".join(self.events) + "".join(self.faults)

    def _add(self, body):
        t = self.tod0 + self.now
        clock = f"{t % DAY // 3_600_000:02d}:{t % 3_600_000 // MIN:02d}:{t % MIN // 1000:02d}"
        ev = f'\n[[event]]\nday = {t // DAY}\ntime = "{clock}"\n{body}\n'
        self.events.append(ev)
        try:
            scenario.parse(self._text(), "machine.toml")
        except scenario.ScenarioError:
            self.events.pop()  # bad input is rejected with a clear error before anything runs

    @rule(minutes=st.integers(1, 3 * 1440), seconds=st.integers(0, 59))
    def wait(self, minutes, seconds):
        self.now += minutes * MIN + seconds * 1000

    @rule()
    def ptm(self):
        self._add('action = "ptm"')

    @rule(mcg=st.integers(1, 300), minutes=st.integers(1, 240))
    def bolus(self, mcg, minutes):
        self._add(f'action = "bolus"\nmcg = {mcg}\nminutes = {minutes}')

    @rule()
    def cancel(self):
        self._add('action = "cancel_bolus"')

    @rule(volume=st.sampled_from([1.5, 5.0, 19.0]), new_drug=st.sampled_from([None, 500, 1000, 2000, 4000]))
    def refill(self, volume, new_drug):
        body = f'action = "refill"\nvolume_ml = {volume}'
        if new_drug:
            body += f"\nconcentration_mcg_ml = {new_drug}"
        self._add(body)

    @rule(rates=st.lists(st.integers(0, 900), min_size=1, max_size=3), weekend=st.booleans(),
          periodic=st.one_of(st.none(), st.lists(st.tuples(st.integers(0, 1439), st.integers(5, 60)), max_size=2,
                                                  unique_by=lambda x: x[0])))
    def program(self, rates, weekend, periodic):
        starts = [0] + [480 * (i + 1) for i in range(len(rates) - 1)]
        body = f'action = "program"\nsteps = [ {_steps(rates, starts)} ]'
        if weekend:
            body += f'\nweekdays = {{ sat = [ {_steps([rates[0] // 2 + 50], [0])} ] }}'
        if periodic is not None:
            items = ", ".join(f'{{ at = "{a // 60:02d}:{a % 60:02d}", mcg = {m}, minutes = 15 }}' for a, m in periodic)
            body += f"\nperiodic_bolus = [ {items} ]"
        self._add(body)

    @rule(action=st.sampled_from(["suspend", "resume", "silence"]))
    def clinician(self, action):
        self._add(f'action = "{action}"')

    @rule(kind=st.sampled_from(["motor_stall", "magnetic_field", "occlusion"]), minutes=st.integers(1, 90))
    def mechanism_fault(self, kind, minutes):
        self._add_fault(f'kind = "{kind}"\nminutes = {minutes}')

    @rule(strokes=st.integers(1, 5))
    def runaway(self, strokes):
        if not any("runaway" in f for f in self.faults):  # one per pump: it must be replaced after
            self._add_fault(f'kind = "runaway"\nstrokes = {strokes}')

    @rule(factor=st.integers(2, 100))
    def battery_drain(self, factor):
        self._add_fault(f'kind = "battery_drain"\nfactor = {factor}')

    def _add_fault(self, body):
        t = self.tod0 + self.now
        clock = f"{t % DAY // 3_600_000:02d}:{t % 3_600_000 // MIN:02d}:{t % MIN // 1000:02d}"
        self.faults.append(f'\n[[fault]]\nday = {t // DAY}\ntime = "{clock}"\n{body}\n')
        try:
            scenario.parse(self._text(), "machine.toml")
        except scenario.ScenarioError:
            self.faults.pop()  # overlapping faults are bad input

    @rule(cm=st.sampled_from([None, 5, 20, 50]))
    def prime(self, cm):
        self._add('action = "prime"' + (f"\ncatheter_cm = {cm}" if cm else ""))

    @precondition(lambda self: hasattr(self, "head"))
    @invariant()
    def every_invariant_holds_against_the_oracle(self):
        check_run(self._text(), self.jitter, self.seed)

    def teardown(self):
        if SOAK and hasattr(self, "head"):  # progress for long soaks (make soak runs pytest -s)
            PumpMachine.done += 1
            print(f"soak example {PumpMachine.done}: {len(self.events)} inputs over {self.now / DAY:.1f} days, "
                  f"jitter {self.jitter} ms", flush=True)


PumpMachine.done = 0


# The small default keeps `make test` fast; `make soak` (HYPOTHESIS_PROFILE=soak) runs 500 examples of
# up to 60 steps, each step a scenario of up to weeks of service.
PumpMachine.TestCase.settings = settings(max_examples=500 if SOAK else 6, stateful_step_count=60 if SOAK else 8,
                                         deadline=None)
TestPumpMachine = PumpMachine.TestCase
