# The pump's state as small ints and back (firmware/state.py). The contract: with no time lost, a
# loop restored from pack() into a freshly built loop on the same hardware is indistinguishable
# from the original. Two rigs run the same script in lockstep; at each snapshot the twin's loop is
# replaced by a fresh one (built from another config) restored from the original's pack, and from
# then on both must make the same strokes at the same ms, the same events and the same tones.

from fakes_hal import Rig, standard_rig
from support import heap_meter, heap_meter_done, raises, skip

from firmware import state
from firmware.alarms import AL_UNDER_DELIVERY, EV_ALARM, EV_BOLUS
from firmware.battery import BatteryParams
from firmware.loop import PumpLoop
from firmware.prescription import Bolus, Prescription, Profile, PumpParams
from hal.channel import CMD_BOLUS, CMD_PROGRAM, CMD_REFILL, CMD_RESUME, CMD_SET_CLOCK, CMD_SILENCE, CMD_SUSPEND

S = 1000
MIN = 60 * S
HOUR = 60 * MIN
DAY = 24 * HOUR
_SMALL = 1 << 30
CHECK_PACK = [True]  # a mutant check turns it off, to see the behaviour alone tell a field was lost


def _rx(rates, periodic_at=8 * HOUR, periodic_ng=50_000):
    steps = Profile([0, 6 * HOUR, 12 * HOUR, 18 * HOUR], rates, "basal.steps")
    weekend = Profile([0, 9 * HOUR], [rates[0], rates[1]], "basal.weekend")
    return Prescription(2000, [steps] * 5 + [weekend] * 2, ((periodic_at, Bolus(periodic_ng, 30, "p")),),
                        (Bolus(20_000, 10, "ptm"), 60, 4), 2_000_000)


def _mixed_rig():
    # A 126 uL path: the drug of the refill at 20 h has pushed the old one out of the tip by 29 h.
    return Rig(PumpParams(internal_path_nl=100_000, catheter_cm=10), _rx([700_000, 400_000, 900_000, 600_000]),
               volume_nl=3_000_000, weekday=4, time_of_day_ms=20 * HOUR)


def _set(obj, name, value):
    return lambda: setattr(obj, name, value)


def _release(motor):
    def go():
        motor.blocked = False
        motor.line_load = 100

    return go


def _mixed_script(rig):
    """Basal steps and midnights (a Friday 20:00 start, weekend profiles), PTM grants and a lockout
    denial, clinician and periodic boluses, two stalls (one past the 15-minute alarm), suspend,
    silence and resume, two program changes (history, rx_periodic), refills (same and new
    concentration: the path's FIFO), low reservoir, ERI, an occlusion and its release."""
    m = rig.motor
    rig.at(10 * MIN, rig.button.press)
    rig.at(30 * MIN, rig.button.press)  # lockout
    rig.send(HOUR, (CMD_BOLUS, 15_000, 5))
    rig.at(2 * HOUR, _set(m, "stalled", True))
    rig.at(2 * HOUR + 5 * MIN, _set(m, "stalled", False))
    rig.send(3 * HOUR, (CMD_SUSPEND,))
    rig.send(3 * HOUR + 10 * MIN, (CMD_SILENCE,))
    rig.send(3 * HOUR + 40 * MIN, (CMD_RESUME,))
    rig.at(5 * HOUR, _set(m, "stalled", True))
    rig.at(5 * HOUR + 31 * MIN, _set(m, "stalled", False))
    rig.send(6 * HOUR, (CMD_PROGRAM, _rx([500_000, 800_000, 600_000, 700_000], 9 * HOUR, 40_000)))
    rig.send(8 * HOUR, (CMD_PROGRAM, _rx([600_000, 700_000, 500_000, 800_000], 14 * HOUR, 30_000)))
    rig.send(9 * HOUR, (CMD_REFILL, 500_000, 2000))
    rig.at(14 * HOUR, _set(rig.adc, "mv", 2700))  # ERI
    rig.at(15 * HOUR, rig.button.press)
    rig.send(20 * HOUR, (CMD_REFILL, 2_050_000, 1500))  # new drug: the old one stays in the path
    rig.at(22 * HOUR, _set(m, "blocked", True))
    rig.at(25 * HOUR, _release(m))  # 3 h held: under_delivery
    rig.send(26 * HOUR, (CMD_SILENCE,))
    rig.at(27 * HOUR, rig.button.press)
    rig.at(27 * HOUR + 20 * MIN, rig.button.press)  # lockout
    rig.send(30 * HOUR, (CMD_BOLUS, 1_900_000, 600))  # truncated at the limit: margin, ledger, basal cap
    rig.at(31 * HOUR + 30 * MIN, rig.button.press)  # denied at the limit: the old drug's margin, gone at 30.2 h


