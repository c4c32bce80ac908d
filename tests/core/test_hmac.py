# HMAC-SHA256 against RFC 4231's test vectors (section 4), truncated to MAC_LEN; the allocation of
# one verify on MicroPython. tests/host/test_frame_fuzz.py checks it against CPython's hmac.

from binascii import unhexlify

from support import heap_meter, heap_meter_done, skip

from firmware.hmac_sha256 import MAC_LEN, HmacSha256

_CASE7 = (b"This is a test using a larger than block-size key and a larger than block-size data. The key"
          b" needs to be hashed before being used by the HMAC algorithm.")

# (key, data, HMAC-SHA-256 as printed in RFC 4231; case 5 gives only the first 128 bits)
RFC4231 = (
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, _CASE7, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
)


def test_mac_len_is_128_bits():
    assert MAC_LEN == 16


def test_rfc4231_vectors():
    for key, data, want in RFC4231:
        want = unhexlify(want)[:MAC_LEN]
        out = bytearray(MAC_LEN + 3)
        HmacSha256(key).mac_into(data, 0, len(data), out, 3)
        assert bytes(out[3:]) == want, key
        assert out[:3] == bytearray(3)  # nothing written before `at`


def test_a_slice_of_a_buffer_is_macd_as_the_bytes_alone():
    for key, data, want in RFC4231:
        buf = bytearray(b"\x00\xff" + data + b"\x55")
        out = bytearray(MAC_LEN)
        h = HmacSha256(key)
        h.mac_into(buf, 2, 2 + len(data), out, 0)
        assert bytes(out) == unhexlify(want)[:MAC_LEN]
        h.mac_into(memoryview(buf), 2, 2 + len(data), out, 0)
        assert bytes(out) == unhexlify(want)[:MAC_LEN]


def test_verify_accepts_the_mac_and_refuses_any_other():
    for key, data, want in RFC4231:
        h = HmacSha256(key)
        mac = bytearray(b"\x99" + unhexlify(want)[:MAC_LEN])
        assert h.verify(data, 0, len(data), mac, 1)
        for i in range(1, len(mac)):
            for bit in (0x01, 0x80):
                mac[i] ^= bit
                assert not h.verify(data, 0, len(data), mac, 1), (i, bit)
                mac[i] ^= bit
        assert not h.verify(data, 0, len(data) - 1, mac, 1)  # one byte less: another message
        assert not HmacSha256(key + b"x").verify(data, 0, len(data), mac, 1)  # another key


def test_the_same_object_macs_again_and_again():
    key, data, want = RFC4231[1]
    h = HmacSha256(key)
    mac = unhexlify(want)
    for _ in range(3):
        assert h.verify(data, 0, len(data), mac, 0)


def test_one_verify_allocates_only_the_hashes():
    key, data, want = RFC4231[6]
    buf = bytearray(data + bytes(MAC_LEN))
    h = HmacSha256(key)
    h.mac_into(buf, 0, len(data), buf, len(data))
    view = memoryview(buf)
    meter = heap_meter()
    if meter is None:
        skip("allocation is measured on MicroPython")
    try:
        start = meter()
        for _ in range(10):
            h.verify(view, 0, len(data), buf, len(data))
        used = (meter() - start) // 10
        start = meter()
        for _ in range(10):
            h.verify(buf, 0, len(data), buf, len(data))  # a bytearray: its memoryview too
        used_ba = (meter() - start) // 10
    finally:
        heap_meter_done()
    assert h.verify(view, 0, len(data), buf, len(data))
    print("HmacSha256.verify: %d B per call on a memoryview, %d B on a bytearray" % (used, used_ba))
    # Two hash objects of about 0.1 KB each, two 32-byte digests and a memoryview: well under 1 KB.
    assert 0 < used <= used_ba < 1024, (used, used_ba)
