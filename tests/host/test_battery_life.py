"""Service life: the firmware's gauge (firmware/battery.py) driven with the simulated cell
(sim/battery.py), day by day over up to 7+ years, at the default parameters.

Usage assumed (docs/battery.md): 250 nL strokes; two 1 s non-critical tones a week before ERI
(low-reservoir alarms around refills); the hourly 1 s ERI tone after ERI; after EOS no strokes and
the 3 s critical tone every 10 minutes for as long as the cell can supply it; four programmer
commands at each refill, every 90 days. `pytest -s` prints the figures.
"""

import math
from fractions import Fraction

import pytest

from firmware.battery import (
    CAUSE_AFTER_ERI,
    CAUSE_PROJECTION,
    CAUSE_VOLTAGE,
    EOS,
    ERI,
    NORMAL,
    BatteryParams,
    Gauge,
)
from sim.battery import BROWNOUT_MV, CURVE, SimCell, dod_at_mv, voltage_mv

DAY = 86_400_000
YEAR_DAYS = 365.25
STROKE_NL = 250


class Clock:
    def __init__(self):
        self.now_ms = 0


class Life:
    """A pump's battery life: the gauge counts what the firmware does, the cell draws it for real."""

    def __init__(self, ml_per_day, params=None, tones=True, steps_per_day=1):
        self.spd = ml_per_day * 1_000_000 // STROKE_NL  # strokes a day
        assert self.spd * STROKE_NL == ml_per_day * 1_000_000
        self.params = params or BatteryParams()
        self.clock = Clock()
        self.fired = 0
        self.cell = SimCell(self.clock, self.params, lambda: self.fired)
        self.gauge = Gauge(self.cell, self.params)
        self.tones = tones
        self.steps = steps_per_day
        self.day = 0
        self.levels = {}  # level -> day the loop saw it first
        self.mv = {}  # level -> the cell's voltage then
        self.left = {}  # level -> the gauge's days_left() then
        self.last_tone_day = None  # the last day the cell could sound the critical tone
        self.gauge.check()

    def _tone(self, seconds):
        self.gauge.tone(seconds)
        self.cell.tone(seconds)

    def run_day(self):
        g = self.gauge
        step = DAY // self.steps
        t = 0  # ms into the day
        for k in range(self.steps):
            end = (k + 1) * step
            while t < end:
                # The loop's duty: a check at every step, and at the gauge's deadline (the voltage
                # rule's readings) when that comes first.
                wait = g.ms_to_next_event()
                nxt = end if wait >= end - t else t + max(wait, 1)
                n = self.spd * nxt // DAY - self.spd * t // DAY if g.level != EOS else 0
                self.clock.now_ms += nxt - t
                self.fired += n  # the motor fired them during the step
                g.elapse(nxt - t)
                if n:
                    g.strokes(n)
                g.check()
                t = nxt
        if g.level == NORMAL:
            if self.tones and self.day % 7 in (0, 3):
                self._tone(1)
        elif g.level == ERI:
            self._tone(24)  # hourly 1 s
        elif self.cell.can_supply_tone():
            self._tone(144 * 3)  # every 10 minutes, 3 s
            self.last_tone_day = self.day + 1  # the day-end instant it sounded at
        if self.day % 90 == 89:
            for _ in range(4):
                g.command()
                self.cell.command()
        self.day += 1
        lv = g.check()
        for level in range(NORMAL, lv + 1):
            if level not in self.levels:
                self.levels[level] = self.day
                self.mv[level] = self.cell.read_mv()
                self.left[level] = g.days_left()

    def run(self, days=3000, until_exhausted=True):
        while self.day < days:
            self.run_day()
            if self.gauge.level == EOS and (not until_exhausted or not self.cell.can_supply_tone()):
                break
        return self

    def figures(self, label):
        g = self.gauge
        line = "%-34s ERI day %4d (%.2f y, %s, %d mV)  EOS day %4d (%.2f y, %s, %d mV)" % (
            label, g.eri_day, g.eri_day / YEAR_DAYS, ("", "projection", "voltage", "after ERI", "service limit")[
                g.eri_cause], self.mv[ERI], g.eos_day, g.eos_day / YEAR_DAYS,
            ("", "projection", "voltage", "after ERI", "service limit")[g.eos_cause], self.mv[EOS])
        if self.last_tone_day is not None and not self.cell.can_supply_tone():
            line += "  critical tone until day %d" % self.last_tone_day
        print(line)


