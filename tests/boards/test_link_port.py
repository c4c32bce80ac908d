# The link's byte port on the boards (hal/machine_link.py, issue 15 "Transport") over each virtual
# port's machine.UART and the virtual USB serial stream (boards/virtual/vstdio.py): frames from
# firmware/frame.py's encoder read whole by its FrameReader, replies out whole, each port's RX
# overflow, make_uart's errors, and no allocation in any()/readinto(). The ports' behaviour is
# restated here from their sources (file named beside it), never read back from the fakes. On
# CPython and on the MicroPython unix port (tools/run_boards.sh), one port and release per run.

import machine
import vport
import vstdio
from support import heap_meter, heap_meter_done, raises

from firmware import frame as F
from firmware.hmac_sha256 import HmacSha256
from hal import machine_link
from hal.machine_link import BUFFER, UartLink, UsbSerialLink, make_uart

PORT = machine.PORT
MAC = HmacSha256(b"clinician key, 32 bytes long ...")
CHUNK = 128  # what firmware/link.py asks of the port at a time (its _CHUNK)
# a valid UART per port: rp2 UART0 on GPIO 0/1; esp32 UART1 on 17/16; the pyboard's UART 1 (X9/X10)
GOOD = {"rp2": (0, 115200, 0, 1), "esp32": (1, 115200, 17, 16), "stm32": (1, 115200, None, None)}
GARBAGE = b"\x17\x00\x05\x01\x02\x00\xff\xfe\x00\x00\x09"


def _frame(counter, values):
    return F.encode(MAC, 1, counter, 3, values)


def _uart():
    machine.reset_fakes()
    uart = make_uart(*GOOD[PORT])
    uart.sent()
    return uart


def _read_frames(port, reader, into):
    """Reads the port as firmware/link.py does (any(), then readinto of CHUNK) until it is empty:
    [(code, counter, values)] for every frame end."""
    buf = bytearray(CHUNK)
    while port.any():
        n = port.readinto(buf, CHUNK)
        assert isinstance(n, int) and 0 < n <= CHUNK
        at = 0
        while at < n:
            code = reader.feed_buffer(buf, n, at)
            at = reader.next
            if code == F.FRAME_OK:
                assert reader.mac_ok(MAC)
                into.append((code, reader.counter, list(reader.values[:reader.n])))
            elif code:
                into.append((code, None, None))
    return into


# -- the UART --------------------------------------------------------------------------------------


def test_the_buffer_holds_a_whole_largest_frame():
    assert BUFFER >= F.MAX_ENCODED == 1056
    assert BUFFER >= 16 * CHUNK  # what firmware/link.py reads in one wake


def test_a_frame_through_the_uart_is_read_whole_in_pieces_after_garbage():
    uart = _uart()
    port = UartLink(uart)
    reader = F.FrameReader()
    big = _frame(7, list(range(-128, 128)))  # 256 ints: the largest payload
    assert len(big) > 1000
    data = GARBAGE + big + _frame(8, [1, 2, 3])
    got = []
    at = 0
    for size in (1, 5, 130, 3, 600, 1, 2000):  # pieces as the line brings them
        uart.receive(data[at:at + size])
        at += size
        _read_frames(port, reader, got)
    assert at >= len(data)
    ok = [g for g in got if g[0] == F.FRAME_OK]
    assert ok == [(F.FRAME_OK, 7, list(range(-128, 128))), (F.FRAME_OK, 8, [1, 2, 3])]
    assert port.any() == 0 and port.readinto(bytearray(CHUNK), CHUNK) == 0  # nothing: 0, not None


def test_readinto_never_asks_the_port_for_bytes_it_does_not_hold():
    # rp2 and stm32 wait timeout_char (at least a character, forced) for a byte after the first; the
    # fake raises where the board would wait: asked for more than any(), a read raises.
    uart = _uart()
    uart.receive(b"abc")
    if PORT in ("rp2", "stm32"):
        raises(AssertionError, lambda: uart.readinto(bytearray(8), 8))
    buf = bytearray(8)
    assert UartLink(uart).readinto(buf, 8) == 3 and buf[:3] == b"abc"
    assert uart.readinto(bytearray(8), 8) is None  # nothing within timeout=0: None (py/stream.c EAGAIN)


