# Boot from the journal (firmware/persist.py): a reset is invisible to the patient. No stroke is
# made twice, none is made up, the lockout and the alarms survive, and a journal that cannot be
# trusted stops the pump with critical_fault instead of running the config's prescription.
#
# Expected strokes come from the prescription's definition (fakes_hal: one 500 ng stroke every
# 72 s at 600 mcg/day), not from the firmware.

from fakes_hal import PTM_LOCKOUT_MIN, STROKE_MS, Rig, standard_rx
from support import heap_meter, heap_meter_done

from firmware.alarms import (
    ALARM_CLOCK_LOST,
    ALARM_CRITICAL_FAULT,
    ALARM_LOW_RESERVOIR,
    EV_BOLUS,
    EV_CRITICAL_FAULT,
    EV_RESET,
    EV_UNDER_DELIVERY,
    FAULT_JOURNAL,
    FAULT_RESTORE,
    LOCKOUT,
    OK,
    PTM,
)
from firmware.persist import FAULTED, FIRST_BOOT, RESERVE_STROKES, RESTORED, Persist
from firmware.prescription import PumpParams
from hal.channel import CMD_SET_CLOCK
from sim.nor_flash import NorFlash

HOUR = 3_600_000
MIN = 60_000


class Rtc:
    """The real-time clock: the rig clock's seconds, going on while the pump is off."""

    def __init__(self, clock):
        self.clock = clock
        self.valid = True
        self.offset_s = 1_000_000

    def now_s(self):
        return self.offset_s + self.clock.now_ms // 1000 if self.valid else -1

    def set_s(self, s):
        self.offset_s = s - self.clock.now_ms // 1000
        self.valid = True


class Bench:
    """A rig whose pump has a journal, and can be reset: the motor stops, time passes, and a new
    PumpLoop boots on the same hardware and flash."""

    def __init__(self, volume_nl=-1, flash=None, record=True, events=None):
        self.flash = flash if flash is not None else NorFlash(4096, 8)
        self.events = events  # the event log's region, or None
        self.rig = Rig(PumpParams(), standard_rx(), record=record, counting_emit=not record, volume_nl=volume_nl)
        self.rtc = Rtc(self.rig.clock)
        self.volume_nl = volume_nl
        self.loop = self._boot()

    def _boot(self):
        from firmware.loop import PumpLoop

        r = self.rig
        loop = PumpLoop(r.clock, r.motor, r.ann, r.button, r.prog, r.adc, PumpParams(), standard_rx(), r.events,
                        self.volume_nl, persist=Persist(self.flash, self.rtc, self.events))
        r.loop = loop
        return loop

    def run_until(self, ms):
        self.rig.run_until(ms)

    def reset(self, off_ms=0):
        """The power fails now for off_ms."""
        r = self.rig
        r.motor.stop()
        while off_ms > 0:  # the tick clock's steps stay within its half range
            step = off_ms if off_ms < 24 * HOUR else 24 * HOUR
            r.clock.advance(step)
            off_ms -= step
        r.motor.strokes()
        self.loop = self._boot()
        return self.loop.persist

    def strokes(self):
        return self.rig.motor.strokes()


def _ideal_strokes(ms):
    return ms // STROKE_MS  # stroke k at k x 72 s exactly


def test_the_first_boot_of_an_empty_region_runs_the_config_and_journals_it():
    b = Bench()
    p = b.loop.persist
    assert p.booted == FIRST_BOOT and b.loop.ctl.reserve_end == RESERVE_STROKES
    assert p.journal.block == 0 and p.journal.seq >= 1
    b.run_until(10 * HOUR)
    assert b.strokes() == _ideal_strokes(10 * HOUR)  # the journal changes no stroke


def test_a_reset_repeats_no_stroke_and_makes_up_none():
    for cut_ms, off_ms in ((3 * HOUR + 1234, 0), (5 * HOUR + 36_000, 10 * MIN), (7 * HOUR, 2 * HOUR),
                           (2 * HOUR + 71_999, 25 * HOUR)):
        b = Bench()
        b.run_until(cut_ms)
        made = b.strokes()
        assert made == _ideal_strokes(cut_ms)
        p = b.reset(off_ms)
        assert p.booted == RESTORED and p.off_s * 1000 >= off_ms - 1000  # since the last snapshot, by the clock
        # The reservoir as the firmware counts it: never more than is really in it (strokes made are
        # all counted), less by at most the reserved strokes it cannot know were made.
        true_nl = PumpParams().capacity_nl - made * 250
        counted_nl = b.loop.ctl.reservoir.volume_nl
        assert true_nl - RESERVE_STROKES * 250 <= counted_nl <= true_nl, (cut_ms, counted_nl, true_nl)
        end = cut_ms + off_ms + 6 * HOUR
        b.run_until(end)
        got = b.strokes()
        ideal = _ideal_strokes(end)
        due_off = _ideal_strokes(cut_ms + off_ms) - _ideal_strokes(cut_ms)
        assert got <= ideal - due_off, (cut_ms, off_ms, got, ideal, due_off)  # nothing made up
        assert got >= ideal - due_off - 1, (cut_ms, off_ms, got, ideal, due_off)  # the rest on time
        resets = b.rig.events.of(EV_RESET)
        assert len(resets) == 1 and resets[0][1] == p.off_s


