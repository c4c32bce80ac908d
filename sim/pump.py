"""Simulated motor and reservoir: fires the firmware's stroke trains exactly, keeps ground truth.

A train is integrated in closed form while the clock jumps, so a simulated year costs in
proportion to schedule changes, not to strokes. Stroke times are kept as int64 numpy chunks:
the referee (sim/referee.py) judges the run from them.

It behaves like a board's motor backend (hal/interfaces.py): a monotonic stroke count masked to
COUNT_MASK, and a train's strokes numbered from train.base, so strokes already fired are skipped.
"""

import numpy as np

from firmware.mechanism import OCCLUSION_LOAD
from hal.interfaces import LOAD_NORMAL, MOTOR_OVERLOAD, MOTOR_STALL, MOTOR_UNCOMMANDED
from hal.train import COUNT_MASK

TOP_SPEED_MS = 200  # a runaway motor's stroke period (the mechanism's fastest)
_NEVER = 1 << 62  # ms beyond any run


def line_load(strokes, stroke_nl, compliance_nl):
    """Load (percent of free running) after `strokes` pushed against a block: +LOAD_NORMAL per compliance_nl."""
    return LOAD_NORMAL + strokes * stroke_nl * LOAD_NORMAL // compliance_nl


def stored_below_threshold_nl(compliance_nl, stroke_nl):
    """The most a blocked line of this compliance stores while the load stays below the firmware's
    occlusion threshold (the stroke that reaches it is not counted)."""
    j = 0
    while line_load(j + 1, stroke_nl, compliance_nl) < OCCLUSION_LOAD:
        j += 1
    return j * stroke_nl


