# The link's command layer (firmware/link.py) on CPython and both MicroPython ports: a pump rig with
# a fake LinkPort, requests built by test_frame's own encoder (struct, COBS and HMAC from their
# definitions) and replies read by this file's own decoder. Every command accepted; each attack of
# issue 15 §4 rejected with its code, the pump's state unchanged (state.pack before and after),
# delivery undisturbed and the log recording it; counters and lockout through a reset; allocation.

import struct

from fakes_hal import BASAL_NG_PER_DAY, CONCENTRATION, MAX_DAILY_NG, PTM_NG, STROKE_MS, Rig, standard_rx
from support import heap_meter, heap_meter_done, raises, skip
from test_frame import ref_cobs, ref_mac, ref_raw
from test_persist import Bench

from firmware import link as L
from firmware import state
from firmware.alarms import (
    ALARM_CRITICAL_FAULT,
    ALARM_SUSPENDED,
    EV_COMMAND_ACCEPTED,
    EV_COMMAND_REFUSED,
    EV_LINK_LOCKED,
    EV_LINK_UNLOCKED,
    LIMIT,
    LOCKOUT,
    NOTHING_TO_SILENCE,
)
from firmware.prescription import PumpParams

CK = b"the clinician's key: 32 bytes..!"
PK = b"the patient's key, 32 bytes long"
HOUR = 3_600_000
MIN = 60_000
PATIENT = 1
CLINICIAN = 2


class FakePort:
    """hal/interfaces.py LinkPort: bytes the test sends in, bytes the pump wrote out."""

    def __init__(self, record=True):
        self.inbox = bytearray()
        self.at = 0
        self.out = bytearray()
        self.record = record
        self.written = 0

    def send(self, data):
        self.inbox = self.inbox[self.at:] + data
        self.at = 0

    def any(self):
        return len(self.inbox) - self.at

    def readinto(self, buf, n):
        k = len(self.inbox) - self.at
        if k > n:
            k = n
        i = 0
        while i < k:
            buf[i] = self.inbox[self.at + i]
            i += 1
        self.at += k
        return k

    def write(self, buf, n):
        self.written += n
        if self.record:
            self.out += buf[0:n]

    def take(self):
        out = bytes(self.out)
        self.out = bytearray()
        return out


def request(role, counter, command, values, key=None):
    if key is None:
        key = CK if role == CLINICIAN else PK
    raw = ref_raw(role, counter, command, values)
    return ref_cobs(raw + ref_mac(raw, key))


def uncobs(block):
    out = bytearray()
    i = 0
    while i < len(block):
        code = block[i]
        out += block[i + 1:i + code]
        i += code
        if code < 255 and i < len(block):
            out.append(0)
    return bytes(out)


def replies(data):
    """Every frame in data: (role, counter, command, ints, 'ok' | 'zero' | 'bad' for its MAC)."""
    found = []
    for block in data.split(b"\x00"):
        if not block:
            continue
        raw = uncobs(block)
        version, role, counter, command, n = struct.unpack("<BBIBH", raw[:9])
        assert version == 1 and len(raw) == 9 + 4 * n + 16, raw
        ints = [struct.unpack("<i", raw[9 + 4 * i:13 + 4 * i])[0] for i in range(n)]
        mac = raw[-16:]
        if mac == bytes(16):
            how = "zero"
        elif role and mac == ref_mac(raw[:-16], CK if role == CLINICIAN else PK):
            how = "ok"
        else:
            how = "bad"
        found.append((role, counter, command, ints, how))
    return found


class Pump:
    """A rig with a link port, keys provisioned; ask() sends a request and returns its reply."""

    def __init__(self, provision=True, **kw):
        self.port = FakePort()
        self.rig = Rig(PumpParams(), standard_rx(), link_port=self.port, **kw)
        self.loop = self.rig.loop
        if provision:
            self.loop.link.provision(CK, PK)
        self.counter = {PATIENT: 0, CLINICIAN: 0}

    def raw(self, data):
        self.port.send(data)
        while self.port.any():
            self.loop.service()
        return replies(self.port.take())

    def ask(self, role, command, values=(), counter=None, key=None):
        if counter is None:
            self.counter[role] += 1
            counter = self.counter[role]
        got = self.raw(request(role, counter, command, list(values), key))
        assert len(got) == 1, got
        return got[0]

    def packed(self):
        values = [0] * state.MAX_INTS
        n = state.pack(self.loop, values)
        return values[:n]


def _ok(reply, role, counter, command):
    assert reply[0] == role and reply[1] == counter and reply[2] == command | 0x80 and reply[4] == "ok", reply
    assert reply[3][0] == L.OK, reply
    return reply[3][2:]


def _refused(p, role, command, values, result, field=0, key=None, counter=None):
    """Sends a request that must be refused: its result and field, nothing but the counter and the
    log changed (the link's section of the state, the counters, aside), and the refusal logged."""
    p.loop.service()  # the state as of now (a wake syncs the controller's clock)
    before = p.packed()
    logged = p.loop.log.count
    held_back = p.loop.link.plain_n
    reply = p.ask(role, command, values, counter=counter, key=key)
    after = p.packed()
    # the link's counters are the state's last section: 42 ints from the end, the first two
    assert before[:-42] == after[:-42]
    assert before[-40:] == after[-40:] or result in (L.BAD_MAC,)
    assert reply[3][0] == result and reply[3][1] == field, (reply, result, field)
    codes = _codes_since(p.loop.log, logged)
    # logged, or (one the pump could not authenticate, within a minute of the last logged) counted
    # for the minute's summary event
    assert EV_COMMAND_REFUSED in codes or p.loop.link.plain_n == held_back + 1, codes
    assert EV_COMMAND_ACCEPTED not in codes, codes
    return reply