def _fresh_loop(rig):
    """A loop on rig's hardware from another valid config: every field must come from the state."""
    rx = Prescription(1000, [Profile([0], [300_000], "basal")] * 7, (), None, 900_000)
    return PumpLoop(rig.clock, rig.motor, rig.ann, rig.button, rig.prog, rig.adc, PumpParams(40_000_000, 500), rx,
                    rig.events, 10_000_000, 2, 5 * HOUR, BatteryParams(500), 5)


def _swap(twin, values, n):
    """Replaces twin's loop by a fresh one restored from values; drops what building it reported,
    as a boot's log would start after it."""
    events = len(twin.events.log)
    tones = len(twin.ann.tones)
    loop = _fresh_loop(twin)
    del twin.events.log[events:]
    del twin.ann.tones[tones:]
    state.restore(loop, values, n)
    twin.loop = loop


def _lockstep(make, script, snaps, end_ms):
    """Runs two rigs of the same script; at each snapshot instant the twin is restored from the
    original's pack. Returns (original, twin, packs)."""
    a = make()
    b = make()
    script(a)
    script(b)
    values = [0] * state.MAX_INTS
    again = [0] * state.MAX_INTS
    packs = []
    for t in snaps:
        a.run_until(t)
        b.run_until(t)
        a.loop.service()
        b.loop.service()
        n = state.pack(a.loop, values)
        packs.append(n)
        for i in range(n):
            assert isinstance(values[i], int) and -_SMALL < values[i] < _SMALL, (i, values[i])
        a.loop.service()  # the restored loop serves once at restore: so does the original
        _swap(b, values, n)
        if not CHECK_PACK[0]:
            continue
        assert state.pack(b.loop, again) == state.pack(a.loop, values)
        assert again[:n] == values[:n], "at %d ms: %s" % (t, [(i, values[i], again[i]) for i in range(n)
                                                              if values[i] != again[i]][:5])
    a.run_until(end_ms)
    b.run_until(end_ms)
    return a, b, packs


def _same_run(a, b):
    assert b.motor.times == a.motor.times
    for i in range(len(a.events.log)):
        assert b.events.log[i] == a.events.log[i], (i, a.events.log[i], b.events.log[i])
    assert len(b.events.log) == len(a.events.log)
    assert b.ann.tones == a.ann.tones
    assert b.loop.alarms.active == a.loop.alarms.active
    assert b.loop.state() == a.loop.state()
    assert b.motor.failed_ms == a.motor.failed_ms
    for loop in (a.loop, b.loop):
        loop.service()
    assert _status(b.loop) == _status(a.loop)


def _status(loop):
    ctl = loop.ctl
    return (loop.low_reservoir_min, loop.empty_min, loop.eri_days, loop.eos_days, loop.gauge.used_mc(),
            loop.gauge.level, loop.gauge.percent_left(), loop.alarms.tones, loop.alarms.silenced, ctl.missed.total(),
            ctl.delivered.total(), ctl.withheld.total(), ctl.reservoir.volume_nl)


_MIXED_SNAPS = [k * 47 * MIN + 13 * S for k in range(1, 38)] + [
    2 * HOUR + 1, 5 * HOUR + 10 * MIN, 5 * HOUR + 20 * MIN, 22 * HOUR + 30 * MIN, 27 * HOUR + 10 * MIN,
    29 * HOUR + 30 * MIN, 29 * HOUR + 50 * MIN, 30 * HOUR + 40 * MIN, 31 * HOUR + 10 * MIN]


