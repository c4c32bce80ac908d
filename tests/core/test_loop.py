# The main loop (firmware/loop.py) on the HAL fakes: wait, service, sound. Patient boluses through
# the button, programmer commands and their replies (a rejected one changes nothing), suspend and
# resume, the battery's ERI and EOS, and (on MicroPython) a steady-state iteration that allocates
# nothing. Stroke times come from the delivery rule's oracle in support.py, not from the firmware.

from fakes_hal import (
    BASAL_NG_PER_DAY,
    CONCENTRATION,
    PTM_LOCKOUT_MIN,
    PTM_MINUTES,
    PTM_NG,
    STROKE_MS,
    standard_rig,
)
from support import bolus_segments, heap_meter, heap_meter_done, oracle_stroke_times, raises, skip, timeline

from firmware.alarms import (
    ALARM_NAMES,
    CLASS_NAMES,
    EV_ALARM,
    EV_BATTERY_LOW_READING,
    EV_BOLUS,
    EV_COMMAND_REJECTED,
    EV_EOS,
    EV_ERI,
    EV_PROJECTION,
    EV_RESUMED,
    EV_SUSPENDED,
    KIND_NAMES,
    OK,
    REASON_NAMES,
)
from firmware.loop import STATE_NAMES
from firmware.prescription import Bolus, Prescription, Profile, PumpParams
from hal.channel import (
    CMD_BOLUS,
    CMD_CANCEL_BOLUS,
    CMD_PRIME,
    CMD_PROGRAM,
    CMD_REFILL,
    CMD_RESUME,
    CMD_SET_CLOCK,
    CMD_SILENCE,
    CMD_SUSPEND,
)

S = 1000
MIN = 60 * S
HOUR = 60 * MIN
DAY = 24 * HOUR
STROKE_PG = 500_000  # 250 nL at 2000 mcg/mL


def _reason(name):
    return REASON_NAMES.index(name)


def _kind(name):
    return KIND_NAMES.index(name)


def _alarm(name):
    return ALARM_NAMES.index(name)


def _cls(name):
    return CLASS_NAMES.index(name)


def _state(name):
    return STATE_NAMES.index(name)


def _grid(t0, t1):
    """Basal strokes every 72 s after t0 (the ideal restarting from nothing at t0), up to t1."""
    return list(range(t0 + STROKE_MS, t1 + 1, STROKE_MS))


def test_basal_strokes_follow_the_delivery_rule_through_run():
    rig = standard_rig()
    rig.run_until(3 * HOUR)
    assert rig.motor.times == _grid(0, 3 * HOUR)
    assert len(rig.motor.times) == 3 * HOUR // STROKE_MS  # 150
    assert rig.loop.state() == _state("delivering")
    assert rig.ann.tones == []
    rig.loop.service()  # the strokes are counted at a wake
    assert rig.loop.ctl.reservoir.volume_nl == 20_000_000 - 150 * 250


def test_button_press_is_a_patient_bolus_served_at_the_press():
    rig = standard_rig()
    presses = (10 * MIN, 30 * MIN, 71 * MIN)
    for t in presses:
        rig.at(t, rig.button.press)
    rig.run_until(2 * HOUR)
    ptm = _kind("ptm")
    # Granted at 10 min; within the 60-minute lockout at 30 min; granted again at 71 min.
    assert rig.events.of(EV_BOLUS) == [(10 * MIN, ptm, OK, PTM_NG), (30 * MIN, ptm, _reason("lockout"), 0),
                                       (71 * MIN, ptm, OK, PTM_NG)]
    assert 71 * MIN - 10 * MIN >= PTM_LOCKOUT_MIN * MIN
    changes = [(0, BASAL_NG_PER_DAY)] + bolus_segments(10 * MIN, PTM_NG, PTM_MINUTES)
    changes += bolus_segments(71 * MIN, PTM_NG, PTM_MINUTES)
    expected = oracle_stroke_times(timeline(changes, 2 * HOUR), STROKE_PG, 2 * HOUR)
    assert rig.motor.times == expected
    # 2 h of basal (50 strokes an hour) and two 40-stroke boluses
    assert len(expected) == 100 + 2 * PTM_NG // 500
    assert rig.button.taken == 3


