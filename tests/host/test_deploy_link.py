"""A board deployed with make deploy answers pumpctl (issue 15 "Done means"): the serial test board
(tests/host/serial_board.py: the unix port's REPL on a pseudo-terminal, the board's virtual port
and its flash kept across resets) gets the build, a board.json with a journal and the link on its
USB serial stream, and the keys; then pumpctl, the host client, talks to it over the pseudo-terminal
as it would over /dev/ttyACM0."""

import json
import os
import stat
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # serial_board

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MP = os.path.join(ROOT, ".venv", "bin", "micropython")
VIRTUAL_PORT = {"rpi_pico": "rp2", "pyboard": "stm32"}  # boards whose journal set-up lives on the flash chip
NL_PER_ML = 1_000_000


def _run(*cmd, env=None, timeout=120):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def _pumpctl(url, key_file, *args, timeout=6):
    r = _run(sys.executable, "-m", "sim.pumpctl", "--url", url, "--key-file", str(key_file), "--timeout", "5", "--json",
             *args, timeout=60)
    out = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
    return r.returncode, out, r.stderr


def _set_up_flash(port, board, flash_dir):
    """The student's one-time set-up of the journal's region, on the flash the board will boot on."""
    virtual = os.path.join(ROOT, "boards", "virtual")
    code = ("import vflash\nfrom hal.machine_storage import defaults\n"
            "vflash.set_up_journal(%r, defaults(%r))\n" % (port, board))
    r = _run(MP, "-c", code, env={"MICROPYPATH": f"{virtual}/{port}:{virtual}:{ROOT}",
                                  "VIRTUAL_FLASH_DIR": str(flash_dir)})
    assert r.returncode == 0, r.stderr + r.stdout


@pytest.mark.parametrize("board", sorted(VIRTUAL_PORT))
def test_a_board_deployed_with_its_link_on_usb_answers_pumpctl_status(board, tmp_path):
    from serial_board import SerialBoard

    if not os.access(MP, os.X_OK):
        pytest.skip("no MicroPython unix port (make .venv)")
    port = VIRTUAL_PORT[board]
    with open(os.path.join(ROOT, "boards", board, "board.json")) as f:
        cfg = json.load(f)
    cfg["journal"] = {}
    cfg["link"] = {"port": "usb"}
    config = tmp_path / "board.json"
    config.write_text(json.dumps(cfg))
    key_file = tmp_path / "keys" / "pump.json"
    flash = tmp_path / "flash"
    flash.mkdir()
    _set_up_flash(port, board, flash)
    fs = tmp_path / "board"
    fs.mkdir()
    assert _run("tools/build_board.sh", board).returncode == 0
    serial = SerialBoard(MP, str(fs), port, flash_dir=flash)
    try:
        t0 = time.monotonic()
        r = _run("tools/deploy.sh", board, serial.port, env={"CONFIG": str(config), "KEY_FILE": str(key_file)})
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"deploy: link keys: made {key_file}" in r.stdout, r.stdout
        assert f"pumpctl --url {serial.port} --key-file {key_file} status" in r.stdout, r.stdout
        # the host's key file: the user's alone; the board's copy journaled at boot, then removed
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        boot = serial.read_until("Link: on this USB serial port")
        assert "Link: keys provisioned into the journal" in boot, boot
        assert "pump stopped" not in boot and "Traceback" not in boot, boot
        assert not (fs / "link_keys.bin").exists()
        keys = json.loads(key_file.read_text())
        assert len(bytes.fromhex(keys["clinician"])) == 32 and keys["clinician"] != keys["patient"]

        code, out, err = _pumpctl(serial.port, key_file, "status")
        assert code == 0, (out, err)
        status = out["status"]
        # the toy's reservoir, from board.json: its empty mark (0.5 mL) and a 250 nL sip per sip, less
        # the sips (one every sip_every_s) since the board booted
        drunk_nl = NL_PER_ML // 2 + cfg["toy"]["sips"] * 250 - status["volume_nl"]
        most = (int(time.monotonic() - t0) // cfg["toy"]["sip_every_s"] + 1) * 250
        assert drunk_nl % 250 == 0 and 0 <= drunk_nl <= most, (drunk_nl, most)
        assert status["state_name"] == "delivering" and status["alarms"] == []
        assert status["clinician_counter"] >= 1
        code, out, err = _pumpctl(serial.port, key_file, "status", "--patient")
        assert code == 0 and out["status"]["patient_counter"] >= 1, (out, err)

        # another key: refused by its MAC (pumpctl's exit 9), and the pump goes on
        other = tmp_path / "other.json"
        other.write_text(json.dumps({"clinician": "11" * 32, "patient": "22" * 32}))
        other.chmod(0o600)
        code, out, err = _pumpctl(serial.port, other, "status")
        assert code == 9 and out.get("result") == "BAD_MAC", (out, err)

        # a reset: the keys and the replay counters come back from the journal, nothing is asked again.
        # Not on the pyboard: its journal syncs rewrite a whole flash sector, and a reset inside one
        # loses the sector (boards/README.md "The journal's flash region": a bench board only).
        if board == "pyboard":
            return
        serial.press_reset()
        again = serial.read_until("Link: on this USB serial port")
        assert "Link: keys provisioned" not in again and "Link: no keys" not in again, again
        assert "Restarted from the journal" in again, again
        code, out, err = _pumpctl(serial.port, key_file, "status")
        assert code == 0 and out["status"]["clinician_counter"] > status["clinician_counter"], (out, err)
        assert serial.hard_resets == 2  # deploy's reset, then the button

        # The link is the only way in: mpremote's Ctrl-C is data to it, so deploy cannot get in ...
        env = {"CONFIG": str(config), "KEY_FILE": str(key_file)}
        r = _run("tools/deploy.sh", board, serial.port, env=env)
        assert r.returncode == 1 and "press the board's reset button" in r.stderr, r.stdout + r.stderr
        code, out, err = _pumpctl(serial.port, key_file, "status")  # and the pump answers on
        assert code == 0, (out, err)
        # ... until the reset button: in the 3 s before the link takes the port, it does
        serial.press_reset()
        r = _run("tools/deploy.sh", board, serial.port, env=env)
        assert r.returncode == 0 and f"deploy: link keys: kept {key_file}" in r.stdout, r.stdout + r.stderr
        again = serial.read_until("Link: on this USB serial port")
        assert "Link: keys in the journal already" in again, again
    finally:
        serial.close()


def test_make_deploy_keeps_a_boards_key_file_and_refuses_a_readable_one(tmp_path):
    # tools/link_keys.py alone: the key file is made once and kept; the board's copy is its two keys
    key_file = tmp_path / "k.json"
    copy = tmp_path / "k.bin"
    r = _run(sys.executable, "tools/link_keys.py", str(key_file), str(copy))
    assert r.returncode == 0 and r.stdout.strip() == f"made {key_file}", r.stdout + r.stderr
    keys = json.loads(key_file.read_text())
    assert copy.read_bytes() == bytes.fromhex(keys["clinician"]) + bytes.fromhex(keys["patient"])
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600
    r = _run(sys.executable, "tools/link_keys.py", str(key_file), str(copy))
    assert r.returncode == 0 and r.stdout.strip() == f"kept {key_file}"
    assert json.loads(key_file.read_text()) == keys
    key_file.chmod(0o644)
    r = _run(sys.executable, "tools/link_keys.py", str(key_file), str(copy))
    assert r.returncode == 1 and "readable by others" in r.stderr, r.stderr