def test_the_patient_bolus_lockout_survives_a_reset():
    b = Bench()
    b.rig.at(HOUR, b.rig.button.press)
    b.run_until(HOUR + 5 * MIN)
    b.reset(2 * MIN)
    b.rig.at(HOUR + 20 * MIN, b.rig.button.press)  # within the 60-minute lockout
    b.rig.at(HOUR + PTM_LOCKOUT_MIN * MIN + 1000, b.rig.button.press)  # after it
    b.run_until(3 * HOUR)
    ptm = [(a, r, ng) for _, a, r, ng in b.rig.events.of(EV_BOLUS) if a == PTM]
    assert [r for _, r, _ in ptm] == [OK, LOCKOUT, OK], ptm


def test_an_active_alarm_sounds_again_after_boot():
    low = PumpParams().low_nl
    b = Bench(volume_nl=low + 3 * 250)  # three strokes above the low mark
    b.run_until(5 * STROKE_MS)
    assert b.loop.alarms.active & ALARM_LOW_RESERVOIR
    tones = len(b.rig.ann.tones)
    b.reset(MIN)
    assert b.loop.alarms.active & ALARM_LOW_RESERVOIR
    b.run_until(5 * STROKE_MS + MIN + 1)
    assert len(b.rig.ann.tones) > tones  # sounded at boot, not an hour later


def test_a_clock_that_cannot_say_how_long_the_pump_was_off_raises_clock_lost():
    b = Bench()
    b.run_until(HOUR)
    b.rtc.valid = False
    p = b.reset(10 * MIN)
    assert p.booted == RESTORED and p.off_s == 0
    assert b.loop.alarms.active & ALARM_CLOCK_LOST
    # The clock starts again from the last persisted time: the next reset's time off is measured.
    assert b.rtc.valid
    b.run_until(2 * HOUR)
    p = b.reset(10 * MIN)
    assert p.booted == RESTORED and 0 < p.off_s * 1000 <= HOUR + 10 * MIN
    assert b.loop.alarms.active & ALARM_CLOCK_LOST  # it stands until the clinician sets the clock
    b.rig.send(b.rig.clock.now_ms + MIN, (CMD_SET_CLOCK, 0, 4 * HOUR))
    b.run_until(b.rig.clock.now_ms + 2 * MIN)
    assert not b.loop.alarms.active & ALARM_CLOCK_LOST


def test_a_journal_with_no_state_to_trust_stops_the_pump_with_critical_fault():
    for spoil in ("garbage", "decayed_snapshot"):
        b = Bench()
        b.run_until(HOUR)
        made = b.strokes()
        j = b.loop.persist.journal
        if spoil == "garbage":
            for i in range(len(b.flash.data)):
                b.flash.data[i] = (i * 37) & 0xFF
        else:  # a bit of the newest snapshot decayed
            b.flash.flip(8 * (j.block * 4096 + 40))
        p = b.reset(0)
        assert p.booted == FAULTED, spoil
        assert b.loop.alarms.active & ALARM_CRITICAL_FAULT
        faults = b.rig.events.of(EV_CRITICAL_FAULT)
        assert faults and faults[-1][1] in (FAULT_JOURNAL, FAULT_RESTORE), faults
        b.run_until(5 * HOUR)
        assert b.strokes() == made, spoil  # never the config's prescription


def test_the_steady_path_with_a_journal_allocates_nothing():
    b = Bench(record=False)  # the rig records no stroke or event (that would allocate)
    b.run_until(2 * HOUR)
    meter = heap_meter()
    if meter is None:
        from support import skip

        skip("allocation is measured on MicroPython")
    clock = b.rig.clock
    loop = b.loop
    wait = clock.wait
    ready = loop.ready
    end = 30 * HOUR
    try:
        start = meter()
        while clock.now_ms < end:  # PumpLoop.run(), without the bound method its first line makes
            wait(loop.deadline(), ready)
            loop.service()
        used = meter() - start
    finally:
        heap_meter_done()
    print("loop with a journal: %d B over 28 h, %d journal records" % (used, b.loop.persist.journal.seq))
    assert used == 0, used