def _snapshot(loop):
    ctl = loop.ctl
    return (ctl.reservoir.volume_nl, ctl.held, loop.alarms.active, loop.alarms.silenced, ctl.rx, ctl.conc,
            ctl.boluses.rate_sum, ctl.boluses.active_count(), ctl.missed.total(), ctl.priming(),
            loop.low_reservoir_min, loop.empty_min, loop.state())


def test_rejected_programmer_commands_get_the_reason_and_change_nothing():
    rig = standard_rig()
    other_drug = Prescription(1000, [Profile([0], [BASAL_NG_PER_DAY], "basal.steps")] * 7, (), None, 1_000_000)
    bad = (
        # (command, the ValueError's message starts with this)
        ([CMD_BOLUS, 5000, 5], "programmer: unknown command"),
        (None, "programmer: unknown command"),
        ((), "programmer: unknown command"),
        ((99,), "programmer: unknown command"),
        ((-1,), "programmer: unknown command"),
        (("bolus", 5000, 5), "programmer: unknown command"),
        ((CMD_BOLUS, 5000), "programmer: command 1 takes 2 arguments"),
        ((CMD_SILENCE, 1), "programmer: command 4 takes 0 arguments"),
        ((CMD_REFILL, 1000, 2000, 5), "programmer: command 0 takes 2 arguments"),
        ((CMD_BOLUS, 5000.0, 5), "programmer: command 1: arguments must be integers"),
        ((CMD_BOLUS, True, 5), "programmer: command 1: arguments must be integers"),
        ((CMD_PRIME, "10"), "programmer: command 3: arguments must be integers"),
        ((CMD_BOLUS, 0, 5), "bolus.mcg"),
        ((CMD_BOLUS, 5000, 0), "bolus.minutes"),
        ((CMD_BOLUS, 5000, 1441), "bolus.minutes"),
        ((CMD_REFILL, 0, CONCENTRATION), "refill.volume_ml"),
        ((CMD_REFILL, 1000, 5), "refill.concentration_mcg_ml"),
        ((CMD_PROGRAM, "rx"), "program: must be a Prescription"),
        ((CMD_PROGRAM, other_drug), "program: drug.concentration_mcg_ml"),
        ((CMD_PRIME, 151), "prime.catheter_cm"),
        ((CMD_PRIME, -1), "prime.catheter_cm"),
        ((CMD_SET_CLOCK, 7, 0), "set_clock.weekday"),
        ((CMD_SET_CLOCK, 0, 86_400_000), "set_clock.ms_of_day"),
        ((CMD_SET_CLOCK, 0), "programmer: command 8 takes 2 arguments"),
    )
    refused = (
        # (command, reason name) for a well-formed command the pump refuses
        ((CMD_REFILL, 1_000_000, CONCENTRATION), "over_capacity"),  # the reservoir is full
        ((CMD_RESUME,), "not_suspended"),
        ((CMD_SILENCE,), "no_silenceable_alarm"),
        ((CMD_CANCEL_BOLUS,), "no_active_bolus"),
        ((CMD_BOLUS, 200_000, 1), "rate"),  # 200 mcg in a minute: over 24 mL/day
    )
    t = 5 * MIN  # between the strokes at 288 s and 360 s
    before = []
    after = []

    def snap_before():
        rig.loop.service()  # a wake: the strokes so far counted
        before.append(_snapshot(rig.loop))

    rig.at(t, snap_before)
    for command, _ in bad + refused:
        rig.send(t, command)
    rig.at(t + 1, lambda: after.append(_snapshot(rig.loop)))
    rig.run_until(2 * HOUR)
    replies = rig.prog.replies
    assert len(replies) == len(bad) + len(refused)
    for i in range(len(bad)):
        command, prefix = bad[i]
        got = replies[i]
        assert got[0] is command
        assert isinstance(got[1], ValueError), (command, got[1])
        assert str(got[1]).startswith(prefix), (command, str(got[1]))
    for i in range(len(refused)):
        command, reason = refused[i]
        got = replies[len(bad) + i]
        assert got[0] is command
        assert not isinstance(got[1], ValueError), (command, got[1])
        assert REASON_NAMES[got[1]] == reason, (command, got[1])
    # Nothing changed: the same state, no dates recalculated, the strokes still on their 72 s grid.
    assert before == after
    assert [e for e in rig.events.log if e[0] >= t and e[1] == EV_PROJECTION] == []
    assert rig.motor.times == _grid(0, 2 * HOUR)
    # Refused commands from silence on are reported as rejected, with their reason.
    rejected = rig.events.of(EV_COMMAND_REJECTED)
    assert [(a, b) for (_, a, b, _) in rejected] == [(CMD_RESUME, _reason("not_suspended")),
                                                      (CMD_SILENCE, _reason("no_silenceable_alarm")),
                                                      (CMD_CANCEL_BOLUS, _reason("no_active_bolus"))]


