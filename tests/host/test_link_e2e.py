"""End to end (issue 15 §4): `pumpsim serve` and `pumpctl` as subprocesses over loopback, through
every command, and the attacks through a protocol-blind man in the middle (tests/host/mitm.py),
against the real firmware (firmware/link.py). Skipped, with the reason, until that module exists.

`pytest -s` prints the round-trip times of `pumpctl status`."""

import importlib.util
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("firmware.link") is None,
                                reason="firmware/link.py (issue 15's command layer) is not in this tree yet")

from tests.host.link_standin import frame, uncobs  # noqa: E402  (frames built here, with struct and hmac)
from tests.host.mitm import Mitm, flip_bit  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SPEED = 60  # simulated s per wall s: the link's 10-minute lockout lasts 10 s
SCENARIO = """
name = "e2e"
days = 30
[pump]
reservoir_ml = 20
volume_ml = 10.0
[drug]
concentration_mcg_ml = 2000
[basal]
steps = [ { start = "00:00", mcg_per_day = 480 } ]
[ptm]
mcg = 20
minutes = 10
lockout_minutes = 180
max_per_day = 3
[limits]
max_daily_mcg = 800
"""


class Served:
    def __init__(self, tmp):
        self.tmp = tmp
        (tmp / "e2e.toml").write_text(SCENARIO)
        self.keys = tmp / "keys.json"
        self.out = tmp / "out"
        self.p = subprocess.Popen([sys.executable, "-m", "sim.cli", "serve", str(tmp / "e2e.toml"), "--port", "0",
                                   "--speed", str(SPEED), "--key-file", str(self.keys), "--out", str(self.out),
                                   "--no-plot"], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        first = self.p.stdout.readline()
        self.port = int(first.split("socket://127.0.0.1:")[1].split(")")[0])
        self.url = f"socket://127.0.0.1:{self.port}"
        assert str(self.keys) in self.p.stdout.readline()
        k = json.loads(self.keys.read_text())
        self.ck, self.pk = bytes.fromhex(k["clinician"]), bytes.fromhex(k["patient"])

    def ctl(self, *argv, url=None, keys=None):
        r = subprocess.run([sys.executable, "-m", "sim.pumpctl", "--url", url or self.url, "--json", *argv], cwd=ROOT,
                           env={**ENV, "PUMPCTL_KEY_FILE": str(keys or self.keys)}, capture_output=True, text=True,
                           timeout=30)
        assert r.stderr.count("\n") == (0 if r.returncode == 0 else 1), r.stderr
        return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None

    def status(self):
        code, out = self.ctl("status")
        assert code == 0, out
        return out["status"]

    def status_rx(self):
        code, out = self.ctl("status")
        assert code == 0, out
        return out["prescription"]

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        return self.p.communicate(timeout=120)


@pytest.fixture
def served(tmp_path):
    s = Served(tmp_path)
    yield s
    if s.p.poll() is None:
        s.p.kill()
        s.p.communicate()


def _raw_exchange(port, data, timeout_s=3.0):
    """Sends bytes on a connection of its own; the frames that come back (decoded; None: not COBS),
    once a whole frame came and nothing more for 0.3 s."""
    got = b""
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(data)
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            c.settimeout(0.3 if any(got.split(b"\x00")[:-1]) else max(0.01, end - time.monotonic()))
            try:
                chunk = c.recv(4096)
            except TimeoutError:
                if any(got.split(b"\x00")[:-1]):
                    break
                continue
            if not chunk:
                break
            got += chunk
    return [uncobs(x) for x in got.split(b"\x00")[:-1] if x]


def _result(raw):
    return struct.unpack_from("<i", raw, 9)[0]


def test_every_command_and_ctrl_c(served):
    from firmware.loop import STATE_NAMES

    s0 = served.status()
    assert s0["state_name"] == "delivering" and s0["volume_nl"] <= 10_000_000
    assert s0["concentration_mcg_ml"] == 2000 and s0["clinician_counter"] == 1
    code, out = served.ctl("ptm")
    assert code == 0 and out["granted_ng"] == 20_000
    code, out = served.ctl("ptm")  # inside the 180-minute lockout
    assert code == 7 and out["result"] == "PTM_REFUSED"
    code, out = served.ctl("bolus", "--mcg", "10", "--minutes", "30")
    assert code == 0 and out["granted_ng"] == 10_000
    assert served.ctl("cancel")[0] == 0
    code, out = served.ctl("refill", "--volume-ml", "5")
    assert code == 0 and out["empty_min"] > out["low_reservoir_min"] > 0
    assert served.status()["volume_nl"] > 14_000_000
    assert served.ctl("program", str(served.tmp / "e2e.toml"), "--yes")[0] == 0
    assert served.ctl("set-clock", "--from-host")[0] == 0
    assert served.ctl("alarm-options", "--critical-repeat-minutes", "5")[0] == 0
    assert served.ctl("suspend")[0] == 0
    assert STATE_NAMES[served.status()["state"]] == "suspended"
    code, out = served.ctl("suspend")
    assert code == 7 and out["result"] == "INVALID_STATE"
    assert served.ctl("silence")[0] in (0, 7)  # the suspended alarm: non-critical
    assert served.ctl("resume")[0] == 0
    assert served.ctl("prime", "--catheter-cm", "5")[0] in (0, 7)
    code, out = served.ctl("log")
    assert code == 0 and len(out["events"]) >= 5
    st = served.status()
    assert st["events_logged_total"] >= len(out["events"]) and st["patient_counter"] == 2
    stdout, stderr = served.stop()
    assert served.p.returncode == 0, stderr
    assert (served.out / "summary.json").exists() and "stopped after" in stdout


# Another prescription, as another host programs it: flex basal, a Saturday of its own, a periodic bolus.
OTHER = """
[drug]
concentration_mcg_ml = 2000
[basal]
steps = [ { start = "00:00", mcg_per_day = 500 }, { start = "08:00", mcg_per_day = 450.5 },
          { start = "20:00", mcg_per_day = 520 } ]
[basal.weekdays]
sat = [ { start = "00:00", mcg_per_day = 470 } ]
[[periodic_bolus]]
at = "07:30"
mcg = 15
minutes = 20
[ptm]
mcg = 10
minutes = 10
lockout_minutes = 120
max_per_day = 4
[limits]
max_daily_mcg = 700
"""


def _expected_rx(toml_text):
    """What pumpctl must show of a prescription, from its TOML by this test's own arithmetic."""
    t = tomllib.loads(toml_text)

    def minutes(hhmm):
        h, m = hhmm.split(":")
        return int(h) * 60 + int(m)

    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    steps = {d: t["basal"].get("weekdays", {}).get(d, t["basal"]["steps"]) for d in days}
    basal = []
    for d in days:
        ends = [minutes(x["start"]) for x in steps[d][1:]] + [1440]
        basal.append(sum(x["mcg_per_day"] * (end - minutes(x["start"])) for x, end in zip(steps[d], ends)) / 1440)
    periodic = t.get("periodic_bolus", [])
    ptm = t["ptm"]
    return {"concentration_mcg_ml": t["drug"]["concentration_mcg_ml"],
            "basal_steps": {d: [{"start": x["start"], "mcg_per_day": x["mcg_per_day"]} for x in steps[d]] for d in days},
            "basal_mcg_per_day": [round(x, 3) for x in basal],
            "periodic_bolus": [{"at": b["at"], "mcg": b["mcg"], "minutes": b["minutes"]} for b in periodic],
            "ptm": {"mcg": ptm["mcg"], "minutes": ptm["minutes"], "lockout_minutes": ptm["lockout_minutes"],
                    "max_per_day": ptm["max_per_day"]},
            "max_daily_mcg": t["limits"]["max_daily_mcg"],
            "daily_dose_mcg": round(max(basal) + sum(b["mcg"] for b in periodic), 3)}


def _shown(rx):
    return {k: rx[k] for k in ("concentration_mcg_ml", "basal_steps", "basal_mcg_per_day", "periodic_bolus", "ptm",
                               "max_daily_mcg", "daily_dose_mcg")}


def test_status_and_program_show_the_pumps_prescription(served):
    mine = _expected_rx(SCENARIO)
    code, out = served.ctl("status")
    assert code == 0 and _shown(out["prescription"]) == mine
    r = subprocess.run([sys.executable, "-m", "sim.pumpctl", "--url", served.url, "status"], cwd=ROOT,
                       env={**ENV, "PUMPCTL_KEY_FILE": str(served.keys)}, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "every day: 00:00 480 mcg/day" in r.stdout and "800 mcg in 24 h" in r.stdout
    # another host (its own counters, the same keys) programs another prescription
    other_dir = served.tmp / "other-host"
    other_dir.mkdir()
    other_keys = other_dir / "keys.json"
    other_keys.write_text(served.keys.read_text())
    other_keys.chmod(0o600)
    (other_dir / "other.toml").write_text(OTHER)
    theirs = _expected_rx(OTHER)
    code, out = served.ctl("program", str(other_dir / "other.toml"), "--yes", keys=other_keys)
    assert code == 0 and _shown(out["old"]) == mine and _shown(out["new"]) == theirs
    # this host sees it in force: in status, and as the old side of its own program
    code, out = served.ctl("status")
    assert code == 0 and _shown(out["prescription"]) == theirs
    code, out = served.ctl("program", str(served.tmp / "e2e.toml"), "--yes")
    assert code == 0 and _shown(out["old"]) == theirs and _shown(out["new"]) == mine
    change = (mine["daily_dose_mcg"] - theirs["daily_dose_mcg"]) / theirs["daily_dose_mcg"] * 100
    assert out["daily_dose_change_percent"] == pytest.approx(change)
    assert _shown(served.status_rx()) == mine
    # the patient's key alone: the status the patient may see, no prescription, no error
    patient_keys = served.tmp / "patient.json"
    patient_keys.write_text(json.dumps({"patient": served.pk.hex()}))
    patient_keys.chmod(0o600)
    code, out = served.ctl("status", keys=patient_keys)
    assert code == 0 and out["prescription"] is None and out["status"]["state_name"] == "delivering"


def test_attacks_change_nothing(served):
    s0 = served.status()
    good = frame(served.ck, 2, 1000, 11, [])  # SUSPEND, counter 1000
    # no MAC, a wrong key, the patient key on a clinician command, a truncated and an oversized frame
    cases = {
        "no MAC": (frame(served.ck, 2, 1000, 11, [])[:-17] + b"\x00", None),
        "wrong key": (frame(b"\x07" * 32, 2, 1000, 11, []), 9),
        "patient key": (frame(served.pk, 1, 1000, 11, []), 23),
        "truncated": (good[:10] + b"\x00", None),
        "oversized": (frame(served.ck, 2, 1001, 11, [0] * 300), None),
        "counter at its maximum": (frame(served.ck, 2, 2**30 - 1, 11, []), (21, 22)),  # out of window, or exhausted
    }
    for why, (data, code) in cases.items():
        replies = _raw_exchange(served.port, data)
        assert replies, why
        r = _result(replies[-1])
        assert r != 0 and (code is None or r in (code if isinstance(code, tuple) else (code,))), (why, r)
    s1 = served.status()
    assert s1["state"] == s0["state"] and s1["held_bits"] == s0["held_bits"]
    # garbage between frames: the good frame after it is read
    last = json.loads(Path(str(served.keys) + ".state").read_text())["clinician"]  # status's PRESCRIPTION came after
    replies = _raw_exchange(served.port, b"\x13\x37garbage\x00\xff\xfe" + frame(served.ck, 2, last + 1, 1, []))
    assert _result(replies[-1]) == 0


def test_mitm_replay_bitflip_and_lockout(served):
    m = Mitm(served.port)
    try:
        assert served.ctl("suspend", url=m.url)[0] == 0
        assert served.ctl("resume", url=m.url)[0] == 0
        suspend = m.recorded("up")[0]
        conn = m.inject(suspend)  # the recorded suspend again: REPLAY, and the pump stays delivering
        conn.settimeout(3)
        raw = uncobs(conn.recv(4096).strip(b"\x00"))
        conn.close()
        assert _result(raw) == 20
        assert served.status()["state_name"] == "delivering"
    finally:
        m.close()
    for bit in (20, 45, 70, 100, 150):  # a bit of the request flipped on its way
        m = Mitm(served.port, flip_bit("up", bit))
        try:
            assert served.ctl("suspend", url=m.url)[0] in (6, 9)
        finally:
            m.close()
    assert served.status()["state_name"] == "delivering"
    # 5 bad MACs within 10 minutes lock the link for 10 minutes (10 s here), then it answers again
    for i in range(5):
        _raw_exchange(served.port, frame(b"\x01" * 32, 2, 5000 + i, 1, []))
    code, out = served.ctl("status")
    assert code == 9 and out["result"] == "LOCKED_OUT", (code, out)
    time.sleep(600 / SPEED + 1)
    assert served.ctl("status")[0] == 0


def test_status_round_trip_time(served):
    from sim import pumpctl as P

    keys = P.load_keys(served.keys)
    counters = P.Counters(served.keys, keys)
    port = P.open_port(served.url)
    try:
        link = P.Link(port, keys, counters)
        times = []
        for _ in range(30):
            t = time.perf_counter()
            assert link.request(P.CLINICIAN, P.STATUS, []).result == P.OK
            times.append(time.perf_counter() - t)
    finally:
        port.close()
        counters.close()
    t = time.perf_counter()
    assert served.ctl("status")[0] == 0
    whole = time.perf_counter() - t
    print(f"\npumpctl status round trip: median {statistics.median(times) * 1000:.1f} ms, max "
          f"{max(times) * 1000:.1f} ms (30 in process); the whole command as a process {whole * 1000:.0f} ms")
    assert statistics.median(times) < 0.5
