"""pumpctl (sim/pumpctl.py): its requests and its checks of replies against frames built here with
struct and hmac, its arguments, output and exit codes, against a stand-in responder
(tests/host/link_standin.py: NOT the firmware) and through a protocol-blind man in the middle.
The same commands against the real firmware under `pumpsim serve`: test_link_e2e.py."""

import datetime as dt
import hashlib
import hmac
import json
import os
import struct

import pytest
from freezegun import freeze_time

from firmware import frame as F
from firmware.hmac_sha256 import HmacSha256
from sim import pumpctl as P
from tests.host.link_standin import StandIn, cobs, frame, uncobs
from tests.host.mitm import Mitm, drop_bytes, duplicate, flip_bit

CK = bytes(range(32))
PK = bytes(range(100, 132))


@pytest.fixture
def keyfile(tmp_path):
    p = tmp_path / "keys.json"
    p.write_text(json.dumps({"clinician": CK.hex(), "patient": PK.hex()}))
    p.chmod(0o600)
    return p


@pytest.fixture
def pump():
    s = StandIn(CK, PK)
    yield s
    s.close()


def ctl(keyfile, url, *argv, ask=None, timeout="1"):
    code = P.main(["--url", url, "--key-file", str(keyfile), "--timeout", timeout, *argv],
                  ask=ask or (lambda prompt: pytest.fail("asked")))
    return code


# -- frames ------------------------------------------------------------------------------------------------


def test_request_bytes_are_the_frame_format():
    ints = [0, -1, 2**30 - 1, -2**30, 0x01020300]
    got = P.encode_request(CK, 2, 77, 5, ints)
    raw = struct.pack("<BBIBH", 1, 2, 77, 5, len(ints)) + struct.pack("<5i", *ints)
    raw += hmac.new(CK, raw, hashlib.sha256).digest()[:16]
    assert got == cobs(raw)
    assert uncobs(got[1:-1]) == raw
    # and the firmware's own reader takes it, MAC and all
    assert F.decode(got, HmacSha256(CK)) == [(F.FRAME_OK, (2, 77, 5, ints))]


def test_cobs_long_frames_both_ways():
    for n in (0, 60, 61, 62, 63, 64, 127, 245, 256):
        ints = [0x11111111 * (i % 3) for i in range(n)]
        got = P.encode_request(PK, 1, 3, 4, ints)
        assert got == frame(PK, 1, 3, 4, ints)
        assert P.cobs_decode(got[1:-1]) == uncobs(got[1:-1])
        assert F.decode(got, HmacSha256(PK)) == [(F.FRAME_OK, (1, 3, 4, ints))]


def _raw(encoded):
    return uncobs(encoded.strip(b"\x00"))