def test_accepted_programmer_commands():
    rig = standard_rig()
    rig.send(30 * MIN, (CMD_BOLUS, 15_000, 5))  # a clinician bolus of 15 mcg over 5 minutes
    rig.send(40 * MIN, (CMD_BOLUS, 50_000, 60))
    rig.send(50 * MIN, (CMD_CANCEL_BOLUS,))
    rig.send(70 * MIN, (CMD_REFILL, 10_000, CONCENTRATION))
    rig.run_until(2 * HOUR)
    assert [r[1] for r in rig.prog.replies] == [OK, OK, OK, OK]
    clinician = _kind("clinician")
    assert rig.events.of(EV_BOLUS) == [(30 * MIN, clinician, OK, 15_000), (40 * MIN, clinician, OK, 50_000)]
    # The cancelled bolus ran 10 minutes of its 60: delivered as a rate for that time only.
    q = 50_000 * 1440 // 60
    assert q * 60 == 50_000 * 1440
    changes = [(0, BASAL_NG_PER_DAY)] + bolus_segments(30 * MIN, 15_000, 5) + [(40 * MIN, q), (50 * MIN, -q)]
    assert rig.motor.times == oracle_stroke_times(timeline(changes, 2 * HOUR), STROKE_PG, 2 * HOUR)
    # The refill put 10 uL back: the reservoir holds what the strokes left plus that.
    rig.loop.service()
    assert rig.loop.ctl.reservoir.volume_nl == 20_000_000 - 250 * len(rig.motor.times) + 10_000
    # Each accepted command recalculated the dates.
    projections = [e[0] for e in rig.events.log if e[1] == EV_PROJECTION]
    for t in (30 * MIN, 40 * MIN, 50 * MIN, 70 * MIN):
        assert t in projections


def test_suspend_stops_delivery_alarms_hourly_and_resume_makes_nothing_up():
    rig = standard_rig()
    t_suspend = 630 * S  # 8 strokes delivered (72 .. 576 s), 54 s of the 9th accrued
    t_resume = t_suspend + 3 * HOUR + 20 * MIN
    states = []
    rig.send(t_suspend, (CMD_SUSPEND,))
    rig.send(1000 * S, (CMD_BOLUS, 5000, 5))
    rig.at(2000 * S, rig.button.press)
    rig.send(3000 * S, (CMD_SUSPEND,))
    rig.at(HOUR, lambda: states.append(rig.loop.state()))
    rig.send(t_resume, (CMD_RESUME,))
    rig.run_until(t_resume + 2 * HOUR)
    states.append(rig.loop.state())
    replies = [r[1] for r in rig.prog.replies]
    assert replies == [OK, _reason("delivery_stopped"), _reason("already_suspended"), OK]
    assert states == [_state("suspended"), _state("delivering")]
    # No stroke while suspended; after resume the 72 s grid restarts from the resume: nothing made up.
    assert rig.motor.times == _grid(0, t_suspend) + _grid(t_resume, t_resume + 2 * HOUR)
    assert len(_grid(0, t_suspend)) == 8
    # The patient's bolus asked for meanwhile is denied too.
    assert (2000 * S, _kind("ptm"), _reason("delivery_stopped"), 0) in rig.events.of(EV_BOLUS)
    # The suspended alarm: raised at the suspend, cleared at the resume; its tone hourly from the raising.
    suspended = _alarm("suspended")
    assert rig.events.of(EV_ALARM) == [(t_suspend, suspended, 1, 0), (t_resume, suspended, 0, 0)]
    assert [e[0] for e in rig.events.of(EV_SUSPENDED)] == [t_suspend]
    assert [e[0] for e in rig.events.of(EV_RESUMED)] == [t_resume]
    non = _cls("non_critical")
    assert rig.ann.tones == [(t_suspend + k * HOUR, non, suspended) for k in range(4)]
    assert t_suspend + 3 * HOUR < t_resume < t_suspend + 4 * HOUR
    # Written off: the 54 s accrued at the suspend (375 ng) and the 3 h 20 min suspended (83 333.3 ng),
    # whole ng per accounting step.
    missed = rig.loop.ctl.missed.total()
    ideal = BASAL_NG_PER_DAY * (t_resume - 576 * S) // DAY
    assert ideal == 83_708
    assert ideal - 10 <= missed <= ideal


