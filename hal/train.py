# A stroke train: how the controller hands the motor a run of strokes at exact times.

from micropython import const

COUNT_MASK = const((1 << 29) - 1)  # a motor's stroke count wraps here; differences are taken masked


class StrokeTrain:
    """`count` strokes; stroke k (1-based) fires at the whole millisecond ceil(tau_k) after `origin`,
    where tau_k = first_ms + first_rem/den + (k-1) * (period_ms + period_rem/den), exactly. first_ms
    may be negative: such strokes are overdue and fire at once.

    Stroke k of the train is the motor's stroke number base + k (masked by COUNT_MASK): a motor
    skips the strokes whose numbers it has already fired, so a stroke of the previous train that
    fires between the controller's count read and start() is neither lost nor fired twice.

    All fields are small ints, so a board backend can walk the train with the cursor below
    (Bresenham, no multiplication, no allocation) and the simulator can integrate it in bulk.
    """

    def __init__(self):
        self.origin = 0  # tick the offsets count from
        self.base = 0  # the motor's stroke count the controller planned from
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

    # Three small setters rather than one of eight arguments: a MicroPython frame of more than
    # about 11 words is allocated on the heap at every call.
    def first(self, first_ms, first_rem):
        self.first_ms = first_ms
        self.first_rem = first_rem

    def period(self, period_ms, period_rem):
        self.period_ms = period_ms
        self.period_rem = period_rem

    def set(self, origin, base, count, den):
        """Starts the train from origin with first() and period() as set; checks the fields."""
        if count < 0 or den <= 0 or not 0 <= self.first_rem < den or not 0 <= self.period_rem < den:
            raise ValueError("stroke train: inconsistent fields")
        self.origin = origin
        self.base = base
        self.count = count
        self.den = den
        self.k = 0  # rewind(), inline: set() is called at every wake
        self._ms = self.first_ms
        self._rem = self.first_rem

    def clear(self, origin, base):
        self.origin = origin
        self.base = base
        self.count = 0
        self.rewind()

    def rewind(self):
        self.k = 0
        self._ms = self.first_ms
        self._rem = self.first_rem

    def next_offset(self):
        """Offset in ms of the next stroke after `origin`, or -1 when the train is done.

        Overdue strokes come back as offset 0 (at once)."""
        if self.k >= self.count:
            return -1
        if self.k:
            self._ms += self.period_ms
            self._rem += self.period_rem
            if self._rem >= self.den:
                self._rem -= self.den
                self._ms += 1
        self.k += 1
        t = self._ms + 1 if self._rem else self._ms
        return t if t > 0 else 0
