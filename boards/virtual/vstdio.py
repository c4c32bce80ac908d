# The USB serial stream as the boards have it (sys.stdin.buffer, sys.stdout.buffer and select.poll
# over them), for the virtual board: the same on CPython and the MicroPython unix port.
#
#   StdinBuffer   shared/runtime/sys_stdio_mphal.c stdio_buffer_read (v1.24.0..v1.28.0): readinto(buf)
#                 and readinto(buf, n) call mp_hal_stdin_rx_chr once per byte, each BLOCKING until a
#                 byte comes: asked for more than it holds, it raises AssertionError (a board hangs
#                 there). ioctl(MP_STREAM_POLL, POLLIN) says whether a byte waits (stdio_ioctl:
#                 mp_hal_stdio_poll).
#   StdoutBuffer  stdio_buffer_write: write(buf[, off][, n]) takes every byte (mp_hal_stdout_tx_strn).
#   poll()        select.poll: on MicroPython the port's own (extmod/modselect.c polls a Python
#                 stream through its ioctl: an io.IOBase whose ioctl answers MP_STREAM_GET_FILENO
#                 with -1); on CPython, whose select.poll needs a file descriptor, a stand-in with
#                 register(), unregister(), poll() (a new list of new tuples) and ipoll() (one
#                 tuple, reused). A poll with a timeout other than 0 and nothing ready raises
#                 AssertionError (it would wait).
# Test hooks: StdinBuffer.receive(data) (the host sends), StdoutBuffer.sent() (what the board
# wrote, taken). Allocation-free in readinto and ioctl. Written in the subset of Python MicroPython has.

import sys

import vuart

MICROPYTHON = sys.implementation.name == "micropython"
POLLIN = 1  # MP_STREAM_POLL_RD
_MP_STREAM_POLL = 3  # py/stream.h
_MP_STREAM_GET_FILENO = 10

if MICROPYTHON:
    from io import IOBase as _Base
else:
    _Base = object


class StdinBuffer(_Base):
    def __init__(self, capacity=4096):
        self._rx = vuart.Ring(capacity)
        self.lost = 0

    def readinto(self, buf, nbytes=-1):
        size = len(buf) if nbytes < 0 or nbytes > len(buf) else nbytes
        if size > self._rx.n:
            raise AssertionError("sys.stdin.buffer.readinto: %d bytes asked, %d held: a board blocks here"
                                 % (size, self._rx.n))
        self._rx.take_into(buf, size)
        return size

    def ioctl(self, request, arg):
        if request == _MP_STREAM_POLL:
            return arg & POLLIN if self._rx.n else 0
        return -1  # no file descriptor (MP_STREAM_GET_FILENO), nothing else

    # -- test hook --------------------------------------------------------------------------------

    def receive(self, data):
        """The host sends data (beyond the capacity: counted in `lost`, a test's mistake)."""
        for b in data:
            if not self._rx.put(b):
                self.lost += 1


class StdoutBuffer(_Base):
    def __init__(self):
        self._tx = bytearray()

    def write(self, buf, a=None, b=None):
        off, n = vuart.write_span(buf, a, b)
        if n <= 0:
            return 0
        self._tx.extend(buf[off:off + n])
        return n

    def ioctl(self, request, arg):
        return -1

    def sent(self):
        """What the board wrote since the last call."""
        out = bytes(self._tx)
        self._tx = bytearray()
        return out


class _Poll:
    """select.poll for CPython (extmod/modselect.c's behaviour over the fakes' ioctl)."""

    def __init__(self):
        self._objs = []
        self._masks = []
        self._tuple = None

    def register(self, obj, eventmask=POLLIN | 4):  # POLLIN | POLLOUT by default
        if obj in self._objs:
            self._masks[self._objs.index(obj)] = eventmask
        else:
            self._objs.append(obj)
            self._masks.append(eventmask)

    def unregister(self, obj):
        i = self._objs.index(obj)
        del self._objs[i]
        del self._masks[i]

    def _ready(self, timeout):
        out = [(o, o.ioctl(_MP_STREAM_POLL, m)) for o, m in zip(self._objs, self._masks)]
        out = [(o, e) for o, e in out if e]
        if not out and timeout != 0:
            raise AssertionError("select.poll: nothing ready and timeout=%r: the board waits" % (timeout,))
        return out

    def poll(self, timeout=-1):
        return self._ready(timeout)

    def ipoll(self, timeout=-1, flags=0):
        for o, e in self._ready(timeout):
            self._tuple = (o, e)
            yield self._tuple


def poll():
    if MICROPYTHON:
        import select

        return select.poll()
    return _Poll()