class SimPump:
    def __init__(self, clock, stroke_nl, volume_nl, compliance_nl=2000):
        self.clock = clock
        # Faults the simulator stages (sim/runner.py sets them at the scenario's times):
        self.stalled = False  # the rotor cannot turn: a stroke due fails, and ends its train
        self.blocked = False  # the catheter is blocked: strokes go into the line's compliance
        self.compliance_nl = compliance_nl  # volume that raises the load by LOAD_NORMAL against a block
        self.block_strokes = 0  # strokes pushed against the current block
        self.powered = True
        self.uncommanded_ms = []  # times of strokes nobody commanded
        self._faults = 0
        self._handler = None
        self._load_limit = 1 << 30
        self._pressure_load = 1 << 30
        self._pressed = 0  # strokes completed above the pressure load, not yet taken
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
        self._due = 0  # the first ms at which stroke _done + 1 is due (while _done < _n): _count_to's quick test

    # -- hal Motor interface --------------------------------------------------------------

    # The motor is read several times a wake: a stroke falling due is rare, so test that inline first.
    def strokes(self):
        if self._done < self._n and self.clock.now_ms >= self._due:
            self._count_to(self.clock.now_ms)
        return self.count

    def faults(self):
        if self._done < self._n and self.clock.now_ms >= self._due:
            self._count_to(self.clock.now_ms)
        f = self._faults
        self._faults = 0
        return f

    def load(self):
        if self._done < self._n and self.clock.now_ms >= self._due:
            self._count_to(self.clock.now_ms)
        if not self.blocked:
            return LOAD_NORMAL
        return line_load(self.block_strokes, self.stroke_nl, self.compliance_nl)

    def _load(self, strokes):
        if not self.blocked:
            return LOAD_NORMAL
        return line_load(strokes, self.stroke_nl, self.compliance_nl)

    def set_load_limit(self, percent):
        self._load_limit = percent

    def set_pressure_load(self, percent):
        self._pressure_load = percent

    def pressed(self):
        if self._done < self._n and self.clock.now_ms >= self._due:
            self._count_to(self.clock.now_ms)
        n = self._pressed
        self._pressed = 0
        return n

    def _count_pressed(self, before, after):
        """Strokes before+1..after into the current block whose load is above the pressure load."""
        for j in range(before + 1, after + 1):
            if self._load(j) > self._pressure_load:
                self._pressed += 1

    def enable(self, on):
        self._settle(self.clock.now_ms)
        if not on:
            self._n = self._done
        self.powered = on

    def on_fault(self, handler):
        self._handler = handler

    def _raise(self, bits):
        self._faults |= bits
        if self._handler is not None:
            self._handler(bits)

    def start(self, train):
        now = self.clock.now_ms
        if self._done < self._n and now >= self._due:
            self._count_to(now)
        if self._done > self._recorded:
            self._settle_fired()
        self._origin_ms = self.clock.to_ms(train.origin)
        n = self._n = train.count
        den = self._den = train.den
        self._first = train.first_ms * den + train.first_rem
        self._period = train.period_ms * den + train.period_rem
        done = (self.count - train.base) & COUNT_MASK
        if done > n:
            done = n
        self._done = self._recorded = done
        if not self.powered:
            self._n = done
        self._set_due()
        if done < self._n and now >= self._due:
            self._count_to(now)  # an overdue stroke is attempted at once

    def stop(self):
        self._settle(self.clock.now_ms)
        self._n = 0

    # -- ground truth -----------------------------------------------------------------------

    def _set_due(self):
        """_due: the least whole ms t at which stroke _done + 1 is due, tau <= t - origin (overdue ones at once)."""
        if self._period or not self._done:
            self._due = self._origin_ms - (-(self._first + self._done * self._period) // self._den)
        else:  # a train of one stroke at once: nothing more falls due
            self._due = _NEVER

    def _count_to(self, t_ms):
        """Fire (count) the train's strokes due by t_ms; their times are recorded at _settle."""
        if self._done >= self._n or t_ms < self._due:
            return
        # Strokes k of the train with tau_k <= t - origin, at most n; at least _done + 1, as t >= _due.
        # A train without a period is one stroke (_due is _NEVER once it fired).
        n = 1
        if self._period:
            n += ((t_ms - self._origin_ms) * self._den - self._first) // self._period
            if n > self._n:
                n = self._n
        if self.stalled:  # the next stroke is attempted and does not complete: the train ends
            self._settle_fired()
            self._n = self._done
            self._raise(MOTOR_STALL)
            return
        over = False
        if self.blocked:
            k = self._done + self._strokes_to_overload()
            if n >= k:
                n, over = k, True
        new = n - self._done
        self._done = n
        if self._period:  # _set_due(), inline
            self._due = self._origin_ms - (-(self._first + n * self._period) // self._den)
        else:
            self._due = _NEVER
        self.strokes_total += new
        self.count = (self.count + new) & COUNT_MASK
        self.volume_nl -= new * self.stroke_nl
        if self.blocked:
            self._count_pressed(self.block_strokes, self.block_strokes + new)
            self.block_strokes += new
        if over:
            self._settle_fired()
            self._n = self._done
            self._raise(MOTOR_OVERLOAD)

    def _strokes_to_overload(self):
        """More strokes until one completes at or above the load limit (at least 1)."""
        m = 1
        while self._load(self.block_strokes + m) < self._load_limit:
            m += 1
        return m

    def _time_of(self, k):
        """The ms stroke k (1-based) of the train fires."""
        t = -(-(self._first + (k - 1) * self._period) // self._den)
        return self._origin_ms + max(t, 0)

    def next_event_ms(self):
        """When the motor will next report a fault by itself (a stroke failing or overloading), or None."""
        if self._done >= self._n:
            return None
        if self.stalled:
            return max(self._time_of(self._done + 1), self.clock.now_ms)
        if self.blocked:
            k = self._done + self._strokes_to_overload()
            if k <= self._n and (self._period or k == 1):
                return max(self._time_of(k), self.clock.now_ms)
        return None

    def poke(self):
        """Bring the motor to now (the simulator's clock reached one of its event times)."""
        self._count_to(self.clock.now_ms)

    def uncommanded_stroke(self):
        """The rotor turns by itself (a runaway): counted like any stroke, reported at once."""
        self._settle(self.clock.now_ms)
        if not self.powered:
            return False
        self.strokes_total += 1
        self.count = (self.count + 1) & COUNT_MASK
        self.volume_nl -= self.stroke_nl
        self.uncommanded_ms.append(self.clock.now_ms)
        if self.blocked:
            self._count_pressed(self.block_strokes, self.block_strokes + 1)
            self.block_strokes += 1
        self._raise(MOTOR_UNCOMMANDED)
        return True

    def _settle_fired(self):
        if self._done > self._recorded:
            self._runs.append((self._origin_ms, self._first, self._period, self._den, self._recorded, self._done))
            self._recorded = self._done

    def _settle(self, t_ms):
        """Count up to t_ms, and note the train's strokes fired so far (times expanded at the end)."""
        self._count_to(t_ms)
        self._settle_fired()

    def finish(self):
        self._settle(self.clock.now_ms)

    def stroke_times(self):
        """Every stroke time, ms since the start: ceil(tau_k) of each train, vectorised in one pass."""
        extra = np.array(self.uncommanded_ms, dtype=np.int64)
        if not self._runs:
            return extra
        runs = np.array(self._runs, dtype=np.int64)
        counts = runs[:, 5] - runs[:, 4]
        k = np.arange(counts.sum(), dtype=np.int64) + np.repeat(runs[:, 4] - (np.cumsum(counts) - counts), counts)
        num = np.repeat(runs[:, 1], counts) + k * np.repeat(runs[:, 2], counts)
        num = -(-num // np.repeat(runs[:, 3], counts))
        np.maximum(num, 0, out=num)
        times = num + np.repeat(runs[:, 0], counts)
        return np.sort(np.concatenate([times, extra]), kind="stable") if len(extra) else times

    def refill(self, volume_nl, new_drug):
        """Call after the firmware accepted the refill."""
        self.volume_nl = volume_nl if new_drug else self.volume_nl + volume_nl
