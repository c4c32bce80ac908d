"""A MicroPython 'board' on a serial port, for make deploy without hardware: the unix port's REPL
on a pseudo-terminal, its working directory standing for the board's filesystem.

mpremote opens `SerialBoard.port` as it would /dev/ttyACM0. A board's soft reset (Ctrl-D in the
raw REPL) ends the unix port's process instead, so the relay does what a board does: it prints
"soft reboot", starts the interpreter again on the same filesystem, and enters the raw REPL.
"""

import os
import pty
import select
import subprocess
import threading
import time
import tty


class SerialBoard:
    def __init__(self, micropython, root):
        self.micropython = micropython
        self.root = root  # the board's filesystem
        self.resets = 0
        self._host, host_end = pty.openpty()
        tty.setraw(host_end)
        self._host_end = host_end  # kept open: mpremote opens it by name
        self.port = os.ttyname(host_end)
        self._stop = False
        self._start(raw=False)
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def _start(self, raw):
        self._board, board_end = pty.openpty()
        tty.setraw(board_end)
        self._proc = subprocess.Popen([self.micropython], stdin=board_end, stdout=board_end, stderr=board_end,
                                      cwd=self.root, close_fds=True)
        os.close(board_end)
        if raw:
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
                    os.write(self._board, data)
                elif fd == self._board and data:
                    os.write(self._host, data)
            if self._proc.poll() is not None and not self._stop:  # a soft reset
                os.close(self._board)
                self.resets += 1
                os.write(self._host, b"soft reboot\r\n")
                self._start(raw=True)

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
