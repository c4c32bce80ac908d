# The link's frames (issue 15 section 1): COBS-encoded between 0x00 delimiters, authenticated with a
# truncated HMAC-SHA256 (firmware/hmac_sha256.py). docs/link.md describes the format and its choices.
#
# A decoded frame, little-endian:
#   version u8 (1) | role u8 (1 patient, 2 clinician) | counter u32 (0..2**30 - 1) | command u8 |
#   n u16 (0..MAX_INTS) | n x i32 (each -2**30..2**30 - 1) | MAC 16 bytes over everything before it
#
# COBS, not SLIP: its overhead is bounded (one byte in 254), so the largest frame has a fixed encoded
# size, and a 0x00 never occurs inside a frame, so a receiver resynchronises at the next delimiter
# whatever garbage came before, with no escape state to get lost in.
#
# The reader allocates nothing on any input (the MAC check aside: hashlib allocates): every field is
# decoded from bytes into small ints, an i32 outside the small-int range is refused before it is
# built, and the helpers keep MicroPython call frames of at most 11 words (a larger frame comes from
# the heap at every call, GUIDE.md).

import sys

from firmware.hmac_sha256 import MAC_LEN
from micropython import const

VERSION = const(1)
PATIENT = const(1)
CLINICIAN = const(2)
COUNTER_MAX = const(0x3FFFFFFF)  # 2**30 - 1: the last counter a small int holds on a 32-bit port
# The largest command, a whole prescription, is firmware/state.py's _RX_INTS + _RXP_INTS = 245 ints
# (concentration, limit, PTM 4, periodic 1 + 8 x 3, 7 profiles of 1 + 13 x 2, its periodic list 25):
# 256 leaves 11 for a command's own fields (a confirm flag, ...).
MAX_INTS = const(256)
HEADER = const(9)
MAX_RAW = HEADER + 4 * MAX_INTS + MAC_LEN  # 1049 decoded bytes
# + one COBS code byte per 254 bytes (and one more), + a delimiter on each side
MAX_ENCODED = MAX_RAW + MAX_RAW // 254 + 3

# What feed() returns. NONE: no frame ended (or an empty one: two delimiters in a row).
NONE = const(0)
FRAME_OK = const(1)  # well formed; its MAC still to check (FrameReader.mac_ok)
BAD_FRAME = const(2)  # COBS broken (a delimiter inside a block), or bytes after the payload
TOO_LONG = const(3)  # more than MAX_RAW bytes, or n > MAX_INTS
TRUNCATED = const(4)  # shorter than its header, payload and MAC
BAD_VERSION = const(5)
BAD_ROLE = const(6)
BAD_COUNTER = const(7)  # counter >= 2**30
BAD_INT = const(8)  # a payload int outside -2**30..2**30 - 1
BAD_MAC = const(9)  # given by the layer that checks the MAC
NAMES = ("none", "ok", "bad_frame", "too_long", "truncated", "bad_version", "bad_role", "bad_counter",
         "bad_int", "bad_mac")

_MIN = const(25)  # HEADER + MAC_LEN: a frame with no payload


