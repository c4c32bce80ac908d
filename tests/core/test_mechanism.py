# The mechanism watch (firmware/mechanism.py) through the main loop on the HAL fakes: a stall that
# clears within 15 minutes recovers without an alarm, a longer one raises motor_stall at exactly 15
# minutes; an occlusion stops delivery and alarms until the block releases; a runaway motor is cut
# off at its first uncommanded stroke and stays stopped. Expectations follow docs/alarms.md: the
# retry schedule, the 72 s stroke grid of the standard prescription, nothing made up.

from fakes_hal import BASAL_NG_PER_DAY, CONCENTRATION, STROKE_MS, standard_rig

from firmware.alarms import (
    ALARM_NAMES,
    CLASS_NAMES,
    EV_ALARM,
    EV_COMMAND_REJECTED,
    EV_LIMIT_HELD,
    EV_LIMIT_HOLD_ENDED,
    EV_OCCLUSION,
    EV_OCCLUSION_RELEASED,
    EV_PRIME_DONE,
    EV_RUNAWAY,
    EV_STALL,
    EV_STALL_RECOVERED,
    EV_TONE,
    OK,
    REASON_NAMES,
)
from firmware.loop import STATE_NAMES
from hal.channel import CMD_BOLUS, CMD_PRIME, CMD_REFILL, CMD_RESUME, CMD_SILENCE, CMD_SUSPEND

S = 1000
MIN = 60 * S
HOUR = 60 * MIN
DAY = 24 * HOUR
STROKE_NL = 250


def _state(name):
    return STATE_NAMES.index(name)


def _alarm(name):
    return ALARM_NAMES.index(name)


def _reason(name):
    return REASON_NAMES.index(name)


def _grid(t0, t1):
    """Strokes every 72 s after t0 (the ideal restarting from nothing at t0), up to t1."""
    return list(range(t0 + STROKE_MS, t1 + 1, STROKE_MS))


def retry_offsets_ms(n):
    """docs/alarms.md: the first retry 15 s after the failed stroke, the gap doubling up to 4
    minutes (15, 45, 105, 225, 465, 705 s, ...), and one retry at exactly 15 minutes."""
    out = []
    t = 0
    gap = 15 * S
    while len(out) < n:
        nxt = t + gap
        if t < 15 * MIN < nxt:
            nxt = 15 * MIN
        else:
            gap = gap * 2 if gap * 2 < 4 * MIN else 4 * MIN
        out.append(nxt)
        t = nxt
    return out


def _ideal_ng(ms):
    return BASAL_NG_PER_DAY * ms // DAY


def test_retry_schedule_from_its_definition():
    assert retry_offsets_ms(10) == [15 * S, 45 * S, 105 * S, 225 * S, 465 * S, 705 * S, 900 * S, 1140 * S,
                                    1380 * S, 1620 * S]


def _stall(minutes_stalled, critical_repeat_minutes=10):
    rig = standard_rig(critical_repeat_minutes=critical_repeat_minutes)
    t_stall = HOUR  # stroke 50 is due at exactly 3600 s, and fails
    assert t_stall % STROKE_MS == 0
    t_free = t_stall + minutes_stalled * MIN
    states = []
    rig.at(t_stall, lambda: setattr(rig.motor, "stalled", True))
    rig.at(t_free, lambda: setattr(rig.motor, "stalled", False))
    rig.at(t_stall + 10 * S, lambda: states.append(rig.loop.state()))
    rig.run_until(3 * HOUR)
    states.append(rig.loop.state())
    # The first retry at or after the rotor is free completes the owed stroke.
    offsets = retry_offsets_ms(40)
    n_failed = 0
    while t_stall + offsets[n_failed] < t_free:
        n_failed += 1
    t_back = t_stall + offsets[n_failed]
    return rig, t_stall, t_back, [t_stall] + [t_stall + o for o in offsets[:n_failed]], states


