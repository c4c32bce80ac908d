"""Simulated motor and fluid: delivers the firmware's stroke trains exactly, keeps ground truth.

A train is integrated in closed form while the clock jumps, so a simulated year costs in
proportion to schedule changes, not to strokes. Stroke times come out as numpy arrays only
when asked for (`--strokes`).
"""

import numpy as np

MS_PER_DAY = 86_400_000


class SimPump:
    def __init__(self, clock, stroke_nl, volume_nl, record_strokes=False):
        self.clock = clock
        self.stroke_nl = stroke_nl
        self.volume_nl = volume_nl  # ground truth in the reservoir
        self.strokes = 0
        self.record_strokes = record_strokes
        self.stroke_times = []  # numpy arrays of stroke times (ms since start), when recording
        self.min_lag_rem = None  # smallest 1/MS_PER_DAY-nL margin before a stroke, see max_lag_nl()
        self._origin_ms = 0
        self._count = 0
        self._first = 0  # tau_1 * den
        self._period = 0  # period * den
        self._den = 1

    # -- hal Motor interface --------------------------------------------------------------

    def start(self, train):
        self._settle()
        self._origin_ms = self.clock.to_ms(train.origin)
        self._count = train.count
        self._den = train.den
        self._first = train.first_ms * train.den + train.first_rem
        self._period = train.period_ms * train.den + train.period_rem

    def stop(self):
        self._settle()
        self._count = 0

    def emitted(self):
        return self._emitted_by(self.clock.now_ms)

    # -- ground truth -----------------------------------------------------------------------

    def _emitted_by(self, t_ms):
        """Strokes k with ceil(tau_k) <= t, i.e. tau_k <= t for whole-ms t."""
        if not self._count:
            return 0
        budget = (t_ms - self._origin_ms) * self._den - self._first
        if budget < 0:
            return 0
        if self._count == 1 or not self._period:
            return 1
        return min(self._count, 1 + budget // self._period)

    def _settle(self):
        """Account the strokes the current train fired before it is replaced."""
        n = self.emitted()
        if not n:
            return
        self.strokes += n
        self.volume_nl -= n * self.stroke_nl
        num = self._first + np.arange(n, dtype=np.int64) * self._period
        rem = num % self._den
        # Just before stroke k the lag is stroke - rem/MS_PER_DAY nL (stroke - den/MS_PER_DAY if rem is 0).
        # At den nL/day, rem/den ms is worth rem/MS_PER_DAY nL: the ideal passed the stroke's target
        # rem/den ms before the stroke's whole millisecond (a full ms, worth den, when rem is 0).
        smallest = int(np.where(rem > 0, rem, self._den).min())
        if self.min_lag_rem is None or smallest < self.min_lag_rem:
            self.min_lag_rem = smallest
        if self.record_strokes:
            self.stroke_times.append(self._origin_ms + (-(-num // self._den)))
        self._count = 0

    def finish(self):
        self._settle()

    def max_lag_nl(self):
        """Largest (ideal - delivered) at any whole millisecond: reached just before a stroke."""
        if self.min_lag_rem is None:
            return 0.0
        return self.stroke_nl - self.min_lag_rem / MS_PER_DAY

    def refill(self, volume_nl, new_drug):
        """Call after the firmware accepted the refill (it has settled the strokes up to now)."""
        self.volume_nl = volume_nl if new_drug else self.volume_nl + volume_nl
