# The referee's under_delivery check (sim/referee.py _under_delivery, docs/alarms.md "Under-delivery"):
# repeated motor stalls through the simulator, enough to pass 10 % of a day's dose or just under,
# and a firmware with the wrong threshold, which the referee must catch.

import pytest

from firmware import controller
from sim import report, runner, scenario

S = 1000
MIN = 60 * S
HOUR = 60 * MIN
DAY = 24 * HOUR
RATE_NG_PER_DAY = 600_000  # 600 mcg/day at 2000 mcg/mL: a 500 ng stroke every 72 s
STALL_MS = 15 * MIN  # a 14-minute stall recovers at the 15-minute retry (docs/alarms.md)


def _text(stalls, extra=""):
    """`stalls` 14-minute motor stalls on day 1, two hours apart from 00:30."""
    faults = "".join(f'\n[[fault]]\nday = 1\ntime = "{2 * i:02d}:30"\nkind = "motor_stall"\nminutes = 14\n'
                     for i in range(stalls))
    return '''name = "stalls"
days = 3
start = "2026-01-05T00:00"

[drug]
concentration_mcg_ml = 2000

[basal]
steps = [ { start = "00:00", mcg_per_day = 600 } ]

[limits]
max_daily_mcg = 700
''' + faults + extra


def _run(stalls, extra=""):
    r = runner.simulate(scenario.parse(_text(stalls, extra), "<stalls>"))
    inv = report.judge(r)
    return r, inv


def _ud(r):
    return [a for a in r.alarms if a["kind"] == "under_delivery"]


def test_eleven_stalls_in_a_day_raise_under_delivery_and_the_referee_agrees():
    r, inv = _run(11)
    assert all(v["pass"] for v in inv.values()), report.violations(r)
    assert inv["under_delivery_alarm"]["must_raise_s"] > 0
    # 11 x 15 minutes of a constant rate is 11.5 % of a day: missed passes 10 % of the asked
    # (600,000 ng a day; the day before the start at the same basal) during the tenth stall.
    assert 11 * STALL_MS * 10 > DAY > 9 * STALL_MS * 10
    [alarm] = _ud(r)
    tenth = DAY + 30 * MIN + 9 * 2 * HOUR
    assert tenth <= alarm["raised_s"] * S <= tenth + STALL_MS
    # Cleared once the window (23 to 24 h) has lost the first two stalls, within the hourly check.
    assert DAY + 2 * HOUR + 45 * MIN - HOUR <= alarm["cleared_s"] * S <= 2 * DAY + 2 * HOUR + 45 * MIN + HOUR
    assert r.figures["missed_mcg"] == 11 * RATE_NG_PER_DAY * STALL_MS / DAY / 1000


def test_nine_stalls_stay_under_and_raise_nothing():
    r, inv = _run(9)
    assert all(v["pass"] for v in inv.values()), report.violations(r)
    assert 9 * STALL_MS * 10 < DAY  # 9.4 %
    assert not _ud(r)
    assert inv["under_delivery_alarm"]["must_raise_s"] == 0


def test_a_suspend_is_asked_but_not_missed():
    """Six stalls (6.25 %) and a 4-hour suspend (16.7 % of the day, 22.9 % with the stalls): the
    suspend is asked for, so nothing sounds, and the referee, which would demand the alarm if it
    counted the suspend as missed, agrees."""
    suspend = """
[[event]]
day = 1
time = "13:00"
action = "suspend"

[[event]]
day = 1
time = "17:00"
action = "resume"
"""
    r, inv = _run(6, suspend)
    assert all(v["pass"] for v in inv.values()), report.violations(r)
    assert [h["kind"] for h in r.holds].count("suspended") == 1
    assert (6 * STALL_MS + 4 * HOUR) * 10 > DAY > 6 * STALL_MS * 10
    assert not _ud(r)
    assert inv["under_delivery_alarm"]["must_raise_s"] == 0


@pytest.mark.parametrize(("percent", "stalls", "words"), [
    (20, 11, "under_delivery not raised by t="),  # a threshold of 20 %: 11.5 % raises nothing
    (5, 9, "under_delivery active at t="),  # 5 %: 9.4 % raises it
])
def test_a_firmware_with_the_wrong_threshold_is_caught(monkeypatch, percent, stalls, words):
    monkeypatch.setattr(controller, "UNDER_DELIVERY_PERCENT", percent)
    r, inv = _run(stalls)
    assert not inv["under_delivery_alarm"]["pass"]
    assert inv["under_delivery_alarm"]["detail"].startswith(words)
    assert "missed" in inv["under_delivery_alarm"]["detail"] and "of asked" in inv["under_delivery_alarm"]["detail"]
    others = [k for k, v in inv.items() if not v["pass"] and k != "under_delivery_alarm"]
    assert not others


def test_an_alarm_raised_two_hours_late_is_caught(monkeypatch):
    """The check runs at every wake and the loop wakes at least hourly: a raise more than the
    check interval after the band's must-raise is a violation."""
    real_over = controller.MissedWindow.over
    real_sync = controller.Controller._sync
    now = {"ms": 0, "seen": None}  # the pump time at the wake being serviced; when over() first held

    def sync(self):
        now["ms"] = self.day * DAY + self.ms
        return real_sync(self)

    def late(self):  # the crossing hidden for two hours from when it is first seen
        if not real_over(self):
            return False
        if now["seen"] is None:
            now["seen"] = now["ms"]
        return now["ms"] >= now["seen"] + 2 * HOUR

    monkeypatch.setattr(controller.MissedWindow, "over", late)
    monkeypatch.setattr(controller.Controller, "_sync", sync)
    monkeypatch.setattr(controller.Controller, "sync", sync)
    r, inv = _run(11)
    assert _ud(r)  # raised, but late
    assert not inv["under_delivery_alarm"]["pass"]
    assert inv["under_delivery_alarm"]["detail"].startswith("under_delivery not raised by t=")