@pytest.fixture(scope="module")
def low_dose():
    return Life(Fraction(35, 100)).run()


@pytest.fixture(scope="module")
def high_dose():
    return Life(2).run()


def test_0_35_ml_per_day_reaches_eri_at_about_6_5_years_and_eos_90_days_later(low_dose):
    life = low_dose
    g = life.gauge
    life.figures("0.35 mL/day (1400 strokes/day)")
    assert g.eri_cause == CAUSE_PROJECTION
    assert 6.25 <= g.eri_day / YEAR_DAYS <= 6.75
    assert abs(g.eri_day / YEAR_DAYS - 6.5) < 0.01  # as calibrated: day 2375
    # EOS exactly 90 days after ERI, by time: the voltage was still on the plateau.
    assert (g.eos_day, g.eos_ms, g.eos_cause) == (g.eri_day + 90, g.eri_ms, CAUSE_AFTER_ERI)
    assert life.mv[EOS] > life.params.eri_mv + 50
    assert life.levels[EOS] == g.eos_day


def test_2_ml_per_day_reaches_eri_in_under_5_years(high_dose):
    life = high_dose
    g = life.gauge
    life.figures("2 mL/day (8000 strokes/day)")
    assert g.eri_cause == CAUSE_PROJECTION
    assert 4.5 < g.eri_day / YEAR_DAYS < 5
    assert (g.eos_day, g.eos_ms, g.eos_cause) == (g.eri_day + 90, g.eri_ms, CAUSE_AFTER_ERI)
    assert life.mv[EOS] > life.params.eri_mv + 50
    # "5 to 7 years, depending on the daily dose": EOS at about 5 and about 6.75 years.
    assert 4.8 < g.eos_day / YEAR_DAYS < 5.0


def test_the_figures_hold_without_any_tone_and_with_hourly_steps():
    quiet = Life(Fraction(35, 100), tones=False).run(until_exhausted=False)
    quiet.figures("0.35 mL/day, no tones before ERI")
    assert abs(quiet.gauge.eri_day / YEAR_DAYS - 6.5) <= 0.25
    fine = Life(2, steps_per_day=24).run(until_exhausted=False)
    fine.figures("2 mL/day, hourly steps")
    assert fine.gauge.eri_day / YEAR_DAYS < 5
    assert fine.gauge.eos_day == fine.gauge.eri_day + 90 and fine.gauge.eos_cause == CAUSE_AFTER_ERI


def test_the_critical_tone_sounds_until_the_cell_is_exhausted_after_eos(low_dose, high_dose):
    for life in (low_dose, high_dose):
        assert not life.cell.can_supply_tone()
        last = life.last_tone_day
        assert last is not None and last >= life.gauge.eos_day + 30  # a month and more of alarm
        assert life.cell.read_mv() < BROWNOUT_MV
        assert life.cell.strokes == life.fired and life.fired == life.spd * life.gauge.eos_day
        print("%d strokes/day: critical tone from EOS (day %d) to day %d, %d days"
              % (life.spd, life.gauge.eos_day, last, last - life.gauge.eos_day))


@pytest.mark.parametrize("ml_per_day, factor", [(Fraction(35, 100), 3), (2, 3), (Fraction(35, 100), 100)])
def test_battery_drain_from_year_3_gives_premature_eri_and_eos_by_voltage(ml_per_day, factor):
    life = Life(ml_per_day)
    nominal = Life(ml_per_day).run(until_exhausted=False).gauge
    life.run(days=3 * 365)
    assert life.gauge.level == NORMAL
    life.cell.set_factor(factor)  # [[fault]] kind = "battery_drain", at the start of day 1095
    life.run()
    g = life.gauge
    life.figures("%s mL/day, drain x%d from year 3" % (ml_per_day, factor))
    assert g.eri_cause == CAUSE_VOLTAGE and g.eos_cause == CAUSE_VOLTAGE
    assert g.eri_day < nominal.eri_day - 300 and g.eos_day < nominal.eos_day - 300
    assert g.eos_day < g.eri_day + 90  # premature EOS: less than the 90 days of warning
    # The coulomb count alone would not have seen it: it still projected a year and more.
    assert life.left[ERI] > 365
    assert life.cell.dod_permille() > 900