def test_reply_checks():
    good = frame(CK, 2, 9, 0x81, [0, 0, 5, 6])
    verdict, r = P.check_reply(_raw(good), CK, 2, 9, 1)
    assert verdict == "ok" and (r.result, r.field, r.data) == (0, 0, [5, 6])
    bad = {
        "wrong key": frame(PK, 2, 9, 0x81, [0, 0]),
        "other counter": frame(CK, 2, 8, 0x81, [0, 0]),
        "other role": frame(CK, 1, 9, 0x81, [0, 0]),
        "not a reply": frame(CK, 2, 9, 0x01, [0, 0]),
        "other command": frame(CK, 2, 9, 0x82, [0, 0]),
        "zero MAC": frame(CK, 2, 9, 0x81, [0, 0], bytes(16)),
        "no result": frame(CK, 2, 9, 0x81, []),
    }
    for why, f in bad.items():
        assert P.check_reply(_raw(f), CK, 2, 9, 1)[0] == "forged", why
    raw = _raw(good)
    for bit in range(8 * len(raw)):
        b = bytearray(raw)
        b[bit // 8] ^= 1 << (bit % 8)
        assert P.check_reply(bytes(b), CK, 2, 9, 1)[0] == "forged", bit
    unauth = struct.pack("<BBIBH", 1, 0, 0, 0x80, 2) + struct.pack("<2i", 4, 0) + bytes(16)
    verdict, r = P.check_reply(unauth, CK, 2, 9, 1)
    assert verdict == "unauthenticated" and r.result == 4
    assert P.check_reply(None, CK, 2, 9, 1)[0] == "forged"


def test_pack_prescription_is_state_layout(tmp_path):
    p = tmp_path / "rx.toml"
    p.write_text("""
[drug]
concentration_mcg_ml = 500
[basal]
steps = [ { start = "00:00", mcg_per_day = 100 }, { start = "12:30", mcg_per_day = 200.5 } ]
[basal.weekdays]
sun = [ { start = "00:00", mcg_per_day = 50 } ]
[[periodic_bolus]]
at = "07:30"
mcg = 10
minutes = 15
[limits]
max_daily_mcg = 400
""")
    from sim.scenario import load_prescription

    ints = P.pack_prescription(load_prescription(p))
    mon = [2, 0, 100_000, 45_000_000, 200_500]
    # concentration, limit ng, no PTM (4 zeros), 1 periodic (at ms, ng, minutes), mon, tue..sat as mon, sun
    assert ints == [500, 400_000, 0, 0, 0, 0, 1, 27_000_000, 10_000, 15] + mon + [-1] * 5 + [1, 0, 50_000]
    s = P.rx_summary(load_prescription(p))
    assert s["basal_mcg_per_day"][0] == round((100 * 12.5 + 200.5 * 11.5) / 24, 3)
    assert s["daily_dose_mcg"] == round((100 * 12.5 + 200.5 * 11.5) / 24 + 10, 3)
    assert s["basal_steps"]["mon"] == [{"start": "00:00", "mcg_per_day": 100}, {"start": "12:30", "mcg_per_day": 200.5}]
    assert s["basal_steps"]["sun"] == [{"start": "00:00", "mcg_per_day": 50}]
    assert s["periodic_bolus"] == [{"at": "07:30", "mcg": 10, "minutes": 15}] and s["ptm"] is None
    # its inverse: the same prescription back, and no prescription from ints that are not one
    assert P.rx_summary(P.unpack_prescription(ints)) == s
    assert P.unpack_prescription(ints[:-1]) is None and P.unpack_prescription(ints + [0]) is None
    assert P.unpack_prescription([500, 400_000, 0, 0, 0, 0, 0] + [-2] * 7) is None


# -- arguments and keys -----------------------------------------------------------------------------------


def test_key_file_required_and_private(tmp_path, keyfile, capsys, monkeypatch):
    monkeypatch.delenv("PUMPCTL_KEY_FILE", raising=False)
    assert P.main(["--url", "socket://127.0.0.1:1", "status"]) == P.EXIT_KEY
    assert "PUMPCTL_KEY_FILE" in capsys.readouterr().err
    keyfile.chmod(0o644)
    assert ctl(keyfile, "socket://127.0.0.1:1", "status") == P.EXIT_KEY
    assert "chmod 600" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"clinician": "abcd"}')
    bad.chmod(0o600)
    assert ctl(bad, "socket://127.0.0.1:1", "status") == P.EXIT_KEY
    assert ctl(tmp_path / "none.json", "socket://127.0.0.1:1", "status") == P.EXIT_KEY


def test_no_key_option_on_the_command_line(keyfile, capsys):
    assert ctl(keyfile, "socket://127.0.0.1:1", "--key", CK.hex(), "status") == P.EXIT_USAGE
    assert ctl(keyfile, "socket://127.0.0.1:1", "status", "--key", CK.hex()) == P.EXIT_USAGE


@pytest.mark.parametrize("argv", [["frobnicate"], ["bolus", "--mcg", "1.0001", "--minutes", "5"],
                                  ["bolus", "--mcg", "x", "--minutes", "5"], ["refill", "--volume-ml", "1e-9"],
                                  ["set-clock"], ["set-clock", "mon", "25:00"], ["set-clock", "--from-host", "mon",
                                                                                 "10:00"]])
def test_bad_arguments_send_nothing(keyfile, pump, argv, capsys):
    assert ctl(keyfile, pump.url, *argv) == P.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("pumpctl: ") and err.count("\n") == 1
    assert pump.received == []


def test_connection_refused(keyfile, capsys):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    assert ctl(keyfile, f"socket://127.0.0.1:{port}", "status") == P.EXIT_CONNECT


# -- commands against the stand-in ------------------------------------------------------------------------