def test_a_reply_written_comes_out_whole():
    uart = _uart()
    port = UartLink(uart)
    out = bytearray(F.MAX_ENCODED)
    n = F.encode_into(out, 1, 9, 4, list(range(256)), 256, MAC)
    port.write(out, n)  # only buf[0:n] goes
    assert uart.sent() == bytes(out[:n])
    port.write(b"xyz", 2)
    assert uart.sent() == b"xy"


def test_a_write_the_other_end_does_not_take_fails_loudly_or_blocks_as_the_port_does():
    uart = _uart()
    port = UartLink(uart)
    uart.hold_tx(True)
    data = bytes(range(256)) * 12  # 3072 bytes: more than any TX buffer make_uart asks for
    if PORT == "esp32":
        # uart_write_bytes blocks until the driver's ring takes every byte: a board hangs there
        raises(AssertionError, lambda: port.write(data, len(data)))
        return
    e = raises(OSError, lambda: port.write(data, len(data)))
    assert "then none" in str(e)
    uart.hold_tx(False)
    got = uart.sent()
    # rp2: the txbuf ring (BUFFER) and the 32-byte TX FIFO took their fill; stm32: the data register, 1
    assert got == data[:BUFFER + 32 if PORT == "rp2" else 1]


def _kept(n_sent):
    """Which of n_sent bytes sent at once (none read) the port keeps, from its sources (indices)."""
    if PORT == "rp2":
        # ports/rp2/machine_uart.c: the rxbuf ring, then the PL011's 32-byte RX FIFO; then overrun
        return list(range(min(n_sent, BUFFER + 32)))
    if PORT == "stm32":
        # ports/stm32/uart.c uart_irq_handler: the ring (read_buf_len - 1 = rxbuf usable), then the
        # data register (RXNE irq masked); then overrun
        return list(range(min(n_sent, BUFFER + 1)))
    # esp32 (ESP-IDF uart.c uart_rx_intr_handler_default): the ring; the next byte stashed; then the
    # 128-byte FIFO, which an overflow resets (its bytes and the new one lost)
    first = min(n_sent, BUFFER + 1)
    rest = n_sent - first
    return list(range(first)) + list(range(n_sent - rest % 129, n_sent))


def test_an_rx_overflow_loses_bytes_as_the_port_does_and_the_reader_resynchronises():
    uart = _uart()
    port = UartLink(uart)
    flood = bytes(i % 251 + 1 for i in range(BUFFER + 300))  # no 0x00: one long bad frame
    uart.receive(flood)
    kept = _kept(len(flood))
    got = bytearray()
    buf = bytearray(CHUNK)
    while port.any():
        got += buf[:port.readinto(buf, CHUNK)]
    assert bytes(got) == bytes(flood[i] for i in kept)
    assert uart.lost == len(flood) - len(kept)
    # a frame cut by the overflow is refused; the next one is read whole
    reader = F.FrameReader()
    frames = []
    a, b = _frame(20, [5] * 200), _frame(21, [6])
    uart.receive(a + a + a)  # 3 x 831 bytes, none read: more than the port holds
    _read_frames(port, reader, frames)
    uart.receive(b)
    _read_frames(port, reader, frames)
    assert frames[-1] == (F.FRAME_OK, 21, [6])
    assert len([f for f in frames if f[0] == F.FRAME_OK and f[1] == 20]) <= 2  # one at least was cut


def test_make_uart_builds_the_uart_as_the_port_takes_it():
    uart = _uart()
    assert uart.timeout == 0
    if PORT == "stm32":
        assert uart.rxbuf == BUFFER and uart.baudrate == 115200
    else:
        assert uart.rxbuf == BUFFER and uart.txbuf == BUFFER
        assert (uart.tx, uart.rx) == GOOD[PORT][2:]


