"""Simulated cell: the true charge drawn by the simulated pump, and the cell voltage it leaves.

A lithium primary cell (Li/CFx- or Li/MnO2-like, all figures documented assumptions in
docs/battery.md): a plateau from 3.2 V that declines slowly to 2.9 V at 90% depth of discharge,
then a knee to 2.0 V at the rated capacity. The voltage is a function of the depth of discharge
only (no load or temperature effect).

The draw is integrated exactly (in whole nC): a quiescent current over the clock's time,
a charge per motor stroke (read from the motor's stroke count), per second of tone and per
programmer command, every one of them multiplied by the drain factor in force when it was drawn.
The firmware's gauge (firmware/battery.py) sees none of this but the voltage, through read_mv().
"""

from fractions import Fraction

# (depth of discharge in per-mille of the rated capacity, cell voltage in mV), piecewise linear
CURVE = ((0, 3200), (100, 3150), (900, 2900), (940, 2700), (970, 2500), (1000, 2000))
BROWNOUT_MV = 2300  # below this the cell cannot drive the piezo tone (nor the pump's electronics)
MAX_FACTOR = 100


def voltage_mv(dod_permille):
    """The curve at a depth of discharge (a number, in per-mille), in mV as an exact Fraction."""
    d = Fraction(dod_permille)
    if d <= CURVE[0][0]:
        return Fraction(CURVE[0][1])
    for (d0, v0), (d1, v1) in zip(CURVE, CURVE[1:]):
        if d <= d1:
            return v0 + (v1 - v0) * (d - d0) / (d1 - d0)
    return Fraction(CURVE[-1][1])  # past the rated capacity: held at the knee's end


def dod_at_mv(mv):
    """Depth of discharge in per-mille at which the curve falls to mv (inverse of voltage_mv)."""
    for (d0, v0), (d1, v1) in zip(CURVE, CURVE[1:]):
        if v1 <= mv <= v0:
            return d0 + Fraction(v0 - mv) * (d1 - d0) / (v0 - v1)
    raise ValueError(f"{mv} mV is outside the curve {CURVE[-1][1]}..{CURVE[0][1]} mV")


class SimCell:
    """clock: now_ms (int ms since the start). params: a firmware.battery.BatteryParams, whose
    nominal draws are the true ones until set_factor(). stroke_count(): total strokes the
    simulated motor fired up to clock.now_ms (monotonic, unmasked).

    Every draw is a whole number of nC (uA x ms, uC x 1000, times an integer factor), so the
    charge is an exact int and the voltage is found by integer floor division on the curve:
    exact, and fast enough to read at every wake of a 7-year run."""

    def __init__(self, clock, params, stroke_count):
        self.clock = clock
        self.params = params
        self._stroke_count = stroke_count
        self.capacity_uc = params.capacity_mah * 3_600_000
        self._capacity_nc = self.capacity_uc * 1000
        self.factor = 1
        self.factor_changes = []  # (ms, factor) of every set_factor()
        self._t = clock.now_ms
        self._seen = stroke_count()
        # read_mv()'s curve in nC at this capacity: (end, start, v0, v1 - v0, end - start) per segment, and
        # past the rated capacity the knee's end, held.
        cap = self.capacity_uc
        self._segs = tuple((d1 * cap, d0 * cap, v0, v1 - v0, (d1 - d0) * cap)
                           for (d0, v0), (d1, v1) in zip(CURVE, CURVE[1:])) + ((1 << 127, 0, CURVE[-1][1], 0, 1),)
        self._seg = 0  # where the last reading fell: the charge only grows, so the search starts there
        self._mv_nc = -1  # the charge of the last reading, and that reading
        self._mv = 0
        self._nc = 0  # charge drawn, nC (exact int)
        self.strokes = 0  # strokes drawn for, tones (seconds) and commands, for reports
        self.tone_s = 0
        self.commands = 0

    def _update(self):
        """Draws the quiescent current and the strokes fired since the last update, at the factor
        in force (it changes only after an update, so each stretch has one factor)."""
        now = self.clock.now_ms
        n = self._stroke_count()
        if now == self._t and n == self._seen:
            return
        if now < self._t:
            raise ValueError(f"battery: the clock went back from {self._t} to {now} ms")
        if n < self._seen:
            raise ValueError(f"battery: the stroke count went back from {self._seen} to {n}")
        p = self.params
        # uA x ms = nC; uC = 1000 nC
        self._nc += self.factor * (p.quiescent_ua * (now - self._t) + (n - self._seen) * p.uc_per_stroke * 1000)
        self.strokes += n - self._seen
        self._t = now
        self._seen = n

    def set_factor(self, factor):
        """From now on every draw is multiplied by factor (an integer 1..100; battery_drain)."""
        if isinstance(factor, bool) or not isinstance(factor, int) or not 1 <= factor <= MAX_FACTOR:
            raise ValueError(f"fault.factor: must be an integer 1..{MAX_FACTOR}")
        self._update()
        self.factor = factor
        self.factor_changes.append((self._t, factor))

    def tone(self, seconds):
        self._update()
        self._nc += self.factor * seconds * self.params.uc_per_tone_s * 1000
        self.tone_s += seconds

    def command(self):
        self._update()
        self._nc += self.factor * self.params.uc_per_command * 1000
        self.commands += 1

    @property
    def charge_used_uc(self):
        """Exact charge drawn, in uC (an int when whole, else a Fraction)."""
        self._update()
        uc = Fraction(self._nc, 1000)
        return uc.numerator if uc.denominator == 1 else uc

    def dod_permille(self):
        """Exact depth of discharge in per-mille (nC / uC), a Fraction."""
        self._update()
        return Fraction(self._nc, self.capacity_uc)

    def voltage(self):
        """Exact cell voltage in mV (a Fraction) on the curve, now."""
        return voltage_mv(self.dod_permille())

    def read_mv(self):
        """The HAL battery ADC: the cell voltage now, in whole mV (rounded down). The same
        interpolation as voltage_mv, floored in integers: v0 + floor((v1 - v0)(nc - d0 cap) /
        ((d1 - d0) cap)), with the depth d = nc / cap per-mille."""
        self._update()
        if self._nc == self._mv_nc:
            return self._mv
        return self._reading()

    def _reading(self):
        nc = self._nc
        if nc <= 0:
            return CURVE[0][1]
        segs = self._segs
        i = self._seg
        if i and nc <= segs[i - 1][0]:  # the charge went back (only a test sets it): search from the start
            i = 0
        while nc > segs[i][0]:
            i += 1
        self._seg = i
        _end, start, v0, dv, span = segs[i]
        mv = v0 + dv * (nc - start) // span
        self._mv_nc = nc
        self._mv = mv
        return mv

    def percent_left(self):
        """Of the rated capacity, 0..100 (a float)."""
        self._update()
        left = 1 - Fraction(self._nc, self._capacity_nc)
        return float(min(1, max(0, left)) * 100)

    def exhausted(self):
        self._update()
        if self._nc >= self._capacity_nc:
            return True
        return (self._mv if self._nc == self._mv_nc else self._reading()) < BROWNOUT_MV  # read_mv(), updated

    def can_supply_tone(self):
        """False once the cell is exhausted: below BROWNOUT_MV, or its rated charge all drawn."""
        return not self.exhausted()
