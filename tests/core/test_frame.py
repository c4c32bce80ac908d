# The link's frames (firmware/frame.py) on CPython and both MicroPython ports: the bytes the encoder
# writes against this file's own encoder (struct, COBS and HMAC written from their definitions),
# every rejection code, resynchronisation after garbage, a bit flipped anywhere, and the reader's
# allocation measured with the heap unlocked.

import struct
from hashlib import sha256

from support import heap_meter, heap_meter_done, raises, skip

from firmware import frame as F
from firmware.hmac_sha256 import HmacSha256

KEY = b"clinician key, 32 bytes long ..."
MAC = HmacSha256(KEY)
SMALL_MIN = -(1 << 29) * 2  # -2**30, the smallest small int on a 32-bit port
SMALL_MAX = (1 << 29) - 1 + (1 << 29)  # 2**30 - 1


# -- the test's own encoder ------------------------------------------------------------------------


def ref_mac(msg, key=KEY):
    """HMAC-SHA256 (RFC 2104) truncated to 16 bytes, for a key of at most 64 bytes."""
    k = key + bytes(64 - len(key))
    inner = sha256(bytes(x ^ 0x36 for x in k) + msg).digest()
    return sha256(bytes(x ^ 0x5C for x in k) + inner).digest()[:16]


def ref_raw(role, counter, command, values, version=1, n=None):
    raw = struct.pack("<BBIBH", version, role, counter, command, len(values) if n is None else n)
    for v in values:
        raw += struct.pack("<i", v)
    return raw


def ref_frame(role, counter, command, values, key=KEY, **kw):
    raw = ref_raw(role, counter, command, values, **kw)
    return raw + ref_mac(raw, key)


def ref_cobs(data, lead=True, final_one=True):
    """COBS (Cheshire and Baker): each block is a code byte (its data bytes + 1) and data bytes
    with no zero; a code below 255 stands for a zero after its block, the last one excepted."""
    out = bytearray(b"\x00" if lead else b"")
    block = bytearray()
    for b in data:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block = bytearray()
        else:
            block.append(b)
            if len(block) == 254:
                out.append(255)
                out += block
                block = bytearray()
    if block or final_one:
        out.append(len(block) + 1)
        out += block
    out.append(0)
    return bytes(out)


def feed_all(reader, data):
    """Every code a frame end gives (NONE for empty frames left out), with FRAME_OK turned into
    BAD_MAC when the MAC is wrong, and the fields of each frame accepted."""
    codes = []
    frames = []
    for b in data:
        code = reader.feed(b)
        if code == F.FRAME_OK:
            if reader.mac_ok(MAC):
                frames.append((reader.role, reader.counter, reader.command, reader.values[:reader.n]))
            else:
                code = F.BAD_MAC
        if code:
            codes.append(code)
    return codes, frames