def test_a_loop_restored_at_many_instants_of_a_mixed_history_runs_exactly_as_the_original():
    snaps = sorted(_MIXED_SNAPS)
    a, b, packs = _lockstep(_mixed_rig, _mixed_script, snaps, 32 * HOUR)
    _same_run(a, b)
    # The script reached what it meant to: every kind of state was snapshotted at least once.
    codes = set(e[1] for e in a.events.log)
    from firmware.alarms import (
        EV_BOLUS_END,
        EV_ERI,
        EV_LIMIT_TRUNCATED,
        EV_LOW_RESERVOIR,
        EV_OCCLUSION,
        EV_OCCLUSION_RELEASED,
        EV_PROGRAM,
        EV_REFILL,
        EV_SILENCED,
        EV_STALL,
        EV_STALL_RECOVERED,
        EV_SUSPENDED,
    )

    for code in (EV_BOLUS_END, EV_ERI, EV_LOW_RESERVOIR, EV_OCCLUSION, EV_OCCLUSION_RELEASED, EV_PROGRAM, EV_REFILL,
                 EV_SILENCED, EV_STALL, EV_STALL_RECOVERED, EV_SUSPENDED, EV_LIMIT_TRUNCATED):
        assert code in codes, code
    assert [e[2:] for e in a.events.log if e[1] == EV_ALARM and e[2] == AL_UNDER_DELIVERY] == [(AL_UNDER_DELIVERY, 1, 0),
                                                                                           (AL_UNDER_DELIVERY, 0, 0)]
    assert a.loop.ctl._gone_conc == 2000  # the old drug has left the tip
    assert a.motor.failed >= 2 and len(a.motor.times) > 1000
    print("state ints at the snapshots: %d..%d" % (min(packs), max(packs)))
    assert max(packs) <= state.MAX_INTS


def test_the_standard_prescription_packs_to_a_few_hundred_ints():
    rig = standard_rig()
    rig.run_until(HOUR)
    values = [0] * state.MAX_INTS
    n = state.pack(rig.loop, values)
    print("standard_rx: %d ints" % n)
    assert values[0] == state.VERSION and values[1] == n
    assert n == _expected_n(rig.loop)
    assert n < 250


def _expected_n(loop):
    # Reimplements the layout's sizes from its definition (firmware/state.py's header).
    ctl = loop.ctl
    rx = ctl.rx
    n = 179 + 2 + 4 + 1 + 3 * len(rx.periodic)
    seen = []
    for p in rx.profiles:
        same = [q for q in seen if q.starts_ms == p.starts_ms and q.rates_ng_per_day == p.rates_ng_per_day]
        n += 1 if same else 1 + 2 * len(p.starts_ms)
        seen.append(p)
    n += 1 if ctl.rx_periodic is rx else 1 + 3 * len(ctl.rx_periodic.periodic)
    n += 2 * ctl.path.n
    return n + 1 + 42  # the history's count (none here), the link's section (2 counters, lockout 1,
    # failures 1 + 5, keys 1 + 32)


def test_max_ints_is_the_sum_of_the_worst_cases():
    assert state.MAX_INTS == 179 + (2 + 4 + 1 + 3 * 8 + 7 * 27) + (1 + 3 * 8) + (1 + 4 * 2 + 2 * (4 + 6 * 13)) \
        + 2 * 6 + 24 + 3 * 64 + (2 + 1 + 1 + 5 + 1 + 32)
    assert state.MAX_INTS <= 900  # a snapshot leaves most of a 4 KB journal block to changes


