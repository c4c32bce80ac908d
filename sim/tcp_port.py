"""The simulator's LinkPort (hal/interfaces.py, issue 15): the link's byte stream over TCP on 127.0.0.1.

One client at a time: further connections wait in the listen backlog until the current client goes
away (it closes, or a write to it fails), which frees the port for the next. Nothing blocks: any()
accepts a waiting client and drains what it sent into a buffer; readinto() takes from that buffer;
write() sends with a short timeout and drops a client that does not take its bytes.
"""

import select
import socket
import time

_CHUNK = 4096
_BUFFER_MAX = 65_536  # bytes held for the firmware at most: beyond, a flooding client is dropped
_SEND_TIMEOUT_S = 1.0


class TcpPort:
    def __init__(self, port=7001, host="127.0.0.1"):
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._server.bind((host, port))
        except OSError:
            self._server.close()
            raise
        self._server.listen(4)
        self._server.setblocking(False)
        self.address = self._server.getsockname()  # (host, port): port 0 picks a free one
        self._client = None
        self._rx = bytearray()
        self.clients = 0  # clients served so far

    # -- LinkPort --------------------------------------------------------------------------------

    def any(self):
        """Bytes waiting for the firmware (0 if none); accepts a waiting client first."""
        if self._client is None:
            self._accept()
        if self._client is not None:
            self._drain()
        return len(self._rx)

    def readinto(self, buf, n):
        """Moves at most n waiting bytes into buf[0:n]; never blocks."""
        if not self._rx:
            self.any()
        k = min(n, len(self._rx))
        buf[0:k] = self._rx[:k]
        del self._rx[:k]
        return k

    def write(self, buf, n):
        """Sends buf[0:n] to the client, if there is one (a reply to no one is dropped)."""
        if self._client is None:
            return
        data = memoryview(bytes(buf[0:n]))
        end = time.monotonic() + _SEND_TIMEOUT_S
        try:
            while data:
                try:
                    data = data[self._client.send(data):]
                except BlockingIOError:
                    if time.monotonic() > end:
                        raise OSError("the client takes no bytes") from None
                    select.select([], [self._client], [], 0.05)
        except OSError:
            self._drop()

    # -- the server ------------------------------------------------------------------------------

    def close(self):
        self._drop()
        self._server.close()

    def _accept(self):
        try:
            client, _ = self._server.accept()
        except (BlockingIOError, InterruptedError):
            return
        client.setblocking(False)  # (a socket timeout would make recv wait for it: any() must not block)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client = client
        self.clients += 1

    def _drain(self):
        client = self._client
        while len(self._rx) < _BUFFER_MAX:
            try:
                data = client.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:  # the client went away: the port is free for the next (what it sent is still read)
                self._drop()
                return
            self._rx += data
        self._drop()  # a client flooding faster than the firmware reads: dropped, with its bytes
        self._rx.clear()

    def _drop(self):
        if self._client is not None:
            try:
                self._client.close()
            except OSError:
                pass
            self._client = None
