# A stroke train: how the controller hands the motor a run of strokes at exact times.

from micropython import const

_MAX_TICKS_SPAN = const(1 << 29)  # ticks_diff is only valid within +-2**29


class StrokeTrain:
    """`count` strokes; stroke k (1-based) fires at the whole millisecond ceil(tau_k) after `origin`,
    where tau_k = first_ms + first_rem/den + (k-1) * (period_ms + period_rem/den), exactly.

    All fields are small ints, so a board backend can walk the train with the cursor below
    (Bresenham, no multiplication, no allocation) and the simulator can integrate it in bulk.
    `den` is also the delivery rate in nL/day, so a remainder r is worth r/86_400_000 nL.
    """

    def __init__(self):
        self.origin = 0  # tick the offsets count from
        self.count = 0
        self.first_ms = 0
        self.first_rem = 0
        self.period_ms = 0
        self.period_rem = 0
        self.den = 1
        # cursor
        self.k = 0
        self._ms = 0
        self._rem = 0

    def set(self, origin, count, first_ms, first_rem, period_ms, period_rem, den):
        if count < 0 or den <= 0 or not 0 <= first_rem < den or not 0 <= period_rem < den:
            raise ValueError("stroke train: inconsistent fields")
        self.origin = origin
        self.count = count
        self.first_ms = first_ms
        self.first_rem = first_rem
        self.period_ms = period_ms
        self.period_rem = period_rem
        self.den = den
        self.rewind()

    def clear(self, origin):
        self.origin = origin
        self.count = 0
        self.rewind()

    def rewind(self):
        self.k = 0
        self._ms = self.first_ms
        self._rem = self.first_rem

    def next_offset(self):
        """Offset in ms of the next stroke after `origin`, or -1 when the train is done."""
        if self.k >= self.count:
            return -1
        if self.k:
            self._ms += self.period_ms
            self._rem += self.period_rem
            if self._rem >= self.den:
                self._rem -= self.den
                self._ms += 1
        self.k += 1
        return self._ms + 1 if self._rem else self._ms