def test_pack_allocates_nothing_with_the_heap_unlocked():
    rig = _mixed_rig()
    _mixed_script(rig)
    rig.run_until(9 * HOUR)  # two programs in the history, rx_periodic, a bolus ledger, PTM grants
    rig.loop.service()
    assert len(rig.loop.ctl._hist) == 2 and rig.loop.ctl.rx_periodic is not rig.loop.ctl.rx
    values = [0] * state.MAX_INTS
    state.pack(rig.loop, values)
    mem = heap_meter()
    if mem is None:
        skip("allocation is measured on MicroPython")
    try:
        before = mem()
        for _ in range(5):
            n = state.pack(rig.loop, values)
        used = mem() - before
    finally:
        heap_meter_done()
    print("pack: %d B over 5 packs of %d ints" % (used, n))
    assert used == 0, used


# -- refused states ----------------------------------------------------------------------------------


def _standard_state():
    rig = standard_rig()
    rig.at(10 * MIN, rig.button.press)  # a PTM grant and its ledger entry
    rig.run_until(HOUR)
    rig.loop.service()
    values = [0] * (state.MAX_INTS + 1)
    n = state.pack(rig.loop, values)
    return rig, values, n


# Offsets in the standard state (one 1-step profile and 6 references, no periodic bolus, no
# history, one path segment, one PTM grant, one ledger entry), from firmware/state.py's layout.
_AT = {"pump.stroke_nl": 3, "battery.eos_mv": 17, "alarms.critical_repeat_minutes": 18, "rx.concentration": 19,
       "rx.max_daily_ng": 20, "rx.ptm.lockout_minutes": 23, "rx.profiles[0][0].ng_per_day": 28,
       "rx.profiles[1]": 29, "rx_periodic": 35, "ctl.ms": 38, "ctl.held": 39, "ctl.rate": 40, "ctl.due_sub": 42,
       "ctl.reservoir.volume_nl": 66, "ctl.hist": 67, "ctl.window.asked[0]": 68, "ctl.path.vol": 117,
       "ctl.path.gone": 119, "ctl.boluses[0].kind": 120, "ctl.ptm[0].age_ms": 141, "ctl.ledger[0].ng": 145}


def _tail(n):
    # The fixed-size tail: alarms 6, gauge 22, watch 20, loop 5, the gauge's voltage confirmation 4,
    # the link 42 (patient and clinician counters, lock ms left, failures and their 5 ages, provisioned,
    # 32 key halves).
    link = n - 42
    n -= 4 + 42
    return {"link.patient_counter": link, "link.clinician_counter": link + 1, "link.lock_left_ms": link + 2,
            "link.failures": link + 3, "link.failures[0].ms": link + 4, "link.provisioned": link + 9,
            "link.keys[0]": link + 10, "alarms.fresh": n - 52, "alarms.next_non_critical_ms": n - 49, "gauge.level": n - 47,
            "gauge.uc": n - 43, "watch.stall": n - 24, "watch.pressure": n - 11, "watch.pressure_ms_ago": n - 10,
            "watch.by_pressure": n - 9, "watch.runaway": n - 8, "loop.last": n - 5,
            "loop.eos_days": n - 1, "gauge.readings_eri": n + 2, "gauge.readings_eos": n + 3}


def test_the_layout_offsets_the_refusal_tests_use():
    rig, values, n = _standard_state()
    at = _AT
    tail = _tail(n)
    ctl = rig.loop.ctl
    assert values[at["pump.stroke_nl"]] == 250 and values[at["battery.eos_mv"]] == 2600
    assert values[at["rx.concentration"]] == 2000 and values[at["rx.profiles[1]"]] == -1
    assert values[at["ctl.ms"]] == ctl.ms == HOUR and values[at["ctl.reservoir.volume_nl"]] == ctl.reservoir.volume_nl
    assert values[at["ctl.path.vol"]] == ctl.pump.path_nl and values[at["ctl.ptm[0].age_ms"]] == 50 * MIN
    assert values[at["ctl.ledger[0].ng"]] == 20_000 and values[at["ctl.ledger[0].ng"] + 1] == rig.loop.alarms.active
    assert values[tail["gauge.level"]] == 0 and values[tail["loop.eos_days"]] == rig.loop.eos_days
    assert values[tail["loop.eos_days"] - 3] == rig.loop.low_reservoir_min
    # no link port: no counter, no lockout, no keys
    assert values[tail["link.patient_counter"]:n] == [-1, -1] + [0] * 40


