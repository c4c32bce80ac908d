"""A STAND-IN for the pump's link (issue 15's command layer), for testing pumpctl before
firmware/link.py exists. It is NOT the firmware: a small responder written from the contract
(/work/prompts/linkspec.md, docs/link.md) with struct, hmac and its own COBS, so pumpctl's frames
and its checks of replies are judged by code that shares nothing with it. The end-to-end tests
(test_link_e2e.py) run pumpctl against the real firmware under `pumpsim serve`.

What it models: frames (COBS between 0x00, version 1, role, counter, command, n, i32s, 16-byte
truncated HMAC-SHA256), the unauthenticated reply to a frame that fails its framing, BAD_MAC,
REPLAY (data: the last accepted counter), OUT_OF_WINDOW, COUNTER_EXHAUSTED, ROLE_NOT_ALLOWED,
BAD_LENGTH, UNKNOWN_COMMAND, and canned answers to every command (PRESCRIPTION: the last PROGRAM's
ints). `script` overrides the answer: script[command] = (result, field, data), or a callable
(role, counter, ints) -> bytes to send as is.
"""

import hashlib
import hmac
import socket
import struct
import threading

HDR = struct.Struct("<BBIBH")
ZERO_MAC = bytes(16)
PATIENT_ONLY, BOTH = {2}, {1, 2}
_LENGTHS = {1: 0, 2: 0, 3: 2, 5: 3, 6: 0, 7: 2, 8: 1, 9: 2, 10: 0, 11: 0, 12: 0, 13: 1, 14: 0}  # PROGRAM: any


def cobs(raw):
    out, block = bytearray(b"\x00"), bytearray()
    for b in raw:
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
        else:
            block.append(b)
            if len(block) == 254:
                out += b"\xff" + block
                block = bytearray()
    out += bytes([len(block) + 1]) + block + b"\x00"
    return bytes(out)


def uncobs(data):
    out, i = bytearray(), 0
    while i < len(data):
        code = data[i]
        if code == 0 or i + code > len(data):
            return None
        out += data[i + 1:i + code]
        i += code
        if code != 255 and i < len(data):
            out.append(0)
    return bytes(out)


def mac(key, raw):
    return hmac.new(key, raw, hashlib.sha256).digest()[:16]


def frame(key, role, counter, command, ints, mac_bytes=None):
    raw = HDR.pack(1, role, counter, command, len(ints)) + struct.pack(f"<{len(ints)}i", *ints)
    return cobs(raw + (mac(key, raw) if mac_bytes is None else mac_bytes))


class StandIn:
    """A TCP responder on 127.0.0.1 (port 0: a free one), one connection at a time, in a thread."""

    def __init__(self, clinician_key, patient_key, script=None):
        self.keys = {1: patient_key, 2: clinician_key}
        self.last = {1: 0, 2: 0}
        self.script = dict(script or {})
        self.received = []  # (role, counter, command, ints) of every authentic frame
        self.status = [0, 18_000_000, 2000, 480_000, 0, 80_000, 100_000, 2400, 2500, 3200, 2, 36_000_000, 7, 0]
        self.events = [(i, 3600 * i, 20, i, 0, 0) for i in range(45)]
        # PRESCRIPTION's answer, in PROGRAM's layout after its confirm flag (docs/link.md): 2000 mcg/mL,
        # limit 800 mcg, PTM 20 mcg/10 min/180 min/3 a day, no periodic bolus, 480 mcg/day every day;
        # an accepted PROGRAM replaces it (its ints as sent: the stand-in checks none of them)
        self.prescription = [2000, 800_000, 20_000, 10, 180, 3, 0, 1, 0, 480_000, -1, -1, -1, -1, -1, -1]
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self.url = f"socket://127.0.0.1:{self.port}"
        self._stop = False
        self._t = threading.Thread(target=self._serve, daemon=True)
        self._t.start()

    def close(self):
        self._stop = True
        self._srv.close()
        self._t.join(2)

    def _serve(self):
        self._srv.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.1)
                pending = bytearray()
                while not self._stop:
                    try:
                        data = conn.recv(4096)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not data:
                        break
                    for b in data:
                        if b:
                            pending.append(b)
                        elif pending:
                            out = self.answer(bytes(pending))
                            pending.clear()
                            if out:
                                conn.sendall(out)

    def answer(self, encoded):
        raw = uncobs(encoded)
        if raw is None or len(raw) < 25:
            return self._unauth(2 if raw is None else 4)
        version, role, counter, command, n = HDR.unpack_from(raw)
        if len(raw) != 25 + 4 * n:
            return self._unauth(4 if len(raw) < 25 + 4 * n else 2)
        if version != 1:
            return self._unauth(5)
        if role not in (1, 2):
            return self._unauth(6)
        ints = list(struct.unpack_from(f"<{n}i", raw, 9))
        key = self.keys[role]

        def reply(result, field=0, data=()):
            return frame(key, role, counter, command | 0x80, [result, field, *data])

        if not hmac.compare_digest(raw[-16:], mac(key, raw[:-16])):
            return reply(9)
        if counter <= self.last[role]:
            return reply(20, 0, [self.last[role]])
        if counter > self.last[role] + 65536:
            return reply(21)
        if counter == 2**30 - 1:
            return reply(22)
        self.last[role] = counter
        self.received.append((role, counter, command, ints))
        if command not in range(1, 15):
            return reply(28)
        if role == 1 and command not in (1, 2) or role == 2 and command == 2:
            return reply(23)
        if command != 4 and len(ints) != _LENGTHS[command]:
            return reply(29)
        s = self.script.get(command)
        if callable(s):
            return s(role, counter, ints)
        if s is not None:
            return reply(*s)
        if command == 1:
            return reply(0, 0, self.status + [self.last[1], self.last[2]])
        if command == 2:
            return reply(0, 0, [20_000])
        if command == 3:
            since, most = ints
            page = [e for e in self.events if e[0] >= since][:most]
            nxt = page[-1][0] + 1 if page else since
            return reply(0, 0, [nxt, len(page)] + [x for e in page for x in e])
        if command == 5:
            return reply(0, 0, [ints[1]])
        if command == 7:
            return reply(0, 0, [1440, 4320])
        if command == 14:
            return reply(0, 0, self.prescription)
        if command == 4:
            self.prescription = ints[1:]
        return reply(0)

    def _unauth(self, code):
        return cobs(HDR.pack(1, 0, 0, 0x80, 2) + struct.pack("<2i", code, 0) + ZERO_MAC)
