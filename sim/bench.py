"""make bench: the 7-year benchmark scenario with everything on, simulated days and strokes per wall second.

Everything on: the battery gauge and cell to ERI/EOS, the alarm manager and its tones, the
mechanism watch, and the inputs a real pump sees: patient boluses (PTM) on most days, a clinician
bolus and a refill every 90 days, a yearly MRI scan, one long motor stall, one occlusion and a
suspend for surgery."""

import time

from sim import report, runner, scenario

DAYS = 2557


def _event(day, time, body):
    return f'\n[[event]]\nday = {day}\ntime = "{time}"\n{body}\n'


def _fault(day, time, body):
    return f'\n[[fault]]\nday = {day}\ntime = "{time}"\n{body}\n'


def bench_text(days=DAYS):
    refills = "".join(_event(d, "12:00", 'action = "refill"\nvolume_ml = {fill}') for d in range(90, days, 90))
    visits = "".join(_event(d, "12:30", 'action = "bolus"\nmcg = 30\nminutes = 20') for d in range(90, days, 90))
    ptm = "".join(_event(d, "17:00", 'action = "ptm"') for d in range(1, days) if d % 7 not in (0, 3))
    mri = "".join(_fault(d, "10:00", 'kind = "magnetic_field"\nminutes = 12') for d in range(200, days, 365))
    incidents = (_fault(1000, "03:00", 'kind = "motor_stall"\nminutes = 40')
                 + _fault(1500, "02:00", 'kind = "occlusion"\nminutes = 60')
                 + _event(1800, "07:00", 'action = "suspend"') + _event(1800, "07:20", 'action = "silence"')
                 + _event(1800, "11:00", 'action = "resume"'))
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
[ptm]
mcg = 20
minutes = 10
lockout_minutes = 180
max_per_day = 3
[limits]
max_daily_mcg = 800
[alarms]
critical_repeat_minutes = 10
[battery]
capacity_mah = 720
quiescent_ua = 10
uc_per_stroke = 50
[catheter]
compliance_ul = 2.0
{refills}{visits}{ptm}{mri}{incidents}"""


def bench_scenario(days=DAYS):
    # About 620 mcg/day at 2000 mcg/mL uses under 28 mL in 90 days: each 28 mL refill tops the 40 mL pump
    # back up, and the low-reservoir alarm never sounds.
    return scenario.parse(bench_text(days).replace("{fill}", "28.0"), "<bench-7y>")


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
    b = r.battery
    print(f"  {len(r.alarms)} alarms, {len(r.tones):,} tones; ERI at day {_day(b.get('eri_s'))}, EOS at day "
          f"{_day(b.get('eos_s'))}; final state {r.state}")
    print("  invariants: " + ", ".join(f"{k} {'ok' if v['pass'] else 'VIOLATED'}" for k, v in inv.items()))


def _day(t_s):
    return "-" if t_s is None else f"{t_s / 86_400:.1f}"


if __name__ == "__main__":
    main()