def _codes_since(log, count):
    out = [0] * 5
    codes = []
    for k in range(log.count - count):
        log.get(k, out)
        codes.append(out[1])
    return codes


def _last_event(log):
    out = [0] * 5
    log.get(0, out)
    return out


# -- every command accepted ------------------------------------------------------------------------


def test_status_reports_the_pump_as_it_is():
    p = Pump()
    p.rig.run_until(HOUR)
    loop = p.loop
    data = _ok(p.ask(CLINICIAN, L.STATUS), CLINICIAN, 1, L.STATUS)
    ctl = loop.ctl
    assert len(data) == 16
    assert data[0] == 0  # delivering (firmware.loop STATE_NAMES[0])
    assert data[1] == ctl.reservoir.volume_nl and data[2] == CONCENTRATION and data[3] == BASAL_NG_PER_DAY
    assert data[4] == loop.alarms.active and data[5:9] == [loop.low_reservoir_min, loop.empty_min, loop.eri_days,
                                                            loop.eos_days]
    assert data[9] == 3000  # the fake ADC's cell
    assert data[10] == 0 and data[11] == HOUR
    assert data[12] == loop.log.count - 1  # the status command itself logged after it was read
    assert data[13] == 0 and data[14] == -1 and data[15] == 1  # no patient frame yet; this one
    data = _ok(p.ask(PATIENT, L.STATUS), PATIENT, 1, L.STATUS)
    assert data[14] == 1 and data[15] == 1


def test_the_patient_bolus_is_granted_then_locked_out():
    p = Pump()
    p.rig.run_until(10 * MIN)
    assert _ok(p.ask(PATIENT, L.PTM), PATIENT, 1, L.PTM) == [PTM_NG]
    reply = p.ask(PATIENT, L.PTM)
    assert reply[4] == "ok" and reply[3] == [L.PTM_REFUSED, 0, LOCKOUT]


def test_clinician_commands_are_accepted_and_act():
    p = Pump()
    loop = p.loop
    ctl = loop.ctl
    p.rig.run_until(HOUR)

    def ok(command, values=()):
        reply = p.ask(CLINICIAN, command, values)
        return _ok(reply, CLINICIAN, p.counter[CLINICIAN], command)

    assert ok(L.BOLUS, [0, 20_000, 10]) == [20_000]
    assert ctl.boluses.n_active == 1
    assert ok(L.CANCEL_BOLUS) == []
    assert ctl.boluses.n_active == 0
    volume = ctl.reservoir.volume_nl
    data = ok(L.REFILL, [10_000, CONCENTRATION])
    assert ctl.reservoir.volume_nl == volume + 10_000 and data == [loop.low_reservoir_min, loop.empty_min]
    assert ok(L.SUSPEND) == [] and loop.alarms.active & ALARM_SUSPENDED
    assert ok(L.SILENCE) == [] and loop.alarms.silenced & ALARM_SUSPENDED
    assert ok(L.RESUME) == [] and not loop.alarms.active & ALARM_SUSPENDED
    assert ok(L.SET_CLOCK, [3, 12 * HOUR]) == [] and ctl.weekday() == 3 and ctl.ms == 12 * HOUR
    assert ok(L.ALARM_OPTIONS, [30]) == [] and loop.alarms.critical_repeat_ms == 30 * MIN
    assert ok(L.PRIME, [0]) == [] and ctl.priming()
    # a new prescription, 10 % more basal (under the soft limit): in force at once
    assert ok(L.PROGRAM, [0] + _rx_ints(660_000)) == []
    assert ctl.rx.max_basal_ng_per_day == 660_000 and list(ctl.rx.profiles[6].rates_ng_per_day) == [660_000]
    data = ok(L.LOG, [0, 40])
    total = loop.log.count - 1  # the LOG command's own event came after its reply was read
    k = total if total < 40 else 40
    assert data[1] == k and data[0] == k and len(data) == 2 + 6 * k and k > 20
    # the log's oracle: the event ring read directly, oldest first
    out = [0] * 5
    for k in range(data[1]):
        loop.log.get(loop.log.count - 1 - k, out)
        assert data[2 + 6 * k:8 + 6 * k] == [k] + out, k
    data = ok(L.LOG, [total - 3, 40])  # the newest three, and the LOG commands' own events
    assert data[1] >= 3 and data[2] == total - 3 and data[0] == data[2] + data[1]
    # A setting changed (the alarm options, after the program) passes the hourly self-test of the
    # settings' CRC: no critical fault.
    assert ok(L.ALARM_OPTIONS, [20]) == [] and loop.alarms.critical_repeat_ms == 20 * MIN
    p.rig.run_until(p.rig.clock.now_ms + 2 * HOUR)
    assert not loop.alarms.active & ALARM_CRITICAL_FAULT and not loop.selftest.failed


def _rx_ints(basal_ng_per_day, max_daily_ng=MAX_DAILY_NG):
    # _pack_rx's layout from its definition (firmware/state.py): concentration, limit, PTM's 4,
    # periodic count, then 7 profiles, each later equal one as -(1 + the first weekday like it).
    return [CONCENTRATION, max_daily_ng, PTM_NG, 10, 60, 4, 0, 1, 0, basal_ng_per_day, -1, -1, -1, -1, -1, -1]


def test_the_rx_ints_are_what_state_packs_for_the_standard_prescription():
    p = Pump()
    values = p.packed()
    at = 19  # the first int after the header and the settings (firmware/state.py, test_state.py _AT)
    assert values[at:at + 16] == _rx_ints(BASAL_NG_PER_DAY)


