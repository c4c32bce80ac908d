# The link's byte port on a board (hal/interfaces.py LinkPort; issue 15 "Transport"): a machine.UART
# (UartLink, made by make_uart) or the USB serial stream (UsbSerialLink over sys.stdin.buffer,
# sys.stdout.buffer and a select.poll). The caller makes the hardware and passes it in.
#
# What the ports do, MicroPython v1.24.0..v1.28.0 (boards/virtual/README.md has the fakes):
#   UART.readinto(buf, n)  extmod/machine_uart.c: py/stream.c readinto (1.24-1.26: reads until n
#          bytes or a timeout) or readinto1 (1.27+: one read); None when nothing came. Every port
#          waits timeout_char between bytes (rp2 and stm32 force it to at least a character time),
#          so UartLink asks for at most any() bytes: those are there, nothing waits.
#   UART.write(buf, off, n)  rp2: into the txbuf ring, waiting at most `timeout` for room, then
#          returns what it took (None: nothing); esp32: uart_write_bytes blocks until every byte is
#          in the driver's buffer; stm32: byte by byte, waiting 2 x timeout_char for the data
#          register, returns what went (fewer on a CTS stall), None if the first could not.
#          So write loops until every byte went and raises OSError after _STALLS calls in a row
#          that took none (rp2: each waits for the next ms tick, so about a second).
#   sys.stdin.buffer.readinto(buf)  shared/runtime/sys_stdio_mphal.c stdio_buffer_read: one
#          mp_hal_stdin_rx_chr per byte, each BLOCKING until a byte comes. So UsbSerialLink reads
#          one byte at a time, only while the poller says stdin is readable.
#   select.poll  extmod/modselect.c: poll() returns a new list of new tuples at every call;
#          ipoll() makes its one tuple at its first call and reuses it: any() uses ipoll(0).
# Written in the subset of Python MicroPython implements.

import machine

from hal.machine_watchdog import port_name
from micropython import const

BUFFER = const(2048)  # rx (and tx) buffer asked of the port: a whole largest frame (firmware/frame.py
# MAX_ENCODED, 1056 bytes) and what firmware/link.py reads in one wake (16 x 128)
_STALLS = const(1000)  # write() calls in a row that took no byte before write gives up, loudly
_POLLIN = const(1)  # select.POLLIN (MP_STREAM_POLL_RD) on every port, and CPython's

# rp2 (RP2040) ports/rp2/machine_uart.c IS_VALID_TX/IS_VALID_RX: UART0 TX on GPIO 0, 12, 16, 28 and
# RX one above; UART1 TX on 4, 8, 20, 24 (and 9, 21, 25 RX). (pin & 3) == 0 and ((pin + 4) & 8) >> 3 == id.
_RP2_GPIOS = 30
# esp32 (ESP32_GENERIC): any GPIO the port enables (ports/esp32/machine_pin.h), but 6..11 carry the
# SPI flash on every ESP32 module and 34..39 are inputs only (GPIO_FIRST_NON_OUTPUT); UART0 is the
# REPL (ports/esp32/uart.h MICROPY_HW_UART_REPL 0: no driver, its buffer size fixed).
_ESP32_GPIOS = tuple(range(24)) + (25, 26, 27) + tuple(range(32, 40))
_ESP32_FLASH = (6, 7, 8, 9, 10, 11)
_ESP32_INPUT_ONLY = 34
_ESP32_UARTS = (1, 2)  # SOC_UART_NUM 3 on the original ESP32; 0 is the REPL
# stm32 (PYBV11 mpconfigboard.h): each UART on its fixed pins (tx, rx), named as pins.csv names them
_PYB_UARTS = {1: ("X9", "X10"), 2: ("X3", "X4"), 3: ("Y9", "Y10"), 4: ("X1", "X2"), 6: ("Y1", "Y2")}


def _gpio(name, pin, gpios):
    if isinstance(pin, bool) or not isinstance(pin, int) or pin not in gpios:
        raise ValueError("%s: %r is not a GPIO number of this board" % (name, pin))
    return pin


