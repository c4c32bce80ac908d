"""Closed forms for the referee: stroke trains as arithmetic progressions, judged without listing strokes.

A train's stroke k fires at ceil((a + k*p) / d) ms after its origin: an arithmetic progression
with a remainder. The referee's ideal stroke times have the same shape between schedule changes.
So the referee keeps the fired strokes, the tip masses, the reservoir and the ideal as pieces over
the stroke index k, each piece a closed form, and its cost grows with pieces (schedule changes,
trains, refills, primes), not with strokes. Where two pieces are not the same progression (a late
wake's overdue strokes, a firmware defect) it falls back to listing the strokes of that stretch
with numpy, in bounded chunks.

Exact integers throughout: Python ints for scalars, numpy int64 only where the values are bounded
well inside it.
"""

from bisect import bisect_left, bisect_right

import numpy as np

CHUNK = 1 << 20  # strokes listed at once where a stretch must be listed


def cdiv(a, b):
    """ceil(a / b) for ints, b > 0."""
    return -(-a // b)


def minmod(n, m, a, b):
    """min over 0 <= k < n of (a + b*k) mod m (n >= 1, m >= 1), in O(log m) steps.

    The sequence climbs by b and wraps past m; each wrap starts below b, at (a - j*m) mod b: the
    same question with modulus b. Stepping by at most m/2 (else walk it backwards as a maximum)
    halves the modulus at each level, as Euclid's algorithm does."""
    a %= m
    b %= m
    if b == 0:
        return a
    if 2 * b > m:
        return m - 1 - maxmod(n, m, m - 1 - a, m - b)
    wraps = (a + b * (n - 1)) // m
    if not wraps:
        return a
    return min(a, minmod(wraps, b, a - m, -m))


def maxmod(n, m, a, b):
    """max over 0 <= k < n of (a + b*k) mod m: each wrap's last value is m - b + (a - (j+1)*m) mod b."""
    a %= m
    b %= m
    if b == 0:
        return a
    if 2 * b > m:
        return m - 1 - minmod(n, m, m - 1 - a, m - b)
    top = a + b * (n - 1)
    wraps = top // m
    if not wraps:
        return top
    return max(top % m, m - b + maxmod(wraps, b, a - m, -m))


# -- the strokes that fired ------------------------------------------------------------------------

LIN, CONST, ARR = 0, 1, 2


class Strokes:
    """Every fired stroke's time as pieces over the stroke index k (0-based, in firing order):
    LIN: o + ceil((a + (k - k0)*p) / d) with p > 0 and every numerator > 0; CONST: t; ARR: an explicit
    array. A LIN piece counts from its own first stroke, so its int64 products stay bounded by the
    train's span whatever the stroke count."""

    def __init__(self):
        self.k0, self.k1, self.kind, self.args, self.t_last = [], [], [], [], []
        self.n = 0
        self._table = None

    @classmethod
    def from_runs(cls, runs):
        """From the simulated motor's trains: (origin, first, period, den, from j, to j) with stroke j
        (0-based in the train) at origin + max(ceil((first + j*period) / den), 0). Vectorised over
        the trains: overdue strokes (numerator <= 0) become a CONST piece at the origin."""
        s = cls()
        r = np.asarray(runs, dtype=np.int64).reshape(-1, 6)
        r = r[r[:, 5] > r[:, 4]]
        if not len(r):
            return s
        origin, first, period, den, j0, j1 = r.T
        k_start = np.concatenate([[0], np.cumsum(j1 - j0)[:-1]])
        flat = period == 0
        # the first j whose numerator is > 0 (a single-stroke train: none of it is a progression)
        j_u = np.where(flat, j1, np.clip(np.where(flat, 0, -first // np.where(flat, 1, period)) + 1, j0, j1))
        const_t = np.where(flat, origin + np.maximum(-(-first // den), 0), origin)
        has_const = j_u > j0
        has_lin = j1 > j_u
        # Pieces in order: each train's CONST part, then its LIN part.
        order = np.stack([has_const, has_lin], axis=1).ravel()
        k0 = np.stack([k_start, k_start + j_u - j0], axis=1).ravel()[order]
        k1 = np.stack([k_start + j_u - j0, k_start + j1 - j0], axis=1).ravel()[order]
        kind = np.stack([np.full(len(r), CONST), np.full(len(r), LIN)], axis=1).ravel()[order]
        o = np.stack([const_t, origin], axis=1).ravel()[order]
        a0 = np.stack([np.zeros(len(r), dtype=np.int64), first + j_u * period], axis=1).ravel()[order]
        p = np.stack([np.ones(len(r), dtype=np.int64), np.where(flat, 1, period)], axis=1).ravel()[order]
        d = np.stack([np.ones(len(r), dtype=np.int64), den], axis=1).ravel()[order]
        lin = kind == LIN
        t_last = np.where(lin, o - (-(a0 + (k1 - 1 - k0) * p) // d), o)
        s.k0, s.k1, s.kind, s.t_last = k0.tolist(), k1.tolist(), kind.tolist(), t_last.tolist()
        s.args = [(oo, aa, pp, dd) if kk == LIN else (oo,) for kk, oo, aa, pp, dd in
                  zip(s.kind, o.tolist(), a0.tolist(), p.tolist(), d.tolist())]
        s.n = s.k1[-1]
        return s

    @classmethod
    def from_times(cls, times):
        s = cls()
        times = np.asarray(times, dtype=np.int64)
        if len(times):
            s._add(0, len(times), ARR, (times,))
        return s

    def _add(self, k0, k1, kind, args):
        self.k0.append(k0)
        self.k1.append(k1)
        self.kind.append(kind)
        self.args.append(args)
        self.n = k1
        self.t_last.append(self._at(len(self.k0) - 1, k1 - 1))

    def _at(self, i, k):
        kind, args = self.kind[i], self.args[i]
        if kind == LIN:
            o, a, p, d = args
            return o + cdiv(a + (k - self.k0[i]) * p, d)
        if kind == CONST:
            return args[0]
        return int(args[0][k - self.k0[i]])

    def time(self, k):
        return self._at(bisect_right(self.k0, k) - 1, k)

    def pieces(self, k0, k1):
        """(from k, to k, piece) of the pieces over [k0, k1)."""
        i = max(bisect_right(self.k0, k0) - 1, 0)
        while i < len(self.k0) and self.k0[i] < k1:
            lo, hi = max(self.k0[i], k0), min(self.k1[i], k1)
            if hi > lo:
                yield lo, hi, i
            i += 1

    def times(self, k0, k1):
        """Stroke times of [k0, k1) as an int64 array."""
        out = np.empty(max(k1 - k0, 0), dtype=np.int64)
        for lo, hi, i in self.pieces(k0, k1):
            kind, args = self.kind[i], self.args[i]
            if kind == LIN:
                o, a, p, d = args
                k = np.arange(lo - self.k0[i], hi - self.k0[i], dtype=np.int64)
                out[lo - k0:hi - k0] = o - (-(a + k * p) // d)
            elif kind == CONST:
                out[lo - k0:hi - k0] = args[0]
            else:
                out[lo - k0:hi - k0] = args[0][lo - self.k0[i]:hi - self.k0[i]]
        return out

    def count_le(self, t):
        """How many strokes fired at or before t."""
        i = bisect_left(self.t_last, t + 1)  # first piece whose last stroke is after t
        if i == len(self.k0):
            return self.n
        kind, args, k0 = self.kind[i], self.args[i], self.k0[i]
        if kind == LIN:
            o, a, p, d = args
            # o + ceil((a + (k-k0)*p)/d) <= t  <=>  a + (k-k0)*p <= (t - o)*d
            return min(max(k0 + ((t - o) * d - a) // p + 1, k0), self.k1[i])
        if kind == CONST:
            return k0  # its strokes are all after t
        return k0 + int(np.searchsorted(args[0], t, side="right"))

    def table(self):
        """The pieces as int64 arrays: o, a, p, d (LIN; CONST: o is its time), kind, k0, k1, t_last."""
        if self._table is None:
            cols = [args if kind == LIN else ((args[0], 0, 1, 1) if kind == CONST else (0, 0, 1, 1))
                    for kind, args in zip(self.kind, self.args)]
            lin = list(zip(*cols)) or [(), (), (), ()]
            self._table = tuple(np.asarray(col, dtype=np.int64) for col in lin) + (
                np.asarray(self.kind), np.asarray(self.k0, dtype=np.int64), np.asarray(self.k1, dtype=np.int64),
                np.asarray(self.t_last, dtype=np.int64))
        return self._table

    def times_at(self, ks):
        """Stroke times of the strokes numbered ks (an int64 array of 0 <= k < n)."""
        ks = np.asarray(ks, dtype=np.int64)
        o, a, p, d, kind, k0, _k1, _t_last = self.table()
        w = np.searchsorted(k0, ks, side="right") - 1
        out = o[w] - (-(a[w] + (ks - k0[w]) * p[w]) // d[w])
        const = kind[w] == CONST
        out[const] = o[w][const]
        for i in np.unique(w[kind[w] == ARR]).tolist():
            sel = w == i
            out[sel] = self.args[i][0][ks[sel] - self.k0[i]]
        return out

    def count_le_many(self, ts):
        """count_le for an int64 array of times, vectorised over the pieces."""
        ts = np.asarray(ts, dtype=np.int64)
        if not len(self.k0):
            return np.zeros(len(ts), dtype=np.int64)
        o, a, p, d, kind, k0, k1, t_last = self.table()
        w = np.minimum(np.searchsorted(t_last, ts + 1, side="left"), len(k0) - 1)
        out = np.clip(k0[w] + ((ts - o[w]) * d[w] - a[w]) // p[w] + 1, k0[w], k1[w])
        out[kind[w] == CONST] = k0[w][kind[w] == CONST]
        for i in np.unique(w[kind[w] == ARR]).tolist():
            sel = (w == i)
            out[sel] = self.k0[i] + np.searchsorted(self.args[i][0], ts[sel], side="right")
        out[ts >= t_last[-1]] = self.n
        return out


# -- masses along the path, and the reservoir ---------------------------------------------------------

class PathMass:
    """Cumulative pg out of the tip after k strokes: a piecewise-linear function of the volume out
    x = k * stroke_nl, given as pieces (x_start, concentration), up to stroke k_max."""

    def __init__(self, pieces, stroke_nl, k_max):
        self.s = stroke_nl
        self.k_max = k_max
        self.xs = [x for x, _ in pieces]
        self.cs = [c for _, c in pieces]
        self.mass_at = [0]
        for i in range(1, len(self.xs)):
            self.mass_at.append(self.mass_at[-1] + (self.xs[i] - self.xs[i - 1]) * self.cs[i - 1])
        self._xs = np.asarray(self.xs, dtype=np.int64)
        self._cs = np.asarray(self.cs, dtype=np.int64)
        self._mass = np.asarray(self.mass_at, dtype=np.int64)
        # Stroke index where each piece starts to set cum(k): cum is linear in k between them.
        self.k_starts = [cdiv(x, stroke_nl) for x in self.xs]

    def cum(self, k):
        x = k * self.s
        i = bisect_right(self.xs, x) - 1
        return self.mass_at[i] + (x - self.xs[i]) * self.cs[i]

    def cum_many(self, ks):
        x = np.asarray(ks, dtype=np.int64) * self.s
        i = np.searchsorted(self._xs, x, side="right") - 1
        return self._mass[i] + (x - self._xs[i]) * self._cs[i]

    def tip(self, k):
        """pg stroke k (0-based) pushes out of the tip."""
        return self.cum(k + 1) - self.cum(k)

    def last_reached(self, mass_pg):
        """The largest j <= k_max with cum(j) <= mass_pg (0 if none above 0)."""
        i = bisect_right(self.mass_at, mass_pg) - 1
        if i < 0:
            return 0
        c = self.cs[i]
        if c == 0:  # a piece with no drug: cum stays flat to its end (the last piece: for ever)
            j = self.k_max if i + 1 == len(self.xs) else (self.xs[i + 1] // self.s)
        else:
            j = (self.xs[i] * c + mass_pg - self.mass_at[i]) // (c * self.s)
        return min(j, self.k_max)

    def last_reached_many(self, masses):
        """last_reached for an int64 array of masses."""
        m = np.asarray(masses, dtype=np.int64)
        i = np.maximum(np.searchsorted(self._mass, m, side="right") - 1, 0)
        c = self._cs[i]
        nxt = np.append(self._xs[1:], 0)[i] // self.s  # a flat piece's end (the last piece: k_max)
        flat = np.where(i + 1 == len(self.xs), self.k_max, nxt)
        j = np.where(c > 0, (self._xs[i] * c + m - self._mass[i]) // np.maximum(c * self.s, 1), flat)
        return np.where(m < 0, 0, np.minimum(j, self.k_max))

    def linear_from(self, j):
        """(slope in pg per stroke, last j') with cum linear on [j, j'] (one path piece)."""
        x = j * self.s
        i = bisect_right(self.xs, x) - 1
        last = self.xs[i + 1] // self.s if i + 1 < len(self.xs) else None
        return self.cs[i] * self.s, last


class Segments:
    """A piecewise-linear function of the stroke index: value(k) = v - slope*(k - k0) from k0 on."""

    def __init__(self):
        self.k0, self.v, self.slope = [], [], []

    def add(self, k0, v, slope):
        if self.k0 and self.k0[-1] == k0:
            self.v[-1], self.slope[-1] = v, slope
        else:
            self.k0.append(k0)
            self.v.append(v)
            self.slope.append(slope)

    def at(self, k):
        i = bisect_right(self.k0, k) - 1
        return self.v[i] - self.slope[i] * (k - self.k0[i])

    def many(self, ks):
        ks = np.asarray(ks, dtype=np.int64)
        i = np.searchsorted(np.asarray(self.k0, dtype=np.int64), ks, side="right") - 1
        return np.asarray(self.v, dtype=np.int64)[i] - np.asarray(self.slope, dtype=np.int64)[i] * (
            ks - np.asarray(self.k0, dtype=np.int64)[i])

    def first_below(self, k0, k1, limit):
        """The first k in [k0, k1) with value(k) < limit, or None (slopes >= 0: falling values)."""
        i = max(bisect_right(self.k0, k0) - 1, 0)
        if (i + 1 == len(self.k0) or self.k0[i + 1] >= k1) and self.v[i] - self.slope[i] * (k1 - 1 - self.k0[i]) >= limit:
            return None  # one segment, falling: its last value is its least
        while i < len(self.k0) and self.k0[i] < k1:
            lo = max(self.k0[i], k0)
            hi = min(self.k0[i + 1] if i + 1 < len(self.k0) else k1, k1)
            v, sl, ks = self.v[i], self.slope[i], self.k0[i]
            if lo < hi:
                if v - sl * (lo - ks) < limit:
                    return lo
                if sl > 0:
                    # v - sl*(k - ks) < limit  <=>  k > ks + (v - limit)/sl
                    k = ks + (v - limit) // sl + 1
                    if k < hi:
                        return max(k, lo)
            i += 1
        return None


# -- the ideal stroke times --------------------------------------------------------------------

RATE, PRIME, AT, COPY = 0, 1, 2, 3


class IdealMap:
    """Ideal stroke times over k as disjoint pieces, later assignments overwriting earlier ones:
    RATE (t0, C, rate): t0 + max(ceil((cum(k+1) * SUB - C) / rate), 0);
    PRIME (origin, kb, step, prime_rate): origin + ceil((k - kb) * step / prime_rate);
    AT (t,): t;  COPY: the stroke's own time. Unassigned: -1."""

    def __init__(self, path, sub_per_pg, strokes):
        self.starts, self.ends, self.pays = [], [], []
        self.path = path
        self.sub = sub_per_pg
        self.strokes = strokes

    def assign(self, k0, k1, pay):
        if k1 <= k0:
            return
        if not self.ends or k0 >= self.ends[-1]:  # the walk's usual step: past every piece
            if pay is not None:
                self.starts.append(k0)
                self.ends.append(k1)
                self.pays.append(pay)
            return
        lo = bisect_right(self.ends, k0)  # first piece ending after k0
        hi = bisect_left(self.starts, k1)  # first piece starting at or after k1
        new = []
        if lo < hi and self.starts[lo] < k0:
            new.append((self.starts[lo], k0, self.pays[lo]))
        if pay is not None:
            new.append((k0, k1, pay))
        if lo < hi and self.ends[hi - 1] > k1:
            new.append((k1, self.ends[hi - 1], self.pays[hi - 1]))
        self.starts[lo:hi] = [p[0] for p in new]
        self.ends[lo:hi] = [p[1] for p in new]
        self.pays[lo:hi] = [p[2] for p in new]

    def clear(self, k0, k1):
        self.assign(k0, k1, None)

    def pieces(self, k0, k1):
        """(from k, to k, payload or None for unassigned) covering [k0, k1)."""
        i = max(bisect_right(self.starts, k0) - 1, 0)
        k = k0
        while k < k1:
            while i < len(self.starts) and self.ends[i] <= k:
                i += 1
            if i < len(self.starts) and self.starts[i] <= k:
                hi = min(self.ends[i], k1)
                yield k, hi, self.pays[i]
            else:
                hi = min(self.starts[i], k1) if i < len(self.starts) else k1
                yield k, hi, None
            k = hi

    def at(self, k):
        i = bisect_right(self.starts, k) - 1
        if i < 0 or k >= self.ends[i]:
            return -1
        return self._one(self.pays[i], k)

    def _one(self, pay, k):
        kind = pay[0]
        if kind == RATE:
            _, t0, c, rate = pay
            return t0 + max(cdiv(self.path.cum(k + 1) * self.sub - c, rate), 0)
        if kind == PRIME:
            _, origin, kb, step, prime_rate = pay
            return origin + cdiv((k - kb) * step, prime_rate)
        if kind == AT:
            return pay[1]
        return self.strokes.time(k)

    def values(self, k0, k1):
        """Ideal times of [k0, k1) as an int64 array (-1 where unassigned)."""
        out = np.full(max(k1 - k0, 0), -1, dtype=np.int64)
        for lo, hi, pay in self.pieces(k0, k1):
            if pay is None:
                continue
            kind = pay[0]
            k = np.arange(lo, hi, dtype=np.int64)
            if kind == RATE:
                _, t0, c, rate = pay
                base, rem = divmod(c, self.sub)  # keeps the int64 products to the mass since the epoch
                need = (self.path.cum_many(k + 1) - base) * self.sub - rem
                out[lo - k0:hi - k0] = t0 + np.maximum(-(-need // rate), 0)
            elif kind == PRIME:
                _, origin, kb, step, prime_rate = pay
                out[lo - k0:hi - k0] = origin - (-((k - kb) * step) // prime_rate)
            elif kind == AT:
                out[lo - k0:hi - k0] = pay[1]
            else:
                out[lo - k0:hi - k0] = self.strokes.times(lo, hi)
        return out

    def is_prime(self, k0, k1):
        out = np.zeros(max(k1 - k0, 0), dtype=bool)
        for lo, hi, pay in self.pieces(k0, k1):
            if pay is not None and pay[0] == PRIME:
                out[lo - k0:hi - k0] = True
        return out

    def progression(self, pay, k0, k1):
        """The piece over [k0, k1) as (t0, alpha, beta, den): t0 + ceil((alpha + beta*k)/den) with
        alpha + beta*k > 0 for every k there; None where it is not one such progression."""
        kind = pay[0]
        if kind == PRIME:
            _, origin, kb, step, prime_rate = pay
            return origin, -kb * step, step, prime_rate
        if kind != RATE:
            return None
        _, t0, c, rate = pay
        slope, last = self.path.linear_from(k0 + 1)
        if last is not None and last < k1:
            return None
        beta = slope * self.sub
        alpha = self.path.cum(k0 + 1) * self.sub - c - beta * k0
        if alpha + beta * k0 <= 0:
            return None  # overdue at the epoch's start: clamped to t0
        return t0, alpha, beta, rate

    def split_points(self, pay, k0, k1):
        """Where a RATE piece's progression may change inside [k0, k1): path pieces and the clamp."""
        if pay[0] != RATE:
            return []
        _, t0, c, rate = pay
        # cum(k+1) changes piece where k+1 reaches a piece's first stroke
        pts = [ks - 1 for ks in self.path.k_starts[1:] if k0 < ks - 1 < k1]
        # The clamp: the last k whose need is <= 0, i.e. cum(k+1) <= C / SUB.
        j = self.path.last_reached(c // self.sub)  # cum(j) <= floor(C/SUB): need(j-1) <= 0
        if k0 < j < k1:
            pts.append(j)
        return sorted(set(pts))


# -- the same, vectorised over many progressions -------------------------------------------------------

_BIG = 1 << 62


def _mod_many(n, m, a, b, want_max):
    """minmod / maxmod for int64 arrays, all progressions in lockstep. Each reduction step rewrites
    the answer as a clamped affine function of the next level's answer,
    g(F) = min(max(s*F + o, lo), hi), so the levels need no stack. Needs b*(n-1) + m < 2**62."""
    n, m = np.array(n, dtype=np.int64), np.array(m, dtype=np.int64)
    a, b = np.array(a, dtype=np.int64) % m, np.array(b, dtype=np.int64) % m
    mode = np.full(len(n), bool(want_max))
    o = np.zeros(len(n), dtype=np.int64)
    s = np.ones(len(n), dtype=np.int64)
    lo = np.full(len(n), -_BIG, dtype=np.int64)
    hi = np.full(len(n), _BIG, dtype=np.int64)
    out = np.zeros(len(n), dtype=np.int64)
    live = np.ones(len(n), dtype=bool)
    while live.any():
        idx = np.nonzero(live)[0]
        nn, mm, aa, bb, md = n[idx], m[idx], a[idx] % m[idx], b[idx] % m[idx], mode[idx]
        f = np.full(len(idx), -1, dtype=np.int64)
        zero = bb == 0
        f[zero] = aa[zero]
        flip = ~zero & (2 * bb > mm)
        # F = m - 1 - F' of the other mode, over m - 1 - a stepping by m - b
        fi = idx[flip]
        o[fi] += s[fi] * (mm[flip] - 1)
        s[fi] = -s[fi]
        a[fi] = mm[flip] - 1 - aa[flip]
        b[fi] = mm[flip] - bb[flip]
        mode[fi] = ~md[flip]
        red = ~zero & ~flip
        top = aa + bb * (nn - 1)
        wraps = np.where(red, top // np.maximum(mm, 1), 0)
        end = red & (wraps == 0)
        f[end] = np.where(md[end], top[end], aa[end])
        go = red & (wraps > 0)
        gi = idx[go]
        # min: F = min(a, F''); max: F = max(top mod m, m - b + F''), F'' over wraps terms mod b
        c = np.where(md[go], top[go] % mm[go], aa[go])
        d = np.where(md[go], mm[go] - bb[go], 0)
        sg, og = s[gi], o[gi]
        mx = md[go]
        lo[gi] = np.where(mx & (sg > 0), np.maximum(lo[gi], og + c), np.where(~mx & (sg < 0),
                          np.maximum(lo[gi], og - c), lo[gi]))
        hi[gi] = np.where(~mx & (sg > 0), np.minimum(hi[gi], np.maximum(og + c, lo[gi])),
                          np.where(mx & (sg < 0), np.minimum(hi[gi], np.maximum(og - c, lo[gi])), hi[gi]))
        o[gi] = og + sg * d
        n[gi] = wraps[go]
        a[gi] = aa[go] - mm[go]
        b[gi] = -mm[go]
        m[gi] = bb[go]
        done = f >= 0
        di = idx[done]
        out[di] = np.minimum(np.maximum(s[di] * f[done] + o[di], lo[di]), hi[di])
        live[di] = False
    return out


def minmod_many(n, m, a, b):
    return _mod_many(n, m, a, b, False)


def maxmod_many(n, m, a, b):
    return _mod_many(n, m, a, b, True)
