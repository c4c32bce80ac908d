"""Fuzzing the link's frames (firmware/frame.py) and their MAC (firmware/hmac_sha256.py) on CPython:
the MAC against CPython's hmac; random bytes and mutated valid frames into the reader: no exception
escapes, and only a frame as it was sent, with its right MAC, comes out. `make soak`
(HYPOTHESIS_PROFILE=soak) runs 100,000 mutated frames and more examples."""

import hashlib
import hmac
import os
import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from test_frame import KEY as MAC_KEY
from test_frame import MAC, ref_cobs, ref_frame

from firmware import frame as F
from firmware.hmac_sha256 import MAC_LEN, HmacSha256

SOAK = os.environ.get("HYPOTHESIS_PROFILE") == "soak"
SMALL = st.integers(-(2**30), 2**30 - 1)
CODES = set(range(len(F.NAMES)))


def accepted(reader, data, chunks=None):
    """(every code, the frames accepted with their MAC) from feeding data, whole or in chunks."""
    codes, frames = [], []
    view = memoryview(data)
    for lo, hi in chunks or [(0, len(data))]:
        piece = bytes(view[lo:hi])
        at = 0
        while at < len(piece):
            code = reader.feed_buffer(piece, len(piece), at)
            assert at < reader.next <= len(piece)
            at = reader.next
            if code == F.FRAME_OK and not reader.mac_ok(MAC):
                code = F.BAD_MAC
            if code == F.FRAME_OK:
                frames.append((reader.role, reader.counter, reader.command, reader.values[:reader.n]))
            if code:
                codes.append(code)
    return codes, frames


@given(st.binary(max_size=200), st.binary(max_size=400), st.data())
def test_mac_is_cpythons_hmac_truncated(key, msg, data):
    lo = data.draw(st.integers(0, len(msg)))
    hi = data.draw(st.integers(lo, len(msg)))
    want = hmac.new(key, msg[lo:hi], hashlib.sha256).digest()[:MAC_LEN]
    h = HmacSha256(key)
    out = bytearray(MAC_LEN + 2)
    h.mac_into(msg, lo, hi, out, 2)
    assert bytes(out[2:]) == want
    assert h.verify(bytearray(msg), lo, hi, out, 2)
    i = data.draw(st.integers(2, MAC_LEN + 1))
    out[i] ^= 1 << data.draw(st.integers(0, 7))
    assert not h.verify(msg, lo, hi, out, 2)


frame_fields = st.tuples(st.sampled_from([F.PATIENT, F.CLINICIAN]), st.integers(0, F.COUNTER_MAX),
                         st.integers(0, 255), st.lists(SMALL, max_size=F.MAX_INTS))


@given(frame_fields, st.lists(st.integers(1, 300), max_size=8))
def test_any_valid_frame_round_trips_in_any_chunks(fields, cuts):
    role, counter, command, values = fields
    enc = F.encode(MAC, role, counter, command, values)
    assert enc == ref_cobs(ref_frame(role, counter, command, values))
    bounds = sorted({0, len(enc), *(min(c, len(enc)) for c in cuts)})
    chunks = list(zip(bounds, bounds[1:], strict=False))
    codes, frames = accepted(F.FrameReader(), enc, chunks)
    assert codes == [F.FRAME_OK] and frames == [(role, counter, command, values)]


