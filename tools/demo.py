"""make demo BOARD=...: a board's main.py on the MicroPython unix port, with simulated pins.

    python tools/demo.py rpi_pico|esp32|pyboard [--config FILE]     (make demo BOARD=... CONFIG=...)

Runs tools/demo_board.py under .venv/bin/micropython in the board's folder (its board.json), or
with --config in a scratch copy of it whose board.json is FILE, with the board's virtual port first
on MICROPYPATH (boards/virtual/<port>: machine, rp2, esp32, pyb; VIRTUAL_MICROPYTHON picks the
release). On a terminal, single keys go straight through (a = button A, b = button B, h = hold B 2 s, q = quit);
piped input is passed on as it comes.
"""

import argparse
import os
import select
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTS = {"rpi_pico": "rp2", "esp32": "esp32", "pyboard": "stm32"}  # the virtual port each board runs on
BOARDS = tuple(PORTS)


def main(argv):
    parser = argparse.ArgumentParser(prog="tools/demo.py", description="a board's main.py on the virtual board")
    parser.add_argument("board", nargs="?", default="rpi_pico")
    parser.add_argument("--config", help="a board.json to run instead of the board's own")
    args = parser.parse_args(argv)
    board = args.board
    if board not in BOARDS:
        print(f"make demo: unknown BOARD {board!r} (rpi_pico, esp32 or pyboard)", file=sys.stderr)
        return 2
    if args.config is not None and not os.path.isfile(args.config):
        print(f"make demo: CONFIG {args.config!r} is not a file", file=sys.stderr)
        return 2
    mp = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")
    if not os.access(mp, os.X_OK):
        print(f"make demo: MicroPython unix port not found at {mp} (run 'make .venv')", file=sys.stderr)
        return 2
    path = [os.path.join(ROOT, p) for p in ("boards/virtual/" + PORTS[board], "boards/virtual", "boards", ".")]
    path.append(".frozen")
    env = dict(os.environ, MICROPYPATH=":".join(path))
    cmd = [mp, "-X", "heapsize=2M", os.path.join(ROOT, "tools", "demo_board.py"), board]
    with tempfile.TemporaryDirectory(prefix="pump-demo-") as scratch:
        cwd = os.path.join(ROOT, "boards", board)
        if args.config is not None:  # the board's folder as deployed, with this board.json
            shutil.copy(os.path.join(cwd, "main.py"), scratch)
            shutil.copy(args.config, os.path.join(scratch, "board.json"))
            cwd = scratch
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE, env=env)
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
