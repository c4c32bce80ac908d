# The alarm manager (firmware/alarms.py) against docs/alarms.md: latching and clearing, the first
# tone at the raising, critical repeats every critical_repeat_minutes (1..60), non-critical hourly,
# silence (non-critical only), and the highest class sounding while every active alarm is reported.
# Expected tone times are worked out here from those rules, never read back from the manager.

from fakes_hal import FakeAdc, FakeButton, FakeProgrammer, HalMotor, LoopClock, RecordingAnnunciator
from support import Events

from firmware.alarms import (
    ALARM_NAMES,
    CLASS_NAMES,
    EV_ALARM,
    EV_SILENCED,
    EV_TONE,
    REASON_NAMES,
    Alarms,
)
from firmware.prescription import Prescription, Profile, PumpParams

S = 1000
MIN = 60 * S
HOUR = 60 * MIN

# docs/alarms.md, in the table's order (most urgent first within a class)
CRITICAL_NAMES = ("empty_reservoir", "end_of_service", "motor_stall", "occlusion", "motor_runaway", "critical_fault")
NON_CRITICAL_NAMES = ("low_reservoir", "elective_replacement", "suspended", "under_delivery", "clock_lost")


def _id(name):
    return ALARM_NAMES.index(name)


def _bit(name):
    return 1 << _id(name)


def _cls(name):
    return CLASS_NAMES.index("critical" if name in CRITICAL_NAMES else "non_critical")


def _manager(minutes=10):
    clock = LoopClock()
    ann = RecordingAnnunciator(clock)
    ev = Events()
    return Alarms(ev, clock, ann, minutes * MIN), clock, ann, ev


def _drive(al, clock, end_ms, script=()):
    """Sound what is due the way the loop does (wake at ms_to_next), running script [(ms, fn)] too.

    Also probes 1 ms before every wake that nothing sounds early."""
    script = list(script)
    al.sound()
    stuck = 0
    while clock.now_ms < end_ms:
        t = al.ms_to_next(clock.tick)
        stuck = stuck + 1 if t == 0 else 0
        assert stuck < 100, "ms_to_next stays 0 at %d ms: a tone due that sound() never plays" % clock.now_ms
        step = end_ms - clock.now_ms
        if 0 <= t < step:
            step = t
        if script and script[0][0] - clock.now_ms < step:
            step = script[0][0] - clock.now_ms
        if step > 1:
            clock.advance(step - 1)
            assert al.sound() == 0, "a tone 1 ms early at %d" % clock.now_ms
            clock.advance(1)
        else:
            clock.advance(step)
        while script and script[0][0] <= clock.now_ms:
            script.pop(0)[1]()
        al.sound()


def _times(ann, cls=None):
    return [t for (t, c, _) in ann.tones if cls is None or c == cls]


def _raises(key, fn):
    try:
        fn()
    except ValueError as e:
        msg = str(e)
        assert msg.startswith(key), msg
        return msg
    raise AssertionError("no error for " + key)


def test_the_alarm_table_is_the_documented_one():
    assert sorted(ALARM_NAMES) == sorted(CRITICAL_NAMES + NON_CRITICAL_NAMES)
    al, clock, ann, _ = _manager()
    for name in CRITICAL_NAMES + NON_CRITICAL_NAMES:
        al.raise_(_bit(name), 0, 0)
        seconds = al.sound()
        assert seconds == (3 if name in CRITICAL_NAMES else 1), name  # two-tone 3 s / one tone 1 s
        assert ann.tones[-1] == (clock.now_ms, _cls(name), _id(name)), name
        assert al.critical() == (name in CRITICAL_NAMES), name
        al.clear(_bit(name), 0, 0)
    assert al.active == 0


