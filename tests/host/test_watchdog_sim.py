"""The simulator's watchdog (sim/watchdog.py) with the firmware's feeding rule: a `hang` stops the
loop, the dog bites its timeout after the last feed and the runner resets the firmware (cause
"watchdog"), which boots from its journal; a loop whose health checks fail is bitten the same way."""

import copy

from sim import runner, scenario
from sim.scenario import Fault
from sim.watchdog import TIMEOUT_MS

DAY = 86_400_000


def _with(sc, *faults):
    sc = copy.copy(sc)
    sc.faults = sorted(list(sc.faults) + list(faults), key=lambda f: f.t_ms)
    return sc


def test_a_hang_is_reset_by_the_watchdog_within_its_timeout_and_the_pump_recovers():
    sc = scenario.builtin("default", 4)
    hang_ms = 2 * DAY + 12_345
    r = runner.simulate(_with(sc, Fault(hang_ms, 2, "", "hang")))
    assert len(r.resets) == 1
    reset = r.resets[0]
    assert reset["cause"] == "watchdog" and reset["seconds"] == 0
    # The loop fed at its last wake before the hang, at most timeout // 2 before it.
    assert hang_ms < reset["t_ms"] <= hang_ms + TIMEOUT_MS
    assert reset["t_ms"] >= hang_ms + TIMEOUT_MS // 2
    assert reset["hung_ms"] == reset["t_ms"] - hang_ms  # the campaign's judge counts the hang as the outage
    # Hung: the firmware reports nothing between the hang and the reset
    hung = [e for e in r.events if "t_s" in e and hang_ms / 1000 < e["t_s"] < reset["t_ms"] / 1000
            and not e["kind"].startswith("fault")]
    assert hung == [], hung[:3]
    assert (r.stroke_times > reset["t_ms"]).sum() > 0  # delivering again after the boot
    assert not any(e["kind"] == "critical_fault" for e in r.events)


def test_a_loop_whose_health_checks_fail_is_bitten(monkeypatch):
    from firmware.loop import PumpLoop

    sc = scenario.builtin("default", 2)
    real = PumpLoop._healthy
    first = []

    def sick(self, now, refused):  # from day 1 on, every check fails: nothing feeds the dog
        t = self._clock.now_ms  # the simulated clock's ms
        if t < DAY:
            return real(self, now, refused)
        if not first:
            first.append(t)
        return False

    monkeypatch.setattr(PumpLoop, "_healthy", sick)
    run = runner.Run(_with(sc, Fault(DAY // 2, 0, "", "power_loss", seconds=0)))  # a journal: a reset boots from it
    r = run.run()
    watchdog = [x for x in r.resets if x["cause"] == "watchdog"]
    assert watchdog, r.resets
    # The first bite: the timeout after the last healthy wake, which came before the first sick one.
    assert first[0] - TIMEOUT_MS // 2 <= watchdog[0]["t_ms"] - TIMEOUT_MS <= first[0]