@freeze_time("2026-05-04 10:00:00")
def test_status_json_and_text(keyfile, pump, capsys):
    assert ctl(keyfile, pump.url, "--json", "status") == 0
    out = json.loads(capsys.readouterr().out)
    s = out["status"]
    assert out["ok"] and s["state_name"] == "delivering" and s["volume_nl"] == 18_000_000
    assert s["low_reservoir_at"] == "2026-06-28 23:20"  # 80,000 min = 55 d 13 h 20 min after 2026-05-04 10:00
    assert s["eri_at"] == "2032-11-28"  # 2400 days on
    assert s["clinician_counter"] == 1 and pump.received == [(2, 1, 1, []), (2, 2, 14, [])]
    # the stand-in's prescription (link_standin.py): 480 mcg/day every day, no periodic bolus
    rx = out["prescription"]
    assert rx["concentration_mcg_ml"] == 2000 and rx["max_daily_mcg"] == 800
    assert rx["basal_steps"] == {d: [{"start": "00:00", "mcg_per_day": 480}] for d in P.WEEKDAYS}
    assert rx["basal_mcg_per_day"] == [480] * 7 and rx["daily_dose_mcg"] == 480 and rx["periodic_bolus"] == []
    assert rx["ptm"] == {"mcg": 20, "minutes": 10, "lockout_minutes": 180, "max_per_day": 3}
    assert ctl(keyfile, pump.url, "status") == 0
    text = capsys.readouterr().out
    assert "18.000 mL" in text and "wed 10:00:00" in text and "480.000 mcg/day" in text
    assert "every day: 00:00 480 mcg/day" in text and "800 mcg in 24 h" in text and "lockout 180 min" in text


def test_status_with_the_patient_key_has_no_prescription(tmp_path, keyfile, pump, capsys):
    patient = tmp_path / "patient.json"
    patient.write_text(json.dumps({"patient": PK.hex()}))
    patient.chmod(0o600)
    for keys, argv in ((patient, ["status"]), (keyfile, ["status", "--patient"])):
        pump.received.clear()
        assert ctl(keys, pump.url, "--json", *argv) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["ok"] and out["prescription"] is None and [r[:3:2] for r in pump.received] == [(1, 1)]
        assert ctl(keys, pump.url, *argv) == 0
        cap = capsys.readouterr()
        assert "delivering" in cap.out and "prescription" not in cap.out and not cap.err


def test_a_reply_that_is_no_prescription_is_not_believed(keyfile, capsys):
    for data in ([], [2000, 800_000, 20_000, 10, 180, 3, 0, 1, 0, 480_000, -1, -1, -1, -1, -1],
                 [2000, 800_000, 20_000, 10, 180, 3, 0, 1, 0, 480_000] + [-7] * 6):
        s = StandIn(CK, PK, {14: (0, 0, data)})
        try:
            assert ctl(keyfile, s.url, "status") == P.EXIT_BAD_REPLY, data
            assert "not a prescription" in capsys.readouterr().err
        finally:
            s.close()


def test_every_command_sends_its_ints(keyfile, pump, capsys, tmp_path):
    runs = [(["ptm"], 1, 2, []), (["bolus", "--mcg", "12.5", "--minutes", "30"], 2, 5, [0, 12_500, 30]),
            (["bolus", "--mcg", "80", "--minutes", "30", "--confirm-increase"], 2, 5, [1, 80_000, 30]),
            (["cancel"], 2, 6, []), (["refill", "--volume-ml", "19.5", "--concentration", "1000"], 2, 7,
                                     [19_500_000, 1000]),
            (["prime"], 2, 8, [0]), (["prime", "--catheter-cm", "12"], 2, 8, [12]),
            (["set-clock", "fri", "13:05:09"], 2, 9, [4, (13 * 3600 + 5 * 60 + 9) * 1000]),
            (["silence"], 2, 10, []), (["suspend"], 2, 11, []), (["resume"], 2, 12, []),
            (["alarm-options", "--critical-repeat-minutes", "5"], 2, 13, [5])]
    for argv, role, command, ints in runs:
        pump.received.clear()
        assert ctl(keyfile, pump.url, *argv) == 0, argv
        r = pump.received[-1]
        assert (r[0], r[2], r[3]) == (role, command, ints), argv
    capsys.readouterr()


def test_refill_default_concentration_and_dates(keyfile, pump, capsys):
    with freeze_time("2026-01-05 08:00:00"):
        assert ctl(keyfile, pump.url, "--json", "refill", "--volume-ml", "20") == 0
    out = json.loads(capsys.readouterr().out)
    assert [r[2:] for r in pump.received] == [(1, []), (7, [20_000_000, 2000])]  # status gave 2000 mcg/mL
    assert out["low_reservoir_at"] == "2026-01-06 08:00" and out["empty_at"] == "2026-01-08 08:00"


@freeze_time("2026-03-12 17:45:30.250")  # a Thursday
def test_set_clock_from_host(keyfile, pump, capsys):
    assert ctl(keyfile, pump.url, "set-clock", "--from-host") == 0
    assert pump.received[-1][2:] == (9, [3, (17 * 3600 + 45 * 60 + 30) * 1000 + 250])
    assert "thu 17:45:30" in capsys.readouterr().out