class FrameReader:
    """Decodes a byte stream, one frame at a time, into preallocated storage.

    After FRAME_OK: version, role, counter, command, n and values[:n] hold the frame, and
    buf[:length] (also as the memoryview `view`) its decoded bytes, until the next byte is fed.
    """

    def __init__(self):
        self.buf = bytearray(MAX_RAW)
        self.view = memoryview(self.buf)
        self.values = [0] * MAX_INTS
        self.length = 0  # decoded bytes of the last frame that ended
        self.version = self.role = self.counter = self.command = self.n = 0
        self.next = 0  # feed_buffer(): the index after the last byte it took
        self._at = 0  # decoded bytes so far in this frame
        self._left = 0  # data bytes still due in this COBS block
        self._zero = False  # the block ended below 254 bytes: a 0x00 follows if another block does
        self._open = False  # a code byte came since the last delimiter
        self._over = False  # more than MAX_RAW bytes: the rest are dropped

    def feed(self, byte):
        if byte == 0:
            return self._end()
        if self._left:
            self._left -= 1
            self._put(byte)
        else:  # a code byte: the next block
            if self._zero:
                self._put(0)
            self._left = byte - 1
            self._zero = byte != 255
            self._open = True
        return NONE

    def feed_buffer(self, buf, n, start=0):
        """Feeds buf[start:n] up to the first frame end; returns its code (or NONE) and sets
        self.next to where to go on from."""
        i = start
        while i < n:
            code = self.feed(buf[i])
            i += 1
            if code:
                self.next = i
                return code
        self.next = n
        return NONE

    def mac_ok(self, mac):
        """After FRAME_OK: whether the frame's MAC is right for the HmacSha256 `mac`."""
        end = self.length - MAC_LEN
        return mac.verify(self.view, 0, end, self.buf, end)

    def _put(self, byte):
        at = self._at
        if at < MAX_RAW:
            self.buf[at] = byte
            self._at = at + 1
        else:
            self._over = True

    def _end(self):
        code = NONE
        self.length = self._at
        if self._over:
            code = TOO_LONG
        elif self._left:
            code = BAD_FRAME  # the delimiter cut a block short
        elif self._open:
            code = self._parse()
        self._at = self._left = 0
        self._zero = self._open = self._over = False
        return code

    def _parse(self):
        b = self.buf
        size = self.length
        if size < _MIN:
            return TRUNCATED
        if b[0] != VERSION:
            return BAD_VERSION
        if b[1] != PATIENT and b[1] != CLINICIAN:
            return BAD_ROLE
        if b[5] > 0x3F:
            return BAD_COUNTER
        k = b[7] | (b[8] << 8)
        if k > MAX_INTS:
            return TOO_LONG
        size -= _MIN + 4 * k
        if size < 0:
            return TRUNCATED
        if size > 0:
            return BAD_FRAME
        if not _ints(b, self.values, k):
            return BAD_INT
        self.version = b[0]
        self.role = b[1]
        self.counter = b[2] | (b[3] << 8) | (b[4] << 16) | (b[5] << 24)
        self.command = b[6]
        self.n = k
        return FRAME_OK


def _ints(b, values, k):
    """Decodes k i32 from b[HEADER:] into values; False at the first outside the small-int range."""
    i = 0
    while i < k:
        top = b[HEADER + 3 + 4 * i]
        if top >= 0xC0:
            top -= 256
        elif top >= 0x40:
            return False  # the 32-bit value's two top bits differ: 2**30 <= |v|, a long int
        values[i] = (top << 24) | (b[HEADER + 2 + 4 * i] << 16) | (b[HEADER + 1 + 4 * i] << 8) | b[HEADER + 4 * i]
        i += 1
    return True


# -- encoding (the pump's replies, and the host's commands) ----------------------------------------


class _Writer:
    # encode_into's arguments go here, so no call frame holds more than 11 words.
    def __init__(self):
        self.raw = bytearray(MAX_RAW)
        self.view = memoryview(self.raw)
        self.out = self.values = self.mac = None
        self.role = self.counter = self.command = self.n = 0

    def run(self):
        out = self.out
        if not (self.role == PATIENT or self.role == CLINICIAN or (self.role == 0 and self.mac is None)):
            raise ValueError("frame: role must be 1 or 2 (0 only unauthenticated, with mac None)")
        if not (0 <= self.counter and self.counter >> 30 == 0):
            raise ValueError("frame: counter must be 0..2**30 - 1")
        if not 0 <= self.command <= 255:
            raise ValueError("frame: command must be 0..255")
        if not 0 <= self.n <= MAX_INTS:
            raise ValueError("frame: n must be 0..MAX_INTS")
        size = _MIN + 4 * self.n
        if len(out) < size + size // 254 + 3:  # pyright: ignore[reportArgumentType] (set by encode_into)
            raise ValueError("frame: out is too small")
        _header(self.raw, self.role, self.counter, self.command, self.n)
        if not _put_ints(self.raw, self.values, self.n):
            raise ValueError("frame: a value is outside -2**30..2**30 - 1")
        if self.mac is None:  # the pump's unauthenticated reply (role 0): a MAC of zeros
            _zeros(self.raw, size - MAC_LEN, size)
        else:
            self.mac.mac_into(self.view, 0, size - MAC_LEN, self.raw, size - MAC_LEN)  # pyright: ignore
        self.out = self.values = self.mac = None  # keep no caller's objects alive
        return _cobs(self.raw, size, out)