_BAD = (
    # (field, bad value, what the message must name)
    ("pump.stroke_nl", 40, "state.pump: pump.stroke_nl"),
    ("battery.eos_mv", 2900, "state.battery: battery.eos_mv"),
    ("alarms.critical_repeat_minutes", 0, "state.alarms.critical_repeat_minutes"),
    ("rx.concentration", 5, "state.rx.concentration"),
    ("rx.max_daily_ng", 100_000, "state.rx: basal"),  # the prescription's own check_pump
    ("rx.ptm.lockout_minutes", 5, "ptm.lockout_minutes"),
    ("rx.profiles[0][0].ng_per_day", 10, "state.rx: basal.mon[0].mcg_per_day"),  # below 0.048 mL/day
    ("rx.profiles[1]", -2, "state.rx.profiles[1]"),  # a reference to a later weekday
    ("rx_periodic", 9, "state.rx_periodic"),
    ("ctl.ms", 86_400_000, "state.ctl.ms"),
    ("ctl.held", 2, "state.ctl.held"),  # suspended without its alarm
    ("ctl.rate", 1.5, "state.ctl.rate"),
    ("ctl.rate", True, "state.ctl.rate"),
    ("ctl.due_sub", -1, "state.ctl.due_sub"),
    ("ctl.reservoir.volume_nl", 20_000_001, "state.ctl.reservoir.volume_nl"),
    ("ctl.hist", 5, "state.ctl.hist"),
    ("ctl.window.asked[0]", -1, "state.ctl.window.asked[0]"),
    ("ctl.path.vol", 1, "state.ctl.path.vol"),  # the segments no longer fill the path
    ("ctl.path.gone", 5001, "state.ctl.path.gone"),
    ("ctl.boluses[0].kind", 3, "state.ctl.boluses[0].kind"),
    ("ctl.ptm[0].age_ms", 86_400_000, "state.ctl.ptm[0].age_ms"),
    ("ctl.ledger[0].ng", 0, "state.ctl.ledger[0].ng"),
    ("alarms.fresh", 1, "state.alarms.fresh"),
    ("alarms.next_non_critical_ms", 5, "state.alarms.next_non_critical_ms"),  # a timer with no alarm
    ("gauge.level", 1, "state.gauge.eri_day"),  # ERI with no ERI instant
    ("gauge.uc", 1000, "state.gauge.uc"),
    ("watch.stall", 1, "state.watch.stalls"),  # stalled with no episode counted
    ("watch.pressure", 2, "state.watch.pressure"),
    ("watch.pressure_ms_ago", 1, "state.watch.pressure_ms_ago"),  # timed with no pressure
    ("watch.by_pressure", 1, "state.watch.by_pressure"),  # an occlusion by time that is not there
    ("watch.runaway", 1, "state.watch.runaway"),  # a runaway latch without its hold
    ("loop.last", 1, "state.loop.last"),
    ("loop.eos_days", -1, "state.loop.eos_days"),
    ("gauge.readings_eri", 7, "state.gauge.readings_eri"),  # more than the rule can count
    ("gauge.readings_eos", -1, "state.gauge.readings_eos"),
    ("link.patient_counter", -2, "state.link.patient_counter"),
    ("link.clinician_counter", (1 << 30) - 1, "state.link.clinician_counter"),  # an exhausted counter is never accepted
    ("link.lock_left_ms", 600_001, "state.link.lock_left_ms"),
    ("link.failures", 6, "state.link.failures"),
    ("link.failures[0].ms", -1, "state.link.failures[0].ms"),  # an age with no failure counted
    ("link.provisioned", 2, "state.link.provisioned"),
    ("link.keys[0]", 1, "state.link.keys[0]"),  # a key with no keys provisioned
)


