"""make demo without a board: a board's main.py on the MicroPython unix port with simulated pins,
driven by keys piped in; the terminal shows the LED, the buzzer and the sips or strokes live, and
each event as a plain sentence. The shipped board.json is the toy (real time); a realistic demo
config (tests/boards/prescription.json, never shipped) runs with --config."""

import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MP = os.path.join(ROOT, ".venv", "bin", "micropython")


def _demo(keys, *args):
    """tools/demo.py with `keys`, (delay s, key) each; its event lines and status lines."""
    if not os.access(MP, os.X_OK):
        pytest.skip("no MicroPython unix port (make .venv)")
    proc = subprocess.Popen([sys.executable, "tools/demo.py", *args], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for delay, key in keys:
        time.sleep(delay)
        proc.stdin.write(key)
        proc.stdin.flush()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    text = out.decode().replace("\x1b[K", "")
    lines = [seg for line in text.split("\n") for seg in line.split("\r") if seg]
    return [x for x in lines if not x.startswith("LED ")], [x for x in lines if x.startswith("LED ")]


def _sentences(events):
    """Every line a person reads: a capital first, and no tail of bare numbers ("projection 0 0 0")."""
    for line in events:
        if line.startswith(("make demo: ", "pump: ")):
            continue  # the demo's banner and the board's boot line
        words = line.split()
        assert line[0].isupper() and not words[-1].strip(".,:;()").isdigit(), line
        assert not any(words[i].isdigit() and words[i + 1].isdigit() for i in range(len(words) - 1)), line


@pytest.mark.parametrize("board", ["rpi_pico", "esp32", "pyboard"])
def test_make_demo_runs_the_toy_and_takes_keys(board):
    # The toy in real time: a at 1.5 s (granted: 5 sips over a minute), a again (15 min lockout:
    # "not yet"), h (B held 2 s: nothing sounds, nothing to quieten), then q.
    events, status = _demo(((1.5, b"a"), (1.0, b"a"), (0.5, b"h"), (3.0, b"q")), board)
    assert "Button bolus: yes, 5 sips more over 1 min" in events, events
    assert "Button bolus: not yet (too soon after the last one)" in events, events
    assert events.index("Button A: bolus") < events.index("Button bolus: yes, 5 sips more over 1 min")
    assert "Nothing to quieten: no alarm is on" in events, events
    assert "The water runs low in about 19 min and out in about 25 min" in events, events
    _sentences(events)
    # The status line: the toy's sips left and the time played, in real time (6 s or so).
    first, last = status[0].split(), status[-1].split()
    assert first[first.index("left") + 1] == "150" and "[h]" in status[-1]
    played = last[last.index("played") + 1].split(":")
    assert played[:2] == ["0", "00"] and 5 <= int(played[2]) <= 15, status[-1]
    assert any(" Hz " in s for s in status)  # the chirp, the "not yet" beep: the buzzer sounded


def test_make_demo_runs_a_demo_config_at_360x(tmp_path):
    with open(os.path.join(ROOT, "boards", "rpi_pico", "board.json")) as f:
        config = json.load(f)
    with open(os.path.join(ROOT, "tests", "boards", "prescription.json")) as f:
        config.update(json.load(f))
    del config["toy"]
    config.update({"mode": "demo", "demo_speed": 360})
    path = tmp_path / "board.json"
    path.write_text(json.dumps(config))
    # At 360x: a at 1.5 s (9 virtual min), a again at 3 s (lockout: 180 min), b, then q.
    events, status = _demo(((1.5, b"a"), (1.5, b"a"), (1.0, b"b"), (1.5, b"q")), "rpi_pico", "--config", str(path))
    assert "Patient bolus granted: 20 mcg over 10 min" in events, events
    assert "Patient bolus refused: too soon after the last one" in events, events
    assert events.index("Button A: bolus") < events.index("Patient bolus granted: 20 mcg over 10 min")
    assert any(e.startswith("Refilled: ") and e.endswith(" mL of 2000 mcg/mL") for e in events), events
    assert not any(e.startswith("Under-delivery") for e in events), events
    _sentences(events)
    # The status line moves: strokes counted and pump time running at 360x (about 5.5 s: ~33 min).
    first, last = status[0].split(), status[-1].split()
    assert int(first[first.index("strokes") + 1]) == 0 < int(last[last.index("strokes") + 1])
    assert any("(*)" in s for s in status) and any("( )" in s for s in status)  # the LED blinked
    assert any(" Hz " in s for s in status)
    assert "Mon 08:" in status[-1] and "delivering" in status[-1]
