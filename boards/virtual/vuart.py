# machine.UART's parts every port shares, for the virtual board: the stream methods as
# extmod/machine_uart.c and py/stream.c give them (v1.24.0..v1.28.0), over a ring of the bytes the
# port holds. Each port's machine.py (boards/virtual/<port>/machine.py) subclasses UART with its
# constructor, its errors and where bytes beyond its RX buffer go.
#
#   any()                 what the port's mp_machine_uart_any says (each port's _any).
#   read([n]) / readinto(buf[, n])  up to n bytes; None when none came. A read the port would WAIT
#          in raises AssertionError, as the RMT fake does for a write that would block: nothing held
#          and a timeout > 0, or fewer held than asked and the port's wait between characters > 0.
#   write(buf[, off][, n])  py/stream.c's optional offset and length (1.24+: write; 1.27+: write1,
#          the same arguments); the other end takes every byte unless hold_tx(True).
# Test hooks: receive(data) (the other end sends: what the port cannot hold is lost, `lost`
# counts it), sent() (the bytes the board wrote, taken), hold_tx(on) (the other end holds CTS:
# bytes wait in the port's TX buffer; off: they go), waited_ms (the ms a write would have waited).
# Allocation-free in any() and readinto() (the board tests measure the code that calls them).
# Written in the subset of Python MicroPython implements.

import vport


def write_span(buf, a, b):
    """py/stream.c stream_write_method's arguments, (buf), (buf, max_len) or (buf, off, max_len):
    (off, n) of the bytes to write."""
    off = 0
    n = len(buf)
    if b is not None:
        off = min(a, n)
        n = b
    elif a is not None:
        n = a
    return off, min(n, len(buf) - off)


class Ring:
    """A byte FIFO of fixed capacity, allocation-free."""

    def __init__(self, capacity):
        self.buf = bytearray(capacity if capacity > 0 else 1)
        self.cap = capacity
        self.head = 0
        self.n = 0

    def put(self, b):
        if self.n >= self.cap:
            return False
        self.buf[(self.head + self.n) % self.cap] = b
        self.n += 1
        return True

    def get(self):
        b = self.buf[self.head]
        self.head = (self.head + 1) % self.cap
        self.n -= 1
        return b

    def take_into(self, buf, k):
        for i in range(k):
            buf[i] = self.get()

    def clear(self):
        self.head = self.n = 0


class UART:
    # set by each port: RX holds what the port holds (its any() and _readable say what reads see)
    timeout = 0
    timeout_char = 0

    def _fresh(self, rx_capacity):
        self._rx = Ring(rx_capacity)
        self._tx = bytearray()
        self.lost = 0
        self.tx_held = False
        self.waited_ms = 0

    # -- the stream (extmod/machine_uart.c, py/stream.c) -----------------------------------------

    def any(self):
        return self._any()

    def _any(self):
        return self._rx.n

    def _readable(self):
        return self._rx.n  # a read also drains what waits in a hardware FIFO (per port)

    def _partial_wait_ms(self):
        # the wait for a byte after the first: timeout_char; 1.24-1.26 (stream readinto, not
        # readinto1) also call the port's read again, which waits `timeout` for a first byte
        return self.timeout_char + (0 if vport.at_least(1, 27) else self.timeout)

    def readinto(self, buf, nbytes=-1):
        size = len(buf) if nbytes < 0 or nbytes > len(buf) else nbytes
        k = self._ready(size)
        if k:
            self._rx.take_into(buf, k)
            self._after_read()
        return k

    def read(self, nbytes=-1):
        if nbytes < 0:
            nbytes = self._readable()  # (readall: reads until a timeout; the fake takes what is held)
        k = self._ready(nbytes)
        if k is None:
            return None
        out = bytearray(k)
        self._rx.take_into(out, k)
        self._after_read()
        return bytes(out)

    def _ready(self, size):
        """How many bytes a read of size takes now (None: EAGAIN); AssertionError if it would wait."""
        if size == 0:
            return 0
        have = self._readable()
        if have == 0:
            if self.timeout > 0:
                raise AssertionError("UART.read: nothing held: the port waits timeout=%d ms" % self.timeout)
            return None
        if have < size and self._partial_wait_ms() > 0:
            raise AssertionError("UART.read: %d bytes asked, %d held: the port waits %d ms for the rest"
                                 % (size, have, self._partial_wait_ms()))
        return have if have < size else size

    def _after_read(self):
        pass

    def write(self, buf, a=None, b=None):
        off, n = write_span(buf, a, b)
        if n <= 0:
            return 0
        return self._send(bytes(buf[off:off + n]))

    def _send(self, data):
        if not self.tx_held:
            self._tx.extend(data)
            return len(data)
        return self._send_held(data)

    def _send_held(self, data):
        raise NotImplementedError  # each port's

    def flush(self):
        pass

    def txdone(self):
        return not self.tx_held

    # -- test hooks ------------------------------------------------------------------------------

    def receive(self, data):
        """The other end sends data; what the port cannot hold is lost (counted in `lost`)."""
        for b in data:
            self._receive_byte(b)

    def _receive_byte(self, b):
        if not self._rx.put(b):
            self.lost += 1

    def sent(self):
        """The bytes the board wrote since the last call."""
        out = bytes(self._tx)
        self._tx = bytearray()
        return out

    def hold_tx(self, on):
        """on: the other end holds off (CTS): bytes wait in the port's TX buffer; off: they go."""
        self.tx_held = bool(on)
        if not on:
            self._release_tx()

    def _release_tx(self):
        pass
