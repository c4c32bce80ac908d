"""make bench: the 7-year benchmark scenario, simulated days and strokes per wall second."""

import time

from sim import report, runner, scenario

DAYS = 2557


def bench_text(days=DAYS):
    refills = "".join(
        f'\n[[event]]\nday = {d}\ntime = "12:00"\naction = "refill"\nvolume_ml = {{fill}}\n'
        for d in range(90, days, 90)
    )
    return f"""
name = "bench-7y"
days = {days}
[pump]
reservoir_ml = 40
stroke_nl = 250
[drug]
concentration_mcg_ml = 2000
[basal]
steps = [ {{start = "00:00", mcg_per_day = 700}}, {{start = "06:00", mcg_per_day = 400}},
          {{start = "12:00", mcg_per_day = 500}}, {{start = "18:00", mcg_per_day = 600}} ]
[[periodic_bolus]]
at = "08:00"
mcg = 50
minutes = 10
[limits]
max_daily_mcg = 800
{refills}"""


def bench_scenario(days=DAYS):
    # 600 mcg/day at 2000 mcg/mL uses 27 mL in 90 days: each refill tops the 40 mL pump back up to full.
    return scenario.parse(bench_text(days).replace("{fill}", "27.0"), "<bench-7y>")


def main():
    sc = bench_scenario()
    best = None
    for _ in range(5):
        t0 = time.perf_counter()
        r = runner.simulate(sc)
        wall = time.perf_counter() - t0
        best = wall if best is None else min(best, wall)
    t0 = time.perf_counter()
    inv = report.judge(r)
    judge_s = time.perf_counter() - t0
    f = r.figures
    print(f"bench-7y: {sc.days} days, {r.strokes:,} strokes, {r.wakes:,} controller wakes")
    print(f"  wall (best of 5): {best:.3f} s   (the referee's judgement, once: {judge_s:.3f} s)")
    print(f"  simulated days per wall second: {sc.days / best:,.0f}")
    print(f"  strokes per wall second:        {r.strokes / best:,.0f}")
    print(f"  max lag {f['max_lag_nl']:.4f} nL; to the patient {f['patient_mcg']:.3f} mcg of {f['prescribed_mcg']:.3f}"
          " prescribed (exact)")
    print("  invariants: " + ", ".join(f"{k} {'ok' if v['pass'] else 'VIOLATED'}" for k, v in inv.items()))


if __name__ == "__main__":
    main()