def test_make_uart_names_an_id_or_pin_wrong_for_the_port():
    machine.reset_fakes()
    bad = {
        # ports/rp2/machine_uart.c IS_VALID_TX/RX (RP2040): UART0 TX 0, 12, 16, 28; UART1 TX 4, 8, 20, 24
        "rp2": (((2, 115200, 0, 1), "uart"), ((0, 115200, 4, 1), "tx_pin"), ((0, 115200, 0, 5), "rx_pin"),
                ((1, 115200, 4, 5), None), ((1, 115200, 8, 9), None), ((0, 115200, 28, 29), None),
                ((0, 115200, 30, 1), "tx_pin"), ((0, 0, 0, 1), "baudrate"), ((0, 115200, "GP0", 1), "tx_pin")),
        # ports/esp32/uart.h: UART0 the REPL; GPIO 6..11 the flash; 34..39 inputs only
        "esp32": (((0, 115200, 17, 16), "REPL"), ((3, 115200, 17, 16), "uart"), ((1, 115200, 6, 16), "tx_pin"),
                  ((1, 115200, 17, 11), "rx_pin"), ((1, 115200, 34, 16), "tx_pin"), ((2, 115200, 4, 35), None),
                  ((1, 115200, 24, 16), "tx_pin"), ((1, 115200, 17, 17), "rx_pin")),
        # PYBV11: UART 1, 2, 3, 4, 6 on fixed pins
        "stm32": (((5, 115200, None, None), "uart"), ((1, 115200, "X9", None), "tx_pin"),
                  ((6, 115200, None, None), None), ((0, 115200, None, None), "uart")),
    }[PORT]
    for args, name in bad:
        if name is None:
            make_uart(*args)
            continue
        e = raises(ValueError, lambda: make_uart(*args))
        assert name in str(e), (args, str(e))
    e = raises(ValueError, lambda: machine_link.check_uart("unix", 0, 9600, 0, 1))
    assert "unix" in str(e)


# -- the ports' own machine.UART (the fakes against the sources) -------------------------------------


def _error(fn):
    try:
        fn()
    except OSError as e:  # (CPython makes OSError(1, ...) a PermissionError)
        return ("OSError", e.args)
    except Exception as e:
        return (type(e).__name__, str(e))
    return None


def test_the_ports_uart_constructor_refuses_what_its_source_refuses():
    machine.reset_fakes()
    U = machine.UART
    if PORT == "rp2":  # ports/rp2/machine_uart.c
        assert _error(lambda: U(2)) == ("ValueError", "UART(2) doesn't exist")
        assert _error(lambda: U(0, tx=machine.Pin(4))) == ("ValueError", "bad TX pin")
        assert _error(lambda: U(1, rx=8)) == ("ValueError", "bad RX pin")
        assert _error(lambda: U(0, rxbuf=32767)) == ("ValueError", "rxbuf too large")
        assert _error(lambda: U(0, txbuf=40000)) == ("ValueError", "txbuf too large")
        assert _error(lambda: U(0, 9600, parity=None, foo=1))[0] == "TypeError"
        u = U(0, rxbuf=5)
        assert u.rxbuf == 32 and U(0) is u  # MIN_BUFFER_SIZE; one object per id
        assert U(1, 9600).timeout_char == 13000 // 9600 + 1  # at least a character
    elif PORT == "esp32":  # ports/esp32/machine_uart.c, ESP-IDF uart_driver_install
        assert _error(lambda: U(3)) == ("ValueError", "UART(3) does not exist")
        fixed = "REPL UART buffer size is fixed" if vport.at_least(1, 27) else "UART buffer size is fixed"
        assert _error(lambda: U(0, rxbuf=1024)) == ("ValueError", fixed)
        assert _error(lambda: U(1, rxbuf=128)) == ("OSError", (1, "ESP_FAIL"))  # must exceed the FIFO
        assert _error(lambda: U(1, txbuf=100)) == ("OSError", (1, "ESP_FAIL"))
        assert U(1, txbuf=0).txbuf == 0
        assert _error(lambda: U(1, tx=34)) == ("OSError", (1, "ESP_FAIL"))  # input only
        assert _error(lambda: U(1, tx=24)) == ("ValueError", "invalid pin")
        assert (U(1) is U(1)) == vport.at_least(1, 27)
    else:  # ports/stm32/machine_uart.c
        assert _error(lambda: U(5)) == ("ValueError", "UART(5) doesn't exist")
        assert _error(lambda: U("XC")) == ("ValueError", "UART(XC) doesn't exist")
        assert U("XB") is U(1) and U("YA") is U(6)
        assert _error(lambda: U(1, 9600, tx="X9"))[0] == "TypeError"  # fixed pins: no tx keyword
        assert _error(lambda: U(1, timeout=0)) == ("TypeError", "'baudrate' argument required")
        u = U(2, 9600)
        assert u.rxbuf == 64 and u.timeout_char == 13000 // 9600 + 2  # read_buf_len's default


