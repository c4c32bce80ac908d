# HMAC-SHA256 (RFC 2104) on hashlib.sha256, the MAC truncated to MAC_LEN bytes: MicroPython has no
# hmac module.
#
# MicroPython's hashlib (extmod/modhashlib.c, v1.28) has no copy(): a key's ipad/opad hash state
# cannot be kept, so each MAC hashes the two 64-byte pads again. update() takes any buffer (a
# memoryview slice too) and allocates nothing; digest() allocates its 32-byte result and makes the
# object final (a second digest() raises). So one MAC allocates two hash objects, two digests and
# a memoryview slice when the message is part of a buffer: docs/link.md gives the bytes measured on each port.

from hashlib import sha256

from micropython import const

MAC_LEN = const(16)  # 128 bits: RFC 4231 test case 5's truncation, the issue's minimum
_BLOCK = const(64)  # SHA-256's block size


class HmacSha256:
    """One key. mac_into() and verify() cover buf[start:end] (bytes, bytearray or memoryview)."""

    def __init__(self, key):
        if len(key) > _BLOCK:
            key = sha256(key).digest()
        self._ipad = bytearray(_BLOCK)
        self._opad = bytearray(_BLOCK)
        for i in range(_BLOCK):
            k = key[i] if i < len(key) else 0
            self._ipad[i] = k ^ 0x36
            self._opad[i] = k ^ 0x5C
        self._d = b""  # the last digest (32 bytes)

    # The public methods keep MicroPython call frames of at most 11 words (locals plus value stack):
    # a larger frame comes from the heap on every call (GUIDE.md). The digest goes through self._d.

    def _digest(self, buf, start, end):
        h = sha256(self._ipad)
        if start or end != len(buf):
            # A memoryview's slice is one small object; pass one (FrameReader.view) to save a second.
            if type(buf) is not memoryview:
                buf = memoryview(buf)
            buf = buf[start:end]
        h.update(buf)
        inner = h.digest()
        h = sha256(self._opad)
        h.update(inner)
        self._d = h.digest()

    def mac_into(self, buf, start, end, out, at):
        """Writes the MAC of buf[start:end] into out[at:at + MAC_LEN]."""
        self._digest(buf, start, end)
        _copy(self._d, out, at)

    def verify(self, buf, start, end, mac_buf, at):
        """True if mac_buf[at:at + MAC_LEN] is the MAC of buf[start:end]; in constant time: every
        byte is compared whatever differs, so the time tells an attacker nothing of where."""
        self._digest(buf, start, end)
        return _same(self._d, mac_buf, at)


def _copy(d, out, at):
    for i in range(MAC_LEN):
        out[at + i] = d[i]


def _same(d, mac_buf, at):
    diff = 0
    for i in range(MAC_LEN):
        diff |= d[i] ^ mac_buf[at + i]  # no early exit
    return diff == 0
