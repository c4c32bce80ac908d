# Step engine on the ESP32's RMT (hal/interfaces.py, "Steps"), for a STEP/DIR driver. DIR is a
# plain output set once. Works with both MicroPython RMT APIs:
#
#   >= 1.27  RMT(pin=, resolution_hz=, idle_level=, num_symbols=), loop_count(n), deinit()
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
# Exactly N steps, in transmissions of at most 250 ms (_CHUNK_MS): an original ESP32 panics when a
# transmission longer than about 300 ms is aborted (esp32_rmt.c esp32_rmt_deactivate, 1.27+), and a
# stop must be able to abort any of them. A step longer than 250 ms (below 4 steps/s) is refused.
# A burst goes out as chunks of whole steps, the next handed over by busy() when the previous one
# is done (the motor polls at least every ms): no step is lost or doubled.
#   counted loop  (1.27 on chips with a TX loop count: S2, S3, C3, C6 ...): loop_count(k), then
#                 write_pulses(one step) - the hardware repeats it k times. No Python allocation.
#                 The first chunk that gets OSError from write_pulses (the original ESP32 cannot
#                 loop a counted number of times) switches for good to:
#   buffer        write_pulses(the step repeated k times), k at most max_steps too (memory: 4 bytes
#                 per entry, twice, plus the port's symbol buffer). The tuples are built once per
#                 distinct count and reused: a motor starts the same count every stroke, so only the
#                 first stroke allocates.
#
# busy() asks wait_done(timeout=0) (which does not block); bursts() counts a burst as completed
# when busy() (or bursts(), or stop()) sees its last chunk gone out.
# stop() of a running chunk first takes the STEP pin back as a plain output, low: the GPIO matrix
# disconnects the RMT from it at once (ESP-IDF gpio_output_enable), where no RMT abort is instant.
#   >= 1.27  deinit() (aborts: rmt_disable; on the original ESP32 the transmitter still runs to the
#            start of its memory block) and a new RMT. Never active(False) and reuse: the aborted
#            transmission's done callback never comes, tx_ongoing stays above 0, and wait_done(0)
#            would stay False for good (esp32_rmt.c) - no stroke would ever complete again.
#   <= 1.26  no abort at all: deinit() (rmt_driver_uninstall) leaves the transmitter running, and a
#            sequence longer than the channel's memory block cycles through it for ever. So the
#            channel finishes its chunk unseen, and once wait_done() says so it is deinit()ed and
#            made anew on the pin. A start() before then waits for it in busy() (at most 250 ms).
# Both allocate (a new RMT); a stop is not a hot path.

import esp32
from machine import Pin

from micropython import const

PULSE_MAX = const(32767)
_MASK = const(0x1FFFFFFF)  # bursts() modulo 2**29
_SOURCE_HZ = const(80_000_000)  # the RMT's APB clock (<= 1.26 divides it by clock_div)
_NUM_SYMBOLS = const(64)  # even, and at least the 48 or 64 every chip requires
_CHUNK_MS = const(250)  # the longest transmission: well under the ~300 ms an abort survives


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
        chunk = self.resolution_hz // 1000 * _CHUNK_MS // self.period  # whole steps in 250 ms
        if chunk < 1:
            raise ValueError("steps_per_s: at least 4 (a step must fit one %d ms RMT transmission)" % _CHUNK_MS)
        self._loop_max = chunk if chunk < 65535 else 65535
        self._buf_max = chunk if chunk < max_steps else max_steps
        self.looped = hasattr(self._rmt, "loop_count")  # until the chip says otherwise
        self._probed = False  # a counted loop has worked once
        self.max_steps = max_steps
        self._full = None  # (durations, levels) of _buf_max steps, built at first need
        self._part = None  # the same for the last count below _buf_max
        self._part_n = 0
        self._left = 0  # steps not yet handed to the RMT
        self._run = False  # a burst is running
        self._stale = False  # <= 1.26: stopped mid-chunk, the channel to be made anew once idle
        self._bursts = 0

    def start(self, n):
        _check_n(n)
        self._run = True
        self._left = n
        if self._stale:
            self._renew()  # after a <= 1.26 stop: as soon as the old chunk has gone out
            return
        self._feed()

    def _feed(self):
        # the next chunk: at most _CHUNK_MS of steps
        k = self._left
        if self.looped:
            if k > self._loop_max:
                k = self._loop_max
            if self._probed:
                self._left -= k
                self._rmt.loop_count(k)
                self._rmt.write_pulses(self._one, self._one_levels)
                return
            if self._probe(k):
                self._left -= k
                return
            k = self._left
        if k > self._buf_max:
            k = self._buf_max
        self._left -= k
        self._write(k)

    def _probe(self, k):
        # The first counted loop tells whether the chip has one. Kept out of _feed(): a frame
        # with a try block is big enough to come from the heap on every call.
        rmt = self._rmt
        try:
            rmt.loop_count(k)
            rmt.write_pulses(self._one, self._one_levels)
        except OSError:  # no counted loop on this chip (the original ESP32): nothing went out
            rmt.loop_count(0)
            self.looped = False
            return False
        self._probed = True
        return True

    def _write(self, k):
        if k == self._buf_max:
            buf = self._full
            if buf is None:
                buf = self._full = (self._one * k, self._one_levels * k)
        else:
            buf = self._part
            if buf is None or k != self._part_n:
                buf = self._part = (self._one * k, self._one_levels * k)
                self._part_n = k
        self._rmt.write_pulses(buf[0], buf[1])

    def _renew(self):
        # <= 1.26 after a stop: once the detached channel is idle, deinit it and make it anew on the pin
        if not self._rmt.wait_done(timeout=0):
            return
        self._rmt.deinit()
        self._rmt = open_rmt(self._pin, self.resolution_hz, self._channel)[0]
        self._stale = False
        if self._left:
            self._feed()

    def busy(self):
        if not self._run:
            return False
        if self._stale:
            self._renew()
            return True
        if not self._rmt.wait_done(timeout=0):
            return True
        if self._left:
            self._feed()  # the next chunk of the burst
            return True
        self._run = False
        self._bursts = (self._bursts + 1) & _MASK
        return False

    def bursts(self):
        self.busy()
        return self._bursts

    def stop(self):
        rmt = self._rmt
        if self._run and not self._left and not self._stale and rmt.wait_done(timeout=0):
            self.busy()  # the burst completed before the stop: it counts
        self._left = 0
        if not self._run:
            return
        self._run = False
        if self._stale or rmt.wait_done(timeout=0):
            return  # nothing of this burst on the wire
        self._pin.init(Pin.OUT, value=0)  # cut the STEP line off the RMT now, low
        if self.api >= 127:
            rmt.deinit()  # aborts the chunk (at most _CHUNK_MS: no panic)
            self._rmt = open_rmt(self._pin, self.resolution_hz, self._channel)[0]
        else:
            self._stale = True
