# pyright: reportOptionalMemberAccess=false
# (Persist.loop is None until start(), which runs before any other method.)
# Persistence: the pump's state in its journal, and boot from it (docs/journal.md).
#
# Write policy (nothing is written per stroke):
# - a SNAPSHOT record (firmware/state.py's pack(), plus the stroke count, the reservation and the
#   real-time clock) at the end of every wake at which the state changed by more than the passing
#   of time: a command, a bolus decision, an alarm raised or cleared, a hold (PumpLoop marks it);
# - a RESERVE record, write-ahead, whenever fewer than RESERVE_STROKES // 2 strokes are left in the
#   reservation: the controller never makes a stroke beyond it (Controller.reserve_end).
#
# Boot (start()): the journal's newest state is restored and checked by firmware/state.py's own
# validation. The strokes reserved since the snapshot are counted as made (a reset never repeats a
# stroke: it may lose at most RESERVE_STROKES), and the time since the snapshot, by the real-time
# clock, is written off as missed (never made up) while the pump clock, boluses and the schedule move
# on through it. An empty region is the very first boot: the config's prescription is used then,
# and only then. A journal with no state to trust, or a state that fails validation, raises
# critical_fault and holds delivery for good, with the reason in the event log.

from firmware import state
from firmware.alarms import (
    ALARM_CLOCK_LOST,
    ALARM_CRITICAL_FAULT,
    EV_CRITICAL_FAULT,
    EV_RESET,
    FAULT_JOURNAL,
    FAULT_RESTORE,
)
from firmware.controller import HOLD_FAULT
from firmware.journal import CORRUPT, EMPTY, SNAPSHOT, Journal
from hal.train import COUNT_MASK
from micropython import const

RESERVE = const(2)  # record type: [reserve_end, stroke_count, rtc_s]
COUNTER = const(3)  # record type: [role, counter], the link's last accepted, before the command takes effect
KEYS = const(4)  # record type: the link's keys (firmware/link.py key_ints), once, at provisioning
EVENT = const(2)  # the event log's region: [t_s, code, a, b, c]
EVENT_SIZES = (0, 1, 5)  # its "snapshot" is a marker: the events ever logged
RESERVE_STROKES = const(32)  # strokes a reset can lose at most (8 uL of a 250 nL stroke)
_EXTRA = const(3)  # after the state in a snapshot: stroke_count, reserve_end, rtc_s
SIZES = (0, state.MAX_INTS + _EXTRA, 3, 2, 32)

# Boot outcomes (Persist.booted)
FIRST_BOOT = const(0)
RESTORED = const(1)
FAULTED = const(2)
BOOTING = const(3)  # start() is restoring: the loop's own service() inside it journals nothing


