# The pump's state as small ints and back (firmware/state.py). The contract: with no time lost, a
# loop restored from pack() into a freshly built loop on the same hardware is indistinguishable
# from the original. Two rigs run the same script in lockstep; at each snapshot the twin's loop is
# replaced by a fresh one (built from another config) restored from the original's pack, and from
# then on both must make the same strokes at the same ms, the same events and the same tones.

from fakes_hal import Rig, standard_rig, standard_rx
from support import heap_meter, heap_meter_done, raises, skip

from firmware import state
from firmware.alarms import EV_PROJECTION
from firmware.battery import BatteryParams
from firmware.loop import PumpLoop
from firmware.prescription import Bolus, Prescription, Profile, PumpParams
from hal.channel import CMD_BOLUS, CMD_PROGRAM, CMD_REFILL, CMD_RESUME, CMD_SILENCE, CMD_SUSPEND

S = 1000
MIN = 60 * S
HOUR = 60 * MIN
DAY = 24 * HOUR
_SMALL = 1 << 30


def _rx(rates, periodic_at=8 * HOUR, periodic_ng=50_000):
    steps = Profile([0, 6 * HOUR, 12 * HOUR, 18 * HOUR], rates, "basal.steps")
    weekend = Profile([0, 9 * HOUR], [rates[0], rates[1]], "basal.weekend")
    return Prescription(2000, [steps] * 5 + [weekend] * 2, ((periodic_at, Bolus(periodic_ng, 30, "p")),),
                        (Bolus(20_000, 10, "ptm"), 60, 4), 2_000_000)


def _mixed_rig():
    return Rig(PumpParams(), _rx([700_000, 400_000, 900_000, 600_000]), volume_nl=3_000_000, weekday=4,
               time_of_day_ms=20 * HOUR)


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
    rig.at(23 * HOUR, _release(m))
    rig.send(26 * HOUR, (CMD_SILENCE,))
    rig.at(27 * HOUR, rig.button.press)
    rig.at(27 * HOUR + 20 * MIN, rig.button.press)  # lockout


def _fresh_loop(rig):
    """A loop on rig's hardware from another valid config: every field must come from the state."""
    rx = Prescription(1000, [Profile([0], [300_000], "basal")] * 7, (), None, 900_000)
    return PumpLoop(rig.clock, rig.motor, rig.ann, rig.button, rig.prog, rig.adc, PumpParams(40_000_000, 500), rx,
                    rig.events, 10_000_000, 2, 5 * HOUR, BatteryParams(500), 5)


def _swap(twin, values, n):
    """Replaces twin's loop by a fresh one restored from values; drops what building it reported
    (the restore's own date recalculation included), as a boot's log would start after it."""
    events = len(twin.events.log)
    tones = len(twin.ann.tones)
    loop = _fresh_loop(twin)
    del twin.events.log[events:]
    del twin.ann.tones[tones:]
    state.restore(loop, values, n)
    assert twin.events.log[events][1] == EV_PROJECTION
    del twin.events.log[events]
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


_MIXED_SNAPS = [k * 47 * MIN + 13 * S for k in range(1, 38)] + [2 * HOUR + 1, 5 * HOUR + 20 * MIN, 22 * HOUR + 30 * MIN]


def test_a_loop_restored_at_many_instants_of_a_mixed_history_runs_exactly_as_the_original():
    snaps = sorted(_MIXED_SNAPS)
    a, b, packs = _lockstep(_mixed_rig, _mixed_script, snaps, 32 * HOUR)
    _same_run(a, b)
    # The script reached what it meant to: every kind of state was snapshotted at least once.
    codes = set(e[1] for e in a.events.log)
    from firmware.alarms import (
        EV_BOLUS_END,
        EV_ERI,
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
                 EV_SILENCED, EV_STALL, EV_STALL_RECOVERED, EV_SUSPENDED):
        assert code in codes, code
    assert a.loop.ctl.path.n == 2  # the old drug still in the path
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
    assert n < 200


def _expected_n(loop):
    # Reimplements the layout's sizes from its definition (firmware/state.py's header).
    ctl = loop.ctl
    rx = ctl.rx
    n = 168 + 2 + 4 + 1 + 3 * len(rx.periodic)
    seen = []
    for p in rx.profiles:
        same = [q for q in seen if q.starts_ms == p.starts_ms and q.rates_ng_per_day == p.rates_ng_per_day]
        n += 1 if same else 1 + 2 * len(p.starts_ms)
        seen.append(p)
    n += 1 if ctl.rx_periodic is rx else 1 + 3 * len(ctl.rx_periodic.periodic)
    n += 2 * ctl.path.n
    return n + 1  # the history's count (none here)


def test_max_ints_is_the_sum_of_the_worst_cases():
    assert state.MAX_INTS == 168 + (2 + 4 + 1 + 3 * 8 + 7 * 27) + (1 + 3 * 8) + (1 + 4 * 2 + 2 * (4 + 6 * 13)) \
        + 2 * 6 + 24 + 3 * 64
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