def test_silence_of_the_suspended_alarm_through_the_programmer():
    rig = standard_rig()
    rig.send(10 * MIN, (CMD_SUSPEND,))
    rig.send(40 * MIN, (CMD_SILENCE,))
    rig.run_until(5 * HOUR)
    assert [r[1] for r in rig.prog.replies] == [OK, OK]
    times = [t for (t, _, _) in rig.ann.tones]
    # The tone at the raising, silenced at 40 min (the 70-min repeat not played), then a full hour
    # after the silence and hourly.
    assert times == [10 * MIN, 100 * MIN, 160 * MIN, 220 * MIN, 280 * MIN]
    assert rig.motor.times == _grid(0, 10 * MIN)


def test_battery_eri_then_eos_by_voltage():
    rig = standard_rig()
    rig.at(HOUR, lambda: setattr(rig.adc, "mv", 2700))  # below ERI (2800 mV), above EOS (2600 mV)
    rig.at(13 * HOUR, lambda: setattr(rig.adc, "mv", 2500))
    rig.run_until(26 * HOUR)
    eri = rig.events.of(EV_ERI)
    eos = rig.events.of(EV_EOS)
    assert len(eri) == 1 and len(eos) == 1
    t_eri, t_eos = eri[0][0], eos[0][0]
    # The cell is read at every wake and at least every 6 hours; a level comes at the third low
    # reading at rest, 5 minutes apart (docs/battery.md, "The voltage rule"): 10 minutes after the
    # first low one, which comes under load here (strokes since the last wake), each reading of the
    # rule 2 s after a wake with strokes.
    low = rig.events.of(EV_BATTERY_LOW_READING)
    for t_level, t_from, mv, threshold in ((t_eri, HOUR, 2700, 2800), (t_eos, 13 * HOUR, 2500, 2600)):
        first = min(t for t, _, _, _ in low if t >= t_from)
        assert t_from <= first <= t_from + 6 * HOUR
        assert first + 10 * MIN <= t_level <= first + 10 * MIN + 3 * (2000 + 3000)  # rest after a tone's end
        mine = [(a, b, c) for t, a, b, c in low if first <= t < t_level]
        assert mine[0] == (mv, 0, threshold) and {m[0] for m in mine} == {mv} and {m[2] for m in mine} == {threshold}
        # Under load (b: the count so far), at rest 2 s later (counted), and so on.
        assert [m[1] for m in mine] == [0, 1, 1, 2, 2]
    assert rig.adc.reads > 0
    alarms = rig.events.of(EV_ALARM)
    assert alarms == [(t_eri, _alarm("elective_replacement"), 1, 0), (t_eos, _alarm("end_of_service"), 1, 0)]
    # ERI: the non-critical tone at once and hourly; EOS: the critical tone at once and every 10
    # minutes, and no more hourly non-critical tone.
    non, crit = _cls("non_critical"), _cls("critical")
    non_times = [t for (t, c, _) in rig.ann.tones if c == non]
    crit_times = [t for (t, c, _) in rig.ann.tones if c == crit]
    assert non_times == list(range(t_eri, t_eos, HOUR))
    assert crit_times == list(range(t_eos, 26 * HOUR, 10 * MIN))  # the run ends at 26 h, before its wake
    # Delivery stopped for good at EOS: every stroke before it on the grid, none after.
    assert rig.motor.times == _grid(0, t_eos)
    assert rig.loop.state() == _state("end_of_service")