def _logged(log):
    out = [0] * 5
    got = []
    for k in range(len(log) - 1, -1, -1):
        log.get(k, out)
        got.append(tuple(out))
    return got


def test_the_event_log_survives_resets_and_keeps_1024_events_through_erases():
    from hal.channel import CMD_RESUME, CMD_SUSPEND

    b = Bench(events=NorFlash(4096, 12))
    # 700 suspends and resumes (1400 commands, each logged with its alarm: 2800 events and more)
    for k in range(700):
        b.rig.send(HOUR + k * 2 * MIN, (CMD_SUSPEND,))
        b.rig.send(HOUR + k * 2 * MIN + MIN, (CMD_RESUME,))
    b.run_until(HOUR + 1400 * MIN + 1)
    before = _logged(b.loop.log)
    assert b.loop.log.count > 2000 and len(before) == 1024
    assert max(b.events.erases) >= 1  # the event region went round: its oldest block was erased
    b.reset(5 * MIN)
    after = _logged(b.loop.log)
    # the 1024 newest events before the reset, then the reset's own
    assert after[:len(after) - 1][-1023:] == before[-1023:], (after[-3:], before[-3:])
    assert after[-1][1] == EV_RESET


def test_the_steady_path_with_an_event_region_allocates_nothing():
    b = Bench(record=False, events=NorFlash(4096, 12))
    b.rig.at(2 * HOUR, b.rig.button.press)  # a patient bolus (an input: it may allocate, it is rare) ...
    b.run_until(2 * HOUR + 1000)  # ... whose end, an event of the steady path, is journaled below
    meter = heap_meter()
    if meter is None:
        from support import skip

        skip("allocation is measured on MicroPython")
    clock = b.rig.clock
    loop = b.loop
    try:
        start = meter()
        while clock.now_ms < 6 * HOUR:
            clock.wait(loop.deadline(), loop.ready)
            loop.service()
        used = meter() - start
    finally:
        heap_meter_done()
    assert loop.persist.events.seq >= 3  # the marker, the grant, the end
    assert used == 0, used


def _until_write(b, end_ms):
    """Runs until the journal's next write is torn (PowerCut) or end_ms; True if it was torn."""
    from sim.nor_flash import PowerCut

    try:
        b.run_until(end_ms)
    except PowerCut:
        return True
    return False


def test_a_reservation_or_a_snapshot_torn_at_every_byte_is_restored_and_repeats_nothing():
    import sys

    # A reservation (RESERVE) every 16 strokes of basal; a snapshot (SNAPSHOT) at a patient bolus.
    step = 1 if sys.implementation.name != "micropython" else 7  # every byte on CPython, a sample on the ports
    torn_runs = 0
    for kind, prepare, span in (("reserve", None, 60), ("snapshot", "press", 1300)):
        for k in range(0, span, step if kind == "reserve" else 13 * step):
            b = Bench(record=False)
            if prepare == "press":
                b.rig.at(HOUR + 1000, b.rig.button.press)
            b.run_until(HOUR)
            b.flash.tear_after(k)
            torn = _until_write(b, 5 * HOUR)
            b.flash.tear_after(-1)
            if not torn:
                continue  # the writes of this span took fewer bytes than k
            torn_runs += 1
            t_cut = b.rig.clock.now_ms
            made = b.strokes()
            p = b.reset(0)
            assert p.booted == RESTORED, (kind, k)
            b.run_until(t_cut + 6 * HOUR)
            got = b.strokes()
            # never more than the prescription by then, and the patient bolus (if pressed) at most once
            ideal = _ideal_strokes(t_cut + 6 * HOUR) + (40 if prepare else 0)
            assert made <= got <= ideal, (kind, k, made, got, ideal)
            assert got >= ideal - RESERVE_STROKES - 1 - (40 if prepare else 0), (kind, k, got, ideal)
    assert torn_runs > (100 if step == 1 else 15), torn_runs


def test_a_month_off_is_written_off_day_by_day_in_small_ints():
    # In ms a month off would leave the small ints (2**30 ms is 12.4 days): the boot counts seconds
    # and writes the time off per day, each figure a small int.
    b = Bench()
    b.run_until(HOUR)
    p = b.reset(30 * 24 * HOUR)
    assert p.booted == RESTORED and 30 * 24 * 3600 <= p.off_s <= 30 * 24 * 3600 + 3600
    per_day = [e[1] for e in b.rig.events.of(EV_UNDER_DELIVERY)]
    assert len(per_day) >= 30 and all(0 < ng < 2 ** 30 for ng in per_day)
    assert 0 < p.lost_ng == sum(per_day) < 2 ** 30
    assert [e[1] for e in b.rig.events.of(EV_RESET)] == [p.off_s]