@given(st.binary(max_size=3000))
def test_random_bytes_never_raise_nor_pass(data):
    codes, frames = accepted(F.FrameReader(), data + b"\x00")
    assert set(codes) <= CODES - {F.NONE, F.FRAME_OK} and frames == []


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=6), frame_fields)
def test_random_fields_with_a_right_mac_are_judged_as_their_bytes(pieces, fields):
    """Raw frames of random bytes, MAC'd with the right key: accepted exactly when the bytes are a
    frame by the format's definition (struct), with its fields."""
    role, counter, command, values = fields
    raw = bytearray(ref_frame(role, counter, command, values)[:-MAC_LEN])
    for p in pieces:  # overwrite or append random bytes
        at = len(p) % (len(raw) + 1)
        raw[at:at + len(p)] = p
    raw = bytes(raw)
    data = ref_cobs(raw + bytes(hmac.new(MAC_KEY, raw, hashlib.sha256).digest()[:MAC_LEN]))
    codes, frames = accepted(F.FrameReader(), data)
    assert len(codes) == 1
    ok = (len(raw) >= 9 and raw[0] == 1 and raw[1] in (1, 2) and raw[5] < 0x40
          and len(raw) == 9 + 4 * (raw[7] | raw[8] << 8) and (raw[7] | raw[8] << 8) <= F.MAX_INTS
          and all(-(2**30) <= v < 2**30 for v in struct.unpack_from("<%di" % ((len(raw) - 9) // 4), raw, 9)))
    assert (codes == [F.FRAME_OK]) == ok, (codes, raw.hex())
    if ok:
        n = (len(raw) - 9) // 4
        assert frames == [(raw[1], struct.unpack_from("<I", raw, 2)[0], raw[6],
                           list(struct.unpack_from("<%di" % n, raw, 9)))]



def _mutate(rng, enc):
    """One change inside the frame, its two delimiters left alone: a bit flipped, a byte deleted,
    inserted or replaced, a run of bytes cut, a chunk duplicated, or the frame cut short."""
    b = bytearray(enc)
    kind = rng.randrange(6)
    i = rng.randrange(1, len(b) - 1)
    if kind == 0:
        b[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del b[i]
    elif kind == 2:
        b.insert(i, rng.randrange(256))
    elif kind == 3:
        b[i] = (b[i] + rng.randrange(1, 256)) & 0xFF
    elif kind == 4:
        del b[i:i + rng.randrange(1, 40)]
        b[-1:] = b"\x00"
    else:
        j = rng.randrange(i, len(b) - 1)
        b[i:i] = b[i:j + 1]
    return kind, bytes(b)


def test_mutated_frames_in_a_stream():
    """A stream of frames, most mutated, with garbage between some: every frame sent intact comes
    out, and a mutated one never does unless it decodes to exactly the frame sent."""
    total = 100_000 if SOAK else 3_000
    rng = random.Random(15)
    sent, intact, data = [], set(), bytearray()
    for counter in range(total):
        values = [rng.randrange(-(2**30), 2**30) for _ in range(rng.choice((0, 1, 3, 20, 63, 64, F.MAX_INTS)))]
        fields = (rng.choice((1, 2)), counter, rng.randrange(256), values)
        enc = F.encode(MAC, *fields)
        sent.append(fields)
        if rng.random() < 0.2:
            intact.add(counter)
        else:
            enc = _mutate(rng, enc)[1]
        if rng.random() < 0.1:  # garbage, perhaps with zeros, before it
            data += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
        data += enc
    codes, frames = accepted(F.FrameReader(), bytes(data) + b"\x00")
    got = [f[1] for f in frames]
    assert got == sorted(set(got)), "a frame came out twice or out of order"
    for f in frames:
        assert f == sent[f[1]]
    assert intact <= set(got)
    by_code = sorted((F.NAMES[c], codes.count(c)) for c in set(codes))
    print("\nframes fuzzed: %d (%d intact, %d mutated; %d mutated ones decoded to the frame sent), %d bytes;"
          " frame ends by code: %s" % (total, len(intact), total - len(intact), len(set(got) - intact),
                                       len(data), by_code))


@settings(max_examples=2000 if SOAK else 100)
@given(st.integers(0, 2**32 - 1))
def test_one_mutation_of_one_frame_is_rejected(seed):
    rng = random.Random(seed)
    values = [rng.randrange(-(2**30), 2**30) for _ in range(rng.randrange(0, 70))]
    fields = (rng.choice((1, 2)), rng.randrange(2**30), rng.randrange(256), values)
    enc = F.encode(MAC, *fields)
    kind, bad = _mutate(rng, enc)
    codes, frames = accepted(F.FrameReader(), bad + b"\x00")
    # A mutation can leave the same decoded bytes only by re-encoding them (COBS's optional last
    # code byte, or a duplicated run after the frame's end): then it is the frame sent.
    assert frames in ([], [fields]), (kind, codes)
    assert frames == [] or F.decode(bad, MAC) == F.decode(enc, MAC)