def _check_recovered(rig, t_stall, t_back, failures, states):
    # Strokes: the grid up to the failed one; the owed stroke at the recovery, then the grid again
    # from it: nothing made up for the time stalled.
    assert rig.motor.times == _grid(0, t_stall - 1) + [t_back] + _grid(t_back, 3 * HOUR)
    # The stroke failed at its time and at every retry before the rotor was free (each attempt
    # once or more in its ms), and at no other time.
    # One attempt each time: the watch holds a stalled stroke before it can be commanded again.
    assert rig.motor.failed_ms == failures
    assert states == [_state("stalled"), _state("delivering")]
    assert rig.events.of(EV_STALL) == [(t_stall, 0, 0, 0)]
    recovered = rig.events.of(EV_STALL_RECOVERED)
    assert len(recovered) == 1
    t, seconds, mg, ng = recovered[0]
    assert t == t_back and seconds == (t_back - t_stall) // S
    # The mcg missed: what the prescription asked for while stalled, written off in whole ng per
    # accounting step (never more than the ideal, never made up).
    missed = mg * 1_000_000 + ng
    ideal = _ideal_ng(t_back - t_stall)
    assert ideal - len(failures) - 2 <= missed <= ideal, (missed, ideal)


def test_stall_that_clears_within_15_minutes_recovers_without_an_alarm():
    # An MRI: the rotor stopped for 12 minutes; the retries at 15 .. 705 s fail, the one at 15 min works.
    rig, t_stall, t_back, failures, states = _stall(12)
    assert t_back == t_stall + 15 * MIN
    assert failures == [t_stall + o * S for o in (0, 15, 45, 105, 225, 465, 705)]
    _check_recovered(rig, t_stall, t_back, failures, states)
    assert rig.events.of(EV_ALARM) == []
    assert rig.ann.tones == []
    assert rig.loop.watch.stall_alarms == 0


def test_stall_that_clears_between_retries_recovers_at_the_next_retry():
    rig, t_stall, t_back, failures, states = _stall(2)
    assert t_back == t_stall + 225 * S
    assert failures == [t_stall + o * S for o in (0, 15, 45, 105)]
    _check_recovered(rig, t_stall, t_back, failures, states)
    assert rig.events.of(EV_ALARM) == [] and rig.ann.tones == []


def test_stall_longer_than_15_minutes_raises_motor_stall_at_exactly_15_minutes():
    rig, t_stall, t_back, failures, states = _stall(40, critical_repeat_minutes=5)
    assert t_back == t_stall + 2580 * S and len(failures) == 14
    _check_recovered(rig, t_stall, t_back, failures, states)
    stall = _alarm("motor_stall")
    t_alarm = t_stall + 15 * MIN
    assert rig.events.of(EV_ALARM) == [(t_alarm, stall, 1, 0), (t_back, stall, 0, 0)]
    # The critical tone at the raising and every 5 minutes while the alarm holds; none after it clears.
    crit = CLASS_NAMES.index("critical")
    assert rig.ann.tones == [(t, crit, stall) for t in range(t_alarm, t_back, 5 * MIN)]
    assert len(rig.ann.tones) == 6


def test_occlusion_stops_delivery_alarms_and_releases():
    rig = standard_rig()
    t_block = HOUR + 1  # just after stroke 50
    # Each stroke against the block raises the load by 25 %: 125, 150, 175, 200 %. The 4th reaches
    # the occlusion load (200 %); all four went into a line above the pressure load (110 %).
    t_occl = HOUR + 4 * STROKE_MS
    t_release = t_occl + 25 * MIN + 30 * S
    t_seen = t_occl + 26 * MIN  # the load at rest is polled every minute from the detection
    states = []
    headroom = []

    def release():
        rig.motor.blocked = False
        rig.motor.line_load = 100

    rig.at(t_block, lambda: setattr(rig.motor, "blocked", True))
    rig.send(t_occl + 2 * MIN, (CMD_SILENCE,))
    rig.at(t_occl + 3 * MIN, lambda: states.append(rig.loop.state()))
    rig.at(t_release, release)
    rig.at(t_seen - 1, lambda: headroom.append(rig.loop.ctl.headroom_ng()))
    rig.at(t_seen + 1, lambda: headroom.append(rig.loop.ctl.headroom_ng()))
    rig.run_until(3 * HOUR)
    states.append(rig.loop.state())
    assert rig.events.of(EV_OCCLUSION) == [(t_occl, 200, 0, 0)]
    pressed_nl = 4 * STROKE_NL
    assert rig.events.of(EV_OCCLUSION_RELEASED) == [(t_seen, pressed_nl, 0, 0)]
    occl = _alarm("occlusion")
    assert rig.events.of(EV_ALARM) == [(t_occl, occl, 1, 0), (t_seen, occl, 0, 0)]
    # Delivery stopped at the overloaded stroke; after the release the grid restarts: nothing made up.
    assert rig.motor.times == _grid(0, t_occl) + _grid(t_seen, 3 * HOUR)
    assert states == [_state("occluded"), _state("delivering")]
    # Nothing silences it: the critical tone every 10 minutes from the detection to the release.
    assert rig.prog.replies[0][1] == _reason("no_silenceable_alarm")
    assert rig.events.of(EV_COMMAND_REJECTED) == [(t_occl + 2 * MIN, CMD_SILENCE, _reason("no_silenceable_alarm"), 0)]
    crit = CLASS_NAMES.index("critical")
    assert rig.ann.tones == [(t, crit, occl) for t in (t_occl, t_occl + 10 * MIN, t_occl + 20 * MIN)]
    # What was pressed into the line reaches the patient at the release: counted against the hard
    # limit from then, at the drug's concentration (1 uL at 2000 mcg/mL = 2 mcg).
    assert headroom[0] - headroom[1] == pressed_nl * CONCENTRATION // 1000