def test_critical_repeat_minutes_is_validated_naming_the_key():
    from firmware.loop import PumpLoop

    pump = PumpParams()
    rx = Prescription(2000, [Profile([0], [600_000], "basal.steps")] * 7, (), None, 1_000_000)

    def loop(minutes):
        clock = LoopClock()
        motor = HalMotor(clock)
        return PumpLoop(clock, motor, RecordingAnnunciator(clock), FakeButton(), FakeProgrammer(), FakeAdc(), pump, rx,
                        Events(), critical_repeat_minutes=minutes)

    key = "alarms.critical_repeat_minutes"
    for bad in (0, 61, -1, 10.0, "10", True, None):
        _raises(key, lambda: loop(bad))
    for ok in (1, 60):
        assert loop(ok).alarms.critical_repeat_ms == ok * MIN
    assert loop(10).alarms.critical_repeat_ms == 10 * MIN
    # The manager itself takes ms, whole minutes from 1 to 60 only.
    for bad_ms in (0, 59_999, 60_001, 61 * MIN, 90 * S):
        _raises(key, lambda: Alarms(Events(), None, None, bad_ms))


def test_an_alarm_latches_while_its_cause_holds_and_clears_once():
    al, clock, ann, ev = _manager()
    occ = _bit("occlusion")
    al.raise_(occ, 0, 0)
    al.raise_(occ, 0, 0)  # the cause still holds: nothing new
    assert al.active == occ
    assert ev.log == [(EV_ALARM, _id("occlusion"), 1, 0)]
    al.sound()
    clock.advance(5 * MIN)
    al.raise_(occ, 0, 0)
    al.sound()
    assert len(ann.tones) == 1  # still latched: no new first tone
    al.clear(occ, 0, 0)
    al.clear(occ, 0, 0)
    assert al.active == 0
    assert ev.log.count((EV_ALARM, _id("occlusion"), 0, 0)) == 1
    assert al.ms_to_next(clock.tick) == -1
    clock.advance(HOUR)
    assert al.sound() == 0 and len(ann.tones) == 1
    # Latched again later: a new raise, a new first tone at once.
    al.raise_(occ, 0, 0)
    assert al.ms_to_next(clock.tick) == 0
    al.sound()
    assert _times(ann) == [0, 5 * MIN + HOUR]


def test_first_tone_sounds_at_the_raising():
    for name in ("motor_stall", "suspended"):
        al, clock, ann, ev = _manager()
        clock.advance(1234)
        al.raise_(_bit(name), 0, 0)
        assert al.sound() == (3 if name in CRITICAL_NAMES else 1)
        assert ann.tones == [(1234, _cls(name), _id(name))]
        tone = [e for e in ev.log if e[0] == EV_TONE]
        assert tone == [(EV_TONE, _id(name), _cls(name), _bit(name))]


