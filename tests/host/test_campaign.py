"""pumpsim campaign: the power-cut campaign's judge, on planted runs and on real ones, and the
journal's resets through the simulator (power_loss, a torn write, hang, flipped bits)."""

import copy

import numpy as np
import pytest

from sim import campaign, runner, scenario
from sim.campaign import RESET_LOSS_STROKES, cuts, judge
from sim.cli import main
from sim.scenario import Fault

DAY = 86_400_000


def _facts(times, resets=(), alarms=(), ptm=(), faults=0):
    return {"times": np.array(times, dtype=np.int64), "resets": list(resets), "alarms": list(alarms),
            "ptm": list(ptm), "faults": faults, "strokes": len(times), "ng_per_stroke": 500}


PTM = [(10.0, True, None, 2000), (50.0, False, "lockout", 0), (90.0, True, None, 2000)]
BASE = _facts([k * 1000 for k in range(1, 101)], alarms=["low_reservoir"], ptm=PTM)


def _cut(times, **kw):
    kw.setdefault("resets", [{"t_ms": 40_500, "seconds": 5, "cause": "power_loss"}])
    kw.setdefault("alarms", ["low_reservoir"])
    kw.setdefault("ptm", PTM)
    return _facts(times, **kw)


def _clean_times():
    # strokes 41..45 fell due while off (40.5 s to 45.5 s): not made, the rest on time
    return [t for t in BASE["times"] if not 40_500 <= t < 45_500]


def test_a_run_that_only_misses_the_outage_is_clean():
    bad, fig = judge(BASE, _cut(_clean_times()))
    assert bad == [] and fig["lost"] == 0 and fig["ahead"] == 0 and fig["restored"]


def test_a_stroke_made_early_or_twice_is_a_violation():
    # the outage's strokes made up at once after it: one more than the uninterrupted run by 46.5 s
    times = sorted(list(BASE["times"]) + [46_500])
    bad, fig = judge(BASE, _cut(times))
    assert fig["ahead"] == 1 and any("ahead" in line for line in bad)


def test_strokes_lost_beyond_the_bound_are_a_violation():
    times = _clean_times()
    ok = times[:-RESET_LOSS_STROKES]
    assert judge(BASE, _cut(ok))[0] == []
    bad, fig = judge(BASE, _cut(times[:-RESET_LOSS_STROKES - 1]))
    assert fig["lost"] == RESET_LOSS_STROKES + 1 and any("lost beyond" in line for line in bad)


def test_a_patient_bolus_decided_otherwise_outside_the_outage_is_a_violation():
    bad, _ = judge(BASE, _cut(_clean_times(), ptm=PTM[:2] + [(90.0, False, "limit", 0)]))
    assert any("press at 90 s" in line for line in bad)
    bad, _ = judge(BASE, _cut(_clean_times(), ptm=PTM[:2]))
    assert any("no decision" in line for line in bad)


def test_a_patient_bolus_pressed_while_off_is_not_owed():
    base = _facts(BASE["times"], alarms=["low_reservoir"], ptm=PTM + [(42.0, True, None, 2000)])
    # 4 strokes of the 2 mcg bolus pressed at 42 s, while off, are not counted as lost
    times = _clean_times()[:-4]
    bad, fig = judge(base, _cut(times))
    assert bad == [] and fig["lost"] == 0, (bad, fig)


def test_a_lost_alarm_or_a_critical_fault_at_boot_is_a_violation():
    bad, _ = judge(BASE, _cut(_clean_times(), alarms=[]))
    assert any("low_reservoir" in line for line in bad)
    bad, fig = judge(BASE, _cut(_clean_times(), faults=1))
    assert not fig["restored"] and any("critical_fault" in line for line in bad)


def test_the_cuts_come_from_the_seed_alone():
    a = cuts(30, 50, 7, 0.3, 3600)
    assert a == cuts(30, 50, 7, 0.3, 3600) and a != cuts(30, 50, 8, 0.3, 3600)
    assert all(0 <= t < 30 * DAY and 0 <= s <= 3600 for t, s, _ in a)
    assert 5 <= sum(1 for *_, tear in a if tear) <= 25


def _with(sc, *faults):
    sc = copy.copy(sc)
    sc.faults = sorted(list(sc.faults) + list(faults), key=lambda f: f.t_ms)
    return sc


def test_every_kind_of_reset_restores_and_loses_only_the_outage():
    sc = scenario.builtin("default", 12)
    base = campaign._facts(runner.simulate(sc, journal=True))
    plain = runner.simulate(sc)
    assert np.array_equal(base["times"], plain.stroke_times)  # the journal changes no stroke
    for fault in (Fault(3 * DAY + 4321, 3, "", "power_loss", seconds=900),
                  Fault(5 * DAY + 12, 5, "", "power_loss", seconds=60, tear=True),
                  Fault(7 * DAY + 99_999, 7, "", "hang"),
                  Fault(8 * DAY, 8, "", "power_loss", seconds=0)):
        r = runner.simulate(_with(sc, fault))
        assert len(r.resets) == 1, fault
        bad, fig = judge(base, campaign._facts(r))
        assert bad == [], (fault.kind, bad)
        assert any(e["kind"] == "reset" and "cause" not in e for e in r.events)  # the firmware's own reset event


