# The battery gauge: its ERI/EOS rules to the ms, its projection against plain-int arithmetic, its
# small ints over 7 years at a hundred times the draw, and (on MicroPython) zero allocation.

from support import heap_meter, heap_meter_done, skip

from firmware.battery import (
    CAUSE_AFTER_ERI,
    CAUSE_PROJECTION,
    CAUSE_SERVICE_LIMIT,
    CAUSE_VOLTAGE,
    EOS,
    ERI,
    ERI_MARGIN_DAYS,
    ERI_TO_EOS_DAYS,
    MAX_MS,
    NORMAL,
    READING_SPACING_MS,
    REST_MS,
    SERVICE_DAYS,
    VOLTAGE_READINGS,
    BatteryParams,
    Gauge,
)

DAY = 86_400_000
HOUR = 3_600_000
SPACING = 5 * 60_000  # docs/battery.md "The voltage rule": 3 readings at rest, 5 minutes apart
CONFIRM_MS = 2 * SPACING  # the first low reading to the third
SMALL_MIN = -(1 << 30)
SMALL_MAX = (1 << 30) - 1


def _days(g, n):
    for _ in range(n):  # elapse() takes at most 2**30-1 ms (small ints)
        g.elapse(DAY)


class FakeAdc:
    def __init__(self, mv=3100):
        self.mv = mv
        self.reads = 0

    def read_mv(self):
        self.reads += 1
        return self.mv


def _raises(key, **kw):
    try:
        BatteryParams(**kw)
    except ValueError as e:
        msg = str(e)
        assert msg.startswith(key + ": "), msg
        return msg
    raise AssertionError("no error for %s" % key)


def test_params_validation_names_the_key():
    assert _raises("battery.capacity_mah", capacity_mah=99) == "battery.capacity_mah: must be 100..5000 mAh"
    _raises("battery.capacity_mah", capacity_mah=5001)
    _raises("battery.capacity_mah", capacity_mah=720.0)
    _raises("battery.capacity_mah", capacity_mah=True)
    _raises("battery.quiescent_ua", quiescent_ua=0)
    _raises("battery.quiescent_ua", quiescent_ua=101)
    _raises("battery.uc_per_stroke", uc_per_stroke=0)
    _raises("battery.uc_per_stroke", uc_per_stroke=10_001)
    _raises("battery.uc_per_tone_s", uc_per_tone_s=-1)
    _raises("battery.uc_per_command", uc_per_command=100_001)
    _raises("battery.eri_mv", eri_mv=1999)
    _raises("battery.eos_mv", eos_mv=1799)
    assert _raises("battery.eos_mv", eri_mv=2600, eos_mv=2600) == "battery.eos_mv: must be below battery.eri_mv"
    p = BatteryParams()
    assert (p.capacity_mah, p.quiescent_ua, p.uc_per_stroke, p.uc_per_tone_s, p.uc_per_command, p.eri_mv,
            p.eos_mv) == (720, 10, 50, 3000, 5000, 2800, 2600)
    assert p.usable_mc() == 720 * 3600 * 9 // 10
    assert ERI_TO_EOS_DAYS == 90 and SERVICE_DAYS == 2557 and ERI_MARGIN_DAYS == 30
    assert (VOLTAGE_READINGS, READING_SPACING_MS, REST_MS) == (3, SPACING, 2000)


def _confirmed(g, adc, mv):
    """The ADC reads mv from now; the rule's readings, at rest, SPACING apart: the level after the
    third (CONFIRM_MS from now)."""
    adc.mv = mv
    lv = g.check()
    for _ in range(2):
        g.elapse(SPACING)
        lv = g.check()
    return lv


# ---- the oracle: the projection from its definition, in plain (big) ints