def test_every_corrupted_field_is_refused_naming_it_and_the_fresh_loop_is_untouched():
    rig, values, n = _standard_state()
    at = dict(_AT)
    at.update(_tail(n))
    twin = standard_rig()
    loop = twin.loop
    before = [0] * state.MAX_INTS
    after = [0] * state.MAX_INTS
    m = state.pack(loop, before)
    for field, bad, named in _BAD:
        good = values[at[field]]
        values[at[field]] = bad
        e = raises(ValueError, lambda: state.restore(loop, values, n))
        values[at[field]] = good
        assert named in str(e), (field, str(e))
        assert state.pack(loop, after) == m and after[:m] == before[:m], field
    state.restore(loop, values, n)  # the uncorrupted state is taken
    assert state.pack(loop, after) == n and after[:n] == values[:n]


def test_a_wrong_version_length_or_size_is_refused():
    rig, values, n = _standard_state()
    loop = standard_rig().loop
    values[0] = state.VERSION + 1
    assert "state.version" in str(raises(ValueError, lambda: state.restore(loop, values, n)))
    values[0] = state.VERSION
    assert "state.length" in str(raises(ValueError, lambda: state.restore(loop, values, n - 1)))
    assert "state.length" in str(raises(ValueError, lambda: state.restore(loop, values, len(values) + 1)))
    values[1] = n - 1  # cut short: the last field is missing
    assert "missing" in str(raises(ValueError, lambda: state.restore(loop, values, n - 1)))
    values[1] = n + 1  # one int too many
    values[n] = 0
    assert "left over" in str(raises(ValueError, lambda: state.restore(loop, values, n + 1)))


def test_two_programs_at_one_instant_keep_both_in_the_history():
    # The first program replaced was in force for no time: still one of the 4 the limit counts
    # (a 4th program within the window is refused as busy, before and after a restore).
    def script(rig):
        for k in range(2):
            rig.send(MIN, (CMD_PROGRAM, _rx([300_000, 300_000, 300_000, 300_000 + k])))
        for k in range(3):
            rig.send(2 * MIN + k, (CMD_PROGRAM, _rx([400_000, 400_000, 400_000, 400_000 + k])))

    a, b, _ = _lockstep(_mixed_rig, script, [MIN, MIN + 1, 2 * MIN + 1, 3 * MIN], 3 * HOUR)
    _same_run(a, b)
    assert [r[1] for r in a.prog.replies] == [0, 0, 0, 0, 13]  # programs_full


def _clock_script(rig):
    """The clock set back over a periodic bolus in progress (06:00 start, the 08:00 bolus running at
    08:15 when the clock goes back to 07:00), a PTM grant, then set forward over midnight and back."""
    rig.send(2 * HOUR + 15 * MIN, (CMD_SET_CLOCK, 0, 7 * HOUR))
    rig.at(2 * HOUR + 30 * MIN, rig.button.press)
    rig.at(3 * HOUR, rig.button.press)  # lockout
    rig.send(5 * HOUR, (CMD_SET_CLOCK, 1, 2 * HOUR))  # Monday 10:00 to Tuesday 02:00
    rig.send(7 * HOUR, (CMD_SET_CLOCK, 0, 23 * HOUR))  # Tuesday 04:00 back to Monday 23:00


def test_a_loop_restored_around_clock_settings_runs_exactly_as_the_original():
    def make():
        return Rig(PumpParams(), _rx([700_000, 400_000, 900_000, 600_000]), weekday=0, time_of_day_ms=6 * HOUR)

    snaps = [k * 13 * MIN + 7 * S for k in range(1, 40)] + [2 * HOUR + 15 * MIN + 1, 3 * HOUR + 1, 5 * HOUR + 1]
    a, b, _ = _lockstep(make, _clock_script, sorted(snaps), 10 * HOUR)
    _same_run(a, b)
    # The 08:00 periodic bolus once, though the clock read 08:00 twice; the PTM grant and the lockout.
    bolus = [e[2:] for e in a.events.log if e[1] == EV_BOLUS]
    assert bolus == [(1, 0, 50_000), (2, 0, 20_000), (2, 1, 0)], bolus
