"""A MicroPython 'board' on a serial port, for make deploy without hardware: the unix port's REPL
on a pseudo-terminal, its working directory standing for the board's filesystem, and the board's
virtual port (boards/virtual/<port>, then boards/virtual) on MICROPYPATH, as make demo has it.

mpremote opens `SerialBoard.port` as it would /dev/ttyACM0. A reset ends the unix port's process
instead, so the relay boots the board again as the port's main.c does (ports/rp2, esp32, stm32
main.c, v1.24.0..v1.28.0):
- a hard reset (machine.reset(): the virtual board exits with vmachine.RESET_EXIT), and power-on:
  main.py runs, then the friendly REPL;
- a soft reset (Ctrl-D, or sys.exit): "soft reboot", then main.py runs only if the REPL was in
  friendly mode (`pyexec_mode_kind == PYEXEC_MODE_FRIENDLY_REPL`); from the raw REPL, as
  mpremote's soft-reset leaves it, the board comes back in the raw REPL and main.py does NOT run.
A Ctrl-C while main.py runs interrupts it (SIGINT: the pty is raw, so the byte alone would not),
unless main.py turned the interrupt character off (micropython.kbd_intr(-1), as the pump's USB link
does): the unix port then leaves SIGINT to its default (ports/unix/unix_mphal.c
mp_hal_set_interrupt_char), so the byte is data, as it is on a board (mp_hal_stdin_rx_chr's
interrupt check). press_reset() is the board's reset button: a hard reset, main.py first.
read_until() reads what the board printed since mpremote let go of the port. With flash_dir, the
board's virtual flash is kept there (boards/virtual/vflash.py VIRTUAL_FLASH_DIR): it survives a reset.
"""

import os
import pty
import select
import signal
import subprocess
import threading
import time
import tty

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESET_EXIT = 3  # boards/virtual/vmachine.py: the exit status of machine.reset()


class SerialBoard:
    def __init__(self, micropython, root, port=None, flash_dir=None):
        self.micropython = micropython
        self.root = root  # the board's filesystem
        self.env = dict(os.environ)
        if flash_dir is not None:
            self.env["VIRTUAL_FLASH_DIR"] = str(flash_dir)
        if port is not None:
            virtual = os.path.join(ROOT, "boards", "virtual")
            self.env["MICROPYPATH"] = os.path.join(virtual, port) + ":" + virtual
        self.resets = 0
        self.hard_resets = 0
        self.main_runs = 0  # times main.py was started
        self.raw = False  # the REPL's mode, kept across a soft reset as pyexec_mode_kind is
        self._pressed = False  # press_reset(): the process is being killed for a hard reset
        self._in_main = False  # main.py started and the REPL not seen since
        self._host, host_end = pty.openpty()
        tty.setraw(host_end)
        self._host_end = host_end  # kept open: mpremote opens it by name
        self.port = os.ttyname(host_end)
        self._stop = False
        self._start()
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def _start(self):
        self._board, board_end = pty.openpty()
        tty.setraw(board_end)
        main = not self.raw and os.path.isfile(os.path.join(self.root, "main.py"))
        argv = [self.micropython] + (["-i", "main.py"] if main else [])  # -i: the REPL after it
        self._proc = subprocess.Popen(argv, stdin=board_end, stdout=board_end, stderr=board_end,
                                      cwd=self.root, env=self.env, close_fds=True)
        os.close(board_end)
        self._in_main = main
        self.main_runs += main
        if self.raw:
            time.sleep(0.2)  # the banner first, as a board prints it
            os.write(self._board, b"\r\x01")

    def _relay(self):
        while not self._stop:
            r, _, _ = select.select([self._host, self._board], [], [], 0.05)
            for fd in r:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # the interpreter exited: its pty is closed
                    data = b""
                if fd == self._host and data:
                    self._from_host(data)
                elif fd == self._board and data:
                    if self._in_main and (b">>> " in data or b"raw REPL" in data):
                        self._in_main = False  # main.py ended: the REPL runs
                    os.write(self._host, data)
            if self._proc.poll() is not None and not self._stop:
                os.close(self._board)
                self.resets += 1
                if self._proc.returncode == RESET_EXIT or self._pressed:
                    self._pressed = False
                    self.hard_resets += 1
                    self.raw = False
                else:
                    os.write(self._host, b"soft reboot\r\n")
                self._start()

    def _from_host(self, data):
        for b in data:
            if b == 1:  # Ctrl-A: the raw REPL
                self.raw = True
            elif b == 2:  # Ctrl-B: the friendly REPL
                self.raw = False
            elif b == 3 and self._in_main and self._interrupts():
                self._in_main = False
                self._proc.send_signal(signal.SIGINT)
        os.write(self._board, data)

    def _interrupts(self):
        """Whether the interpreter catches SIGINT now (Ctrl-C on), from /proc/<pid>/status SigCgt."""
        try:
            with open(f"/proc/{self._proc.pid}/status") as f:
                for line in f:
                    if line.startswith("SigCgt:"):
                        return bool(int(line.split()[1], 16) >> (signal.SIGINT - 1) & 1)
        except OSError:
            pass
        return True

    def press_reset(self):
        """The reset button: the board restarts (a hard reset), main.py first."""
        self._pressed = True
        self._proc.kill()

    def read_until(self, text, timeout=30.0):
        """What the board printed, up to the end of the line holding `text` (or all, at timeout)."""
        out = b""
        want = text.encode()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            i = out.find(want)
            if i >= 0 and b"\n" in out[i:]:
                break
            r, _, _ = select.select([self._host_end], [], [], 0.1)
            if r:
                out += os.read(self._host_end, 4096)
        return out.decode("utf-8", "replace")

    def close(self):
        self._stop = True
        self._thread.join(timeout=2)
        self._proc.kill()
        self._proc.wait()
        for fd in (self._host, self._board, self._host_end):
            try:
                os.close(fd)
            except OSError:
                pass