def test_a_firmware_that_made_up_the_outage_is_caught(monkeypatch):
    from firmware.controller import Controller

    sc = scenario.builtin("default", 8)
    base = campaign._facts(runner.simulate(sc, journal=True))
    real = Controller.resume_after_reset

    def make_up(self, strokes, off_s):  # a wrong firmware: owes the outage instead of writing it off
        off_ms = off_s * 1000
        self._writeoff = 0
        while off_ms > 0:
            off_ms -= self._advance(off_ms)
        self._plan()
        return 0

    monkeypatch.setattr(Controller, "resume_after_reset", make_up)
    r = runner.simulate(_with(sc, Fault(4 * DAY, 4, "", "power_loss", seconds=3600)))
    bad, fig = judge(base, campaign._facts(r))
    assert fig["ahead"] > 0 or fig["lost"] < 0, (bad, fig)
    monkeypatch.setattr(Controller, "resume_after_reset", real)


def test_flipped_bits_end_restored_or_in_critical_fault_never_in_garbage():
    sc = scenario.builtin("default", 6)
    outcomes = set()
    for seed in range(6):
        r = runner.simulate(_with(sc, Fault(DAY, 1, "", "flash_bitflip", count=40),
                                  Fault(2 * DAY, 2, "", "power_loss", seconds=10)), seed=seed)
        faulted = any(e["kind"] == "critical_fault" for e in r.events)
        outcomes.add(faulted)
        if faulted:  # stopped for good: not one stroke after the boot
            boot = r.resets[0]["t_ms"] + 10_000
            assert not (r.stroke_times >= boot).any()
    assert outcomes  # (which ones occur depends on where the bits land)


def test_the_campaign_command_prints_its_table_and_exits_0(capsys):
    assert main(["campaign", "--days", "5", "--power-cuts", "12", "--seed", "3", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "12 power cuts" in out and "violations" in out and "worst strokes lost beyond outage" in out


@pytest.mark.parametrize("argv, says", [
    (["--power-cuts", "0"], "--power-cuts: 0 is out of range"),
    (["--tear-share", "1.5"], "--tear-share: 1.5 is out of range"),
    (["--max-outage-s", "-1"], "--max-outage-s: -1 is out of range"),
])
def test_the_campaign_refuses_bad_arguments_in_one_line(argv, says, capsys):
    assert main(["campaign", "--days", "2"] + argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]


SAG = """name = "sag"
days = 3
start = "2026-01-05T00:00"
[pump]
reservoir_ml = 20
volume_ml = 20.0
[drug]
concentration_mcg_ml = 2000
[basal]
steps = [ { start = "00:00", mcg_per_day = 600 } ]
[[periodic_bolus]]
at = "07:30"
mcg = 40
minutes = 30
[limits]
max_daily_mcg = 800
"""


def test_a_sag_reset_during_a_bolus_resumes_it_and_the_prescribed_rate():
    # The 2009-2011 failure: the cell sags under a stroke and the controller restarts, mid-bolus.
    base = scenario.parse(SAG, "<sag>")
    sag = scenario.parse(SAG + '[[fault]]\nday = 1\ntime = "07:40"\nkind = "battery_sag"\n', "<sag>")
    b = runner.simulate(base, journal=True)
    r = runner.simulate(sag)
    assert r.resets[0]["cause"] == "battery_sag"
    # the same strokes at the same ms, give or take the one a restart can lose: the bolus went on,
    # and the rate after it is the prescription's (600 mcg/day: a 500 ng stroke every 72 s)
    bt, ct = b.stroke_times, r.stroke_times
    assert len(bt) - len(ct) <= RESET_LOSS_STROKES
    day2 = (ct >= 2 * DAY + 9 * 3_600_000) & (ct < 3 * DAY)  # after the next day's 07:30 bolus
    gaps = np.diff(ct[day2])
    assert gaps.min() >= 71_000 and gaps.max() <= 73_000, (gaps.min(), gaps.max())
    bolus = (ct >= DAY + 7.5 * 3_600_000) & (ct < DAY + 8 * 3_600_000)
    want = (bt >= DAY + 7.5 * 3_600_000) & (bt < DAY + 8 * 3_600_000)
    assert abs(int(bolus.sum()) - int(want.sum())) <= RESET_LOSS_STROKES  # the 40 mcg bolus, all of it


def test_pumpsim_run_judges_a_run_with_resets_and_passes_it(tmp_path):
    text = SAG + ('[[fault]]\nday = 1\ntime = "07:40"\nkind = "battery_sag"\n'
                  '[[fault]]\nday = 2\ntime = "03:00"\nkind = "power_loss"\nseconds = 600\n')
    path = tmp_path / "sag.toml"
    path.write_text(text)
    assert main(["run", str(path), "--no-plot", "--out", str(tmp_path / "out")]) == 0
