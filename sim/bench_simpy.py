"""The SimPy model of make bench's comparison schedule: `python -m sim.bench_simpy DAYS [STROKE_NL]` prints its strokes.

A 40 mL pump of 2000 mcg/mL, four basal steps, a daily 50 mcg bolus at 08:00 over 10 minutes and a
refill every 90 days, written the idiomatic SimPy way: processes for the basal clock, the bolus and
the refills, and a motor process that sleeps until the owed mass reaches the next stroke (one event
per stroke) and is interrupted when the rate changes. It follows pumpsim's delivery rule exactly:
the path starts full (no priming), a same-drug refill only adds volume (delivery goes on), and stroke
k fires at the first whole ms at which the ideal mass reaches k strokes' worth. It imports neither
firmware/ nor the simulator: sim/bench.py builds pumpsim's scenario from the numbers below."""

import sys

import simpy

MS_PER_MINUTE = 60_000
MS_PER_DAY = 86_400_000

RESERVOIR_NL = 40_000_000
EMPTY_NL = 500_000  # pumpsim's default empty threshold: the model must never reach it
STROKE_NL = 250
CONCENTRATION_MCG_ML = 2000  # = pg per nL
BASAL = ((0, 700), (6 * 60, 400), (12 * 60, 500), (18 * 60, 600))  # (start minute of day, mcg/day)
BOLUS_AT_MINUTE = 8 * 60
BOLUS_MCG = 50
BOLUS_MINUTES = 10
REFILL_EVERY_DAYS = 90
REFILL_AT_MINUTE = 12 * 60
REFILL_NL = 27_000_000  # 600 mcg/day at 2000 mcg/mL use exactly 27 mL in 90 days: never over capacity, never low


class Pump:
    """The ideal mass in 1/86,400,000 ng (a rate of R ng/day accrues R per ms) and the motor that follows it."""

    def __init__(self, env, stroke_nl):
        self.env = env
        self.stroke_nl = stroke_nl
        self.stroke_mass = stroke_nl * CONCENTRATION_MCG_ML * 86_400  # pg * 86,400,000 / 1000
        self.rate_ng_per_day = 0
        self.mass = 0  # accrued up to mass_ms
        self.mass_ms = 0
        self.strokes = 0
        self.reservoir_nl = RESERVOIR_NL
        self.waiting = False
        self.motor = env.process(self._motor())

    def change_rate(self, delta_ng_per_day):
        now = self.env.now
        self.mass += self.rate_ng_per_day * (now - self.mass_ms)
        self.mass_ms = now
        self.rate_ng_per_day += delta_ng_per_day
        if self.waiting:  # a motor that is about to run this ms anyway reads the new rate itself
            self.motor.interrupt()

    def refill(self, volume_nl):
        if self.reservoir_nl + volume_nl > RESERVOIR_NL:
            raise RuntimeError(f"refill of {volume_nl} nL at {self.env.now} ms: over capacity")
        self.reservoir_nl += volume_nl

    def _motor(self):
        env = self.env
        while True:
            owed = (self.strokes + 1) * self.stroke_mass - self.mass - self.rate_ng_per_day * (env.now - self.mass_ms)
            if owed <= 0:
                if self.reservoir_nl - self.stroke_nl < EMPTY_NL:
                    raise RuntimeError(f"the reservoir ran low at {env.now} ms: the model does not stop delivery")
                self.reservoir_nl -= self.stroke_nl
                self.strokes += 1
                continue
            # Stroke due at the first whole ms where the mass reaches it: ceil(owed / rate).
            wait = env.timeout(-(-owed // self.rate_ng_per_day)) if self.rate_ng_per_day else env.event()
            self.waiting = True
            try:
                yield wait
            except simpy.Interrupt:
                pass
            self.waiting = False


def basal(env, pump):
    day_ms = 0
    current = 0
    while True:
        for start_minute, mcg_per_day in BASAL:
            yield env.timeout(day_ms + start_minute * MS_PER_MINUTE - env.now)
            pump.change_rate(mcg_per_day * 1000 - current)
            current = mcg_per_day * 1000
        day_ms += MS_PER_DAY


def bolus(env, pump):
    # A ng over M minutes: A x 1440 = q x M + r; q + 1 ng/day for the first r minutes, then q.
    q, r = divmod(BOLUS_MCG * 1000 * 1440, BOLUS_MINUTES)
    day_ms = 0
    while True:
        yield env.timeout(day_ms + BOLUS_AT_MINUTE * MS_PER_MINUTE - env.now)
        pump.change_rate(q + 1 if r else q)
        if r:
            yield env.timeout(r * MS_PER_MINUTE)
            pump.change_rate(-1)
        yield env.timeout((BOLUS_MINUTES - r) * MS_PER_MINUTE)
        pump.change_rate(-q)
        day_ms += MS_PER_DAY


def refills(env, pump):
    day = REFILL_EVERY_DAYS
    while True:
        yield env.timeout(day * MS_PER_DAY + REFILL_AT_MINUTE * MS_PER_MINUTE - env.now)
        pump.refill(REFILL_NL)
        day += REFILL_EVERY_DAYS


def simulate(days, stroke_nl=STROKE_NL):
    """Strokes delivered over days (a stroke due at the last ms of the run counts, as in pumpsim)."""
    env = simpy.Environment()
    pump = Pump(env, stroke_nl)
    env.process(basal(env, pump))
    env.process(bolus(env, pump))
    env.process(refills(env, pump))
    env.run(until=days * MS_PER_DAY + 1)
    return pump.strokes


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        days = int(argv[0])
        stroke_nl = int(argv[1]) if len(argv) > 1 else STROKE_NL
        if len(argv) > 2 or not 1 <= days <= 20_000 or not 50 <= stroke_nl <= 5000:
            raise ValueError
    except (IndexError, ValueError):
        print("bench_simpy: usage: python -m sim.bench_simpy DAYS (1..20000) [STROKE_NL (50..5000)]", file=sys.stderr)
        return 2
    print(simulate(days, stroke_nl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
