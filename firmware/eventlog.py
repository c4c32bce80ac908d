# The pump's event log: a ring of the last CAPACITY events, each the pump clock to the second, an
# event code (firmware/alarms.py EV_*) and three integers, kept in preallocated arrays (nothing is
# allocated after construction). The journal persists it (firmware/persist.py); the loop's status
# API reads it (PumpLoop.log), and the programmer link will expose it.
#
# What is logged is what a clinician reviewing a pump needs, not every tick of its face: every
# alarm raised and cleared, every command accepted or rejected (with the reason), every bolus
# decision, every reset (its cause and the drug missed), every self-test failure. Tones and date
# projections are not logged (LOGGED below).

from array import array

from micropython import const

CAPACITY = const(1024)


class EventLog:
    """clock: an object whose day and ms are the pump clock (the Controller), set once it exists;
    events before it are stamped 0."""

    def __init__(self, capacity=CAPACITY):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= 65_536:
            raise ValueError("event log: capacity must be 1..65536")
        self.capacity = capacity
        self.t_s = array("i", bytes(4 * capacity))  # pump clock, s since the pump's day 0 midnight
        self.code = array("H", bytes(2 * capacity))
        self.a = array("i", bytes(4 * capacity))
        self.b = array("i", bytes(4 * capacity))
        self.c = array("i", bytes(4 * capacity))
        self.count = 0  # events ever logged (mod 2**30): the newest is at (count - 1) % capacity
        self._next = 0
        self.clock = None

    # add() and its helper keep their frames small: a MicroPython frame over about 11 words comes
    # from the heap on every call (GUIDE.md), and events are logged on the steady path (bolus ends).

    def add(self, code, a, b, c):
        i = self._next
        self._stamp(i)
        self.code[i] = code
        self.a[i] = a
        self.b[i] = b
        self.c[i] = c
        self._next = i + 1 if i + 1 < self.capacity else 0
        self.count = (self.count + 1) & 0x3FFFFFFF

    def _stamp(self, i):
        clock = self.clock
        self.t_s[i] = clock.day * 86_400 + clock.ms // 1000 if clock is not None else 0

    def put(self, t_s, code, a, b, c):
        """An event with its own time (the journal's copy, at boot)."""
        self.add(code, a, b, c)
        self.t_s[(self._next - 1) % self.capacity] = t_s

    def __len__(self):
        return self.count if self.count < self.capacity else self.capacity

    def get(self, k, out):
        """The k-th newest event (0: the newest) into out[0:5] = t_s, code, a, b, c."""
        if not 0 <= k < len(self):
            raise IndexError("event log: no event %d (%d logged)" % (k, len(self)))
        i = (self._next - 1 - k) % self.capacity
        out[0] = self.t_s[i]
        out[1] = self.code[i]
        out[2] = self.a[i]
        out[3] = self.b[i]
        out[4] = self.c[i]
