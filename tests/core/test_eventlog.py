# The event log (firmware/eventlog.py): a ring of the newest events, stamped with the pump clock to
# the second, that the loop fills from every event it reports except tones and date projections.

from fakes_hal import PTM_LOCKOUT_MIN, standard_rig
from support import heap_meter, heap_meter_done, raises

from firmware.alarms import EV_BOLUS, EV_COMMAND_REJECTED, EV_PROJECTION, EV_TONE, LOCKOUT
from firmware.eventlog import CAPACITY, EventLog
from hal.channel import CMD_RESUME, CMD_SUSPEND


class _Clock:
    def __init__(self):
        self.day = 0
        self.ms = 0


def _all(log):
    out = [0] * 5
    got = []
    for k in range(len(log) - 1, -1, -1):  # oldest first
        log.get(k, out)
        got.append(tuple(out))
    return got


def test_the_ring_keeps_the_newest_capacity_events_in_order():
    log = EventLog(5)
    clock = _Clock()
    log.clock = clock
    for n in range(12):
        clock.day = n // 3
        clock.ms = (n % 3) * 1500
        log.add(n + 1, n, -n, 1 << 29)
    assert len(log) == 5 and log.count == 12
    # events 7..11, each at day n // 3, second (n % 3) * 1.5 rounded down
    assert _all(log) == [((n // 3) * 86_400 + (n % 3) * 1500 // 1000, n + 1, n, -n, 1 << 29) for n in range(7, 12)]
    e = raises(IndexError, lambda: log.get(5, [0] * 5))
    assert "no event 5" in str(e)


def test_capacity_is_checked_and_defaults_to_at_least_1024():
    assert CAPACITY >= 1024 and EventLog().capacity == CAPACITY
    for bad in (0, -1, 70_000, 2.0, True):
        raises(ValueError, lambda: EventLog(bad))


def test_adding_allocates_nothing():
    log = EventLog(64)
    log.clock = _Clock()
    meter = heap_meter()
    if meter is None:
        from support import skip

        skip("allocation is measured on MicroPython")
    try:
        start = meter()
        for n in range(300):
            log.add(n, n, n, n)
        used = meter() - start
    finally:
        heap_meter_done()
    assert used == 0, used


def test_the_loop_logs_every_event_but_tones_and_projections_with_the_pump_clock():
    rig = standard_rig()
    # a granted PTM, one refused in lockout, a suspend and its resume, a resume refused
    rig.at(3_600_000, rig.button.press)
    rig.at(3_600_000 + 60_000 * (PTM_LOCKOUT_MIN // 2), rig.button.press)
    rig.send(5 * 3_600_000, (CMD_SUSPEND,))
    rig.send(6 * 3_600_000, (CMD_RESUME,))
    rig.send(7 * 3_600_000, (CMD_RESUME,))
    rig.run_until(8 * 3_600_000)
    emitted = [e for e in rig.events.log if e[1] not in (EV_TONE, EV_PROJECTION)]
    logged = _all(rig.loop.log)
    assert len(logged) == len(emitted) > 5
    start_s = 0  # the rig's pump clock starts at day 0, 00:00 (PumpLoop's defaults)
    for (ms, code, a, b, c), (t_s, lcode, la, lb, lc) in zip(emitted, logged):
        assert (lcode, la, lb, lc) == (code, a, b, c)
        assert t_s == start_s + ms // 1000, (ms, t_s)
    bolus = [e for e in logged if e[1] == EV_BOLUS]
    assert [e[3] for e in bolus[:2]] == [0, LOCKOUT]
    assert any(e[1] == EV_COMMAND_REJECTED for e in logged)
