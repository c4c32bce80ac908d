# The fluid path from reservoir to catheter tip: plug flow, kept as a small FIFO of segments.
#
# Segments are (volume nL, concentration mcg/mL), tip first; concentration 0 is an empty
# (unprimed) part that carries no drug. The volumes always add up to the path volume. A stroke
# pushes stroke_nl of reservoir drug in at the inlet and the oldest stroke_nl out at the tip.

from firmware.units import SUB_PER_PG, muldivmod, sub_mass
from micropython import const

MAX_SEGMENTS = const(6)
_ALL = const(1 << 29)  # "every stroke from now on" where the tip segment is the only one


class Path:
    def __init__(self, path_nl, concentration):
        self.path_nl = path_nl
        self.vol = [0] * MAX_SEGMENTS
        self.conc = [0] * MAX_SEGMENTS
        self.n = 1
        self.vol[0] = path_nl
        self.conc[0] = concentration
        self._reservoir = concentration
        self._qr = [0, 0]
        self.gone = 0  # strongest drug whose last part left the tip since the controller last looked

    def push(self, volume_nl, concentration):
        """volume_nl of reservoir drug in at the inlet, as much out at the tip (no drug is counted)."""
        self._reservoir = concentration
        n = self.n
        if self.conc[n - 1] != concentration:
            if not self.vol[n - 1]:
                self.conc[n - 1] = concentration
            else:
                self.vol[n] = 0  # push() is only called with room: see can_change()
                self.conc[n] = concentration
                n += 1
                self.n = n
        self.vol[n - 1] += volume_nl
        self.pop(volume_nl)

    def flow(self, volume_nl, due):
        """volume_nl of reservoir drug through the path: due ([ng, sub]) -= the drug it pushes out
        of the tip. The reservoir's concentration is the one last given to push()."""
        left = volume_nl
        i = 0
        while left > 0:
            left -= self._out(i, left, due)
            i += 1
        if self.n > 1 or self.conc[0] != self._reservoir:  # else push() would add and pop the same volume
            self.push(volume_nl, self._reservoir)

    def _out(self, i, left, due):
        # Segment i's share of the flow (beyond the path: reservoir drug pushed in by this flow).
        c = self._reservoir
        if i < self.n:
            c = self.conc[i]
            if self.vol[i] <= left and i + 1 < self.n and c > self.gone:
                self.gone = c  # all of this segment leaves the tip: its drug may still be in a window
            if self.vol[i] < left:
                left = self.vol[i]
        muldivmod(left, c, 1000, self._qr)
        sub_mass(due, self._qr[0], self._qr[1] * SUB_PER_PG)
        return left

    def pop(self, volume_nl):
        """Removes volume_nl from the tip (the caller has already added it at the inlet)."""
        vol = self.vol
        while volume_nl >= vol[0] and self.n > 1:
            volume_nl -= vol[0]
            self._drop_tip()
        vol[0] -= volume_nl

    def _drop_tip(self):
        n = self.n - 1
        for i in range(n):
            self.vol[i] = self.vol[i + 1]
            self.conc[i] = self.conc[i + 1]
        self.vol[n] = 0
        self.conc[n] = 0
        self.n = n

    def can_change(self):
        """A new concentration at the inlet needs a free segment (or an empty inlet one)."""
        return self.n < MAX_SEGMENTS or not self.vol[self.n - 1]

    def tip_pg(self, stroke_nl):
        """Drug (pg) that the next stroke pushes out of the tip."""
        pg = 0
        i = 0
        while stroke_nl > 0 and i < self.n:
            v = self.vol[i] if self.vol[i] < stroke_nl else stroke_nl
            pg += v * self.conc[i]
            stroke_nl -= v
            i += 1
        return pg

    def tip_strokes(self, stroke_nl):
        """Strokes from now on that each push out the same drug as the next one (at least 1)."""
        if self.n == 1:
            return _ALL
        k = self.vol[0] // stroke_nl
        return k if k else 1

    def max_concentration(self, reservoir):
        c = reservoir
        for i in range(self.n):
            if self.conc[i] > c:
                c = self.conc[i]
        return c

    def min_concentration(self, reservoir):
        """Weakest drug still to be pushed through (empty parts carry none and do not count)."""
        c = reservoir
        for i in range(self.n):
            if 0 < self.conc[i] < c:
                c = self.conc[i]
        return c

    def empty_tip(self, volume_nl):
        """A new catheter piece of volume_nl at the tip, unprimed; the rest keeps its drug.

        Returns False (and changes nothing) when the FIFO has no room for the new segment.
        """
        if volume_nl >= self.path_nl:
            self.n = 1
            self.vol[0] = self.path_nl
            self.conc[0] = 0
            for i in range(1, MAX_SEGMENTS):
                self.vol[i] = 0
                self.conc[i] = 0
            return True
        # After removing volume_nl from the tip, is there a slot for the empty segment?
        keep = 0
        total = 0
        for i in range(self.n):
            total += self.vol[i]
            if total > volume_nl:
                keep = self.n - i
                break
        if keep + 1 > MAX_SEGMENTS:
            return False
        self.pop(volume_nl)
        for i in range(self.n, 0, -1):
            self.vol[i] = self.vol[i - 1]
            self.conc[i] = self.conc[i - 1]
        self.vol[0] = volume_nl
        self.conc[0] = 0
        self.n += 1
        return True

    def empty_nl(self):
        """Unprimed volume at the tip."""
        return self.vol[0] if self.conc[0] == 0 else 0