def test_a_glitch_of_the_adc_at_a_wake_is_an_event_and_nothing_else():
    # Issue 14 §5: the ADC at 1000 mV (far below EOS) for one reading at the 6-hour check.
    rig = standard_rig()
    rig.at(6 * HOUR, lambda: setattr(rig.adc, "mv", 1000))
    rig.at(6 * HOUR + 1, lambda: setattr(rig.adc, "mv", 3000))
    rig.run_until(26 * HOUR)
    assert rig.events.of(EV_BATTERY_LOW_READING) == [(6 * HOUR, 1000, 0, 2600)]
    assert rig.events.of(EV_ERI) == [] and rig.events.of(EV_EOS) == [] and rig.events.of(EV_ALARM) == []
    assert rig.ann.tones == [] and rig.motor.times == _grid(0, 26 * HOUR)
    assert rig.loop.state() == _state("delivering")


class _IdlePort:
    """A LinkPort with no bytes ever (hal/interfaces.py)."""

    def any(self):
        return 0

    def readinto(self, buf, n):
        return 0

    def write(self, buf, n):
        pass


def _steady_rig(volume_nl=-1, **kw):
    # Basal steps and midnights, a daily periodic bolus (at its start the loop recalculates the
    # dates: PumpLoop._project, on the steady path too) and a patient bolus configured (not pressed).
    base = Profile([0, 6 * HOUR, 12 * HOUR, 18 * HOUR], [700_000, 400_000, 500_000, 600_000], "basal.steps")
    rx = Prescription(2000, [base] * 7, ((8 * HOUR, Bolus(50_003, 7, "p")),), (Bolus(20_000, 7, "ptm"), 15, 24),
                      1_000_000)
    from fakes_hal import Rig

    return Rig(PumpParams(40_000_000), rx, record=False, counting_emit=True, volume_nl=volume_nl, **kw)


def _wake(rig):
    rig.clock.until(rig.loop.deadline())
    rig.loop.service()


def test_steady_state_loop_iteration_allocates_nothing_with_the_heap_unlocked():
    _steady_state_allocates_nothing()


def test_steady_state_with_an_idle_link_port_allocates_nothing():
    # The link is served at every wake (firmware/link.py Link.service): a port with no bytes costs nothing.
    _steady_state_allocates_nothing(link_port=_IdlePort())


def _steady_state_allocates_nothing(**kw):
    # Each iteration: the controller's wake (strokes, steps, midnights, periodic boluses), the
    # mechanism watch, the battery (elapse, strokes, ADC read) and the alarm manager.
    mem = heap_meter()
    if mem is None:
        skip("allocation is measured on MicroPython")
    try:
        rig = _steady_rig(**kw)
        assert (rig.loop.link is not None) == bool(kw)
        for _ in range(10):
            _wake(rig)
        strokes = rig.motor.total
        reads = rig.adc.reads
        started = rig.loop.ctl.started
        before = mem()
        wakes = 0
        while wakes < 100:  # 110 wakes of at most 1 h (the hourly self-tests): 3 daily boluses, within
            _wake(rig)  # the 12.4 days the fake clock's ms stay small ints
            wakes += 1
        allocated = mem() - before
    finally:
        heap_meter_done()
    print("steady-state loop%s: %d B over %d wakes, %d strokes, %d bolus starts" % (
        " with an idle link port" if kw else "", allocated, wakes, rig.motor.total - strokes,
        rig.loop.ctl.started - started))
    assert rig.loop.ctl.started - started >= 3  # a daily periodic bolus, each start recalculating the dates
    assert rig.motor.total - strokes > 1000 and rig.adc.reads - reads >= wakes and rig.counts[0] > 0
    assert allocated == 0, "%d B allocated over %d wakes" % (allocated, wakes)