def test_runaway_cuts_motor_power_at_the_first_uncommanded_stroke_and_holds_for_ever():
    rig = standard_rig()
    t_run = HOUR + 10 * S
    seen = []

    def runaway():
        wakes = rig.loop.wakes
        fired = rig.motor.uncommanded()
        # Cut in the fault handler itself, before the loop's next iteration.
        seen.append((fired, rig.motor.powered, list(rig.motor.enables), rig.loop.wakes == wakes))

    def more():
        seen.append(rig.motor.uncommanded())

    rig.at(t_run, runaway)
    for k in range(1, 50):
        rig.at(t_run + 200 * k, more)
    rig.send(t_run + HOUR, (CMD_RESUME,))
    rig.send(t_run + HOUR, (CMD_BOLUS, 5000, 5))
    rig.send(t_run + HOUR, (CMD_REFILL, 10_000, CONCENTRATION))
    rig.run_until(2 * DAY)
    assert seen[0] == (True, False, [(t_run, False)], True)
    assert seen[1:] == [False] * 49  # no power: the rotor cannot turn again
    assert rig.motor.uncommanded_total == 1
    assert [on for (_, on) in rig.motor.enables] == [False] * len(rig.motor.enables)  # never powered again
    # Every commanded stroke before it on the grid, the uncommanded one, and nothing after.
    assert rig.motor.times == _grid(0, t_run) + [t_run]
    commanded = len(_grid(0, t_run))
    assert commanded == 50
    # The uncommanded stroke is counted: it left the reservoir.
    ctl = rig.loop.ctl
    assert ctl.delivered.total() == (commanded + 1) * STROKE_NL
    assert ctl.reservoir.volume_nl == 20_000_000 - (commanded + 1) * STROKE_NL + 10_000
    runaway_id = _alarm("motor_runaway")
    assert rig.events.of(EV_ALARM) == [(t_run, runaway_id, 1, 0)]
    runaway_events = rig.events.of(EV_RUNAWAY)
    assert [e[0] for e in runaway_events] == [t_run]
    assert rig.loop.state() == _state("motor_fault")
    # Nothing restarts it; a refill is taken but delivers nothing.
    assert [r[1] for r in rig.prog.replies] == [_reason("not_suspended"), _reason("delivery_stopped"), OK]
    # Critical tone from the cut, every 10 minutes, for as long as it lasts.
    crit = CLASS_NAMES.index("critical")
    assert rig.ann.tones == [(t, crit, runaway_id) for t in range(t_run, 2 * DAY, 10 * MIN)]
    assert all(e[1] == runaway_id for e in rig.events.of(EV_TONE))



