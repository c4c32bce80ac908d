"""make demo BOARD=...: a board's main.py on the MicroPython unix port, with simulated pins.

    python tools/demo.py rpi_pico|esp32|pyboard

Runs tools/demo_board.py under .venv/bin/micropython in the board's folder (its board.json), with
the board's virtual port first on MICROPYPATH (boards/virtual/<port>: machine, rp2, esp32, pyb). On a terminal, single keys
go straight through (a = button A, b = button B, q = quit); piped input is passed on as it comes.
"""

import os
import select
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTS = {"rpi_pico": "rp2", "esp32": "esp32", "pyboard": "stm32"}  # the virtual port each board runs on
BOARDS = tuple(PORTS)


def main(argv):
    board = argv[0] if argv else "rpi_pico"
    if board not in BOARDS:
        print(f"make demo: unknown BOARD {board!r} (rpi_pico, esp32 or pyboard)", file=sys.stderr)
        return 2
    mp = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")
    if not os.access(mp, os.X_OK):
        print(f"make demo: MicroPython unix port not found at {mp} (run 'make .venv')", file=sys.stderr)
        return 2
    path = [os.path.join(ROOT, p) for p in ("boards/virtual/" + PORTS[board], "boards/virtual", "boards", ".")]
    path.append(".frozen")
    env = dict(os.environ, MICROPYPATH=":".join(path))
    cmd = [mp, "-X", "heapsize=2M", os.path.join(ROOT, "tools", "demo_board.py"), board]
    proc = subprocess.Popen(cmd, cwd=os.path.join(ROOT, "boards", board), stdin=subprocess.PIPE, env=env)
    try:
        _forward(proc)
    except KeyboardInterrupt:
        proc.kill()
    return proc.wait()


def _forward(proc):
    """Keys from our stdin to the board's, one at a time, until it exits."""
    fd = sys.stdin.fileno()
    saved = None
    if os.isatty(fd):
        import termios
        import tty

        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)  # keys arrive at once, without Enter
    try:
        while proc.poll() is None:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            data = os.read(fd, 64)
            try:
                if not data:  # end of piped input: let the board run on until it quits
                    proc.stdin.close()
                    proc.wait()
                    return
                proc.stdin.write(data)
                proc.stdin.flush()
            except BrokenPipeError:
                return
    finally:
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
