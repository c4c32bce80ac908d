# Step engine on the ESP32's RMT (hal/interfaces.py, "Steps"), for a STEP/DIR driver. DIR is a
# plain output set once. Works with both MicroPython RMT APIs:
#
#   >= 1.27  RMT(pin=, resolution_hz=, idle_level=, num_symbols=), loop_count(n), active(False)
#   <= 1.26  RMT(channel, pin=, clock_div=), resolution = 80 MHz / clock_div, no counted loop
#
# The constructor tries the 1.27 form and falls back to the old one on TypeError (unknown keyword
# resolution_hz, or the channel that the old form requires).
#
# One step is `period = resolution_hz // steps_per_s` ticks (the rate is rounded down to a whole
# tick: at the default 1 MHz, 1 us, under 0.1 % at 1000 steps/s): high for
# min(period // 2, PULSE_MAX) ticks, then low for the rest. A low phase longer than PULSE_MAX
# (32767 ticks) is split into an odd number k of entries of at most PULSE_MAX, so a step is 1 + k
# entries: whole RMT symbols, levels given explicitly (write_pulses mode 3: durations and levels).
#
# Exactly N steps:
#   counted loop  (1.27 on chips with a TX loop count: S2, S3, C3, C6 ...): loop_count(N), then
#                 write_pulses(one step) - the hardware repeats it N times. No Python allocation.
#                 The first start() that gets OSError from write_pulses (the original ESP32 cannot
#                 loop a counted number of times) switches for good to:
#   buffer        write_pulses(the step repeated N times). The tuples are built once per distinct
#                 count and reused: the motor starts the same count (its steps per stroke) every
#                 time, so only the first stroke allocates (4 bytes per entry). Bursts longer than
#                 max_steps go out in chunks of max_steps, the next handed over by busy() when the
#                 previous one is done: no step is lost or doubled, but a chunk boundary waits for
#                 the next busy() poll (the motor polls at least every ms).
#   The port's write_pulses copies the entries into its own symbol buffer, which it enlarges
#   (m_realloc) only when a longer sequence than ever before is written.
#
# busy() asks wait_done(timeout=0) (which does not block); bursts() counts a burst as completed
# when busy() (or bursts(), or stop()) sees its last entry gone out. stop(): 1.27 aborts the
# transmission (active(False)); <= 1.26 has no abort, so the channel is deinit()ed and made anew
# (allocates; not a hot path).

import esp32
from machine import Pin

from micropython import const

PULSE_MAX = const(32767)
_MASK = const(0x1FFFFFFF)  # bursts() modulo 2**29
_SOURCE_HZ = const(80_000_000)  # the RMT's APB clock (<= 1.26 divides it by clock_div)
_NUM_SYMBOLS = const(64)  # even, and at least the 48 or 64 every chip requires


def step_entries(period):
    """(durations, levels) of one step of `period` ticks, as an even number of entries."""
    if period < 2:
        raise ValueError("step period: at least 2 ticks (lower steps_per_s or raise resolution_hz)")
    hi = period // 2
    if hi > PULSE_MAX:
        hi = PULSE_MAX
    lo = period - hi
    k = 1
    while lo > k * PULSE_MAX:
        k += 2
    q, r = divmod(lo, k)
    durs = [hi]
    for i in range(k):
        durs.append(q + 1 if i < r else q)
    return tuple(durs), (True,) + (False,) * k


def open_rmt(pin, resolution_hz, channel=0):
    """(rmt, resolution_hz actually used, api): the 1.27 form first, else the old one."""
    try:
        return esp32.RMT(pin=pin, resolution_hz=resolution_hz, idle_level=False, num_symbols=_NUM_SYMBOLS), \
            resolution_hz, 127
    except TypeError:
        div = _SOURCE_HZ // resolution_hz
        if not 1 <= div <= 255:
            raise ValueError("resolution_hz: 313726..80000000 on MicroPython <= 1.26") from None
        return esp32.RMT(channel, pin=pin, clock_div=div), _SOURCE_HZ // div, 126


def _check_n(n):
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 65535:
        raise ValueError("n: must be an integer 1..65535")


class RmtSteps:
    def __init__(self, step_pin, dir_pin, steps_per_s, resolution_hz=1_000_000, max_steps=512, dir_level=1,
                 channel=0):
        if isinstance(steps_per_s, bool) or not isinstance(steps_per_s, int) or steps_per_s < 1:
            raise ValueError("steps_per_s: must be a positive integer")
        if not 1 <= max_steps <= 65535:
            raise ValueError("max_steps: 1..65535")
        self._dir = Pin(dir_pin, Pin.OUT, value=1 if dir_level else 0)
        self._pin = Pin(step_pin, Pin.OUT, value=0)
        self._channel = channel
        self._rmt, self.resolution_hz, self.api = open_rmt(self._pin, resolution_hz, channel)
        self.steps_per_s = steps_per_s
        self.period = self.resolution_hz // steps_per_s  # ticks per step
        self._one, self._one_levels = step_entries(self.period)
        self.looped = hasattr(self._rmt, "loop_count")  # until the chip says otherwise
        self._probed = False  # a counted loop has worked once
        self.max_steps = max_steps
        self._full = None  # (durations, levels) of max_steps steps, built at first need
        self._part = None  # the same for the last count below max_steps
        self._part_n = 0
        self._left = 0  # steps not yet handed to the RMT (buffer mode)
        self._run = False  # a burst is running
        self._bursts = 0

    def start(self, n):
        _check_n(n)
        self._run = True
        if self.looped:
            if self._probed:
                self._rmt.loop_count(n)
                self._rmt.write_pulses(self._one, self._one_levels)
                return
            if self._probe(n):
                return
        self._left = n
        self._feed()

    def _probe(self, n):
        # The first counted loop tells whether the chip has one. Kept out of start(): a frame
        # with a try block is big enough to come from the heap on every call.
        rmt = self._rmt
        try:
            rmt.loop_count(n)
            rmt.write_pulses(self._one, self._one_levels)
        except OSError:  # no counted loop on this chip (the original ESP32): nothing went out
            rmt.loop_count(0)
            self.looped = False
            return False
        self._probed = True
        return True

    def _feed(self):
        k = self._left
        if k > self.max_steps:
            k = self.max_steps
        self._left -= k
        if k == self.max_steps:
            buf = self._full
            if buf is None:
                buf = self._full = (self._one * k, self._one_levels * k)
        else:
            buf = self._part
            if buf is None or k != self._part_n:
                buf = self._part = (self._one * k, self._one_levels * k)
                self._part_n = k
        self._rmt.write_pulses(buf[0], buf[1])

    def busy(self):
        if not self._run:
            return False
        if not self._rmt.wait_done(timeout=0):
            return True
        if self._left:
            self._feed()  # the next chunk of a long burst
            return True
        self._run = False
        self._bursts = (self._bursts + 1) & _MASK
        return False

    def bursts(self):
        self.busy()
        return self._bursts

    def stop(self):
        rmt = self._rmt
        if self._run and not self._left and rmt.wait_done(timeout=0):
            self.busy()  # the burst completed before the stop: it counts
        self._left = 0
        if not self._run:
            return
        self._run = False
        if hasattr(rmt, "active"):
            rmt.active(False)
        else:
            rmt.deinit()
            self._rmt = open_rmt(self._pin, self.resolution_hz, self._channel)[0]
            self._probed = False