def _largest_rx_ints():
    # The largest prescription the layout holds (docs/link.md: 220 ints): a PTM, 8 periodic boluses
    # and 7 distinct weekdays of 13 steps each, written from _pack_rx's definition.
    ints = [CONCENTRATION, MAX_DAILY_NG, PTM_NG, 10, 60, 4, 8]
    for k in range(8):
        ints += [(13 + k) * HOUR + 30 * MIN, 1000 + k, 10 + k]  # at, ng, minutes
    for d in range(7):
        ints.append(13)
        for j in range(13):
            ints += [j * HOUR + d * MIN if j else 0, 500_000 + 1000 * d + 100 * j]  # start ms (the first 00:00), ng/day
    assert len(ints) == 220
    return ints


def test_prescription_reads_back_the_prescription_in_force():
    p = Pump()
    p.rig.run_until(HOUR)
    assert _ok(p.ask(CLINICIAN, L.PRESCRIPTION), CLINICIAN, 1, L.PRESCRIPTION) == _rx_ints(BASAL_NG_PER_DAY)
    for confirm, ints in ((0, _rx_ints(660_000, 900_000)), (0, _largest_rx_ints()), (1, _rx_ints(540_000))):
        assert p.ask(CLINICIAN, L.PROGRAM, [confirm] + ints)[3][0] == L.OK
        reply = p.ask(CLINICIAN, L.PRESCRIPTION)
        assert _ok(reply, CLINICIAN, p.counter[CLINICIAN], L.PRESCRIPTION) == ints
    assert p.loop.ctl.rx.max_basal_ng_per_day == 540_000
    # (a read through the whole layout: the largest fills 2 + 220 of the reply's MAX_INTS ints)
    assert 2 + len(_largest_rx_ints()) <= 256


def test_prescription_changes_nothing_that_status_does_not():
    # Twin pumps, one asked STATUS and the other PRESCRIPTION at the same instant: the same state
    # after (the same counter, the same command charge to the gauge), and each logged as accepted.
    a = Pump()
    b = Pump()
    for q in (a, b):
        q.rig.run_until(HOUR)
        q.loop.service()
    before = b.packed()
    logged = b.loop.log.count
    rx = b.loop.ctl.rx
    assert a.ask(CLINICIAN, L.STATUS)[3][0] == L.OK
    assert b.ask(CLINICIAN, L.PRESCRIPTION)[3][0] == L.OK
    assert a.packed() == b.packed()
    after = b.packed()
    assert after != before and b.loop.ctl.rx is rx
    assert _codes_since(b.loop.log, logged) == [EV_COMMAND_ACCEPTED]
    assert _last_event(b.loop.log)[2] == CLINICIAN * 256 + L.PRESCRIPTION
    for q in (a, b):
        q.rig.run_until(2 * HOUR)
    assert a.packed() == b.packed()


def test_prescription_is_the_clinicians_and_takes_no_ints():
    p = Pump()
    p.rig.run_until(HOUR)
    reply = _refused(p, PATIENT, L.PRESCRIPTION, [], L.ROLE_NOT_ALLOWED)
    assert reply[4] == "ok" and reply[3] == [L.ROLE_NOT_ALLOWED, 0]  # no prescription in it
    _refused(p, CLINICIAN, L.PRESCRIPTION, [0], L.BAD_LENGTH)
    _refused(p, CLINICIAN, L.PRESCRIPTION, [0] + _rx_ints(600_000), L.BAD_LENGTH)
    assert L.COMMAND_NAMES[L.PRESCRIPTION] == "prescription"


# -- refusals: fields, confirm, roles --------------------------------------------------------------


def test_a_program_is_applied_whole_or_not_at_all():
    p = Pump()
    p.rig.run_until(HOUR)
    rx = p.loop.ctl.rx
    bad = _rx_ints(660_000)
    bad[15] = -9  # Sunday refers to a later weekday: the last field
    _refused(p, CLINICIAN, L.PROGRAM, [0] + bad, L.OUT_OF_RANGE, 16)
    bad = _rx_ints(660_000)
    bad[0] = 5  # a concentration no drug has
    _refused(p, CLINICIAN, L.PROGRAM, [0] + bad, L.OUT_OF_RANGE, 1)
    bad = _rx_ints(660_000)
    bad[0] = 1000  # not the drug in the reservoir
    _refused(p, CLINICIAN, L.PROGRAM, [0] + bad, L.OUT_OF_RANGE, 1)
    _refused(p, CLINICIAN, L.PROGRAM, [0] + _rx_ints(660_000)[:-1], L.BAD_LENGTH, 16)
    _refused(p, CLINICIAN, L.PROGRAM, [0] + _rx_ints(660_000) + [0], L.BAD_LENGTH, 17)
    _refused(p, CLINICIAN, L.PROGRAM, [2] + _rx_ints(660_000), L.OUT_OF_RANGE, 0)
    # a limit below the basal and its margin: the prescription's own check, at the limit's int
    _refused(p, CLINICIAN, L.PROGRAM, [0] + _rx_ints(660_000, 660_000), L.OUT_OF_RANGE, 2)
    # a limit the basal passes but not with the bolus given within the window: the controller's
    # LIMIT, invalid in this state, nothing applied
    assert p.ask(CLINICIAN, L.BOLUS, [0, 20_000, 10])[3][0] == L.OK
    reply = _refused(p, CLINICIAN, L.PROGRAM, [0] + _rx_ints(660_000, 670_000), L.INVALID_STATE, 0)
    assert p.loop.ctl.rx is rx and reply[4] == "ok" and reply[3][2] == LIMIT