def test_steady_state_loop_with_an_hourly_tone_allocates_nothing():
    # The low-reservoir alarm active (delivery goes on): the hourly tone is on the steady path too.
    mem = heap_meter()
    if mem is None:
        skip("allocation is measured on MicroPython")
    try:
        rig = _steady_rig(volume_nl=1_900_000)
        for _ in range(10):
            _wake(rig)
        tones = rig.ann.count
        strokes = rig.motor.total
        before = mem()
        wakes = 0
        while wakes < 30:
            _wake(rig)
            wakes += 1
        allocated = mem() - before
    finally:
        heap_meter_done()
    print("steady-state loop with tones: %d B over %d wakes, %d tones" % (allocated, wakes, rig.ann.count - tones))
    assert rig.loop.alarms.active == 1 << _alarm("low_reservoir")
    assert rig.ann.count - tones >= 10 and rig.motor.total > strokes
    assert allocated == 0, "%d B allocated over %d wakes" % (allocated, wakes)


def test_a_cell_falling_from_normal_below_eos_stops_delivery_holds_and_alarms():
    # The cell drops from 3000 mV straight below eos_mv (2600 mV, BatteryParams) between strokes:
    # at the next wake (a stroke's train end, or the 6-hourly check at the latest) delivery stops
    # for good: no stroke after it, the end-of-service hold, and the critical alarm at once and
    # every 10 minutes. ERI is reported with it (the level passes through it).
    from firmware.battery import BatteryParams

    assert BatteryParams().eos_mv == 2600
    rig = standard_rig()
    t_drop = 2 * HOUR + 30 * S  # between the strokes at 7200 s and 7272 s
    rig.at(t_drop, lambda: setattr(rig.adc, "mv", 2599))
    rig.run_until(12 * HOUR)
    eos = rig.events.of(EV_EOS)
    assert len(eos) == 1
    t_eos = eos[0][0]
    assert t_drop <= t_eos <= t_drop + 6 * HOUR
    assert [e[0] for e in rig.events.of(EV_ERI)] == [t_eos]
    # No stroke after it: the grid up to the end of service only.
    assert rig.motor.times == _grid(0, t_eos)
    assert rig.motor.times[-1] <= t_eos
    assert rig.loop.state() == _state("end_of_service")
    from firmware.controller import HOLD_EOS

    assert rig.loop.ctl.held & HOLD_EOS
    eos_id = _alarm("end_of_service")
    assert (t_eos, eos_id, 1, 0) in rig.events.of(EV_ALARM)
    crit = [t for (t, c, a) in rig.ann.tones if c == _cls("critical")]
    assert crit == list(range(t_eos, 12 * HOUR, 10 * MIN))


def test_a_timer_due_again_after_its_service_is_refused_a_zero_length_wait():
    # A silenced alarm that never repeats left its next deadline due for ever: the loop would spin
    # in that ms and drain the cell. Planted here: the alarm manager's next tone always due now.
    rig = standard_rig()
    rig.send(10 * MIN, (CMD_SUSPEND,))
    rig.run_until(20 * MIN)
    assert rig.loop.refused == 0  # a correct run never needs it (every rig run checks that)
    rig.loop.alarms.ms_to_next = lambda now: 0
    wakes = rig.loop.wakes
    rig.clock.max_spin = 10_000
    rig.loop.service()  # a wake at 20 min: from now on the tone is "due" after every pass
    rig.clock.run_until(rig.loop, 20 * MIN + 500)
    # Each pass is refused a zero wait and waits 1 ms instead: time goes on, and it is counted.
    assert rig.clock.now_ms == 20 * MIN + 500
    assert 499 <= rig.loop.refused <= 501 and rig.loop.wakes - wakes == rig.loop.refused
    # The test rigs stop such a run at once, with a message, instead of running it for hours.
    rig.clock.max_spin = 1000
    err = raises(AssertionError, lambda: rig.clock.run_until(rig.loop, 2 * HOUR))
    assert "spins" in str(err), str(err)
    assert rig.clock.now_ms < 20 * MIN + 500 + 1100