def _zeros(raw, i, end):
    while i < end:
        raw[i] = 0
        i += 1


def _header(raw, role, counter, command, n):
    raw[0] = VERSION
    raw[1] = role
    raw[2] = counter & 0xFF
    raw[3] = (counter >> 8) & 0xFF
    raw[4] = (counter >> 16) & 0xFF
    raw[5] = counter >> 24
    raw[6] = command
    raw[7] = n & 0xFF
    raw[8] = n >> 8


def _put_ints(raw, values, n):
    i = 0
    while i < n:
        v = values[i]
        if v >> 30 != 0 and v >> 30 != -1:
            return False
        at = HEADER + 4 * i
        raw[at] = v & 0xFF
        raw[at + 1] = (v >> 8) & 0xFF
        raw[at + 2] = (v >> 16) & 0xFF
        raw[at + 3] = (v >> 24) & 0xFF
        i += 1
    return True


def _cobs(raw, size, out):
    """COBS-encodes raw[:size] into out between two delimiters; returns the bytes written."""
    out[0] = 0  # ends any garbage the receiver holds, so this frame starts clean
    c = 1  # where the current block's code byte goes; the code is o - c
    o = 2
    i = 0
    while i < size:
        b = raw[i]
        if b:
            out[o] = b
            o += 1
            if o - c == 255:  # a full block of 254 data bytes, with no zero after it
                out[c] = 255
                c = o
                o += 1
        else:
            out[c] = o - c
            c = o
            o += 1
        i += 1
    out[c] = o - c
    out[o] = 0
    return o + 1


_WRITER = _Writer()
# One shared writer on the boards (no threads there); CPython (the simulator's server, the host
# client) may call from several threads, and allocation costs it nothing: a writer per call.
_SHARED = sys.implementation.name == "micropython"


def encode_into(out, role, counter, command, values, n, mac):
    """Writes a whole encoded frame (delimiters included) of values[:n] into out, MAC'd with the
    HmacSha256 `mac`; returns its length (at most MAX_ENCODED). ValueError if a field is out of
    range. Allocates only what the MAC's hashlib does. mac None: an unauthenticated frame (the pump's
    reply to a frame it could not authenticate, docs/link.md "Commands"): role 0 allowed, 16 zero
    bytes for a MAC, nothing allocated."""
    w = _WRITER if _SHARED else _Writer()
    w.out = out
    w.role = role
    w.counter = counter
    w.command = command
    w.values = values
    w.n = n
    w.mac = mac
    return w.run()


# -- host side (allocates) -------------------------------------------------------------------------


def encode(mac, role, counter, command, values):
    """The encoded frame as bytes."""
    out = bytearray(MAX_ENCODED)
    return bytes(out[:encode_into(out, role, counter, command, values, len(values), mac)])


def decode(data, mac):
    """Every frame end in data: a list of (code, (role, counter, command, [values])), the tuple
    None unless the code is FRAME_OK; a well-formed frame whose MAC is wrong is BAD_MAC."""
    reader = FrameReader()
    found = []
    at = 0
    while at < len(data):
        code = reader.feed_buffer(data, len(data), at)
        at = reader.next
        if code == FRAME_OK and not reader.mac_ok(mac):
            code = BAD_MAC
        if code == FRAME_OK:
            found.append((code, (reader.role, reader.counter, reader.command, reader.values[:reader.n])))
        elif code:
            found.append((code, None))
    return found