def test_soft_limits_need_the_confirm_flag():
    p = Pump()
    p.rig.run_until(HOUR)
    # 600 -> 721 mcg/day is 20.17 % more: refused without confirm; 720 (20 % exactly) is not
    _refused(p, CLINICIAN, L.PROGRAM, [0] + _rx_ints(721_000), L.CONFIRM_NEEDED, 0)
    _refused(p, CLINICIAN, L.BOLUS, [0, 50_001, 60], L.CONFIRM_NEEDED, 0)
    assert p.ask(CLINICIAN, L.BOLUS, [0, 50_000, 60])[3][:3] == [L.OK, 0, 50_000]
    assert p.ask(CLINICIAN, L.CANCEL_BOLUS)[3][0] == L.OK
    assert p.ask(CLINICIAN, L.BOLUS, [1, 50_001, 60])[3][:3] == [L.OK, 0, 50_001]
    assert p.ask(CLINICIAN, L.PROGRAM, [0] + _rx_ints(720_000))[3][0] == L.OK
    assert p.ask(CLINICIAN, L.PROGRAM, [1] + _rx_ints(865_000))[3][0] == L.OK
    assert p.loop.ctl.rx.max_basal_ng_per_day == 865_000


def test_fields_out_of_range_name_their_index():
    p = Pump()
    p.rig.run_until(HOUR)
    for command, values, field in ((L.BOLUS, [0, 0, 10], 1), (L.BOLUS, [0, 1000, 1441], 2), (L.BOLUS, [3, 10, 1], 0),
                                   (L.REFILL, [0, CONCENTRATION], 0), (L.REFILL, [20_000_001, CONCENTRATION], 0),
                                   (L.REFILL, [1000, 9], 1), (L.PRIME, [-1], 0), (L.SET_CLOCK, [7, 0], 0),
                                   (L.SET_CLOCK, [0, 86_400_000], 1), (L.ALARM_OPTIONS, [0], 0),
                                   (L.ALARM_OPTIONS, [61], 0), (L.LOG, [-1, 5], 0), (L.LOG, [0, 41], 1)):
        _refused(p, CLINICIAN, command, values, L.OUT_OF_RANGE, field)
    for command, values in ((L.STATUS, [1]), (L.BOLUS, [0, 10]), (L.SUSPEND, [0]), (L.LOG, [0])):
        _refused(p, CLINICIAN, command, values, L.BAD_LENGTH, 0)
    _refused(p, CLINICIAN, 15, [], L.UNKNOWN_COMMAND, 0)
    _refused(p, CLINICIAN, 0, [], L.UNKNOWN_COMMAND, 0)
    # invalid in this state: the firmware's reason as data
    reply = _refused(p, CLINICIAN, L.SILENCE, [], L.INVALID_STATE, 0)
    assert reply[3][2] == NOTHING_TO_SILENCE


def test_the_patient_key_on_a_clinician_command_is_refused():
    p = Pump()
    p.rig.run_until(HOUR)
    for command, values in ((L.BOLUS, [1, 20_000, 10]), (L.SUSPEND, []), (L.PROGRAM, [1] + _rx_ints(700_000)),
                            (L.LOG, [0, 10]), (L.REFILL, [1000, CONCENTRATION]), (L.PRESCRIPTION, [])):
        reply = _refused(p, PATIENT, command, values, L.ROLE_NOT_ALLOWED)
        assert reply[4] == "ok" and reply[0] == PATIENT
    # the patient key on a frame claiming the clinician's role: a bad MAC
    _refused(p, CLINICIAN, L.SUSPEND, [], L.BAD_MAC, key=PK)
    assert not p.loop.ctl.held
    # the clinician has no PTM (the patient's own)
    _refused(p, CLINICIAN, L.PTM, [], L.ROLE_NOT_ALLOWED)


# -- attacks ---------------------------------------------------------------------------------------


