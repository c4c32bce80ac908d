"""The board tooling without a board: shipped configs, make mpy BOARD=..., make deploy's failure
line, and package.json / manifest.py in step with the source tree."""

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # serial_board

from firmware.config import BOARDS, load

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = {"rpi_pico": {"steps_rp2"}, "esp32": {"steps_esp32", "steps_timer"}, "pyboard": {"steps_pyb", "steps_timer"}}
STORAGE = {"rpi_pico": {"storage_rp2"}, "esp32": {"storage_esp32"}, "pyboard": {"storage_pyb"}}  # the port's flash
VIRTUAL_PORT = {"rpi_pico": "rp2", "esp32": "esp32", "pyboard": "stm32"}  # boards/virtual/<port>, as make demo


def _run(*cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, **kw)


@pytest.mark.parametrize("board", BOARDS)
def test_each_shipped_board_json_is_valid_for_its_board(board):
    with open(os.path.join(ROOT, "boards", board, "board.json")) as f:
        text = f.read()
    c = load(text, board)
    assert c.board == board and c.rx is not None and c.pump.stroke_nl > 0
    other = next(b for b in BOARDS if b != board)
    with pytest.raises(ValueError, match=f"board.json: board: is '{board}', but this is the {other}'s main.py"):
        load(text, other)


@pytest.mark.parametrize("board", BOARDS)
def test_make_mpy_builds_one_board_with_only_its_step_engines(board):
    r = _run("tools/build_board.sh", board)
    assert r.returncode == 0, r.stderr
    out = os.path.join(ROOT, "build", board)
    files = {os.path.relpath(os.path.join(d, n), out) for d, _, ns in os.walk(out) for n in ns}
    assert {"main.py", "board.json", "pumpboard.mpy", "firmware/loop.mpy", "hal/machine_motor.mpy"} <= files
    steps = {f[4:-4] for f in files if f.startswith("hal/steps_")}
    assert steps == STEPS[board]
    assert {f[4:-4] for f in files if f.startswith("hal/storage_")} == STORAGE[board]
    assert not any(f.endswith(".py") for f in files - {"main.py"})
    mpy = sum(os.path.getsize(os.path.join(out, f)) for f in files if f.endswith(".mpy"))
    assert f"{mpy} bytes of .mpy" in r.stdout  # the size it prints is the size it built


def test_make_deploy_without_a_board_fails_in_one_line():
    _run("tools/build_board.sh", "rpi_pico")
    r = _run("tools/deploy.sh", "rpi_pico", "/dev/ttyACM_no_such_board")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deploy: no MicroPython board answers on /dev/ttyACM_no_such_board")
    r = _run("tools/deploy.sh", "rpi_pico")
    assert r.returncode == 2 and "no PORT given" in r.stderr


def test_package_json_and_manifest_list_the_source_tree():
    r = _run(sys.executable, "tools/board_manifests.py", "--check")
    assert r.returncode == 0, r.stdout
    for board in BOARDS:
        with open(os.path.join(ROOT, "boards", board, "package.json")) as f:
            pkg = json.load(f)
        base = os.path.join(ROOT, "boards", board)
        for target, url in pkg["urls"]:
            assert os.path.isfile(os.path.normpath(os.path.join(base, url))), url  # mip resolves it from here
            assert os.path.basename(target) == os.path.basename(url)
        targets = {t for t, _ in pkg["urls"]}
        assert {"main.py", "board.json", "pumpboard.py", "firmware/loop.py", "hal/machine_motor.py"} <= targets
        assert {t[4:-3] for t in targets if t.startswith("hal/steps_")} == STEPS[board]
        assert {t[4:-3] for t in targets if t.startswith("hal/storage_")} == STORAGE[board]


@pytest.mark.parametrize("board", BOARDS)
def test_make_deploy_copies_the_build_onto_a_serial_board_and_resets_it(board, tmp_path):
    # A MicroPython REPL on a pseudo-terminal stands for the board, its virtual port on the path
    # (tests/host/serial_board.py): a reset boots it as the port's main.c does.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from serial_board import SerialBoard

    mp = os.path.join(ROOT, ".venv", "bin", "micropython")
    if not os.access(mp, os.X_OK):
        pytest.skip("no MicroPython unix port (make .venv)")
    assert _run("tools/build_board.sh", board).returncode == 0
    fs = tmp_path / "board"
    fs.mkdir()
    (fs / "main.py").write_text("print('an older main.py')\n")  # replaced, not kept
    (fs / "firmware").mkdir()
    (fs / "firmware" / "loop.py").write_text("# a stale loop.py from mip: it would shadow loop.mpy\n")
    (fs / "pumpboard.py").write_text("# stale too\n")
    with open(os.path.join(ROOT, "boards", board, "board.json")) as f:
        driver = json.load(f)["motor"]["driver"]
    boot_line = f"pump: {board}, {driver} driver"  # boards/pumpboard.py boot(): the first thing it says
    serial = SerialBoard(mp, str(fs), VIRTUAL_PORT[board])
    try:
        r = _run("tools/deploy.sh", board, serial.port)
        after = serial.read_until(boot_line) if r.returncode == 0 else ""
    finally:
        serial.close()
    assert r.returncode == 0, r.stderr
    assert f"deploy: {serial.port} answers: " in r.stdout and "deploy: reset: " in r.stdout
    out = os.path.join(ROOT, "build", board)
    built = {os.path.relpath(os.path.join(d, n), out) for d, _, ns in os.walk(out) for n in ns}
    copied = {os.path.relpath(os.path.join(d, n), fs) for d, _, ns in os.walk(fs) for n in ns}
    assert copied == built  # the stale .py files are gone
    assert "deploy: removed stale firmware/loop.py" in r.stdout and "removed stale ./pumpboard.py" in r.stdout
    for f in built:
        with open(os.path.join(out, f), "rb") as a, open(fs / f, "rb") as b:
            assert a.read() == b.read(), f
    # After the reset the board runs the main.py just copied: its boot line, from the .mpy files
    assert serial.hard_resets == 1 and serial.main_runs == 2  # at power-on (the older one), then ours
    lines = [x.strip() for x in after.splitlines()]
    assert any(x.startswith(boot_line) for x in lines), after
    assert "an older main.py" not in after and "pump stopped" not in after and "Traceback" not in after, after
