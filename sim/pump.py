"""Simulated motor and reservoir: fires the firmware's stroke trains exactly, keeps ground truth.

A train is integrated in closed form while the clock jumps, so a simulated year costs in
proportion to schedule changes, not to strokes. Stroke times are kept as int64 numpy chunks:
the referee (sim/referee.py) judges the run from them.

It behaves like a board's motor backend (hal/interfaces.py): a monotonic stroke count masked to
COUNT_MASK, and a train's strokes numbered from train.base, so strokes already fired are skipped.
"""

import numpy as np

from hal.train import COUNT_MASK


class SimPump:
    def __init__(self, clock, stroke_nl, volume_nl):
        self.clock = clock
        self.stroke_nl = stroke_nl
        self.volume_nl = volume_nl  # ground truth in the reservoir
        self.strokes_total = 0
        self.count = 0  # what strokes() reports: masked like a board's counter
        self._runs = []  # (origin, first, period, den, from k, to k) of every train's fired strokes
        self._origin_ms = 0
        self._n = 0  # strokes in the train
        self._done = 0  # strokes of the train fired (or skipped) so far
        self._recorded = 0  # ... of which the times are recorded
        self._first = 0  # tau_1 * den (may be negative: overdue)
        self._period = 0  # period * den
        self._den = 1

    # -- hal Motor interface --------------------------------------------------------------

    def strokes(self):
        self._count_to(self.clock.now_ms)
        return self.count

    def start(self, train):
        self._settle(self.clock.now_ms)
        self._origin_ms = self.clock.to_ms(train.origin)
        self._n = train.count
        self._den = train.den
        self._first = train.first_ms * train.den + train.first_rem
        self._period = train.period_ms * train.den + train.period_rem
        self._done = min(self._n, (self.count - train.base) & COUNT_MASK)
        self._recorded = self._done

    def stop(self):
        self._settle(self.clock.now_ms)
        self._n = 0

    # -- ground truth -----------------------------------------------------------------------

    def _fired_by(self, t_ms):
        """How many strokes k of the train have ceil(tau_k) <= t (k = 1..n; overdue ones at once)."""
        if self._done >= self._n:
            return self._n
        budget = (t_ms - self._origin_ms) * self._den - self._first
        if budget < 0:
            return self._done
        if not self._period:
            return max(self._done, 1) if self._n else 0
        return max(self._done, min(self._n, 1 + budget // self._period))

    def _count_to(self, t_ms):
        """Fire (count) the train's strokes due by t_ms; their times are recorded at _settle."""
        if self._done >= self._n:
            return
        n = self._fired_by(t_ms)
        new = n - self._done
        if new > 0:
            self._done = n
            self.strokes_total += new
            self.count = (self.count + new) & COUNT_MASK
            self.volume_nl -= new * self.stroke_nl

    def _settle(self, t_ms):
        """Count up to t_ms, and note the train's strokes fired so far (times expanded at the end)."""
        self._count_to(t_ms)
        if self._done > self._recorded:
            self._runs.append((self._origin_ms, self._first, self._period, self._den, self._recorded, self._done))
            self._recorded = self._done

    def finish(self):
        self._settle(self.clock.now_ms)

    def stroke_times(self):
        """Every stroke time, ms since the start: ceil(tau_k) of each train, vectorised in one pass."""
        if not self._runs:
            return np.zeros(0, dtype=np.int64)
        runs = np.array(self._runs, dtype=np.int64)
        counts = runs[:, 5] - runs[:, 4]
        k = np.arange(counts.sum(), dtype=np.int64) + np.repeat(runs[:, 4] - (np.cumsum(counts) - counts), counts)
        num = np.repeat(runs[:, 1], counts) + k * np.repeat(runs[:, 2], counts)
        num = -(-num // np.repeat(runs[:, 3], counts))
        np.maximum(num, 0, out=num)
        return num + np.repeat(runs[:, 0], counts)

    def refill(self, volume_nl, new_drug):
        """Call after the firmware accepted the refill."""
        self.volume_nl = volume_nl if new_drug else self.volume_nl + volume_nl