def test_no_mac_a_wrong_key_and_a_bit_flipped_anywhere_are_refused_unauthenticated():
    p = Pump()
    p.rig.run_until(HOUR)
    raw = ref_raw(CLINICIAN, 1, L.SUSPEND, [])
    # no MAC at all: a frame that ends at its payload is truncated
    got = p.raw(ref_cobs(raw))
    assert got == [(0, 0, 0x80, [4, 0], "zero")]
    good = raw + ref_mac(raw, CK)
    rx = p.loop.ctl.rx
    results = {}
    for bit in range(8 * len(good)):
        bad = bytearray(good)
        bad[bit // 8] ^= 1 << (bit % 8)
        got = p.raw(ref_cobs(bytes(bad)))
        assert len(got) == 1 and got[0][4] == "zero" and got[0][0] == 0 and got[0][1] == 0, got
        results[got[0][3][0]] = results.get(got[0][3][0], 0) + 1
        if got[0][3][0] == L.BAD_MAC and p.loop.link.locked:
            p.rig.clock.advance(10 * MIN)  # let the lockout end: every flip must meet the MAC
            p.loop.service()
    print("bit flips of a 25-byte frame by result:", sorted(results.items()))
    assert L.OK not in results and sum(results.values()) == 200
    assert p.loop.ctl.rx is rx and not p.loop.ctl.held and not p.loop.alarms.active
    # a wrong key
    _refused(p, CLINICIAN, L.SUSPEND, [], L.BAD_MAC, key=b"x" * 32)


def test_replayed_reordered_out_of_window_and_exhausted_counters_are_refused():
    p = Pump()
    p.rig.run_until(HOUR)
    frame5 = request(CLINICIAN, 5, L.BOLUS, [0, 10_000, 10])
    frame4 = request(CLINICIAN, 4, L.SUSPEND, [])
    assert p.raw(frame5)[0][3][:3] == [L.OK, 0, 10_000]
    before = p.packed()
    for frame, counter in ((frame5, 5), (frame4, 4)):  # replayed, then the reordered one before it
        got = p.raw(frame)
        assert got == [(CLINICIAN, counter, 0x80 | (L.BOLUS if counter == 5 else L.SUSPEND), [L.REPLAY, 0, 5],
                        "ok")], got
    assert p.packed() == before and p.loop.ctl.boluses.n_active == 1
    p.counter[CLINICIAN] = 5
    _refused(p, CLINICIAN, L.SUSPEND, [], L.OUT_OF_WINDOW, counter=5 + 65_537)
    assert p.ask(CLINICIAN, L.STATUS, counter=5 + 65_536)[3][0] == L.OK  # the window's edge
    _refused(p, PATIENT, L.STATUS, [], L.OUT_OF_WINDOW, counter=(1 << 30) - 1)
    link = p.loop.link
    link.last[PATIENT] = (1 << 30) - 2  # an honest client that used every counter but the last
    _refused(p, PATIENT, L.PTM, [], L.COUNTER_EXHAUSTED, counter=(1 << 30) - 1)
    assert link.last[PATIENT] == (1 << 30) - 2
    assert p.ask(PATIENT, L.STATUS, counter=7)[3][:3] == [L.REPLAY, 0, (1 << 30) - 2]


def test_truncated_oversized_and_garbage_between_frames():
    p = Pump()
    p.rig.run_until(HOUR)
    p.loop.service()
    before = p.packed()
    good = request(CLINICIAN, 1, L.STATUS, [])
    raw = ref_raw(CLINICIAN, 2, L.SUSPEND, [7] * 300, n=256)  # more than 256 ints
    oversized = ref_cobs(raw + ref_mac(raw, CK))
    raw = ref_raw(CLINICIAN, 2, L.SUSPEND, [])
    truncated = ref_cobs((raw + ref_mac(raw, CK))[:-3])
    garbage = bytes((i * 37 + 11) % 256 for i in range(500))
    got = p.raw(garbage + truncated + oversized + garbage)
    codes = [g[3][0] for g in got]
    assert 4 in codes and 3 in codes and all(2 <= c <= 8 for c in codes), codes  # truncated, too long, framing
    assert all(g[:3] == (0, 0, 0x80) and g[4] == "zero" for g in got)
    after = p.packed()
    assert after[:-42] == before[:-42] and after[-42:] == before[-42:]
    # frames between garbage are read, each after the garbage before it ends at its leading 0x00
    got = p.raw(garbage + good + garbage + request(CLINICIAN, 3, L.STATUS, []) + garbage[:100])
    assert [g[1] for g in got if g[3][0] == L.OK] == [1, 3], got
    assert len(p.loop.link.reader.buf) == 1049  # the reader never grew


def test_the_lockout_after_five_bad_macs_and_its_end():
    p = Pump()
    p.rig.run_until(HOUR)
    for i in range(4):
        _refused(p, CLINICIAN, L.SUSPEND, [], L.BAD_MAC, key=PK)
        p.rig.run_until(HOUR + (i + 1) * 2 * MIN)  # four within 8 minutes
    assert not p.loop.link.locked
    _refused(p, CLINICIAN, L.SUSPEND, [], L.BAD_MAC, key=PK)
    assert p.loop.link.locked and EV_LINK_LOCKED in _codes_since(p.loop.log, p.loop.log.count - 3)
    # locked: even a right frame is refused, unauthenticated, with the ms left
    reply = _refused(p, CLINICIAN, L.SUSPEND, [], L.LOCKED_OUT)
    assert reply[4] == "zero" and reply[3][2] == 10 * MIN
    p.rig.run_until(HOUR + 8 * MIN + 10 * MIN - 1)
    reply = p.ask(CLINICIAN, L.STATUS)
    assert reply[3][:3] == [L.LOCKED_OUT, 0, 1]
    # delivery went on: one stroke every 72 s throughout
    assert len([t for t in p.rig.motor.times if HOUR < t <= HOUR + 18 * MIN - 1]) == (18 * MIN - 1) // STROKE_MS
    p.rig.run_until(HOUR + 18 * MIN + 1)
    assert not p.loop.link.locked and _last_event(p.loop.log)[1] == EV_LINK_UNLOCKED
    assert p.ask(CLINICIAN, L.STATUS)[3][0] == L.OK


def test_failures_spread_over_more_than_ten_minutes_do_not_lock():
    p = Pump()
    for i in range(8):
        p.rig.run_until((i + 1) * 3 * MIN)  # a bad MAC every 3 minutes: never 5 within 10
        _refused(p, CLINICIAN, L.STATUS, [], L.BAD_MAC, key=PK)
        assert not p.loop.link.locked


def test_without_keys_every_frame_is_not_provisioned_and_keys_are_set_once():
    p = Pump(provision=False)
    reply = p.ask(CLINICIAN, L.STATUS)
    assert reply == (0, 0, 0x80 | L.STATUS, [L.NOT_PROVISIONED, 0], "zero")
    p.loop.link.provision(CK, PK)
    assert raises(ValueError, lambda: p.loop.link.provision(CK, PK))
    assert p.ask(CLINICIAN, L.STATUS)[3][0] == L.OK
    q = Pump(provision=False)
    assert raises(ValueError, lambda: q.loop.link.provision(CK[:31], PK))
    assert raises(ValueError, lambda: q.loop.link.provision(CK, CK))


# -- through a reset -------------------------------------------------------------------------------


class LinkBench(Bench):
    def _boot(self):
        from firmware.loop import PumpLoop
        from firmware.persist import Persist

        r = self.rig
        self.port = FakePort()
        loop = PumpLoop(r.clock, r.motor, r.ann, r.button, r.prog, r.adc, PumpParams(), standard_rx(), r.events,
                        self.volume_nl, persist=Persist(self.flash, self.rtc, self.events), link_port=self.port)
        r.loop = loop
        return loop

    def ask(self, role, counter, command, values=(), key=None):
        self.port.send(request(role, counter, command, list(values), key))
        self.loop.service()
        got = replies(self.port.take())
        assert len(got) == 1, got
        return got[0]


def test_counters_keys_and_the_lockout_survive_a_reset():
    b = LinkBench()
    b.loop.link.provision(CK, PK)
    b.run_until(HOUR)
    assert b.ask(CLINICIAN, 10, L.STATUS)[3][0] == L.OK
    # reset right after the command: no snapshot since, the COUNTER record alone holds it
    b.loop.persist.changed = False
    assert b.ask(PATIENT, 3, L.STATUS)[3][0] == L.OK
    b.reset(MIN)
    link = b.loop.link
    assert link.provisioned and link.last[CLINICIAN] == 10 and link.last[PATIENT] == 3
    assert b.ask(CLINICIAN, 10, L.SUSPEND)[3][:3] == [L.REPLAY, 0, 10]
    assert b.ask(PATIENT, 3, L.PTM)[3][:3] == [L.REPLAY, 0, 3]
    assert not b.loop.ctl.held
    for _ in range(5):
        assert b.ask(CLINICIAN, 11, L.STATUS, key=PK)[3][0] == L.BAD_MAC
    assert b.loop.link.locked
    b.run_until(HOUR + 5 * MIN)
    b.reset(MIN)
    assert b.loop.link.locked  # still locked after the reset, for what was left of it
    reply = b.ask(CLINICIAN, 11, L.STATUS)
    assert reply[3][0] == L.LOCKED_OUT and 4 * MIN < reply[3][2] <= 10 * MIN
    b.run_until(HOUR + 20 * MIN)
    assert b.ask(CLINICIAN, 11, L.STATUS)[3][0] == L.OK
    b.reset(0)
    assert b.loop.link.last[CLINICIAN] == 11


def test_keys_provisioned_just_before_a_reset_are_kept():
    b = LinkBench()
    b.run_until(HOUR)
    b.loop.link.provision(CK, PK)
    b.loop.persist.changed = False  # no snapshot: the KEYS record alone
    b.reset(0)
    assert b.loop.link.provisioned and b.ask(CLINICIAN, 1, L.STATUS)[3][0] == L.OK
    assert raises(ValueError, lambda: b.loop.link.provision(CK, PK))
    b.reset(0)
    assert b.loop.link.provisioned and bytes(b.loop.link.keys) == CK + PK


def test_the_link_state_round_trips_through_pack_and_restore():
    p = Pump()
    p.rig.run_until(HOUR)
    p.ask(CLINICIAN, L.STATUS, counter=77)
    p.ask(PATIENT, L.STATUS, counter=9)
    p.ask(CLINICIAN, L.STATUS, key=PK)
    p.ask(CLINICIAN, L.STATUS, key=PK)
    values = [0] * state.MAX_INTS
    n = state.pack(p.loop, values)
    tail = values[n - 42:n]
    assert tail[:2] == [9, 77] and tail[2] == 0 and tail[3] == 2 and tail[4] == tail[5] == 0 and tail[6:9] == [0, 0, 0]
    assert tail[9] == 1 and tail[10] == CK[0] | CK[1] << 8 and tail[41] == PK[30] | PK[31] << 8
    q = Pump(provision=False)
    state.restore(q.loop, values, n)
    link = q.loop.link
    assert link.last[1:] == [9, 77] and link.fail_n == 2 and link.provisioned and bytes(link.keys) == CK + PK
    again = [0] * state.MAX_INTS
    assert state.pack(q.loop, again) == n and again[n - 42:n] == tail
    # refused when corrupted, naming the field
    bad = list(values)
    bad[n - 42 + 3] = 6
    assert raises(ValueError, lambda: state.restore(Pump(provision=False).loop, bad, n))


# -- resources -------------------------------------------------------------------------------------


def _measured(p, data, repeat):
    mem = heap_meter()
    if mem is None:
        return None
    try:
        p.port.send(data)
        before = mem()
        for _ in range(repeat):
            p.port.at = 0
            while p.port.any():
                p.loop.link.service(p.loop._clock.ticks_ms())
        return mem() - before
    finally:
        heap_meter_done()


def test_rejected_frames_allocate_nothing_before_the_mac_and_one_mac_after():
    p = Pump(record=False, counting_emit=True)
    p.port.record = False
    p.rig.run_until(HOUR)
    raw = ref_raw(CLINICIAN, 1, L.SUSPEND, [])
    framing = bytes((i * 37 + 11) % 256 for i in range(300)) + ref_cobs(raw) + ref_cobs(raw[:-1] + b"\x07" * 20)
    framing += ref_cobs(ref_raw(CLINICIAN, 1, L.SUSPEND, [7] * 300, n=256) + bytes(16))
    bad_mac = request(CLINICIAN, 1, L.SUSPEND, [], key=PK)
    if heap_meter() is None:
        heap_meter_done()
        skip("allocation is measured on MicroPython")
    heap_meter_done()
    pre = _measured(p, framing, 3)
    p.loop.link.locked = True
    p.loop.link.lock_t = p.loop._clock.ticks_ms()
    locked = _measured(p, bad_mac * 4, 1)
    p.loop.link.locked = False
    one = _measured(p, bad_mac, 1)
    p.loop.link.locked = False
    p.loop.link.fail_n = 0
    # an authentic frame refused after its MAC (a replay, no journal here): its MAC and the reply's
    p.loop.link.last[CLINICIAN] = 5
    replayed = _measured(p, request(CLINICIAN, 5, L.SUSPEND, []), 1)
    print("link: framing rejections %d B (3 x 4 frames), locked out %d B (4 frames), a bad MAC %d B, "
          "a replay %d B" % (pre, locked, one, replayed))
    assert pre == 0 and locked == 0
    assert one <= 440, one  # one MAC: 410 B on the unix port, 400 B on wasm (docs/link.md)
    assert replayed <= 880, replayed  # two


def test_pack_with_a_link_allocates_nothing():
    p = Pump(record=False, counting_emit=True)
    p.rig.run_until(HOUR)
    p.ask(CLINICIAN, L.STATUS, key=PK)  # a failure in the window: its age is packed too
    values = [0] * state.MAX_INTS
    state.pack(p.loop, values)
    mem = heap_meter()
    if mem is None:
        skip("allocation is measured on MicroPython")
    try:
        before = mem()
        for _ in range(5):
            state.pack(p.loop, values)
        used = mem() - before
    finally:
        heap_meter_done()
    print("pack with a link: %d B over 5 packs" % used)
    assert used == 0, used


def test_a_flood_of_garbage_is_logged_once_a_minute_with_its_count():
    # Each event is a flash record: refusals the pump cannot authenticate are logged at most once a
    # minute, the rest counted into one event when the minute is over (docs/link.md).
    p = Pump()
    p.rig.run_until(HOUR)
    p.loop.service()
    logged = p.loop.log.count
    garbage = b"\x00" + bytes((i * 37 + 11) % 255 + 1 for i in range(40))  # nonzero: one bad frame each
    got = p.raw(garbage * 300 + b"\x00")
    assert len(got) == 300 and all(g[3][0] in (2, 3, 4, 5, 6, 7, 8) for g in got)
    codes = _codes_since(p.loop.log, logged)
    assert codes == [EV_COMMAND_REFUSED], codes
    p.rig.run_until(HOUR + 2 * MIN)
    out = [0] * 5
    p.loop.log.get(0, out)  # the newest
    assert _codes_since(p.loop.log, logged) == [EV_COMMAND_REFUSED, EV_COMMAND_REFUSED]
    assert out[1] == EV_COMMAND_REFUSED and out[2] == 0 and out[4] == 299, out



def test_prescription_allocates_its_two_macs_as_status_does():
    # pack_rx writes into the link's reply list: an accepted PRESCRIPTION, even of the largest
    # prescription, costs the request's MAC and the reply's (820 B on the unix port), as STATUS.
    p = Pump(record=False, counting_emit=True)
    p.rig.run_until(HOUR)
    assert p.ask(CLINICIAN, L.PROGRAM, [0] + _largest_rx_ints())[3][0] == L.OK
    p.port.record = False
    if heap_meter() is None:
        heap_meter_done()
        skip("allocation is measured on MicroPython")
    heap_meter_done()
    used = {}
    for command in (L.STATUS, L.PRESCRIPTION, L.STATUS, L.PRESCRIPTION):
        p.counter[CLINICIAN] += 1
        used[command] = _measured(p, request(CLINICIAN, p.counter[CLINICIAN], command, []), 1)
    print("link: an accepted STATUS %d B, PRESCRIPTION (220 ints) %d B" % (used[L.STATUS], used[L.PRESCRIPTION]))
    assert used[L.PRESCRIPTION] == used[L.STATUS] and used[L.STATUS] <= 880, used


def test_a_port_that_cannot_send_loses_the_reply_never_the_pump():
    # hal/machine_link.py UartLink.write raises OSError when the UART takes no bytes: the command
    # has taken effect (its counter is journaled, its log written), only its reply is lost.
    p = Pump()

    def refuse(buf, n):
        raise OSError(5)

    p.port.write = refuse
    p.counter[CLINICIAN] += 1
    assert p.raw(request(CLINICIAN, p.counter[CLINICIAN], L.SUSPEND, [])) == []
    assert p.loop.link.write_failures == 1 and p.loop.link.last[CLINICIAN] == p.counter[CLINICIAN]
    assert p.loop.state() == 3  # suspended (firmware/loop.py STATE_NAMES)
    p.rig.run_until(HOUR)  # the loop goes on
    del p.port.write
    assert _ok(p.ask(CLINICIAN, L.RESUME), CLINICIAN, p.counter[CLINICIAN], L.RESUME) == []
    assert p.loop.state() == 0


def test_a_flood_of_garbage_and_forged_frames_leaves_the_heap_as_it_was():
    # What a refused frame allocates (hashlib's objects for a MAC check) is garbage at once: nothing
    # is kept, so no flood grows memory. Live heap after a collection, before and after 300 rounds.
    import sys

    if sys.implementation.name != "micropython":
        skip("the heap is measured on MicroPython")
    if sys.platform == "webassembly":
        # ports/webassembly/main.c (MICROPY_GC_SPLIT_HEAP_AUTO): gc.collect() only marks a
        # collection pending, run once control is back in JavaScript: no live heap to read here
        skip("gc.collect() is deferred to the JavaScript top level on the webassembly port")
    import gc

    p = Pump(record=False, counting_emit=True)
    p.port.record = False
    p.rig.run_until(HOUR)
    garbage = bytes((i * 37 + 11) % 256 for i in range(200))
    forged = request(CLINICIAN, 1, L.SUSPEND, [], key=PK)
    flood = garbage + forged + b"\x00\x00" + forged[:-3] + garbage[:50] + b"\x00"
    link = p.loop.link

    def rounds(n):
        for _ in range(n):
            p.raw(flood)
            link.locked = False  # every forged frame checked by its MAC, none refused by the lockout
            link.fail_n = 0

    rounds(3)  # anything made once (the log's first events) is made
    gc.collect()
    before = gc.mem_alloc()
    rounds(300)
    gc.collect()
    grown = gc.mem_alloc() - before
    print("link: live heap after 300 rounds of garbage and forged frames: %+d B" % grown)
    assert grown <= 256, grown  # a leak of even 1 B a frame would be 600
    assert p.loop.state() == 0  # delivering


# Each field's range (docs/link.md "Commands", the scenarios' limits): (command, a valid request,
# the field, its lowest and highest value). The pump's own limits from PumpParams' defaults.
_RANGES = (
    (L.BOLUS, [1, 20_000, 10], 0, 0, 1),  # the confirm flag
    (L.BOLUS, [1, 20_000, 10], 1, 1, 200_000_000),  # ng: firmware/prescription.py MAX_BOLUS_NG
    (L.BOLUS, [1, 20_000, 10], 2, 1, 1440),  # minutes: MAX_BOLUS_MINUTES
    (L.REFILL, [1_000_000, CONCENTRATION], 0, 1, 20_000_000),  # nL: the 20 mL reservoir
    (L.REFILL, [1_000_000, CONCENTRATION], 1, 10, 5000),  # mcg/mL
    (L.PRIME, [0], 0, 0, 50),  # cm of catheter: PumpParams' 50
    (L.SET_CLOCK, [0, 0], 0, 0, 6),  # weekday
    (L.SET_CLOCK, [0, 0], 1, 0, 86_400_000 - 1),  # ms of the day
    (L.ALARM_OPTIONS, [10], 0, 1, 60),  # minutes between critical repeats
    (L.LOG, [0, 5], 0, 0, 2**30 - 1),  # since
    (L.LOG, [0, 5], 1, 1, 40),  # events a reply carries at most
)


def test_every_field_is_refused_just_past_each_end_of_its_range_and_read_at_each_end():
    for command, base, field, lo, hi in _RANGES:
        for value, inside in ((lo - 1, False), (lo, True), (hi, True), (hi + 1, False)):
            if value >= 2**30:
                continue  # no i32 field of a frame holds it (firmware/frame.py refuses it as bad_int)
            p = Pump()
            p.rig.run_until(HOUR)
            values = list(base)
            values[field] = value
            if inside:
                reply = p.ask(CLINICIAN, command, values)
                assert not (reply[3][0] == L.OUT_OF_RANGE and reply[3][1] == field), (command, field, value, reply)
            else:
                _refused(p, CLINICIAN, command, values, L.OUT_OF_RANGE, field)


def test_status_reads_a_suspended_pump_with_its_alarm():
    from firmware.alarms import ALARM_SUSPENDED

    p = Pump()
    p.rig.run_until(HOUR)
    _ok(p.ask(CLINICIAN, L.SET_CLOCK, [4, 9 * HOUR]), CLINICIAN, 1, L.SET_CLOCK)  # a Friday, 09:00
    _ok(p.ask(CLINICIAN, L.SUSPEND), CLINICIAN, 2, L.SUSPEND)
    p.rig.run_until(2 * HOUR)
    logged = p.loop.log.count
    data = _ok(p.ask(CLINICIAN, L.STATUS), CLINICIAN, 3, L.STATUS)
    assert data[0] == 3  # suspended (firmware.loop STATE_NAMES[3])
    assert data[4] == ALARM_SUSPENDED and data[5] == p.loop.low_reservoir_min  # its bit, alone
    assert data[3] == 0 or data[3] == BASAL_NG_PER_DAY  # the rate: held, or as prescribed
    assert data[10] == 4 and data[11] == 10 * HOUR  # the clock set, an hour on
    assert data[12] == logged and logged >= 4  # events before this STATUS's own
    assert data[13] == p.loop.ctl.held and data[15] == 3


def test_log_pages_hold_at_most_what_was_asked_from_where_it_was_asked():
    p = Pump()
    p.rig.run_until(HOUR)
    for _ in range(3):
        p.ask(CLINICIAN, L.SUSPEND)
        p.ask(CLINICIAN, L.RESUME)
    p.ask(CLINICIAN, L.BOLUS, [1, 1000, 25])  # a request whose third int (25) a LOG must not read
    total = p.loop.log.count
    assert total >= 8
    data = _ok(p.ask(CLINICIAN, L.LOG, [0, 1]), CLINICIAN, 8, L.LOG)
    assert data[:2] == [1, 1] and len(data) == 8 and data[2] == 0  # one event, the first; next from 1
    data = _ok(p.ask(CLINICIAN, L.LOG, [2, 3]), CLINICIAN, 9, L.LOG)
    assert data[:2] == [5, 3] and [data[2 + 6 * k] for k in range(3)] == [2, 3, 4]
    # from past the newest: nothing, and the next is the count logged so far
    logged = p.loop.log.count
    data = _ok(p.ask(CLINICIAN, L.LOG, [logged + 5, 10]), CLINICIAN, 10, L.LOG)
    assert data == [logged, 0]
