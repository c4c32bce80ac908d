"""pumpsim serve's parts that need no firmware/link.py: the TCP LinkPort (sim/tcp_port.py), the clock
paced against the wall clock and woken by the link's bytes, the key file, Ctrl-C's outputs."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time

from sim import scenario
from sim.serve import ServeRun, write_keys
from sim.tcp_port import TcpPort


def _until(cond, timeout_s=2.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_tcp_port_one_client_at_a_time():
    port = TcpPort(0)
    try:
        buf = bytearray(8)
        assert port.any() == 0 and port.readinto(buf, 8) == 0
        port.write(b"nobody", 6)  # no client: dropped, no error
        a = socket.create_connection(port.address)
        b = socket.create_connection(port.address)  # waits in the backlog
        a.sendall(b"hello, pump")
        b.sendall(b"second")
        assert _until(lambda: port.any() == 11)
        assert port.readinto(buf, 8) == 8 and bytes(buf) == b"hello, p"
        assert port.readinto(buf, 8) == 3 and bytes(buf[:3]) == b"ump"
        port.write(b"reply!xx", 6)
        a.settimeout(2)
        assert a.recv(100) == b"reply!"
        a.sendall(b"last")
        a.close()  # what it sent before going is still read; then the next client is served
        assert _until(lambda: port.any() == 4)
        assert port.readinto(buf, 8) == 4 and bytes(buf[:4]) == b"last"
        assert _until(lambda: port.any() == 6) and port.clients == 2
        assert port.readinto(buf, 8) == 6 and bytes(buf[:6]) == b"second"
        port.write(b"to b", 4)
        b.settimeout(2)
        assert b.recv(100) == b"to b"
        b.close()
    finally:
        port.close()


def test_key_file_is_private_json(tmp_path):
    old = tmp_path / "k.json.tmp"
    old.write_text("stale")
    old.chmod(0o644)  # a stale temporary file's mode must not leak into the key file
    path = write_keys(tmp_path / "k.json", b"\x01" * 32, b"\x02" * 32)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text()) == {"clinician": "01" * 32, "patient": "02" * 32}


def test_clock_keeps_pace_and_wakes_for_the_link():
    sc = scenario.builtin("default", 2)
    port = TcpPort(0)
    try:
        run = ServeRun(sc, port, 1000.0)  # 1000 simulated s per s
        run.link_port = port  # as if PumpLoop took it (firmware/link.py): the pacer watches the port
        run._wall0, run._sim0 = time.monotonic(), run.clock.now_ms
        c = socket.create_connection(port.address)
        t0 = time.monotonic()
        # nothing for the firmware to do before its next deadline: the wait keeps pace with the wall
        deadline = run.loop.deadline()
        due_ms = run.clock.to_ms(deadline)
        assert run.wait(deadline, run.loop.ready)
        wall = time.monotonic() - t0
        assert abs(wall - due_ms / 1000 / 1000) < 0.5, (wall, due_ms)  # loose: other tests share the cores
        # bytes on the link wake it before its deadline, at the simulated time the wall clock gives
        c.sendall(b"\x00\x01")
        sent = time.monotonic()
        deadline = run.clock.ticks_add(run.clock.ticks_ms(), 3_600_000)  # an hour ahead: 3.6 s of wall
        assert run.wait(deadline, run.loop.ready)
        woke = time.monotonic()
        assert woke - sent < 0.5
        expect_ms = (woke - run._wall0) * 1000 * 1000
        assert abs(run.clock.now_ms - expect_ms) < 200 * 1000, (run.clock.now_ms, expect_ms)
        c.close()
    finally:
        port.close()


def test_ctrl_c_writes_the_outputs(tmp_path):
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "sim.cli", "serve", "--port", "0", "--speed", "7200", "--no-plot",
                          "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        first = p.stdout.readline()
        assert "socket://127.0.0.1:" in first
        port = int(first.split("socket://127.0.0.1:")[1].split(")")[0])
        socket.create_connection(("127.0.0.1", port)).close()  # it listens
        time.sleep(1.0)  # 2 simulated hours
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 0, stderr
    assert "stopped after" in stdout and f"outputs in {out}/" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["days"] == 1  # the day in progress, run to its end
