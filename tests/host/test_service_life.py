"""Seven years of the default scenario with the battery and alarms on: refills every quarter that
come after the pump has run empty (so every empty is seen), the default cell, the critical
alarm's default 10-minute repeat."""

import pytest

from sim import report, runner
from tests.host.test_long_run import seven_year_default

DAY_S = 86_400


@pytest.fixture(scope="module")
def life():
    sc = seven_year_default()
    sc.battery.__init__()  # the default cell, not the drift test's oversized one
    r = runner.simulate(sc)
    report.judge(r)
    return r


def test_every_invariant_holds_for_seven_years(life):
    assert all(v["pass"] for v in life.invariants.values()), report.violations(life)
    # No critical alarm silent longer than its 10-minute interval while it was active.
    audible = life.invariants["critical_alarm_audible"]
    assert audible["longest_silence_s"] <= 600 and audible["critical_tones"] > 1000


def test_eri_comes_90_days_before_eos_or_the_service_limit_first(life):
    b = life.battery
    assert b["eri_s"] is not None and b["eos_s"] is not None
    assert b["eos_s"] - b["eri_s"] == 90 * DAY_S or b["eos_s"] == 2557 * DAY_S
    assert life.state == "end_of_service"
    eos_ms = round(b["eos_s"] * 1000)
    assert life.stroke_times[-1] <= eos_ms  # no stroke after EOS
    kinds = [a["kind"] for a in life.alarms]
    assert kinds.count("elective_replacement") == 1 and kinds.count("end_of_service") == 1


def test_low_reservoir_precedes_every_empty_and_the_empty_date_was_projected_within_a_day(life):
    empties = [a for a in life.alarms if a["kind"] == "empty_reservoir"]
    lows = [a for a in life.alarms if a["kind"] == "low_reservoir"]
    assert len(empties) >= 15
    history = life.projections
    for e in empties:
        t = e["raised_s"]
        assert any(lo["raised_s"] < t and (lo["cleared_s"] is None or lo["cleared_s"] >= t) for lo in lows)
        before = [p for p in history if p["t_s"] < t and p["empty_s"] is not None]
        assert before, t
        assert abs(before[-1]["empty_s"] - t) <= DAY_S, (before[-1], t)