def test_critical_tone_repeats_every_critical_repeat_minutes():
    for minutes in (1, 7, 10, 60):
        al, clock, ann, _ = _manager(minutes)
        clock.advance(500)
        al.raise_(_bit("empty_reservoir"), 0, 0)
        _drive(al, clock, 500 + 3 * HOUR)
        expected = [500 + k * minutes * MIN for k in range(3 * HOUR // (minutes * MIN) + 1)]
        assert _times(ann) == expected, minutes
        assert _times(ann, _cls("empty_reservoir")) == expected


def test_non_critical_tone_repeats_hourly():
    for name in NON_CRITICAL_NAMES:
        al, clock, ann, _ = _manager(1)  # the critical interval has no bearing on it
        al.raise_(_bit(name), 0, 0)
        _drive(al, clock, 5 * HOUR + 30 * MIN)
        assert _times(ann) == [k * HOUR for k in range(6)], name
        assert set(a for (_, _, a) in ann.tones) == {_id(name)}


def test_cleared_alarm_stops_sounding():
    al, clock, ann, _ = _manager(5)
    al.raise_(_bit("motor_stall"), 0, 0)
    _drive(al, clock, 12 * MIN, [(12 * MIN, lambda: al.clear(_bit("motor_stall"), 0, 0))])
    _drive(al, clock, 2 * HOUR)
    assert _times(ann) == [0, 5 * MIN, 10 * MIN]


def test_silence_lasts_until_the_next_repeat_a_full_hour_later():
    al, clock, ann, ev = _manager()
    low = _bit("low_reservoir")
    al.raise_(low, 0, 0)
    results = []
    _drive(al, clock, 4 * HOUR, [(10 * MIN, lambda: results.append(al.silence()))])
    assert results == [0] and REASON_NAMES[results[0]] == ""  # OK
    assert (EV_SILENCED, low, 0, 0) in ev.log
    # Tone at the raising; silenced at 10 min so the 60-min repeat is not played; the next comes a
    # full hour after the silence, then hourly.
    assert _times(ann) == [0, 70 * MIN, 130 * MIN, 190 * MIN]


def test_a_new_alarm_sounds_at_once_while_others_are_silenced():
    al, clock, ann, _ = _manager()
    al.raise_(_bit("low_reservoir"), 0, 0)
    script = [(10 * MIN, al.silence), (20 * MIN, lambda: al.raise_(_bit("elective_replacement"), 0, 0))]
    _drive(al, clock, 30 * MIN, script)
    assert ann.tones[0] == (0, _cls("low_reservoir"), _id("low_reservoir"))
    assert ann.tones[1][0] == 20 * MIN and ann.tones[1][1] == _cls("elective_replacement")
    assert ann.tones[1][2] == _id("elective_replacement")
    assert len(ann.tones) == 2


def test_nothing_silences_a_critical_alarm():
    al, clock, ann, ev = _manager(10)
    al.raise_(_bit("occlusion"), 0, 0)
    results = []
    script = [(t, lambda: results.append(al.silence())) for t in (1 * MIN, 15 * MIN, 31 * MIN)]
    _drive(al, clock, HOUR, script)
    assert [REASON_NAMES[r] for r in results] == ["no_silenceable_alarm"] * 3
    assert not [e for e in ev.log if e[0] == EV_SILENCED]
    assert _times(ann) == [k * 10 * MIN for k in range(7)]


def test_silence_with_a_critical_active_silences_only_the_non_critical():
    al, clock, ann, _ = _manager(10)
    al.raise_(_bit("suspended"), 0, 0)
    results = []
    script = [(5 * MIN, lambda: al.raise_(_bit("motor_stall"), 0, 0)), (6 * MIN, lambda: results.append(al.silence()))]
    _drive(al, clock, 50 * MIN, script)
    assert results == [0]
    critical = _cls("motor_stall")
    assert _times(ann, critical) == [5 * MIN + k * 10 * MIN for k in range(5)]  # untouched by the silence


def test_highest_class_sounds_at_its_interval_and_every_active_alarm_is_reported():
    al, clock, ann, ev = _manager(15)
    crit, non = _cls("occlusion"), _cls("low_reservoir")
    bits = _bit("low_reservoir") | _bit("suspended") | _bit("occlusion") | _bit("motor_stall")
    for name in ("low_reservoir", "suspended", "occlusion", "motor_stall"):
        al.raise_(_bit(name), 0, 0)
    _drive(al, clock, 3 * HOUR)
    # The first tones at the raising: one per class, each naming the most urgent of its class.
    assert ann.tones[0] == (0, crit, _id("motor_stall"))
    assert ann.tones[1] == (0, non, _id("low_reservoir"))
    # Then only the critical class, every 15 minutes; no hourly non-critical tone meanwhile.
    assert _times(ann, crit) == [k * 15 * MIN for k in range(13)]
    assert _times(ann, non) == [0]
    # Every tone reports every active alarm.
    tones = [e for e in ev.log if e[0] == EV_TONE]
    assert len(tones) == len(ann.tones)
    assert all(e[3] == bits for e in tones)


def test_non_critical_hourly_tone_returns_when_the_critical_alarm_clears():
    al, clock, ann, _ = _manager(10)
    al.raise_(_bit("suspended"), 0, 0)
    script = [(20 * MIN, lambda: al.raise_(_bit("occlusion"), 0, 0)),
              (55 * MIN, lambda: al.clear(_bit("occlusion"), 0, 0))]
    _drive(al, clock, 6 * HOUR, script)
    crit, non = _cls("occlusion"), _cls("suspended")
    assert _times(ann, crit) == [20 * MIN, 30 * MIN, 40 * MIN, 50 * MIN]
    after = [t for t in _times(ann, non) if t > 55 * MIN]
    # The non-critical class sounds again within the hour and hourly from then on.
    assert after and after[0] - 55 * MIN <= HOUR
    assert [b - a for a, b in zip(after, after[1:])] == [HOUR] * (len(after) - 1)
    assert len(after) >= 5