def check_uart(port, uart_id, baudrate, tx_pin, rx_pin):
    """Raises ValueError naming the argument unless the port has that UART on those pins."""
    if isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate <= 0:
        raise ValueError("baudrate: must be a positive integer, not %r" % (baudrate,))
    if port == "rp2":
        if uart_id not in (0, 1) or isinstance(uart_id, bool):
            raise ValueError("uart: the rp2 has UART 0 and 1, not %r" % (uart_id,))
        tx = _gpio("tx_pin", tx_pin, range(_RP2_GPIOS))
        rx = _gpio("rx_pin", rx_pin, range(_RP2_GPIOS))
        if tx & 3 != 0 or ((tx + 4) & 8) >> 3 != uart_id:
            raise ValueError("tx_pin: GPIO %d is not a TX pin of UART %d (%s)" % (tx, uart_id, _rp2_pins(uart_id, 0)))
        if rx & 3 != 1 or ((rx + 4) & 8) >> 3 != uart_id:
            raise ValueError("rx_pin: GPIO %d is not an RX pin of UART %d (%s)" % (rx, uart_id, _rp2_pins(uart_id, 1)))
    elif port == "esp32":
        if uart_id == 0 and not isinstance(uart_id, bool):
            raise ValueError("uart: UART 0 is the esp32's REPL (the USB serial); use 1 or 2")
        if uart_id not in _ESP32_UARTS or isinstance(uart_id, bool):
            raise ValueError("uart: the esp32 has UART 1 and 2 for the link, not %r" % (uart_id,))
        for name, pin in (("tx_pin", tx_pin), ("rx_pin", rx_pin)):
            if _gpio(name, pin, _ESP32_GPIOS) in _ESP32_FLASH:
                raise ValueError("%s: GPIO %d carries the SPI flash" % (name, pin))
        if tx_pin >= _ESP32_INPUT_ONLY:
            raise ValueError("tx_pin: GPIO %d is an input only" % tx_pin)
        if tx_pin == rx_pin:
            raise ValueError("rx_pin: GPIO %d is the tx_pin too" % rx_pin)
    elif port == "stm32":
        pins = _PYB_UARTS.get(uart_id) if not isinstance(uart_id, bool) else None
        if pins is None:
            raise ValueError("uart: the pyboard has UART 1, 2, 3, 4 and 6, not %r" % (uart_id,))
        if tx_pin is not None or rx_pin is not None:
            raise ValueError("tx_pin: the pyboard's UART %d has fixed pins (TX %s, RX %s): give none" % (
                uart_id, pins[0], pins[1]))
    else:
        raise ValueError("uart: no UART link on port %r" % (port,))


def _rp2_pins(uart_id, rx):
    return ", ".join("%d" % p for p in range(rx, _RP2_GPIOS, 4) if ((p + 4) & 8) >> 3 == uart_id)


def make_uart(uart_id, baudrate, tx_pin, rx_pin):
    """The machine.UART as this port takes it, with reads that never wait (timeout 0) and buffers
    of BUFFER bytes where the port lets them be set. ValueError (naming the argument) for an id or
    pin wrong on this port; the port's own errors otherwise."""
    port = port_name()
    check_uart(port, uart_id, baudrate, tx_pin, rx_pin)
    if port == "stm32":
        # ports/stm32/machine_uart.c: no tx/rx (fixed pins), no txbuf (writes go byte by byte)
        return machine.UART(uart_id, baudrate, timeout=0, rxbuf=BUFFER)
    return machine.UART(uart_id, baudrate, tx=machine.Pin(tx_pin), rx=machine.Pin(rx_pin), timeout=0,
                        rxbuf=BUFFER, txbuf=BUFFER)


def _write_all(stream, buf, n):
    # stream.write(buf, off, n) (py/stream.c, 1.24+) sends from buf[off:] without a slice
    sent = 0
    stalls = 0
    while sent < n:
        k = stream.write(buf, sent, n - sent)
        if k:
            sent += k
            stalls = 0
        else:
            stalls += 1
            if stalls >= _STALLS:
                raise OSError("link: the port took %d of %d bytes, then none" % (sent, n))


class UartLink:
    """LinkPort over a machine.UART (make_uart's). Nothing it reads waits; a write goes whole."""

    def __init__(self, uart):
        self._uart = uart

    def any(self):
        return self._uart.any()

    def readinto(self, buf, n):
        k = self._uart.any()
        if k > n:
            k = n
        if k <= 0:
            return 0
        k = self._uart.readinto(buf, k)
        return k if k else 0  # None: nothing came after all

    def write(self, buf, n):
        _write_all(self._uart, buf, n)


class UsbSerialLink:
    """LinkPort over the USB serial stream: stdin, stdout (sys.stdin.buffer, sys.stdout.buffer) and
    poller (a select.poll(), stdin registered here). any() is 1 while a byte waits (how many, the
    stream does not say). The REPL's Ctrl-C must be off (micropython.kbd_intr(-1)): a 0x03 byte
    would raise KeyboardInterrupt instead of arriving."""

    def __init__(self, stdin, stdout, poller):
        self._in = stdin
        self._out = stdout
        self._poller = poller
        self._byte = bytearray(1)
        poller.register(stdin, _POLLIN)

    def any(self):
        for _ in self._poller.ipoll(0):
            return 1
        return 0

    def readinto(self, buf, n):
        one = self._byte
        k = 0
        while k < n and self.any():
            if not self._in.readinto(one):
                break
            buf[k] = one[0]
            k += 1
        return k

    def write(self, buf, n):
        _write_all(self._out, buf, n)