class Lcg:
    """A small deterministic generator, the same on every port."""

    def __init__(self, seed):
        self.x = seed

    def next(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n


VALUES = [0, 1, -1, 255, 256, -256, 65536, SMALL_MAX, SMALL_MIN, 123456789, -987654321]


# -- format ----------------------------------------------------------------------------------------


def test_limits():
    # A whole prescription: firmware/state.py _RX_INTS (220) + _RXP_INTS (25), and room for flags.
    assert F.MAX_INTS >= 220 + 25
    assert F.MAX_RAW == 9 + 4 * F.MAX_INTS + 16
    assert F.COUNTER_MAX == SMALL_MAX
    worst = ref_cobs(ref_frame(2, 0, 1, [-1] * F.MAX_INTS))  # no zero: the most code bytes
    assert len(worst) <= F.MAX_ENCODED


def test_encode_into_writes_the_reference_bytes():
    out = bytearray(F.MAX_ENCODED)
    cases = ((2, 7, 3, VALUES), (1, 0, 0, []), (1, F.COUNTER_MAX, 255, [0] * F.MAX_INTS),
             (2, 0x01020304, 9, [0x01010101] * 70), (2, 5, 1, [-1] * F.MAX_INTS))
    for role, counter, command, values in cases:
        n = F.encode_into(out, role, counter, command, values, len(values), MAC)
        assert bytes(out[:n]) == ref_cobs(ref_frame(role, counter, command, values)), (role, counter, len(values))
        assert F.encode(MAC, role, counter, command, values) == bytes(out[:n])


def test_encode_into_takes_the_first_n_values():
    out = bytearray(F.MAX_ENCODED)
    n = F.encode_into(out, 1, 3, 4, VALUES, 2, MAC)
    assert bytes(out[:n]) == ref_cobs(ref_frame(1, 3, 4, VALUES[:2]))


def test_the_reader_decodes_reference_frames_whatever_the_cobs_variant():
    for values in (VALUES, [], [7] * 63, [-1] * F.MAX_INTS, [0] * F.MAX_INTS, [0x01010101] * 127):
        raw = ref_frame(2, 41, 6, values)
        for lead in (True, False):
            for final_one in (True, False):
                r = F.FrameReader()
                codes, frames = feed_all(r, ref_cobs(raw, lead, final_one))
                assert codes == [F.FRAME_OK] and frames == [(2, 41, 6, values)], (len(values), lead, final_one)
                assert r.version == 1 and r.length == len(raw) and bytes(r.buf[:r.length]) == raw


def test_round_trip_of_extremes():
    r = F.FrameReader()
    for role in (F.PATIENT, F.CLINICIAN):
        for counter in (0, 1, 255, 256, 65535, 1 << 24, F.COUNTER_MAX):
            codes, frames = feed_all(r, F.encode(MAC, role, counter, 200, VALUES))
            assert codes == [F.FRAME_OK] and frames == [(role, counter, 200, VALUES)]


def test_feed_buffer_stops_at_each_frame_end():
    a = F.encode(MAC, 1, 1, 1, [1])
    b = F.encode(MAC, 2, 2, 2, [2, 3])
    data = b"\x02\x07" + a + b + b"\x05"
    r = F.FrameReader()
    got = []
    at = 0
    while at < len(data):
        code = r.feed_buffer(data, len(data), at)
        assert at < r.next <= len(data)
        at = r.next
        if code == F.FRAME_OK:
            assert r.mac_ok(MAC)
            got.append((code, r.counter, r.values[:r.n]))
        elif code:
            got.append((code,))
    assert got == [(F.TRUNCATED,), (F.FRAME_OK, 1, [1]), (F.FRAME_OK, 2, [2, 3])]
    assert r.feed(0) == F.BAD_FRAME  # the last block (code 5) cut short
    assert r.feed_buffer(data, 3) == F.TRUNCATED and r.next == 3  # start defaults to 0
    assert r.feed(0) == F.NONE


# -- rejections ------------------------------------------------------------------------------------


def reject(data):
    codes, frames = feed_all(F.FrameReader(), data)
    assert frames == [], frames
    return codes


def test_each_rejection_code():
    good = ref_frame(2, 9, 4, [5, -6])
    assert reject(ref_cobs(ref_frame(2, 9, 4, [5, -6], key=b"another key"))) == [F.BAD_MAC]
    assert reject(ref_cobs(good[:-16] + bytes(16))) == [F.BAD_MAC]  # no MAC: zeros where it goes
    assert reject(ref_cobs(good[:-16])) == [F.TRUNCATED]  # no MAC at all
    assert reject(ref_cobs(ref_frame(2, 9, 4, [5, -6], version=2))) == [F.BAD_VERSION]
    assert reject(ref_cobs(ref_frame(2, 9, 4, [5, -6], version=0))) == [F.BAD_VERSION]
    for role in (0, 3, 255):
        assert reject(ref_cobs(ref_frame(role, 9, 4, [5, -6]))) == [F.BAD_ROLE]
    for counter in (1 << 30, 0x7FFFFFFF, 0xC0000000, 0xFFFFFFFF):
        raw = bytearray(good)
        raw[2:6] = struct.pack("<I", counter)
        assert reject(ref_cobs(bytes(raw[:-16]) + ref_mac(bytes(raw[:-16])))) == [F.BAD_COUNTER], counter
    for top in (0x40, 0x7F, 0x80, 0xBF):  # the top two bits differ: |v| >= 2**30
        raw = bytearray(good[:-16])
        raw[9 + 4 + 3] = top  # the second int's top byte
        assert reject(ref_cobs(bytes(raw) + ref_mac(bytes(raw)))) == [F.BAD_INT], top
    for top in (0x3F, 0xC0):  # the extremes that are small ints
        raw = bytearray(good[:-16])
        raw[9 + 3] = top
        codes, frames = feed_all(F.FrameReader(), ref_cobs(bytes(raw) + ref_mac(bytes(raw))))
        assert codes == [F.FRAME_OK]
    assert reject(ref_cobs(ref_frame(2, 9, 4, [0] * 3, n=F.MAX_INTS + 1))) == [F.TOO_LONG]
    assert reject(ref_cobs(ref_frame(2, 9, 4, [0] * 3, n=0xFFFF))) == [F.TOO_LONG]
    assert reject(ref_cobs(ref_frame(2, 9, 4, [0] * 3, n=2))) == [F.BAD_FRAME]  # bytes after the payload
    assert reject(ref_cobs(ref_frame(2, 9, 4, [0] * 3, n=4))) == [F.TRUNCATED]
    assert reject(ref_cobs(good[:-1])) == [F.TRUNCATED]
    assert reject(ref_cobs(good[:24])) == [F.TRUNCATED]
    assert reject(b"\x00\x01\x00") == [F.TRUNCATED]  # one empty block: an empty frame
    assert reject(b"\x00\x00\x00") == []  # no frame at all
    enc = ref_cobs(good)
    assert reject(enc[:-5] + b"\x00") == [F.BAD_FRAME]  # a delimiter inside a block
    assert reject(b"\x00\x05ab\x00") == [F.BAD_FRAME]


def test_oversized_input_is_too_long_and_never_grows_the_buffer():
    r = F.FrameReader()
    size = len(r.buf)
    huge = ref_frame(2, 1, 1, [-1] * F.MAX_INTS) + b"\xff" * 4  # 4 bytes too many
    assert reject(ref_cobs(huge)) == [F.TOO_LONG]
    for code_byte in (1, 2, 255):
        codes, frames = feed_all(r, bytes([code_byte]) * 5000 + b"\x00")
        assert codes == [F.TOO_LONG] and frames == []
    assert len(r.buf) == size and len(r.values) == F.MAX_INTS
    codes, frames = feed_all(r, F.encode(MAC, 1, 2, 3, [4]))  # and the next frame is read
    assert codes == [F.FRAME_OK] and frames == [(1, 2, 3, [4])]


def test_every_truncation_is_rejected():
    enc = F.encode(MAC, 2, 77, 5, VALUES)
    for cut in range(2, len(enc) - 1):
        assert reject(enc[:cut] + b"\x00") != [], cut  # and nothing accepted


def test_garbage_between_frames_resynchronises():
    rng = Lcg(15)
    frames = [(1 + k % 2, k, k % 7, VALUES[:k % len(VALUES)]) for k in range(30)]
    data = bytearray()
    for role, counter, command, values in frames:
        garbage = bytes(rng.next(256) for _ in range(rng.next(80)))
        data += garbage + F.encode(MAC, role, counter, command, values)
    codes, got = feed_all(F.FrameReader(), data)
    assert got == frames
    assert codes.count(F.FRAME_OK) == len(frames)


def test_a_bit_flipped_anywhere_is_rejected_and_the_next_frame_read():
    values = [3, -4, 100000]
    enc = F.encode(MAC, 2, 1234, 8, values)
    nxt = F.encode(MAC, 2, 1235, 8, values)
    r = F.FrameReader()
    rejected = {}
    for i in range(len(enc)):
        for bit in range(8):
            bad = bytearray(enc)
            bad[i] ^= 1 << bit
            codes, frames = feed_all(r, bytes(bad) + nxt)
            assert frames == [(2, 1235, 8, values)], (i, bit, codes, frames)  # only the next one
            assert codes[-1] == F.FRAME_OK and F.FRAME_OK not in codes[:-1], (i, bit, codes)
            for c in codes[:-1]:
                rejected[c] = rejected.get(c, 0) + 1
    print("bit flips over %d bytes: %s" % (len(enc), sorted((F.NAMES[c], n) for c, n in rejected.items())))
    assert F.BAD_MAC in rejected and F.BAD_FRAME in rejected


def test_encode_into_refuses_what_no_frame_can_carry():
    out = bytearray(F.MAX_ENCODED)
    raises(ValueError, lambda: F.encode_into(out, 3, 1, 1, [], 0, MAC))
    raises(ValueError, lambda: F.encode_into(out, 1, -1, 1, [], 0, MAC))
    raises(ValueError, lambda: F.encode_into(out, 1, 1 << 30, 1, [], 0, MAC))
    raises(ValueError, lambda: F.encode_into(out, 1, 1, 256, [], 0, MAC))
    raises(ValueError, lambda: F.encode_into(out, 1, 1, 1, [0] * 300, F.MAX_INTS + 1, MAC))
    raises(ValueError, lambda: F.encode_into(out, 1, 1, 1, [1 << 30], 1, MAC))
    raises(ValueError, lambda: F.encode_into(out, 1, 1, 1, [SMALL_MIN - 1], 1, MAC))
    raises(ValueError, lambda: F.encode_into(bytearray(30), 1, 1, 1, [1, 2], 2, MAC))
    n = F.encode_into(bytearray(28), 1, 1, 1, [], 0, MAC)  # 25 bytes, a code byte, 2 delimiters
    assert n == 28


# -- allocation ------------------------------------------------------------------------------------


def _rejected_stream():
    good = ref_frame(2, 9, 4, [5, -6])
    parts = [b"\x01\x02\x03garbage" * 20 + b"\x00", bytes([7]) * 3000]  # no delimiter in 3000: too long
    for bad in (ref_frame(2, 9, 4, [5, -6], version=2), ref_frame(3, 9, 4, [5, -6]), good[:-1],
                ref_frame(2, 9, 4, [0] * 3, n=F.MAX_INTS + 1), ref_frame(2, 9, 4, [0] * 3, n=2)):
        parts.append(ref_cobs(bad))
    raw = bytearray(good[:-16])
    raw[9 + 3] = 0x40
    parts.append(ref_cobs(bytes(raw) + bytes(16)))
    raw = bytearray(good)
    raw[5] = 0x40
    parts.append(ref_cobs(bytes(raw)))
    parts.append(ref_cobs(good)[:-6] + b"\x00")
    parts.append(ref_cobs(good[:24]))
    return b"".join(parts) + b"\x00"


def test_rejected_frames_and_a_good_frames_parse_allocate_nothing():
    bad = _rejected_stream()
    good = F.encode(MAC, 2, 5, 6, [-1, 2, SMALL_MAX, SMALL_MIN] * 64)  # MAX_INTS ints
    r = F.FrameReader()
    want = [F.TOO_LONG, F.BAD_VERSION, F.BAD_ROLE, F.TRUNCATED, F.TOO_LONG, F.BAD_FRAME, F.BAD_INT,
            F.BAD_COUNTER, F.BAD_FRAME, F.TRUNCATED]
    codes, _ = feed_all(r, bad)
    assert codes[0] in (F.BAD_FRAME, F.TRUNCATED) and codes[1:] == want, codes  # the garbage first
    meter = heap_meter()
    if meter is None:
        skip("allocation is measured on MicroPython")
    try:
        feed = r.feed
        start = meter()
        for b in bad:
            feed(b)
        per_byte = meter() - start
        start = meter()
        for _ in range(3):
            at = 0
            while at < len(bad):
                r.feed_buffer(bad, len(bad), at)
                at = r.next
        buffered = meter() - start
        start = meter()
        ok = 0
        for _ in range(3):
            ok += r.feed_buffer(good, len(good), 0) == F.FRAME_OK
            r.feed_buffer(good, len(good), r.next)
        parsed = meter() - start
        start = meter()
        r.feed_buffer(good, len(good))  # the default start
        defaulted = meter() - start
    finally:
        heap_meter_done()
    assert ok == 3 and r.n == F.MAX_INTS and r.values[2] == SMALL_MAX and r.values[3] == SMALL_MIN
    print("FrameReader: %d B for %d rejected frames fed by byte, %d B by buffer x3; %d B for 3 good"
          " frames of %d bytes; %d B with start defaulted" % (per_byte, len(want) + 1, buffered, parsed,
                                                                len(good), defaulted))
    assert per_byte == 0 and buffered == 0 and parsed == 0 and defaulted == 0


def test_encode_into_allocates_only_its_mac():
    out = bytearray(F.MAX_ENCODED)
    values = [-1, 2, SMALL_MAX, SMALL_MIN] * 64
    F.encode_into(out, 2, 1, 1, values, len(values), MAC)
    buf = bytearray(F.MAX_RAW)
    view = memoryview(buf)
    meter = heap_meter()
    if meter is None:
        skip("allocation is measured on MicroPython")
    try:
        start = meter()
        F.encode_into(out, 2, 1, 1, values, len(values), MAC)
        encode = meter() - start
        start = meter()
        MAC.mac_into(view, 0, F.MAX_RAW - 16, buf, F.MAX_RAW - 16)
        mac = meter() - start
    finally:
        heap_meter_done()
    print("encode_into: %d B, of which the MAC's hashlib objects %d B" % (encode, mac))
    assert encode == mac, (encode, mac)