class Persist:
    """storage: the journal's region (a block device, hal/interfaces.py "Storage"); rtc: the
    real-time clock (now_s() -> s, or -1 when it is not valid); events: the event log's own region
    (a block device of at least 11 blocks of 4 KB keeps 1024 events through an erase), or None."""

    def __init__(self, storage, rtc, events=None):
        self._rtc = rtc
        self.rtc = rtc  # (the self-tests compare the tick clock with it: firmware/selftest.py)
        self.loop = None
        self.journal = Journal(storage, SIZES, self._snapshot)
        self.events = Journal(events, EVENT_SIZES, self._event_marker, True) if events is not None else None
        self._event = [0] * 5
        self._reserve = [0, 0, 0]
        self._snap = [0] * SIZES[SNAPSHOT]
        self._snap_n = 0
        self._have_snap = False
        self._reserve_end = -1
        self._counter = [0, 0]  # a COUNTER record to write
        self._keys = [0] * SIZES[KEYS]  # a KEYS record: to write, or replayed at mount
        self._after = [-1, -1, -1]  # mount: counters by role journaled after the newest snapshot
        self._keyed = False  # mount: a KEYS record after the newest snapshot
        self.changed = False  # the loop marks a change; the next after_service() journals it
        self.booted = FIRST_BOOT
        self.off_s = 0  # boot: how long the pump was off (by the clock), ...
        self.lost_ng = 0  # ... what it wrote off for it ...
        self.unverified = 0  # ... and the strokes counted without knowing they were made

    # -- boot --------------------------------------------------------------------------------------

    def start(self, loop):
        """Boots `loop` (a PumpLoop just built from the config) from the journal."""
        self.loop = loop
        self.booted = BOOTING
        if self.events is not None:
            if not self.events.replay(self._replay_event):
                self.events.format()
        rc = self.journal.mount(self._apply)
        if rc == EMPTY:
            self.booted = FIRST_BOOT
            self._reserve_more()
            self.journal.format()
            return
        if rc == CORRUPT or not self._have_snap:
            self._fault(FAULT_JOURNAL, self.journal.why)
            return
        if self._snap_n <= _EXTRA:
            self._fault(FAULT_RESTORE, 0)
            return
        base = self._snap_n - _EXTRA
        count, snap_s = self._snap[base], self._snap[base + 2]  # before restore's service() can touch _snap
        try:
            state.restore(loop, self._snap, base)
        except ValueError:
            self._fault(FAULT_RESTORE, 0)
            return
        self._link_records()
        self._resume(count, snap_s)

    def _link_records(self):
        # The link's records newer than the snapshot: a counter accepted, keys provisioned.
        link = self.loop.link
        if link is None:
            return
        for role in (1, 2):
            if self._after[role] > link.last[role]:
                link.last[role] = self._after[role]
        if self._keyed and not link.provisioned:
            link.set_key_ints(self._keys, 0)

    def _replay_event(self, rtype, values, n):
        if rtype == EVENT and n == 5:
            self.loop.log.put(values[0], values[1], values[2], values[3], values[4])

    def _event_marker(self, values):
        values[0] = self.loop.log.count
        return 1

    def log_event(self, log):
        """The newest event of `log` to the event region (PumpLoop._log)."""
        if self.events is not None:
            log.get(0, self._event)
            self.events.append(EVENT, self._event)

    def _apply(self, rtype, values, n):
        if rtype == SNAPSHOT:
            for i in range(n):
                self._snap[i] = values[i]
            self._snap_n = n
            self._have_snap = True
            self._reserve_end = values[n - 2] if n >= _EXTRA else -1
            self._after[1] = self._after[2] = -1  # the snapshot holds the link's state so far
            self._keyed = False
        elif rtype == RESERVE:
            self._reserve_end = values[0]
        elif rtype == COUNTER and n == 2 and 1 <= values[0] <= 2:
            if values[1] > self._after[values[0]]:
                self._after[values[0]] = values[1]
        elif rtype == KEYS and n == SIZES[KEYS]:
            for i in range(n):
                self._keys[i] = values[i]
            self._keyed = True

    def _resume(self, count, snap_s):
        loop = self.loop
        ctl = loop.ctl
        ctl.stroke_count = count
        now_s = self._rtc.now_s()
        if now_s < 0 or now_s < snap_s:
            # The clock cannot say how long the pump was off: keep the last persisted time, and
            # start the clock again from it, so the next reset's time off is measured from here.
            loop.alarms.raise_(ALARM_CLOCK_LOST, 0, 0)
            self.off_s = 0
            if snap_s > 0:
                try:
                    self._rtc.set_s(snap_s)
                except ValueError:  # a clock that refuses it (before its valid range) stays lost
                    pass
        else:
            self.off_s = now_s - snap_s  # seconds: in ms, 12.4 days off would leave the small ints
        self.unverified = (self._reserve_end - ctl.stroke_count) & COUNT_MASK if self._reserve_end >= 0 else 0
        ctl.reserve_end = self._reserve_end
        self.lost_ng = ctl.resume_after_reset(self.unverified, self.off_s)
        loop.alarms.fresh = loop.alarms.active  # every active alarm sounds again now
        loop.alarms.silenced = 0
        loop.emit_event(EV_RESET, self.off_s, self.unverified, 0)
        self.booted = RESTORED
        self._reserve_more()
        self.changed = True
        loop.restarted()

    def _fault(self, what, why):
        loop = self.loop
        self.booted = FAULTED
        loop.ctl.hold(HOLD_FAULT)
        loop.alarms.raise_(ALARM_CRITICAL_FAULT, EV_CRITICAL_FAULT, what)
        loop.emit_event(EV_CRITICAL_FAULT, what, why, 0)
        loop.restarted()

    # -- the loop's side ---------------------------------------------------------------------------

    def before_plan(self):
        """Keeps the reservation ahead of the strokes: write-ahead, before a train may use it."""
        if self.booted >= FAULTED:  # stopped for good, or still booting
            return
        ctl = self.loop.ctl
        left = (ctl.reserve_end - ctl.stroke_count) & COUNT_MASK
        if ctl.reserve_end < 0 or left < RESERVE_STROKES // 2 or left > COUNT_MASK >> 1:
            self._reserve_more()

    def after_service(self):
        if self.changed and self.booted < FAULTED:
            self.changed = False
            self.journal.append(SNAPSHOT, self._snap, self._snapshot(self._snap))

    def _reserve_more(self):
        ctl = self.loop.ctl
        ctl.reserve_end = (ctl.stroke_count + RESERVE_STROKES) & COUNT_MASK
        r = self._reserve
        r[0] = ctl.reserve_end
        r[1] = ctl.stroke_count
        r[2] = self._rtc_s()
        if self.journal.block >= 0:  # else format() writes the first snapshot, which holds it
            self.journal.append(RESERVE, r)

    def link_counter(self, role, counter):
        """The link accepted `counter` from `role`: durable before the command takes effect."""
        if self.booted < FAULTED:
            c = self._counter
            c[0] = role
            c[1] = counter
            self.journal.append(COUNTER, c)

    def link_keys(self, link):
        """The link's keys, provisioned just now."""
        if self.booted < FAULTED:
            link.key_ints(self._keys, 0)
            self.journal.append(KEYS, self._keys)

    def _rtc_s(self):
        s = self._rtc.now_s()
        return s if s >= 0 else 0

    def _snapshot(self, values):
        """The whole state (firmware/state.py), then the stroke count, the reservation and the
        clock: the journal's snapshot callback; returns the ints written."""
        n = state.pack(self.loop, values)
        self._extras(values, n)
        return n + _EXTRA

    def _extras(self, values, n):
        ctl = self.loop.ctl
        values[n] = ctl.stroke_count
        values[n + 1] = ctl.reserve_end
        values[n + 2] = self._rtc_s()