class Oracle:
    """Charge in nC from the events, whole mC at each day's start, days left from the definition."""

    def __init__(self, p):
        self.p = p
        self.nc = 0
        self.t = 0  # ms of service
        self.marks = [0]

    def elapse(self, ms):
        while ms > 0:
            step = min(ms, DAY - self.t % DAY)
            self.nc += self.p.quiescent_ua * step
            self.t += step
            ms -= step
            if self.t % DAY == 0:
                self.marks.append(self.nc // 1_000_000)

    def strokes(self, n):
        self.nc += n * self.p.uc_per_stroke * 1000

    def tone(self, s):
        self.nc += s * self.p.uc_per_tone_s * 1000

    def command(self):
        self.nc += self.p.uc_per_command * 1000

    def days_left(self):
        usable = self.p.capacity_mah * 3600 * 900 // 1000
        used = self.nc // 1_000_000
        day = self.t // DAY
        if day == 0:  # a fraction of a day is no usage to project from
            return -1
        span = min(day, 7)
        w = self.marks[day] - self.marks[day - span]
        if w <= 0:
            return -1
        return 0 if used >= usable else (usable - used) * span // w


def test_days_left_is_unknown_without_usage():
    g = Gauge(FakeAdc(), BatteryParams(quiescent_ua=1))
    # Without usage the only known date is the service limit: ERI at the latest 90 days before it.
    assert g.days_left() == -1 and g.eri_in_days() == SERVICE_DAYS - 90
    assert g.eos_in_days() == SERVICE_DAYS and g.proj_eri_day == SERVICE_DAYS - 90 and g.proj_eos_day == SERVICE_DAYS
    g.elapse(500)  # 0.5 uC: not a whole mC yet
    assert g.used_mc() == 0 and g.days_left() == -1
    assert g.check() == NORMAL and g.percent_left() == 100


def test_a_burst_on_day_0_is_no_usage_to_project_from():
    # The implant's prime fires thousands of strokes in its first hour: over 0.36 s of service,
    # extrapolated, that is a life of minutes. ERI must not follow from it.
    g = Gauge(FakeAdc(3100), BatteryParams())
    g.elapse(360)
    g.strokes(3300)
    g.tone(3)
    assert g.days_left() == -1 and g.check() == NORMAL
    assert g.eri_in_days() == SERVICE_DAYS - 90 - 1  # only the service limit is known
    g.elapse(DAY)  # a whole day: now usage is known, and it is far from ERI
    assert g.check() == NORMAL and g.days_left() > 120


def test_days_left_against_the_oracle_from_day_0():
    p = BatteryParams(capacity_mah=150, quiescent_ua=7, uc_per_stroke=61, uc_per_tone_s=2900, uc_per_command=4700)
    g = Gauge(FakeAdc(), p)
    o = Oracle(p)
    seen = 0
    for i in range(40):
        ms = 5 * HOUR + 1_234_567 * (i % 5) + 7 * i
        n = 300 + (i * 97) % 700
        g.elapse(ms)
        o.elapse(ms)
        g.strokes(n)
        o.strokes(n)
        if i % 3 == 0:
            g.tone(1 + i % 3)
            o.tone(1 + i % 3)
            g.command()
            o.command()
        exp = o.days_left()
        assert g.days_left() == exp, (i, g.days_left(), exp)
        assert g.used_mc() == o.nc // 1_000_000
        assert g.service_day * DAY + g.service_ms == o.t
        if exp >= 0:
            seen += 1
            assert g.eri_in_days() == max(0, exp - 120)
        else:
            assert o.t < DAY  # from day 1 on, usage is known
    assert seen >= 35 and g.service_day >= 8


def _drive_days(g, o, days, strokes_of_day):
    """One day at a time: the day's strokes (and a tone every 3rd day), the day passes, check()."""
    for d in range(days):
        n = strokes_of_day(d)
        g.strokes(n)
        o.strokes(n)
        if d % 3 == 0:
            g.tone(1)
            o.tone(1)
        g.elapse(DAY)
        o.elapse(DAY)
        exp = o.days_left()
        lv = g.check()
        assert g.days_left() == exp
        if lv != NORMAL:
            return d + 1, exp
    return -1, 0


def test_eri_by_projection_on_the_day_the_definition_says():
    p = BatteryParams(capacity_mah=100)
    g = Gauge(FakeAdc(), p)
    o = Oracle(p)
    day, left = _drive_days(g, o, 400, lambda d: 1400 + (d * 37) % 900)
    # The oracle's first day-end with at most 90 + margin days left.
    assert day > 100 and 0 <= left <= 90 + ERI_MARGIN_DAYS
    assert (g.level, g.eri_day, g.eri_ms, g.eri_cause) == (ERI, day, 0, CAUSE_PROJECTION)
    assert g.eos_day == -1 and g.eri_in_days() == 0
    assert g.eos_in_days() == min(ERI_TO_EOS_DAYS, left)
    assert g.proj_eri_day == day and g.proj_eos_day == day + g.eos_in_days()
    # The day before, the projection was still more than 120 days.
    o2 = Oracle(p)
    g2 = Gauge(FakeAdc(), p)
    _drive_days(g2, o2, day - 1, lambda d: 1400 + (d * 37) % 900)
    assert g2.level == NORMAL and g2.days_left() > 90 + ERI_MARGIN_DAYS
    assert g2.eri_in_days() == g2.days_left() - 120
    assert g2.eos_in_days() == g2.eri_in_days() + 90


def test_eri_by_voltage_at_the_third_reading_at_rest_five_minutes_apart():
    adc = FakeAdc(2801)
    g = Gauge(adc, BatteryParams())
    g.elapse(3 * DAY + 12_345)
    assert g.check() == NORMAL and g.low == 0 and g.ms_to_next_event() == MAX_MS
    adc.mv = 2799
    g.elapse(1)
    assert g.check() == NORMAL and (g.low, g.low_n) == (2800, 1)
    assert g.ms_to_next_event() == SPACING  # the gauge asks the loop for the next reading
    g.elapse(SPACING - 1)  # too soon: neither counted nor a reset
    assert g.check() == NORMAL and (g.low, g.low_n) == (2800, 1) and g.ms_to_next_event() == 1
    g.elapse(1)
    assert g.check() == NORMAL and (g.low, g.low_n) == (2800, 2) and g.ms_to_next_event() == SPACING
    g.elapse(SPACING)
    assert g.check() == ERI and g.low == 0
    assert (g.eri_day, g.eri_ms, g.eri_cause, g.eos_day) == (3, 12_346 + CONFIRM_MS, CAUSE_VOLTAGE, -1)
    assert adc.reads == 5 and g.mv == 2799 and g.ms_to_next_event() == MAX_MS


def test_eos_exactly_90_days_after_eri_with_steps_that_cross_it():
    adc = FakeAdc(3000)
    g = Gauge(adc, BatteryParams())
    g.elapse(DAY + 7_777 - CONFIRM_MS)
    assert _confirmed(g, adc, 2700) == ERI
    target = (1 + 90) * DAY + 7_777
    t = DAY + 7_777
    step = 7 * HOUR + 1_234_567  # crosses the target somewhere inside a step
    while True:
        g.elapse(step)
        t += step
        lv = g.check()
        if t < target:
            assert lv == ERI
        else:
            assert lv == EOS
            break
    assert t - step < target <= t
    assert (g.eos_day, g.eos_ms, g.eos_cause) == (91, 7_777, CAUSE_AFTER_ERI)
    assert g.eri_day == 1 and g.eri_ms == 7_777 and g.eri_cause == CAUSE_VOLTAGE


def test_eos_to_the_ms_at_the_deadline_the_gauge_gives():
    adc = FakeAdc(3000)
    g = Gauge(adc, BatteryParams())
    g.elapse(5 * DAY + 999 - CONFIRM_MS)
    assert _confirmed(g, adc, 2700) == ERI and g.ms_to_next_event() == MAX_MS
    assert g.eos_in_days() == 90 and g.proj_eos_day == 95
    while g.ms_to_next_event() == MAX_MS:
        g.elapse(MAX_MS)
        assert g.check() == ERI
    left = g.ms_to_next_event()
    assert left == (95 - g.service_day) * DAY + 999 - g.service_ms
    g.elapse(left - 1)
    assert g.check() == ERI and g.ms_to_next_event() == 1
    assert g.eos_in_days() == 0  # less than a whole day left
    g.elapse(1)
    assert g.check() == EOS and g.ms_to_next_event() == MAX_MS
    assert (g.eos_day, g.eos_ms, g.service_day, g.service_ms) == (95, 999, 95, 999)


def test_eri_90_days_before_the_service_limit_and_eos_at_it():
    # The charge lasts far longer than 7 years: the service limit decides both, keeping the
    # manufacturer's 90 days of warning (ERI at SERVICE_DAYS - 90, EOS at SERVICE_DAYS).
    g = Gauge(FakeAdc(), BatteryParams(capacity_mah=5000))
    eri = SERVICE_DAYS - 90
    steps = 0
    while g.ms_to_next_event() == MAX_MS:
        g.elapse(MAX_MS)
        assert g.check() == NORMAL
        steps += 1
    assert steps > 300 and eri - 7 <= g.service_day < eri
    left = g.ms_to_next_event()
    assert left == (eri - g.service_day) * DAY - g.service_ms
    g.elapse(left - 1)
    assert g.check() == NORMAL
    g.elapse(2)  # the check comes 1 ms late: the level carries the limit's own instant
    assert g.check() == ERI
    assert (g.eri_day, g.eri_ms, g.eri_cause) == (eri, 0, CAUSE_SERVICE_LIMIT)
    assert g.eos_in_days() == 89 and g.eri_in_days() == 0
    _days(g, 89)
    left = g.ms_to_next_event()
    assert left == DAY - 1
    g.elapse(left - 1)
    assert g.check() == ERI
    g.elapse(1)
    assert g.check() == EOS
    assert (g.eos_day, g.eos_ms, g.eos_cause) == (SERVICE_DAYS, 0, CAUSE_SERVICE_LIMIT)
    assert g.eos_in_days() == 0 and g.proj_eos_day == SERVICE_DAYS


def test_the_deadline_never_overshoots():
    eri = SERVICE_DAYS - 90
    for day, ms, exp in ((eri - 8, DAY - 1, MAX_MS), (eri - 7, DAY - 1, 6 * DAY + 1),
                         (eri - 7, 0, MAX_MS), (eri - 7, DAY - 10_000_000, 6 * DAY + 10_000_000)):
        g = Gauge(FakeAdc(), BatteryParams(capacity_mah=5000))
        _days(g, day)
        g.elapse(ms)
        assert g.ms_to_next_event() == exp, (day, ms, g.ms_to_next_event(), exp)
        assert exp < MAX_MS or (eri - day) * DAY - ms >= MAX_MS


def test_eri_late_in_life_still_warns_90_days():
    adc = FakeAdc()
    g = Gauge(adc, BatteryParams(capacity_mah=5000))
    _days(g, SERVICE_DAYS - 131)
    g.elapse(DAY - CONFIRM_MS)
    assert _confirmed(g, adc, 2750) == ERI and g.eri_cause == CAUSE_VOLTAGE
    assert g.eos_in_days() == 90
    _days(g, 89)
    g.elapse(DAY - 1)
    assert g.check() == ERI and g.ms_to_next_event() == 1
    g.elapse(1)
    assert g.check() == EOS and g.eos_cause == CAUSE_AFTER_ERI and g.eos_day == SERVICE_DAYS - 40


def test_eos_by_voltage_sets_eri_at_the_same_instant():
    adc = FakeAdc(2900)
    g = Gauge(adc, BatteryParams())
    _days(g, 399)
    g.elapse(DAY + 5 - CONFIRM_MS)
    assert g.check() == NORMAL
    assert _confirmed(g, adc, 2599) == EOS
    assert (g.eri_day, g.eri_ms, g.eri_cause) == (400, 5, CAUSE_VOLTAGE)
    assert (g.eos_day, g.eos_ms, g.eos_cause) == (400, 5, CAUSE_VOLTAGE)
    # Between the thresholds: ERI only; then EOS by voltage before the 90 days.
    adc2 = FakeAdc(3000)
    g2 = Gauge(adc2, BatteryParams())
    g2.elapse(DAY)
    assert _confirmed(g2, adc2, 2700) == ERI
    _days(g2, 10)
    assert _confirmed(g2, adc2, 2500) == EOS and (g2.eos_day, g2.eos_cause) == (11, CAUSE_VOLTAGE)
    assert (g2.eri_day, g2.eri_cause) == (1, CAUSE_VOLTAGE)


def test_level_never_goes_down():
    adc = FakeAdc(3000)
    g = Gauge(adc, BatteryParams())
    g.elapse(DAY - CONFIRM_MS)
    assert _confirmed(g, adc, 2700) == ERI
    adc.mv = 3200  # voltage recovers, usage is tiny: still ERI
    for _ in range(30):
        g.elapse(DAY)
        assert g.check() == ERI and g.eri_day == 1
    assert _confirmed(g, adc, 2000) == EOS
    adc.mv = 3200
    _days(g, 200)
    assert g.check() == EOS and g.eos_day == 31 and g.eri_day == 1
    assert g.eri_in_days() == 0 and g.eos_in_days() == 0


def _all_small(g, where):
    names = [n for n in dir(g) if not n.startswith("__")]
    ints = 0
    for n in names:
        v = getattr(g, n)
        vals = v if isinstance(v, list) else [v]
        for x in vals:
            if isinstance(x, int):
                ints += 1
                assert SMALL_MIN <= x <= SMALL_MAX, (where, n, x)
    for x in (g.days_left(), g.eri_in_days(), g.eos_in_days(), g.ms_to_next_event(), g.used_mc(),
              g.percent_left()):
        assert SMALL_MIN <= x <= SMALL_MAX, (where, x)
    return ints


def test_small_ints_over_7_years_at_a_hundred_times_the_draw():
    # 100 x the nominal strokes (2 mL/day), tones and commands, and the largest quiescent current.
    adc = FakeAdc(3100)
    g = Gauge(adc, BatteryParams(quiescent_ua=100))
    for d in range(SERVICE_DAYS + 10):
        g.elapse(DAY // 2)
        g.strokes(8000 * 100)
        g.tone(100)
        for _ in range(20):
            g.command()
        g.elapse(DAY // 2)
        g.check()
        if d % 97 == 0:
            _all_small(g, d)
    assert _all_small(g, "end") >= 20
    # 7 years of 800_000 x 50 uC + 100 s x 3000 uC + 20 x 5000 uC + 100 uA quiescent, a day
    per_day_uc = 800_000 * 50 + 100 * 3000 + 20 * 5000 + 100 * 86_400
    assert g.used_mc() == (per_day_uc * (SERVICE_DAYS + 10)) // 1000
    assert g.level == EOS and g.percent_left() == 0 and g.days_left() == 0


def test_the_count_saturates_at_the_most_extreme_draw():
    # 480_000 strokes/day (24 mL/day of 50 nL strokes) x 100, at the largest charge per stroke.
    g = Gauge(FakeAdc(), BatteryParams(uc_per_stroke=10_000, quiescent_ua=100))
    for d in range(3):
        g.strokes(48_000_000)
        g.elapse(DAY)
        g.check()
        _all_small(g, d)
    assert g.used_mc() == (1 << 29) - 1 and g.days_left() == 0 and g.percent_left() == 0


def test_gauge_paths_allocate_nothing_with_the_heap_unlocked():
    mem = heap_meter()
    if mem is None:
        skip("allocation is measured on MicroPython")
    adc = FakeAdc(3100)
    g = Gauge(adc, BatteryParams())
    g2 = Gauge(adc, BatteryParams())
    try:
        g2.elapse(HOUR)  # day 0: no usage to project from yet
        for _ in range(20):  # a week and more of history, every ring slot written
            g.elapse(10 * HOUR)
            g.strokes(600)
            g.check()
        before = mem()
        g2.days_left()
        g2.eri_in_days()
        n = 0
        while n < 300:  # 13.5 days: day marks, ERI, then EOS, each after its readings at rest
            g.elapse(HOUR)
            g.strokes(60)
            g.strokes(12_000)
            g.check()  # under load: a low one does not count, and asks for a reading at rest
            g.tone(1)
            g.tone(3)
            g.command()
            g.ms_to_next_event()
            g.elapse(SPACING)
            g.check()  # at rest
            g.days_left()
            g.eri_in_days()
            g.eos_in_days()
            g.ms_to_next_event()
            g.percent_left()
            g.used_mc()
            g.project()
            n += 1
            if n == 100:
                adc.mv = 2700
            if n == 200:
                adc.mv = 2500
        allocated = mem() - before
    finally:
        heap_meter_done()
    print("battery gauge: %d B over %d rounds" % (allocated, n))
    # The third low reading at rest after each change of the ADC: 100 rounds of 65 minutes apart.
    assert g.eri_cause == CAUSE_VOLTAGE
    assert (g.eos_day - g.eri_day) * DAY + g.eos_ms - g.eri_ms == 100 * (HOUR + SPACING)
    assert g.level == EOS and g.eos_cause == CAUSE_VOLTAGE
    assert allocated == 0, "%d B allocated over %d rounds" % (allocated, n)


# ---- the voltage rule: one glitch is an event, never ERI or EOS (docs/battery.md "The voltage rule")


def test_one_glitch_raises_nothing_and_asks_for_the_next_reading():
    for loaded in (False, True):
        adc = FakeAdc(3100)
        g = Gauge(adc, BatteryParams())
        _days(g, 30)
        g.elapse(HOUR)
        if loaded:
            g.strokes(3)
        adc.mv = 1000  # far below eos_mv, for one reading
        assert g.check() == NORMAL and g.eri_day == -1 and g.eos_day == -1
        assert (g.low, g.low_n, g.mv) == (2600, 0 if loaded else 1, 1000)
        # The next reading: at rest (REST_MS after the strokes), or SPACING after the one counted.
        assert g.ms_to_next_event() == (REST_MS if loaded else SPACING)
        adc.mv = 3100
        g.elapse(g.ms_to_next_event())
        assert g.check() == NORMAL and g.low == 0 and g.ms_to_next_event() == MAX_MS
        # The count was reset: two more low readings raise nothing.
        adc.mv = 1000
        for _ in range(2):
            g.elapse(SPACING)
            assert g.check() == NORMAL and g.low == 2600
        assert g.low_n == 2 and g.eri_day == -1


def test_readings_under_load_do_not_count():
    adc = FakeAdc(2500)
    g = Gauge(adc, BatteryParams())
    g.elapse(DAY)
    for _ in range(10):  # strokes before every reading: never at rest
        g.elapse(SPACING)
        g.strokes(4)
        assert g.check() == NORMAL and (g.low, g.low_n) == (2600, 0)
        assert g.ms_to_next_event() == REST_MS
    g.elapse(REST_MS - 1)
    assert g.check() == NORMAL and g.low_n == 0 and g.ms_to_next_event() == 1
    g.elapse(1)
    assert g.check() == NORMAL and g.low_n == 1  # REST_MS after the last strokes: counted
    # A tone: at rest REST_MS after it ends; a command: REST_MS after it (the tone still wins).
    g.elapse(SPACING)
    g.tone(3)
    g.command()
    assert g.ms_to_next_event() == 3000 + REST_MS
    g.elapse(3000 + REST_MS - 1)
    assert g.check() == NORMAL and g.low_n == 1
    g.elapse(1)
    assert g.check() == NORMAL and g.low_n == 2
    g.elapse(SPACING)
    g.command()
    assert g.check() == NORMAL and g.low_n == 2 and g.ms_to_next_event() == REST_MS
    g.elapse(REST_MS)
    t = g.service_ms
    assert g.check() == EOS and (g.eos_day, g.eos_ms, g.eri_ms) == (1, t, t) and g.low == 0


def test_a_reading_back_above_the_threshold_resets_the_count():
    adc = FakeAdc(2700)
    g = Gauge(adc, BatteryParams())
    g.elapse(DAY)
    assert g.check() == NORMAL and g.low_n == 1
    g.elapse(SPACING)
    assert g.check() == NORMAL and g.low_n == 2
    adc.mv = 2800  # not below eri_mv, and under load: still a reset
    g.elapse(SPACING)
    g.strokes(1)
    assert g.check() == NORMAL and g.low == 0 and g.ms_to_next_event() == MAX_MS
    adc.mv = 2700
    for n in (1, 2):
        g.elapse(SPACING)
        assert g.check() == NORMAL and g.low_n == n
    g.elapse(SPACING)
    assert g.check() == ERI and g.eri_ms == 5 * SPACING


def test_eri_and_eos_each_count_their_own_readings():
    adc = FakeAdc(2700)
    g = Gauge(adc, BatteryParams())
    g.elapse(DAY)
    g.check()
    g.elapse(SPACING)
    g.check()
    adc.mv = 2500
    g.elapse(SPACING)
    # The third below eri_mv raises ERI; it is the first below eos_mv: reported low, no EOS.
    assert g.check() == ERI and (g.eri_ms, g.eri_cause) == (CONFIRM_MS, CAUSE_VOLTAGE)
    assert (g.low, g.low_n) == (2600, 1) and g.ms_to_next_event() == SPACING
    g.elapse(SPACING)
    assert g.check() == ERI and g.low_n == 2
    adc.mv = 2700  # back between the thresholds: not low for EOS, and the count restarts
    g.elapse(SPACING)
    assert g.check() == ERI and g.low == 0
    adc.mv = 2500
    for n in (1, 2):
        g.elapse(SPACING)
        assert g.check() == ERI and g.low_n == n
    g.elapse(SPACING)
    assert g.check() == EOS and (g.eos_ms, g.eos_cause) == (7 * SPACING, CAUSE_VOLTAGE) and g.low == 0


class RuleOracle:
    """The voltage rule from its definition, in absolute ms: a reading below the threshold of the
    next level counts if the cell rested 2 s since the last load and, while a count runs, 5 minutes
    passed since the last reading counted; one at or above a threshold resets that threshold's
    run; three in a run raise."""

    def __init__(self, eri_mv, eos_mv):
        self.eri_mv = eri_mv
        self.eos_mv = eos_mv
        self.level = NORMAL
        self.at = [-1, -1, -1]  # when each level was raised
        self.busy_until = -10 * SPACING
        self.last = -10 * SPACING  # the last reading counted
        self.run_eri = 0
        self.run_eos = 0

    def reading(self, t, mv):
        if mv >= self.eri_mv:
            self.run_eri = 0
        if mv >= self.eos_mv:
            self.run_eos = 0
        if self.level == EOS or mv >= (self.eri_mv if self.level == NORMAL else self.eos_mv):
            return 0, 0, -1
        if t - self.busy_until >= 2000 and (not self.run_eri or t - self.last >= SPACING):
            self.last = t
            self.run_eri += 1
            self.run_eos += mv < self.eos_mv
            if self.run_eos == 3:
                if self.level == NORMAL:
                    self.at[ERI] = t
                self.level, self.at[EOS] = EOS, t
                return 0, 0, -1
            if self.level == NORMAL and self.run_eri == 3:
                self.level, self.at[ERI] = ERI, t
        wait = self.busy_until + 2000 - t
        if self.run_eri:
            wait = max(wait, self.last + SPACING - t)
        if mv < self.eos_mv:
            return self.eos_mv, self.run_eos, max(wait, 0)
        if self.level == NORMAL:
            return self.eri_mv, self.run_eri, max(wait, 0)
        return 0, 0, -1


def test_the_voltage_rule_against_its_definition():
    steps = (1, 999, 1999, 2000, 60_000, SPACING - 1, SPACING, 7 * 60_000)
    volts = (3000, 3100, 2800, 3000, 2799, 2700, 2600, 2599, 2400, 900)
    x = 7
    raised = [0, 0, 0]
    for run in range(20):
        adc = FakeAdc(3000)
        g = Gauge(adc, BatteryParams())
        o = RuleOracle(2800, 2600)
        g.elapse(DAY)
        t = DAY
        for _ in range(100):
            x = (x * 75 + 74) % 65537
            dt = steps[x % len(steps)]
            if x % 3 == 0:
                adc.mv = volts[(x >> 4) % len(volts)]
            g.elapse(dt)
            t += dt
            if x % 7 < 3:
                g.strokes(1)
                o.busy_until = max(o.busy_until, t)
            low, n, wait = o.reading(t, adc.mv)
            lv = g.check()
            assert lv == o.level and (g.low, g.low_n if low else 0) == (low, n), (run, t, adc.mv, lv, g.low, g.low_n)
            if x % 11 == 0:
                g.tone(1 + x % 3)
                o.busy_until = max(o.busy_until, t + 1000 * (1 + x % 3))
                if low:
                    wait = max(wait, o.busy_until + 2000 - t)
            if low:
                assert g.ms_to_next_event() == wait, (run, t, g.ms_to_next_event(), wait)
            if lv == EOS:
                break
        raised[o.level] += 1
        assert g.level == o.level
        if o.level >= ERI:
            assert (g.eri_day * DAY + g.eri_ms, g.eri_cause) == (o.at[ERI], CAUSE_VOLTAGE)
        if o.level == EOS:
            assert (g.eos_day * DAY + g.eos_ms, g.eos_cause) == (o.at[EOS], CAUSE_VOLTAGE)
    print("voltage rule against its definition: runs ending NORMAL, ERI, EOS: %r" % raised)
    assert raised[EOS] >= 3 and raised[ERI] + raised[NORMAL] >= 3, raised