def test_the_ports_rx_buffer_of_a_given_size():
    machine.reset_fakes()
    sizes = {"rp2": (100, 100 + 32), "stm32": (100, 101), "esp32": (200, 201 + 128 // 2)}
    rxbuf, kept = sizes[PORT]
    kw = {"rxbuf": rxbuf, "timeout": 0}
    if PORT == "esp32":
        u = machine.UART(2, 115200, tx=4, rx=5, **kw)
        u.receive(bytes(range(1, 256)) * 1)  # 255: ring 200, stash 1, FIFO 54 of 128
        assert u.any() == 200 and u.lost == 0
        got = u.read(200)
        assert got == bytes(range(1, 201))
        assert u.any() == 55  # the stash, then the FIFO as one chunk
        assert u.read() == bytes(range(201, 256))
        return
    u = machine.UART(1, 115200, **kw)
    u.receive(bytes(range(1, 256)))
    assert u.any() == rxbuf and u.lost == 255 - kept
    assert u.read(rxbuf) == bytes(range(1, rxbuf + 1))
    assert u.any() == kept - rxbuf and u.read() == bytes(range(rxbuf + 1, kept + 1))
    assert u.read(1) is None


# -- the USB serial stream ---------------------------------------------------------------------------


def _usb():
    stdin = vstdio.StdinBuffer()
    stdout = vstdio.StdoutBuffer()
    return stdin, stdout, UsbSerialLink(stdin, stdout, vstdio.poll())


def test_the_stdin_buffer_blocks_when_asked_for_more_than_it_holds():
    # shared/runtime/sys_stdio_mphal.c stdio_buffer_read: mp_hal_stdin_rx_chr per byte, each blocking
    stdin = vstdio.StdinBuffer()
    stdin.receive(b"ab")
    raises(AssertionError, lambda: stdin.readinto(bytearray(3)))
    one = bytearray(1)
    assert stdin.readinto(one) == 1 and one == b"a"


def test_a_frame_through_the_usb_stream_is_read_whole_in_pieces_after_garbage():
    stdin, stdout, port = _usb()
    assert port.any() == 0 and port.readinto(bytearray(CHUNK), CHUNK) == 0
    reader = F.FrameReader()
    data = GARBAGE + _frame(30, list(range(-128, 128))) + _frame(31, [4])
    got = []
    at = 0
    for size in (3, 1, 200, 77, 4000):
        stdin.receive(data[at:at + size])
        at += size
        _read_frames(port, reader, got)
    assert [g for g in got if g[0] == F.FRAME_OK] == [(F.FRAME_OK, 30, list(range(-128, 128))), (F.FRAME_OK, 31, [4])]
    out = bytearray(F.MAX_ENCODED)
    n = F.encode_into(out, 1, 32, 4, [1, 2], 2, MAC)
    port.write(out, n)
    assert stdout.sent() == bytes(out[:n])


# -- allocation -------------------------------------------------------------------------------------


_BUF = bytearray(CHUNK)


def _steady(port, feed, reps):
    buf = _BUF
    i = 0
    while i < reps:
        feed()
        while port.any():
            port.readinto(buf, CHUNK)
        port.readinto(buf, CHUNK)  # nothing held
        i += 1


def _measure(port, feed, reps=40):
    _steady(port, feed, 3)  # first calls (ipoll's one tuple) before measuring
    mem = heap_meter()
    if mem is None:
        _steady(port, feed, reps)
        return None
    try:
        before = mem()
        _steady(port, feed, reps)
        return mem() - before
    finally:
        heap_meter_done()


def test_uart_any_and_readinto_allocate_nothing():
    uart = _uart()
    data = _frame(40, [1] * 100)

    def feed():
        uart.receive(data)

    allocated = _measure(UartLink(uart), feed)
    print("UartLink.any + readinto on %s: %s B over 40 frames of %d bytes" % (PORT, allocated, len(data)))
    assert not allocated


def test_usb_any_and_readinto_allocate_nothing():
    stdin, stdout, port = _usb()
    data = _frame(41, [1] * 100)

    def feed():
        stdin.receive(data)

    allocated = _measure(port, feed)
    print("UsbSerialLink.any + readinto: %s B over 40 frames of %d bytes" % (allocated, len(data)))
    assert not allocated