def test_log_pages_until_short(keyfile, pump, capsys):
    assert ctl(keyfile, pump.url, "--json", "log") == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["seq"] for e in out["events"]] == list(range(45))
    assert [r[3] for r in pump.received] == [[0, 40], [40, 40]]
    assert out["events"][1] == {"seq": 1, "t_s": 3600, "code": 20, "event": out["events"][1]["event"], "a": 1, "b": 0,
                                "c": 0}
    assert ctl(keyfile, pump.url, "log", "--since", "44") == 0
    assert "day 1    20:00:00" in capsys.readouterr().out


def test_program_shows_asks_and_sends(keyfile, pump, capsys):
    rx = "sim/scenarios/default.toml"
    # in force, as another programmer left it (_pack_rx's layout, written here): 2000 mcg/mL, limit
    # 900 mcg, no PTM, a periodic 30 mcg over 20 min at 08:00, 400 mcg/day until 12:00 then 500 on
    # mon..sat, 450 mcg/day on sunday
    pump.prescription = [2000, 900_000, 0, 0, 0, 0, 1, 8 * 3_600_000, 30_000, 20, 2, 0, 400_000, 12 * 3_600_000,
                         500_000, -1, -1, -1, -1, -1, 1, 0, 450_000]
    asked = []
    assert ctl(keyfile, pump.url, "program", rx, ask=lambda q: asked.append(q) or False) == P.EXIT_DECLINED
    assert asked and [r[2] for r in pump.received] == [14]  # the pump's prescription for the old side, no program
    out = capsys.readouterr().out
    lines = {line[:22].strip(): line[22:].split() for line in out.splitlines()}
    assert lines["concentration mcg/mL"] == ["2000", "2000"]
    assert lines["basal mon mcg/day"] == ["450", "510"] and lines["basal sun mcg/day"] == ["450", "510"]
    assert lines["periodic mcg/day"] == ["30", "40"] and lines["limit mcg/24 h"] == ["900", "800"]
    assert lines["PTM"][0] == "none" and lines["daily dose mcg"] == ["480", "550"]
    assert lines["daily dose change"] == [f"{(550 - 480) / 480 * 100:+.1f}", "%"]
    assert ctl(keyfile, pump.url, "program", rx, ask=lambda q: True) == 0
    from sim.scenario import load_prescription

    sent = pump.received[-1]
    assert sent[2] == 4 and sent[3] == [0] + P.pack_prescription(load_prescription(rx))
    capsys.readouterr()
    # the next program shows the pump's prescription, the one just programmed, and no change
    assert ctl(keyfile, pump.url, "--json", "program", rx, "--yes", "--confirm-increase") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["old"] == out["new"] and out["daily_dose_change_percent"] == 0 and pump.received[-1][3][0] == 1
    assert [r[2] for r in pump.received] == [14, 14, 4, 14, 4]


def test_refusals_have_their_exit_codes(keyfile, capsys):
    cases = [({5: (27, 1, [])}, ["bolus", "--mcg", "60", "--minutes", "5"], P.EXIT_CONFIRM, "--confirm-increase"),
             ({5: (24, 2, [])}, ["bolus", "--mcg", "60", "--minutes", "5"], P.EXIT_REFUSED, "OUT_OF_RANGE (field 2)"),
             ({11: (25, 0, [])}, ["suspend"], P.EXIT_REFUSED, "INVALID_STATE"),
             ({2: (30, 0, [1])}, ["ptm"], P.EXIT_REFUSED, "PTM_REFUSED (lockout)"),
             ({1: (26, 0, [540_000])}, ["status"], P.EXIT_DENIED, "LOCKED_OUT (540 s left)"),
             ({1: (31, 0, [])}, ["status"], P.EXIT_DENIED, "NOT_PROVISIONED"),
             ({6: (23, 0, [])}, ["cancel"], P.EXIT_DENIED, "ROLE_NOT_ALLOWED")]
    for script, argv, code, text in cases:
        s = StandIn(CK, PK, script)
        try:
            assert ctl(keyfile, s.url, "--json", *argv) == code, argv
            cap = capsys.readouterr()
            assert text in cap.err and cap.err.count("\n") == 1
            assert json.loads(cap.out)["exit"] == code
        finally:
            s.close()