def test_the_cell_integrates_a_factor_change_exactly():
    clock = Clock()
    fired = [0]
    p = BatteryParams(quiescent_ua=7, uc_per_stroke=53, uc_per_tone_s=2999, uc_per_command=4001)
    cell = SimCell(clock, p, lambda: fired[0])
    clock.now_ms = 5_001
    fired[0] = 20
    cell.set_factor(3)
    clock.now_ms = 9_003
    fired[0] = 31
    cell.tone(2)
    cell.command()
    clock.now_ms = 10_000
    cell.set_factor(7)
    clock.now_ms = 12_345
    fired[0] = 33
    nc = 7 * 5_001 + 20 * 53_000 + 3 * (7 * 4_002 + 11 * 53_000 + 2 * 2_999_000 + 4_001_000 + 7 * 997)
    nc += 7 * (7 * 2_345 + 2 * 53_000)
    assert cell.charge_used_uc == Fraction(nc, 1000)
    assert cell.factor_changes == [(5_001, 3), (10_000, 7)]
    for bad in (101, 0, Fraction(5, 2), 2.5, True):  # the scenario's factor is an integer 1..100
        with pytest.raises(ValueError, match="fault.factor: must be an integer 1..100"):
            cell.set_factor(bad)
    assert cell.factor == 7 and len(cell.factor_changes) == 2  # a rejected factor changes nothing


def test_the_cells_adc_is_the_exact_curve_floored():
    # read_mv interpolates in integers; the oracle is voltage_mv's exact Fraction, floored.
    clock = Clock()
    p = BatteryParams()
    cell = SimCell(clock, p, lambda: 0)
    cap_nc = p.capacity_mah * 3_600_000_000
    for nc in [0, 1, cap_nc // 10, cap_nc // 10 + 1, cap_nc * 9 // 10 - 7, cap_nc * 97 // 100 + 13, cap_nc - 1,
               cap_nc, cap_nc + 5] + [cap_nc * k // 997 for k in range(0, 1000, 37)]:
        cell._nc = nc
        assert cell.read_mv() == math.floor(voltage_mv(Fraction(nc, p.capacity_mah * 3_600_000))), nc
        assert cell.exhausted() == (nc >= cap_nc or voltage_mv(Fraction(nc, p.capacity_mah * 3_600_000)) < BROWNOUT_MV)


def test_the_voltage_curve_and_the_thresholds_in_its_knee():
    p = BatteryParams()
    for (d0, v0), (d1, v1) in zip(CURVE, CURVE[1:]):
        assert d0 < d1 and v0 > v1
    assert voltage_mv(0) == 3200 and voltage_mv(900) == 2900 and voltage_mv(1000) == 2000
    # The gauge's thresholds lie in the knee, past the usable 90%.
    assert dod_at_mv(p.eri_mv) == 920 and dod_at_mv(p.eos_mv) == Fraction(1910, 2)
    assert 900 < dod_at_mv(p.eri_mv) < dod_at_mv(p.eos_mv) < dod_at_mv(BROWNOUT_MV) < 1000
    assert voltage_mv(500) == 3025 and 2900 < voltage_mv(Fraction(8915, 10)) < 2910
    clock = Clock()
    cell = SimCell(clock, p, lambda: 0)
    assert cell.read_mv() == 3200 and cell.percent_left() == 100.0 and cell.can_supply_tone()
    clock.now_ms = 10 * DAY
    assert cell.charge_used_uc == 10 * 864_000 and isinstance(cell.read_mv(), int)
