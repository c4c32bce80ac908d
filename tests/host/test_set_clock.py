# The set_clock scenario fault through the simulator (sim/scenarios/faults/set-clock.toml): the
# clinician's programmer sets the pump's clock; the referee's prescription follows the pump's local
# time, and every invariant holds. Expected figures are worked out here from the scenario's text.

from fractions import Fraction
from pathlib import Path

import pytest

from sim import report, runner, scenario

S = 1000
MIN = 60 * S
HOUR = 60 * MIN
DAY = 24 * HOUR
PATH = "sim/scenarios/faults/set-clock.toml"


def _basal_ng_per_day(local_ms):
    return 400_000 if local_ms % DAY < 12 * HOUR else 800_000


def _prescribed_ng(shifts, end_ms):
    """The basal by the pump's local time (run time + shift, the shift changing at each setting)
    plus the granted boluses, exactly: integrated piece by piece between rate changes."""
    total = Fraction(0)
    for i, (a, shift) in enumerate(shifts):
        b = shifts[i + 1][0] if i + 1 < len(shifts) else end_ms
        t = a
        while t < b:
            local = t + shift
            nxt = local - local % (12 * HOUR) + 12 * HOUR - shift  # the next 00:00 or 12:00
            u = min(nxt, b)
            total += Fraction(_basal_ng_per_day(local) * (u - t), DAY)
            t = u
    return total


def test_set_clock_back_over_a_periodic_bolus_and_forward_over_a_step():
    sc = scenario.load(PATH)
    assert [(f.kind, f.jump_ms) for f in sc.faults] == [("set_clock", -HOUR), ("set_clock", 3 * HOUR)]
    r = runner.simulate(sc)
    inv = report.judge(r)
    assert all(v["pass"] for v in inv.values()), report.violations(r)
    # Local 07:30 each local day: run 01:30 on day 0 (06:00 start), not again at run 02:30 (07:30
    # after the clock went back an hour), run day 1 02:30; after the clock went 3 h forward on
    # day 1 (local = run + 2 h from the start's), run day 2 05:30 (1 day 23:30 in) and day 3 05:30.
    periodic = [b["pump_t_ms"] for b in r.boluses if b["kind"] == "periodic" and b["granted"]]
    assert periodic == [90 * MIN, DAY + 150 * MIN, 2 * DAY - 30 * MIN, 3 * DAY - 30 * MIN]
    # The PTM at run day 1 03:00 granted; at 05:30, 2.5 h later, locked out (180 min) though the
    # pump's clock moved 3 h forward in between.
    ptm = [(b["pump_t_ms"], b["granted"]) for b in r.boluses if b["kind"] == "ptm"]
    assert ptm == [(DAY + 3 * HOUR, True), (DAY + 5 * HOUR + 30 * MIN, False)]
    assert [(e["t_s"], e["jump_s"]) for e in r.events if e["kind"] == "clock_set"] == [(6000.0, -3600),
                                                                                       (104_400.0, 10_800)]
    # Delivered = the prescription by elapsed time, to within one stroke (0.5 mcg at 2000 mcg/mL).
    shifts = [(0, 6 * HOUR), (100 * MIN, 5 * HOUR), (DAY + 5 * HOUR, 8 * HOUR)]
    ideal = _prescribed_ng(shifts, 3 * DAY) + 4 * 50_000 + 20_000
    strokes = len(r.stroke_times)
    assert strokes * 500 <= ideal < (strokes + 1) * 500, (strokes, float(ideal))


def test_a_power_cut_after_a_clock_setting_is_timed_right():
    # The real-time clock is set with the pump's (before the snapshot the setting makes): the boot
    # measures the time since the last snapshot (the PTM denial at run day 1 05:30) to the cut at
    # run day 1 21:00 (day 2 03:00 on the start's clock), plus the 10 minutes off, and no jump.
    text = Path(PATH).read_text() + "\n[[fault]]\nday = 2\ntime = \"03:00\"\nkind = \"power_loss\"\nseconds = 600\n"
    run = runner.Run(scenario.parse(text, "<cut>"), 0, 0, False)
    run.run(None)
    assert run.loop.persist.off_s * 1000 == (21 * HOUR - (5 * HOUR + 30 * MIN)) + 600 * S
    # The hourly self-test compares the tick clock with the real-time clock: not across the setting.
    assert [a["kind"] for a in run.result.alarms if a["kind"] == "critical_fault"] == []
    assert run.rtc.now_s() == 3 * 86_400 - 3600 + 3 * 3600


@pytest.mark.parametrize("to, message", [
    ("2026-01-05 06:40", "fault[0].to: '2026-01-05 06:40' is not a date and time YYYY-MM-DDTHH:MM[:SS]"),
    ("2026-01-09T07:40", "fault[0].to: 2026-01-09T07:40:00 is more than 3.5 days from the pump's clock then"),
])
def test_bad_set_clock_faults_are_refused_naming_the_key(to, message):
    text = Path(PATH).read_text().replace('to = "2026-01-05T06:40"', f'to = "{to}"')
    with pytest.raises(scenario.ScenarioError) as e:
        scenario.parse(text, "<bad>")
    assert message in str(e.value)