def test_a_retry_due_while_another_hold_stands_waits_for_its_end_with_no_wakes_meanwhile():
    # Stroke 50 stalls at 1 h; the clinician suspends 5 s later, before the first retry (15 s).
    # The rotor is free from 1 h 1 min, but a retry is one commanded stroke and none can be
    # commanded while suspended: the retries wait, untimed, and the loop wakes only for the
    # hourly suspended tone. At the resume the owed stroke is retried at once and completes in
    # that ms: the stall ends there, with nothing else made up.
    rig = standard_rig()
    t_stall = HOUR
    t_suspend = t_stall + 5 * S
    t_resume = t_stall + 2 * HOUR + 7 * S
    wakes = []
    rig.at(t_stall, lambda: setattr(rig.motor, "stalled", True))
    rig.at(t_stall + MIN, lambda: setattr(rig.motor, "stalled", False))
    rig.send(t_suspend, (CMD_SUSPEND,))
    rig.at(t_suspend + 1, lambda: wakes.append(rig.loop.wakes))
    rig.at(t_resume - 1, lambda: wakes.append(rig.loop.wakes))
    rig.send(t_resume, (CMD_RESUME,))
    rig.run_until(4 * HOUR)
    # Between the suspend and the resume the loop wakes only for the suspended alarm's hourly tone,
    # 1 h and 2 h after the suspend (the stall alarm waits for a retry at 15 minutes that never came),
    # and for the hourly self-tests on the pump clock's hours (2 h and 3 h: firmware/selftest.py).
    assert wakes[1] - wakes[0] == 4, wakes
    assert rig.motor.failed_ms == [t_stall]
    assert rig.motor.times == _grid(0, t_stall - 1) + [t_resume] + _grid(t_resume, 4 * HOUR)
    recovered = rig.events.of(EV_STALL_RECOVERED)
    assert [(e[0], e[1]) for e in recovered] == [(t_resume, (t_resume - t_stall) // S)]
    assert rig.events.of(EV_ALARM) == [(t_suspend, _alarm("suspended"), 1, 0), (t_resume, _alarm("suspended"), 0, 0)]


def test_no_retry_timer_while_stalled_and_suspended():
    # A stall that lasts through a whole suspended day: no retry is attempted and nothing polls.
    rig = standard_rig()
    rig.at(HOUR, lambda: setattr(rig.motor, "stalled", True))
    rig.send(HOUR + S, (CMD_SUSPEND,))
    rig.run_until(DAY + HOUR)
    assert rig.motor.failed_ms == [HOUR]
    # Trains need few wakes before the stall; after it one per hourly tone (24), per 6-hourly
    # battery check (4), the stall and the command: 27 in all; and one per hourly self-test (24,
    # firmware/selftest.py). A retry poll of 1 s would be 82 800.
    assert rig.loop.wakes <= 64, rig.loop.wakes
    assert rig.loop.watch.ms_to_next(rig.clock.tick) == -1


def test_a_release_beyond_the_margin_holds_delivery_until_the_excess_is_withheld():
    # A line more compliant than PumpParams.max_stored_nl (2 uL) says: each stroke raises the load
    # by 5 %, so the 20th reaches the occlusion load (200 %) and the 3rd to 20th (115 .. 200 %)
    # went into the line above the pressure load (110 %): 18 strokes, 4.5 uL. The margin covers a
    # store of 2 uL plus the stroke that crosses the threshold (2.25 uL); the other 2.25 uL (4.5
    # mcg at 2000 mcg/mL) reach the patient beyond it, so delivery, basal included, is held from
    # the release until 4.5 mcg of the prescription has been withheld: 4500 ng at 600 mcg/day is
    # 648 s. Then the grid restarts from nothing.
    rig = standard_rig()
    rig.motor.load_step = 5
    t_block = HOUR + 1
    t_occl = HOUR + 20 * STROKE_MS
    t_seen = t_occl + 6 * MIN
    excess_ng = (18 * STROKE_NL - 2000 - STROKE_NL) * CONCENTRATION // 1000
    assert excess_ng == 4500
    t_end = t_seen + excess_ng * DAY // BASAL_NG_PER_DAY
    assert t_end == t_seen + 648 * S
    states = []

    def release():
        rig.motor.blocked = False
        rig.motor.line_load = 100

    rig.at(t_block, lambda: setattr(rig.motor, "blocked", True))
    rig.at(t_occl + 5 * MIN + 30 * S, release)
    rig.at(t_seen + S, lambda: states.append(rig.loop.state()))
    rig.at(t_end - 1, lambda: states.append(rig.loop.state()))
    rig.at(t_end + 1, lambda: states.append(rig.loop.state()))
    rig.run_until(3 * HOUR)
    assert rig.events.of(EV_OCCLUSION_RELEASED) == [(t_seen, 18 * STROKE_NL, 0, 0)]
    assert rig.events.of(EV_LIMIT_HELD) == [(t_seen, excess_ng, 0, 0)]
    assert rig.events.of(EV_LIMIT_HOLD_ENDED) == [(t_end, excess_ng, 0, 0)]
    assert states == [_state("limit_held"), _state("limit_held"), _state("delivering")]
    assert rig.motor.times == _grid(0, t_occl) + _grid(t_end, 3 * HOUR)
    assert rig.loop.ctl.withheld.total() == excess_ng


def test_a_release_within_the_margin_changes_no_delivery():
    # 25 % a stroke: detected at the 4th; 4 strokes (1 uL) are within the margin's 2.25 uL.
    rig = standard_rig()
    rig.at(HOUR + 1, lambda: setattr(rig.motor, "blocked", True))
    t_occl = HOUR + 4 * STROKE_MS

    def release():
        rig.motor.blocked = False
        rig.motor.line_load = 100

    rig.at(t_occl + 90 * S, release)
    rig.run_until(3 * HOUR)
    assert rig.events.of(EV_LIMIT_HELD) == [] and rig.loop.ctl.withheld.total() == 0
    assert rig.motor.times == _grid(0, t_occl) + _grid(t_occl + 2 * MIN, 3 * HOUR)


def test_a_stall_that_outlasts_a_ten_day_suspend_alarms_at_the_resume_and_recovers_later():
    # The retry waits through the suspend (10 days: beyond the ticks' 2**29 ms range, so the stall
    # is timed on the pump clock). At the resume the owed stroke is retried at once and fails: the
    # stall has lasted far more than 15 minutes, so motor_stall sounds then. That was the episode's
    # second attempt, so the next gap is 30 s (15, 30, 60 ...): that retry finds the rotor free.
    rig = standard_rig()
    t_stall = HOUR
    t_resume = t_stall + 10 * DAY
    rig.at(t_stall, lambda: setattr(rig.motor, "stalled", True))
    rig.send(t_stall + 5 * S, (CMD_SUSPEND,))
    rig.send(t_resume, (CMD_RESUME,))
    rig.at(t_resume + 10 * S, lambda: setattr(rig.motor, "stalled", False))
    rig.run_until(t_resume + HOUR)
    assert rig.motor.failed_ms == [t_stall, t_resume]
    stall = _alarm("motor_stall")
    assert [e for e in rig.events.of(EV_ALARM) if e[1] == stall] == [(t_resume, stall, 1, 0),
                                                                      (t_resume + 30 * S, stall, 0, 0)]
    assert rig.motor.times == _grid(0, t_stall - 1) + [t_resume + 30 * S] + _grid(t_resume + 30 * S, t_resume + HOUR)


def test_a_limit_hold_split_by_other_wakes_withholds_the_exact_mass():
    # As above (4.5 mcg withheld from the release), with a suspend and a resume inside the hold at
    # odd milliseconds: the accounting steps end at 100 001 and 200 003 ms, where 600 mcg/day
    # accrues fractions of an ng. The mass is counted exactly (ng and their fractions), so the hold
    # still ends 648 000 ms after the release: not one ng (144 ms) later.
    rig = standard_rig()
    rig.motor.load_step = 5
    t_occl = HOUR + 20 * STROKE_MS
    t_seen = t_occl + 6 * MIN
    t_end = t_seen + 648 * S

    def release():
        rig.motor.blocked = False
        rig.motor.line_load = 100

    rig.at(HOUR + 1, lambda: setattr(rig.motor, "blocked", True))
    rig.at(t_occl + 5 * MIN + 30 * S, release)
    rig.send(t_seen + 100_001, (CMD_SUSPEND,))
    rig.send(t_seen + 200_003, (CMD_RESUME,))
    rig.run_until(3 * HOUR)
    assert rig.events.of(EV_LIMIT_HOLD_ENDED) == [(t_end, 4500, 0, 0)]
    assert rig.motor.times == _grid(0, t_occl) + _grid(t_end, 3 * HOUR)


def test_a_block_released_while_priming_withholds_nothing_and_the_prime_finishes():
    # Prime strokes push the empty path's air, not drug, out of the tip: a block released during a
    # prime lets no drug through, so nothing is withheld (a limit hold there would never end: nothing
    # of the prescription accrues while priming). The prime resumes and finishes.
    rig = standard_rig()
    rig.motor.load_step = 5  # a soft line: 18 strokes pressed, beyond the margin's 2.25 uL
    t_prime = HOUR + S
    rig.send(t_prime, (CMD_PRIME, 0))
    rig.at(t_prime + 10 * S, lambda: setattr(rig.motor, "blocked", True))

    def release():
        rig.motor.blocked = False
        rig.motor.line_load = 100

    rig.at(t_prime + 3 * MIN, release)
    rig.run_until(4 * HOUR)
    assert len(rig.events.of(EV_OCCLUSION_RELEASED)) == 1
    assert rig.events.of(EV_LIMIT_HELD) == [] and rig.loop.ctl.withheld.total() == 0
    done = rig.events.of(EV_PRIME_DONE)
    assert len(done) == 1 and rig.loop.state() == _state("delivering")
    assert rig.motor.times[-1] > done[0][0]  # dosing went on after the prime


def _occlusion_delay(ng_per_day):
    """A block right after a stroke, on a line storing PumpParams' max_stored_nl (2 uL) below the
    occlusion load: 12 % a stroke, so 8 strokes (196 %) stay below 200 % and the 9th crosses.
    Returns (ms from the block to the occlusion alarm, the stroke period in ms)."""
    from fakes_hal import Rig

    from firmware.prescription import Prescription, Profile, PumpParams

    pump = PumpParams()
    rx = Prescription(CONCENTRATION, [Profile([0], [ng_per_day], "basal.steps")] * 7, (), None,
                      ng_per_day + 1_000_000)
    rig = Rig(pump, rx)
    rig.motor.load_step = 12
    assert 100 + 12 * (pump.max_stored_nl // STROKE_NL) < 200 <= 100 + 12 * (pump.max_stored_nl // STROKE_NL + 1)
    stroke_ng = STROKE_NL * CONCENTRATION // 1000
    period_ms = stroke_ng * DAY // ng_per_day
    assert stroke_ng * DAY % ng_per_day == 0
    t_block = 8 * period_ms + 1  # just after the 8th stroke
    rig.at(t_block, lambda: setattr(rig.motor, "blocked", True))
    rig.run_until(t_block + 3 * HOUR)
    occl = [e[0] for e in rig.events.of(EV_ALARM) if e[1] == _alarm("occlusion") and e[2] == 1]
    assert len(occl) == 1
    return occl[0] - t_block, period_ms


def _least_rate_rig(load_step):
    """The least basal (0.048 mL/day: a stroke every 7.5 minutes) on a line whose load rises by
    load_step % a stroke against a block. Returns (rig, stroke period in ms)."""
    from fakes_hal import Rig

    from firmware.prescription import Prescription, Profile, PumpParams

    ng_per_day = 48_000 * CONCENTRATION // 1000
    rx = Prescription(CONCENTRATION, [Profile([0], [ng_per_day], "basal.steps")] * 7, (), None,
                      ng_per_day + 1_000_000)
    rig = Rig(PumpParams(), rx)
    rig.motor.load_step = load_step
    return rig, 7 * MIN + 30 * S


def _first_occlusion(rig):
    occl = [e[0] for e in rig.events.of(EV_ALARM) if e[1] == _alarm("occlusion") and e[2] == 1]
    assert len(occl) == 1, occl
    return occl[0]


def test_a_soft_line_at_the_least_rate_alarms_within_two_hours_of_its_pressure_rising():
    # 1 % a stroke: by the load alone (200 %) the 100th stroke after the block would alarm, 12.5 h
    # on. Rule (docs/alarms.md "Occlusion"): a line found pressurised (strokes completed above the
    # pressure load, 110 %, and not back at rest since) for an hour is occluded. The loop sees the
    # strokes at its next wake (at least hourly: the self-tests), so from the first stroke above
    # 110 % (the 11th after the block) to the alarm is 1 to 2 hours. Delivery is held from then.
    from firmware.mechanism import PRESSURE_ALARM_MS

    assert PRESSURE_ALARM_MS == HOUR
    rig, period = _least_rate_rig(1)
    t_block = 8 * period + 1  # just after the 8th stroke
    t_pressed = 19 * period
    rig.at(t_block, lambda: setattr(rig.motor, "blocked", True))
    rig.run_until(t_pressed + 5 * HOUR)
    t_alarm = _first_occlusion(rig)
    assert t_pressed + HOUR <= t_alarm <= t_pressed + 2 * HOUR, (t_alarm - t_pressed) / HOUR
    assert rig.motor.times == [k * period for k in range(1, t_alarm // period + 1)]
    assert rig.events.of(EV_OCCLUSION_RELEASED) == [] and rig.loop.state() == _state("occluded")


def test_an_occlusion_raised_by_time_is_released_at_rest_only():
    # A partial block: the load settles at 113 %, below the release load (120 %) that ends an
    # occlusion raised by the load, yet above the pressure load: the minute polls release it only
    # once the line is at rest (110 % or less).
    rig, period = _least_rate_rig(1)
    rig.at(8 * period + 1, lambda: setattr(rig.motor, "blocked", True))
    rig.at(21 * period + 1, lambda: setattr(rig.motor, "load_step", 0))
    t_free = 19 * period + 4 * HOUR + 1
    rig.at(t_free - 1, lambda: seen.append((rig.motor.line_load, rig.loop.state())))
    seen = []

    def release():
        rig.motor.blocked = False
        rig.motor.line_load = 100

    rig.at(t_free, release)
    rig.run_until(t_free + HOUR)
    assert seen == [(113, _state("occluded"))]
    t_alarm = _first_occlusion(rig)
    pressed_nl = (t_alarm // period - 18) * 250  # the strokes completed above 110 %, 250 nL each
    released = rig.events.of(EV_OCCLUSION_RELEASED)
    assert len(released) == 1 and released[0][1:] == (pressed_nl, 0, 0)
    assert t_free < released[0][0] <= t_free + MIN  # the next minute's poll
    assert rig.loop.state() == _state("delivering")


def test_a_line_back_at_rest_within_the_hour_raises_nothing():
    # Pressure that flows away (a kink that straightens): the stroke after it finds the line at
    # rest, and the hour starts again at the next rise.
    rig, period = _least_rate_rig(1)
    rig.at(8 * period + 1, lambda: setattr(rig.motor, "blocked", True))

    def straighten():
        rig.motor.blocked = False
        rig.motor.line_load = 100

    rig.at(19 * period + 50 * MIN, straighten)  # under an hour after the first stroke above 110 %
    rig.run_until(19 * period + 5 * HOUR)
    assert [e for e in rig.events.of(EV_ALARM) if e[1] == _alarm("occlusion")] == []
    assert rig.loop.ctl.held == 0 and rig.loop.watch.pressed_nl == 0 and not rig.loop.watch.pressure


def test_occlusion_alarm_delay_at_the_minimum_and_maximum_rates():
    # docs/alarms.md: at most (max_stored_nl + stroke_nl) / rate from the block to the alarm, the
    # store filling and the stroke that crosses the threshold: 2.25 uL.
    min_ng = 48_000 * CONCENTRATION // 1000  # 0.048 mL/day, the least basal step
    max_ng = 24_000 * CONCENTRATION  # 24 mL/day
    for ng_per_day, bound_ms in ((min_ng, 2250 * DAY // 48_000), (max_ng, 2250 * DAY // 24_000_000)):
        delay, period = _occlusion_delay(ng_per_day)
        assert delay == 9 * period - 1, (ng_per_day, delay, period)
        assert delay <= bound_ms, (ng_per_day, delay, bound_ms)
    assert 2250 * DAY // 48_000 == 67 * MIN + 30 * S and 2250 * DAY // 24_000_000 == 8100
