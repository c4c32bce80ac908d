"""make demo without a board: the Pico's main.py on the MicroPython unix port with simulated pins,
driven by keys piped in; the terminal shows the LED, the buzzer and the strokes live."""

import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MP = os.path.join(ROOT, ".venv", "bin", "micropython")


@pytest.mark.parametrize("board", ["rpi_pico", "esp32", "pyboard"])
def test_make_demo_shows_the_board_and_takes_keys(board):
    if not os.access(MP, os.X_OK):
        pytest.skip("no MicroPython unix port (make .venv)")
    proc = subprocess.Popen([sys.executable, "tools/demo.py", board], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # At 360x: a at 1.5 s (9 virtual min), a again at 3 s (lockout: 180 min), b, then q.
    for delay, key in ((1.5, b"a"), (1.5, b"a"), (1.0, b"b"), (1.5, b"q")):
        time.sleep(delay)
        proc.stdin.write(key)
        proc.stdin.flush()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    text = out.decode().replace("\x1b[K", "")
    lines = [seg for line in text.split("\n") for seg in line.split("\r") if seg]
    events = [x for x in lines if not x.startswith("LED ")]
    status = [x for x in lines if x.startswith("LED ")]
    assert "bolus ptm granted" in events and "bolus ptm denied: lockout" in events, events
    assert events.index("button A: bolus") < events.index("bolus ptm granted")
    assert any(e.startswith("refill ") for e in events), events
    # The status line moves: strokes counted and pump time running at 360x (about 5.5 s: ~33 min).
    first, last = status[0].split(), status[-1].split()
    assert int(first[first.index("strokes") + 1]) == 0 < int(last[last.index("strokes") + 1])
    assert any("(*)" in s for s in status) and any("( )" in s for s in status)  # the LED blinked
    assert any(" Hz " in s for s in status)  # the chirp, the "not yet" beep: the buzzer sounded
    assert "Mon 08:" in status[-1] and "delivering" in status[-1]