def test_counters_survive_and_resync(keyfile, pump, capsys):
    for _ in range(3):
        assert ctl(keyfile, pump.url, "status") == 0  # STATUS, then PRESCRIPTION
    assert [r[1] for r in pump.received] == [1, 2, 3, 4, 5, 6]
    state = json.loads(open(str(keyfile) + ".state").read())
    assert state["clinician"] == 6 and oct(os.stat(str(keyfile) + ".state").st_mode & 0o777) == "0o600"
    os.remove(str(keyfile) + ".state")  # the host lost its counters: the pump's REPLAY says where it is
    assert ctl(keyfile, pump.url, "status") == 0
    assert [r[1] for r in pump.received] == [1, 2, 3, 4, 5, 6, 7, 8]
    capsys.readouterr()


def test_replay_of_the_counter_just_sent_stops(keyfile, capsys):
    def already(role, counter, ints):  # as if a copy of this very frame had been accepted first
        return frame(CK, role, counter, 0x85, [20, 0, counter])

    s = StandIn(CK, PK, {5: already})
    try:
        assert ctl(keyfile, s.url, "bolus", "--mcg", "5", "--minutes", "5") == P.EXIT_BAD_REPLY
        assert "may have taken effect" in capsys.readouterr().err
        assert len(s.received) == 1  # not sent twice
    finally:
        s.close()


def test_forged_and_missing_replies(keyfile, capsys):
    forgers = {
        "other key": lambda role, counter, ints: frame(PK, role, counter, 0x81, [0, 0] + [0] * 16),
        "other counter": lambda role, counter, ints: frame(CK, role, counter + 1, 0x81, [0, 0] + [0] * 16),
        "unauthenticated OK": lambda role, counter, ints: cobs(
            struct.pack("<BBIBH", 1, 0, 0, 0x80, 2) + struct.pack("<2i", 0, 0) + bytes(16)),
        "garbage": lambda role, counter, ints: b"\x00\x05\x01\x02\x03\x04\x00",
        "silence": lambda role, counter, ints: b"",
    }
    for why, f in forgers.items():
        s = StandIn(CK, PK, {1: f})
        try:
            code = ctl(keyfile, s.url, "status")
            assert code == (P.EXIT_NO_REPLY if why == "silence" else P.EXIT_BAD_REPLY), why
            assert capsys.readouterr().err.count("\n") == 1
        finally:
            s.close()


# -- through a man in the middle ----------------------------------------------------------------------------


def test_mitm_tampering_is_caught(keyfile, pump, capsys):
    raw_len = 25
    for bit in range(0, 8 * raw_len, 13):  # a bit of the reply flipped: never believed
        m = Mitm(pump.port, flip_bit("down", 8 + bit))
        try:
            assert ctl(keyfile, m.url, "status", timeout="0.3") in (P.EXIT_BAD_REPLY, P.EXIT_NO_REPLY), bit
        finally:
            m.close()
    before = len(pump.received)
    for bit in range(8, 8 * 26, 11):  # a bit of the request flipped: the pump never acts on it
        m = Mitm(pump.port, flip_bit("up", bit))
        try:
            assert ctl(keyfile, m.url, "suspend", timeout="0.3") in (P.EXIT_BAD_REPLY, P.EXIT_DENIED), bit
        finally:
            m.close()
    assert len(pump.received) == before
    for start in range(0, 40, 6):  # bytes of the reply dropped
        m = Mitm(pump.port, drop_bytes("down", start, 2))
        try:
            assert ctl(keyfile, m.url, "status", timeout="0.3") in (P.EXIT_BAD_REPLY, P.EXIT_NO_REPLY), start
        finally:
            m.close()
    capsys.readouterr()


def test_mitm_replay_is_refused(keyfile, pump, capsys):
    m = Mitm(pump.port)
    try:
        assert ctl(keyfile, m.url, "suspend") == 0
        request = m.recorded("up")[0]
        n = len(pump.received)
        conn = m.inject(request)  # the recorded frame again, on a connection of the attacker's own
        conn.settimeout(2)
        answer = conn.recv(4096)
        conn.close()
        assert len(pump.received) == n
        (code, _), = F.decode(answer, HmacSha256(CK))  # authentic, and it says REPLAY
        raw = uncobs(answer.strip(b"\x00"))
        assert struct.unpack_from("<2i", raw, 9) == (20, 0)
    finally:
        m.close()
    m = Mitm(pump.port, duplicate("up"))  # the request twice in a row: the copy is refused
    try:
        assert ctl(keyfile, m.url, "resume") == 0
        assert [r[2] for r in pump.received].count(12) == 1
    finally:
        m.close()
    capsys.readouterr()


def test_now_for_dates_is_host_time():
    with freeze_time("2026-01-01 00:00:00"):
        assert P.at_date(dt.datetime.now(), 90) == "2026-01-01 01:30"
        assert P.at_date(dt.datetime.now(), -1) is None
