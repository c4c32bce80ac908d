"""A TCP man in the middle for the link's tests: it knows nothing of the protocol, only bytes.

Between a client (pumpctl) and a server (pumpsim serve, or the stand-in), it forwards each chunk it
reads, recording it (`log`: (direction, bytes), direction "up" client->server or "down"), after the
`tamper(direction, index, data) -> bytes` hook has had its way (index counts the chunks in that
direction on the connection). `inject(data)` sends bytes of its own to the server on the current
connection (a replay of recorded bytes, garbage). Helpers build tampering functions: flip a bit,
drop bytes, duplicate a chunk.
"""

import select
import socket
import threading


class Mitm:
    def __init__(self, server_port, tamper=None):
        self.server_port = server_port
        self.tamper = tamper
        self.log = []
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self.url = f"socket://127.0.0.1:{self.port}"
        self._stop = False
        self._upstream = None
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def close(self):
        self._stop = True
        self._srv.close()
        self._t.join(2)

    def recorded(self, direction):
        return [d for w, d in self.log if w == direction]

    def inject(self, data):
        """Sends data to the server now: on the current connection, or on one of its own."""
        if self._upstream is not None:
            self._upstream.sendall(data)
            return None
        s = socket.create_connection(("127.0.0.1", self.server_port))
        s.sendall(data)
        return s  # the caller reads the server's answer from it (and closes it)

    def _run(self):
        self._srv.settimeout(0.1)
        while not self._stop:
            try:
                client, _ = self._srv.accept()
            except OSError:
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.server_port))
            except OSError:
                client.close()
                continue
            self._upstream = upstream
            self._pipe(client, upstream)
            self._upstream = None
            client.close()
            upstream.close()

    def _pipe(self, client, upstream):
        counts = {"up": 0, "down": 0}
        while not self._stop:
            r, _, _ = select.select([client, upstream], [], [], 0.1)
            for s in r:
                try:
                    data = s.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                direction = "up" if s is client else "down"
                i = counts[direction]
                counts[direction] += 1
                if self.tamper is not None:
                    data = self.tamper(direction, i, data)
                self.log.append((direction, data))
                if data:
                    (upstream if s is client else client).sendall(data)


def flip_bit(direction, bit, only_index=0):
    """Flips bit `bit` (counted from the chunk's start; wrapped to its length) of one chunk."""
    def tamper(d, i, data):
        if d != direction or i != only_index:
            return data
        b = bytearray(data)
        k = bit % (8 * len(b))
        b[k // 8] ^= 1 << (k % 8)
        return bytes(b)
    return tamper


def drop_bytes(direction, start, count, only_index=0):
    def tamper(d, i, data):
        if d != direction or i != only_index:
            return data
        return data[:start] + data[start + count:]
    return tamper


def duplicate(direction, only_index=0):
    def tamper(d, i, data):
        return data + data if d == direction and i == only_index else data
    return tamper
