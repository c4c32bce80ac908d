"""The referee: ground truth and invariants of a run, from the scenario, not from the firmware.

What it reads of the run: the stroke times the simulated motor fired, and the firmware's
decisions (which inputs it accepted, which boluses it granted and for how much, with the pump
time of each decision). Everything else, the ideal dose, the fluid path, the reservoir, when the
pump ran empty, priming, is computed here from docs/delivery.md in exact integer arithmetic:
Python ints, and numpy int64 only on quantities bounded well inside it.

It judges in closed form (sim/closed.py, docs/referee.md): the fired strokes are the motor's
trains, the ideal stroke times, tip masses and reservoir are pieces over the stroke index, and its
cost grows with schedule changes and trains, not with strokes. A stretch is listed stroke by stroke
only where no closed form covers it.

Units: rates ng/day; ideal mass in "sub" = 1/86_400_000 ng (a rate of R ng/day accrues R sub per
ms); tip masses in pg (nL x mcg/mL); 1 pg = 86_400 sub.
"""

from bisect import bisect_left, bisect_right
from fractions import Fraction

import numpy as np

from sim.closed import AT, CHUNK, COPY, PRIME, RATE, IdealMap, PathMass, Segments, Strokes, cdiv, maxmod_many, minmod_many

DAY = 86_400_000
_EXTRA = 64  # hypothetical strokes past the last fired, so a missing stroke is seen
MIN = 60_000
SUB_PER_PG = 86_400


class Referee:
    def __init__(self, scenario, result):
        self.sc = scenario
        self.r = result
        self.jitter = result.wake_jitter_ms
        self.end = scenario.days * DAY
        self.tod0 = scenario.time_of_day_ms
        self.wd0 = scenario.weekday
        self.s = scenario.pump.stroke_nl
        # The fired strokes as the motor's trains in closed form; an explicit list where the run has
        # strokes outside any train (a runaway's) or a test set them.
        if result.strokes_given or result.pump.uncommanded_ms:
            self.strokes = Strokes.from_times(result.stroke_times)
        else:
            self.strokes = Strokes.from_runs(result.pump._runs)
        self.n = self.strokes.n
        self.listed = 0  # strokes the judgement had to list one by one (not one progression with the ideal)
        self._expanded = {}
        self.inputs = result.inputs  # accepted inputs, in order: (t_ms, action, details)
        self.violations = []

    # -- per-stroke arrays, listed on demand (outputs, plots and tests; the judgement needs none) --------

    def _listed(self, name, make):
        if name not in self._expanded:
            self._expanded[name] = make()
        return self._expanded[name]

    @property
    def T(self):
        return self._listed("T", lambda: self.strokes.times(0, self.n))

    @property
    def ideal_t(self):
        return self._listed("ideal_t", lambda: self.ideal.values(0, self.K))

    @property
    def is_prime(self):
        return self._listed("is_prime", lambda: self.ideal.is_prime(0, self.K))

    @property
    def cum_tip_pg(self):
        return self._listed("cum", lambda: self.path.cum_many(np.arange(self.K + 1, dtype=np.int64)))

    @property
    def tip_pg(self):
        return self._listed("tip", lambda: np.diff(self.cum_tip_pg))

    @property
    def volume_after(self):
        return self._listed("volume", lambda: self.volume.many(np.arange(self.K, dtype=np.int64)))

    @property
    def reservoir_conc(self):
        def make():
            out = np.empty(self.n, dtype=np.int64)
            bounds = [k for k, _ in self.conc_segs[1:]] + [self.n]
            for (k, c), b in zip(self.conc_segs, bounds):
                out[min(k, self.n):min(b, self.n)] = c
            return out
        return self._listed("conc", make)

    # -- the prescription in force ------------------------------------------------------------

    def _programs(self):
        """[(t_ms, rx)] of the basal/PTM/limit programs in force from t_ms."""
        out = [(0, self.sc.rx)]
        for t, action, d in self.inputs:
            if action == "program":
                out.append((t, d["rx"]))
        return out

    def _rx_at(self, t):
        progs = self.programs
        i = bisect_right([p[0] for p in progs], t) - 1
        return progs[i][1]

    def _clock_pieces(self):
        """[(a, b, shift)]: over run time [a, b) the pump's clock reads the local time t + shift (ms
        from day 0's midnight, its weekday wd0); each accepted set_clock starts a piece. The last
        piece ends after the run's last instant."""
        moves = [(0, self.tod0)]
        for t, action, d in self.inputs:
            if action == "set_clock":
                if t == moves[-1][0]:
                    moves[-1] = (t, moves[-1][1] + d["jump_ms"])
                else:
                    moves.append((t, moves[-1][1] + d["jump_ms"]))
        return [(a, moves[i + 1][0] if i + 1 < len(moves) else self.end + 1, sh) for i, (a, sh) in enumerate(moves)]

    def _local(self, t):
        return t + [sh for a, _b, sh in self.pieces if a <= t][-1]

    def _reached(self, t):
        """The latest local time the clock had reached by run time t (a clock set back replays what
        it had reached: the firmware applies no midnight or periodic time twice)."""
        hw = None
        for a, b, sh in self.pieces:
            end = b if b <= t else t
            if end >= a:
                hw = end + sh if hw is None else max(hw, end + sh)
        return hw

    def _periodic_lists(self):
        """[(t_ms, periodic)]: a program's list takes effect at the next pump midnight (one the
        clock reaches for the first time, or one a clock set forward jumps over)."""
        out = [(0, self.sc.rx.periodic)]
        for t, rx in self.programs[1:]:
            out.append((self._next_midnight(t), rx.periodic))
        return out

    def _next_midnight(self, t):
        hw = self._reached(t)
        prev = None
        for a, b, sh in self.pieces:
            if b <= t:
                prev = sh
                continue
            if a > t and (a + sh) // DAY > (a + prev) // DAY:
                return a  # set forward over a midnight
            lo = max(hw, a + sh - 1)
            m = (lo // DAY + 1) * DAY
            if m <= b + sh:
                return m - sh
            hw = max(hw, b + sh)
            prev = sh
        return self.end + 1

    def _basal_changes(self):
        """[(t_ms, rate)] of basal rate changes over the run: the profile at the pump's local time."""
        points = []
        progs = self.programs
        for i, (p0, rx) in enumerate(progs):
            p1 = progs[i + 1][0] if i + 1 < len(progs) else self.end
            for a, b, sh in self.pieces:
                t0, t1 = max(p0, a), min(p1, b)
                if t1 <= t0:
                    continue
                d = (t0 + sh) // DAY
                while d * DAY - sh < t1:
                    prof = rx.profiles[(self.wd0 + d) % 7]
                    for st, rate in zip(prof.starts_ms, prof.rates_ng_per_day):
                        t = d * DAY + st - sh
                        nxt = [s for s in prof.starts_ms if s > st]
                        t_end = d * DAY + (nxt[0] if nxt else DAY) - sh
                        if t_end > t0 and t < t1:
                            points.append((max(t, t0), rate))
                    d += 1
        return points

    def _jumped(self, a, list_at):
        """Periodic entries a clock set forward at run time a (a piece's start) jumped over: given then."""
        i = [p[0] for p in self.pieces].index(a)
        if not i:
            return []
        old, new = a + self.pieces[i - 1][2], a + self.pieces[i][2]
        if new <= old:
            return []
        return [(at, bol) for at, bol in list_at if 0 < (at - old) % DAY < new - old and at != new % DAY]

    def _list_at(self, t):
        return [p for tl, p in self.periodic_lists if tl <= t][-1]

    # -- boluses ---------------------------------------------------------------------------------

    def _granted(self):
        """[(start_ms, ng, minutes, kind)] of every granted bolus, with the decision's pump time."""
        out = []
        # Every clinician request gets exactly one decision, in order.
        clinician = [e.minutes for e in self.sc.events if e.action == "bolus"]
        asked = [b for b in self.r.boluses if b["kind"] == "clinician"]
        minutes_of = {id(b): m for b, m in zip(asked, clinician)}
        starts = {a for a, _b, _sh in self.pieces[1:]}
        taken = {}
        for order, b in enumerate(self.r.boluses):
            if not b["granted"]:
                continue
            t = b["pump_t_ms"]
            if b["kind"] == "clinician":
                minutes = minutes_of[id(b)]
            elif b["kind"] == "ptm":
                minutes = self._rx_at(t).ptm[0].minutes
            else:
                minutes = None
                in_force = self._list_at(t)
                hit = [bol for at, bol in in_force if self._local(t) % DAY == at]
                if t in starts:  # a clock set: its time on the old clock, what it jumped over, the new
                    i = [p[0] for p in self.pieces].index(t)
                    old = [bol for at, bol in in_force if (t + self.pieces[i - 1][2]) % DAY == at]
                    jumped = [bol for _at, bol in self._jumped(t, in_force)]
                    n = taken.get(t, 0)
                    taken[t] = n + 1
                    hit = (old + jumped + hit)[n:]
                minutes = hit[0].minutes if hit else None
                if minutes is None:
                    self._violate("periodic_on_schedule", f"a periodic bolus was granted at {t / 1000:.3f} s, "
                                  "no periodic time in force")
                    continue
            out.append((t, b["ng"], minutes, b["kind"], order))
        return out

    # -- physics: reservoir, path, tip masses, from the actual strokes ---------------------------

    def _physics(self):
        st, s, pump = self.strokes, self.s, self.sc.pump
        n = self.n
        c = self.sc.rx.concentration
        v = self.sc.volume_nl  # before stroke k_seg
        k_seg = 0
        # The reservoir after stroke k (k past the last fired too: a missing stroke is seen).
        self.volume = Segments()
        self.volume.add(0, v - s, s)
        self.conc_segs = [(0, c)]  # (first stroke, concentration of the reservoir drug it pushes in)
        self.refill_marks = []  # (t, strokes before, volume after)
        for t, action, d in self.inputs:
            if action != "refill":
                continue
            j = st.count_le(t)  # strokes at or before t come first
            v -= s * (j - k_seg)
            k_seg = j
            if d["concentration"] != c:
                v = d["volume_nl"]
                c = d["concentration"]
                if self.conc_segs[-1][0] == j:
                    self.conc_segs[-1] = (j, c)
                else:
                    self.conc_segs.append((j, c))
            else:
                v += d["volume_nl"]
            self.volume.add(j, v - s, s)
            self.refill_marks.append((t, j, v))
        self.final_volume_nl = v - s * (n - k_seg)
        # The path as a function of cumulative out-volume x: x < path_nl is the initial fill, beyond
        # it the reservoir drug that went in at inlet volume x - path_nl; a prime overwrites its piece.
        path = pump.path_nl
        pieces = [(0, self.sc.rx.concentration)]  # (x_start, concentration), piecewise
        inlet = [(k * s, cc) for k, cc in self.conc_segs if k < n] or [(0, self.sc.rx.concentration)]
        inlet[0] = (0, inlet[0][1])
        for u, cc in inlet:
            pieces.append((path + u, int(cc)))
        pieces = _normalise(pieces)
        self.primes = []
        self.pre_prime_pg = {}  # stroke index -> the tip mass that stroke would have had without the prime
        for t, action, d in self.inputs:
            if action == "prime":
                k = st.count_le(t)
                x0 = k * s
                self.pre_prime_pg[k] = _piece_mass(pieces, x0, x0 + s)
                empty = path if d["catheter_cm"] == 0 else d["catheter_cm"] * pump.nl_per_cm
                pieces = _overwrite(pieces, x0, x0 + empty, 0)
                self.primes.append((t, k, empty // s))
        # Strokes the rule may call for beyond those fired: judged too (missing strokes).
        self.K = n + _EXTRA
        self.path = PathMass(pieces, s, self.K)

    # -- the ideal, epoch by epoch -----------------------------------------------------------------

    def _rate_changes(self):
        """Rate changes (t, delta ng/day) of basal and granted boluses, cut at cancellations."""
        changes = []
        prev = 0
        self.seed_rate = None  # the basal at the start: the firmware's window assumes the day before ran at it
        for t, rate in self._basal_changes():
            if self.seed_rate is None:
                self.seed_rate = rate if t == 0 else 0
            changes.append((t, rate - prev))
            prev = rate
        # A cancel or prime stops the boluses decided before it (even in the same ms); the pump
        # running empty stops those started before.
        cancels = [(t, d["after"]) for t, a, d in self.inputs if a in ("cancel", "prime")]
        cancels += [(t, 1 << 60) for t in self.empty_onsets]
        # A hold stops them too, but not a reset: a bolus in its window goes on after the boot (the
        # time off is a hold of its own, its drug missed, firmware/persist.py).
        cancels += [(h["start_ms"], h["after"]) for h in self.r.holds if h["kind"] != "power_off"]
        for start, ng, minutes, _kind, order in self.granted:
            q, r = divmod(ng * 1440, minutes)
            end = start + minutes * MIN
            cut = sorted(c for c, after in cancels if start <= c < end and after > order and (c > start or after < 1 << 60))
            stop = cut[0] if cut else end
            phases = [(start, q + (1 if r else 0))]
            if r:
                phases.append((start + r * MIN, q))
            phases = [(t, rate) for t, rate in phases if t < stop]
            last = 0
            for t, rate in phases:
                changes.append((t, rate - last))
                last = rate
            changes.append((stop, -last))
        merged = {}
        for t, d in changes:
            merged[t] = merged.get(t, 0) + d
        return sorted(merged.items())

    def _ideal(self):
        """Ideal time of every stroke, the prescribed mass, and what was written off.

        One walk through the run in time order: dosing epochs, delivery holds, empty spans and
        primes. Each prime and each hold is taken once, by its index; a dosing epoch that ends at
        neither has emptied the pump (so it fired at least one more stroke) or ends the run. So
        every step takes a prime or a hold or advances the stroke index k: _Walk checks that, and
        the bound that follows from it."""
        self.ideal = IdealMap(self.path, SUB_PER_PG, self.strokes)
        self._expanded = {}
        self.empty_onsets = []
        self.prescribed_sub = 0
        self.missed_sub = 0
        self.segs = []
        self.missing_before_prime = 0
        self.hold_missed = []  # (start, end, missed sub) of every hold span
        self.missed_spans = []  # (start, end): the ideal written off at its rate (holds, empty spans)
        self.missed_points = []  # (t, sub): what was owed, written off at a hold's start or the pump running dry
        self.prime_spans = []  # (start, last stroke's ms): priming, when nothing of the prescription is asked
        self.prime_called = []  # per prime: how many of its strokes the rule called for (fewer: unfinished)
        for v in getattr(self, "_walk_violations", []):  # judge() walks more than once: report once
            self.violations.remove(v)
        self._walk_violations = []
        holds = self.held
        primes = self.primes
        pi = 0  # primes taken
        hi = 0  # holds taken or passed
        k = 0
        t = 0
        carry = 0  # owed (sub) kept through a stall: the stroke that failed is retried, not dropped
        walk = _Walk(len(primes), len(holds), self.K + max((p for _, _, p in primes), default=0))
        while t < self.end:
            walk.step(pi + hi, k, t)
            while hi < len(holds) and holds[hi][0] < t:  # begun before t: its span was walked already
                hi += 1
            if pi < len(primes) and primes[pi][0] < t:
                # Passed inside a span that did not stop at it (the pump was empty, a hold then).
                pi, k, t = self._take_primes(pi, k, t, carry)
                carry = 0
                continue
            next_prime, k_prime = primes[pi][:2] if pi < len(primes) else (self.end, None)
            hold = holds[hi] if hi < len(holds) else None
            if hold is not None and hold[0] < next_prime:
                if t == hold[0] and carry > 0 and not hold[2]:  # a stall ended as this hold began:
                    k, carry = self._fire_owed(t, k, carry, k_prime)  # its retried stroke came first
                # The strokes of a prime that follows the hold are its own, not this epoch's.
                k, t_stop, emptied, carry = self._dose_epoch(t, k, hold[0], None, carry, hold[2], k_prime)
            else:
                if t == next_prime and carry > 0:  # a stall ended at the prime's ms: its retried stroke came first
                    k, carry = self._fire_owed(t, k, carry, k_prime)
                k, t_stop, emptied, carry = self._dose_epoch(t, k, next_prime, k_prime, carry)
            if emptied:
                t = self._empty_span(t_stop, pi)
                carry = 0
                if t == next_prime and t < self.end:
                    pi, k, t = self._take_primes(pi, k, t, 0)
            elif hold is not None and t_stop == hold[0] and hold[0] < next_prime:
                hi += 1
                # The firmware accepted a prime inside the span, so it was not holding then (a stall
                # between a retry and its outcome, or a resume and a suspend of one ms merged into
                # one span): the span ends at the prime; _prime_epoch holds the prime for the rest.
                t_end = min(hold[1], self.end, next_prime)
                before = self.missed_sub
                self._accrue_missed(t_stop, t_end)
                self.hold_missed.append((t_stop, t_end, self.missed_sub - before))
                t = t_end
                if t == next_prime and t < hold[1] and t < self.end:
                    pi, k, t = self._take_primes(pi, k, t, carry)  # a stall's owed stroke is written off
                    carry = 0
            elif t_stop < self.end:  # at the prime: the epoch wrote off what was owed
                pi, k, t = self._take_primes(pi, k, t_stop, 0)
            else:
                t = self.end
        self.strokes_judged = k
        self.walk_steps = walk.steps

    def _empty_span(self, t_stop, i):
        """The pump ran empty at t_stop: until a refill that holds a stroke above the empty threshold
        (or prime i if it has strokes, or the end), and out of any hold then, the ideal is written
        off. A prime of no strokes (a piece shorter than a stroke) does not end it.
        Returns when delivery can go on."""
        self.empty_onsets.append(t_stop)
        later = [tr for tr, kr, v in self.refill_marks if tr >= t_stop and v - self.sc.pump.empty_nl >= self.s]
        if i < len(self.primes) and self.primes[i][2]:
            later.append(self.primes[i][0])
        t_resume = self._unheld(min(later + [self.end]))
        self._accrue_missed(t_stop, t_resume)
        return t_resume

    def _take_primes(self, i, k, t, owed):
        """Prime i at t (the rule at stroke k, owing `owed` sub, written off), and the prime after
        it if its last stroke emptied the pump and delivery resumes at that prime. Returns (primes
        taken, next stroke index, time after them)."""
        while True:
            tp, kp, p = self.primes[i]
            k, t = self._take_prime(i, k, t, owed)
            i += 1
            owed = 0
            # The prime's last stroke can reach the empty threshold (it was accepted with its volume above it).
            if (not p or k - kp < p or t >= self.end or k > self.K
                    or self.volume.at(k - 1) - self.sc.pump.empty_nl >= self.s):
                return i, k, t
            t = self._empty_span(t, i)
            if not (i < len(self.primes) and t == self.primes[i][0] and t < self.end):
                return i, k, t

    def _take_prime(self, i, k, t, owed):
        """Prime i, reached with the rule at stroke k at time t (owing `owed` sub, written off).
        Its strokes are numbered from the strokes that fired before it (k_p); when the rule is not
        there, the strokes in between are judged here. Returns (next stroke index, time after it)."""
        tp, kp, p = self.primes[i]
        self.missed_sub += max(owed, 0)
        if k < kp:
            # Fired before the prime, never called for by the rule (its ideal had not reached them).
            self.ideal.assign(k, kp, (COPY,))
            self._walk_violate("never_ahead", f"{kp - k} stroke(s) before the prime at {tp / 1000:.3f} s "
                               "that the rule never called for")
        elif k > kp:
            # Called for before the prime, never fired: what was due more than the wake latency
            # before it is missing; the prime's strokes take their numbers.
            due = self.ideal.values(kp, k)
            self.missing_before_prime += int(np.count_nonzero((due >= 0) & (due < tp - self.jitter)))
            self.ideal.clear(kp, k)
        k_next, last = self._prime_epoch(tp, kp, self.sc.pump.prime_nl_per_hour * 24, p)
        self.prime_spans.append((tp, last))
        self.prime_called.append(k_next - kp)
        return k_next, max(t, last)

    def _fire_owed(self, t, k, owed, k_cap):
        """The strokes already owed at t (owed sub past stroke k: a stall's stroke, retried at its
        end) fire at t, before anything else of that instant; none past stroke k_cap (a prime's first).
        Returns (next stroke index, what is still owed)."""
        path = self.path
        base = path.cum(k)
        j = path.last_reached(base + owed // SUB_PER_PG)
        if k_cap is not None:
            j = min(j, k_cap)
        if j > k:
            self.ideal.assign(k, j, (AT, t))
            owed -= (path.cum(j) - base) * SUB_PER_PG
            k = j
        return k, owed

    def _walk_violate(self, name, line):
        self._walk_violations.append((name, line))
        self._violate(name, line)

    def _holds(self):
        """The firmware's delivery holds as disjoint spans (start, end, keep_owed), in time order."""
        spans = sorted((h["start_ms"], h["end_ms"] if h["end_ms"] is not None else self.end + 1, h["keep_owed"])
                       for h in self.r.holds)
        merged = []
        for a, b, keep in spans:
            # Overlapping holds merge; holds that only touch stay apart (a stall's retried stroke at
            # the end of one comes before a hold of the same ms). Two that start together keep owed
            # if either does (a stall's failed stroke stays owed).
            if merged and a < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b), merged[-1][2] or (keep and a == merged[-1][0]))
            else:
                merged.append((a, b, keep))
        return merged

    def _unheld(self, t):
        for a, b, _ in self.held:
            if a <= t < b:
                t = b
        return t

    def _prime_epoch(self, tp, k, prime_rate, p):
        """The p strokes of a prime from tp, numbered from k: stroke j at the first ms with
        j * stroke_nl accrued at the prime rate, over the time the pump is not held. A stall
        (keep_owed) pauses the accrual, and the stroke that failed at its start fires when it ends;
        any other hold writes off what had accrued, and the prime goes on from 0 at its end. A hold
        that never ends leaves the prime unfinished.

        Returns (next stroke index, time of the last prime stroke (tp if none), or the end if unfinished)."""
        step = self.s * DAY
        # The holds from tp on; one that began before the prime (the firmware accepted it between a
        # stall's retry and its outcome, or at a resume merged with a suspend of that ms) holds it from tp.
        holds = [(max(a, tp), b, keep) for a, b, keep in self.held if b > tp]
        origin, j, fired, last = tp, 0, 0, tp
        for a, b, keep in holds + [(None, None, False)]:
            left = p - fired
            if not left:
                break
            # Prime stroke j' (1-based since origin) at origin + ceil(j' * step / prime_rate).
            if a is None:
                n = left
            else:
                room = a - origin - (1 if keep else 0)  # a stall's stroke due at its first ms failed
                n = min(max((room * prime_rate) // step - j, 0), left) if room >= 0 else 0
            m = max(0, min(n, self.K - k - fired))
            self.ideal.assign(k + fired, k + fired + m, (PRIME, origin, k + fired - j - 1, step, prime_rate))
            if n:
                last = origin + cdiv((j + n) * step, prime_rate)
            fired += n
            j += n
            if fired == p:
                break
            if b > self.end:  # held to the end: the prime never finishes
                return k + fired, self.end
            if keep:
                origin += b - a
            else:
                origin, j = b, 0
        return k + fired, last

    def _dose_epoch(self, e, k0, t_limit, k_limit=None, acc0=0, keep=False, k_cap=None):
        """Ideal stroke times from e (owing acc0 sub) until t_limit or the stroke that empties the pump.
        keep: t_limit starts a stall, whose stroke due at that ms failed and stays owed. k_cap: the
        first stroke of a prime after t_limit (a hold comes first): no stroke of this epoch is it.

        Returns (next stroke index, end time, emptied, owed sub carried on)."""
        s = self.s
        empty_nl = self.sc.pump.empty_nl
        changes = self.changes
        path = self.path
        rate = self._rate_at(e)
        i = bisect_right(self.change_ts, e)
        acc = acc0  # ideal mass since e, in sub
        t = e
        k = k0
        base = path.cum(k0)
        last_k = self.K if k_limit is None else k_limit  # a prime rewrites the strokes after it
        if k_cap is not None and k_cap < last_k:
            last_k = k_cap
        if not keep:  # a long epoch that does not empty the pump: every segment at once
            bulk = self._bulk_epoch(e, i, rate, acc, k, base, last_k, t_limit)
            if bulk is not None:
                acc, t, k, rate, i = bulk
        while t < t_limit:
            t1 = min(changes[i][0] if i < len(changes) else self.end, t_limit)
            self.segs.append((t, acc, rate, base))
            if rate > 0 and k < last_k:
                hi = acc + rate * (t1 - t)
                j = min(path.last_reached(base + hi // SUB_PER_PG), last_k)  # strokes 1..j reached
                if j > k:
                    pay = (RATE, t, base * SUB_PER_PG + acc, rate)
                    dry = self.volume.first_below(k, j, s + empty_nl)
                    if keep and dry is not None and self.ideal._one(pay, dry) >= t_limit:
                        dry = None  # the stroke that failed as the stall began: retried at its end
                    if dry is not None:
                        j = dry + 1
                    self.ideal.assign(k, j, pay)
                    k = j
                    if dry is not None:
                        t_dry = self.ideal._one(pay, dry)
                        at_dry = acc + rate * (t_dry - t)
                        self.prescribed_sub += at_dry - acc0
                        owed = at_dry - (path.cum(k) - base) * SUB_PER_PG  # owed, written off
                        self.missed_sub += owed
                        self.missed_points.append((t_dry, owed))
                        return k, t_dry, True, 0
            acc += rate * (t1 - t)
            t = t1
            if i < len(changes) and changes[i][0] == t:
                rate += changes[i][1]
                i += 1
        self.prescribed_sub += acc - acc0
        if keep:
            # A stall: every stroke not fired by its start stays owed (the one that failed, and one
            # a late wake had left overdue), and fires when the stall ends.
            fired = self.strokes.count_le(t_limit)
            if k > max(k0, fired):
                self.ideal.clear(max(k0, fired), k)
                k = max(k0, fired)
            return k, t, False, acc - (path.cum(k) - base) * SUB_PER_PG
        if k_limit is not None:  # a prime writes off what was owed: less than the next stroke, or one is missing
            owed = acc - (path.cum(k) - base) * SUB_PER_PG
            over = owed - self.pre_prime_pg.get(k, 1 << 62) * SUB_PER_PG
            # Due more than the wake latency before the prime, and never fired: missing.
            if k == k_limit and over >= 0 and (not rate or over > rate * self.jitter):
                self.missing_before_prime += 1
            self.missed_sub += max(owed, 0)
        elif t < self.end:  # a hold writes off what was owed
            owed = max(acc - (path.cum(k) - base) * SUB_PER_PG, 0)
            self.missed_sub += owed
            self.missed_points.append((t, owed))
        return k, t, False, 0

    def _bulk_epoch(self, e, i, rate, acc, k, base, last_k, t_limit):
        """The loop of _dose_epoch over every constant-rate segment of [e, t_limit) at once, when the
        epoch has many and no stroke in it empties the pump; None to let the loop do it. Returns the
        loop's state at t_limit: (acc, t, k, rate, i)."""
        ts = self.change_ts
        j_end = bisect_left(ts, t_limit, i)
        n = j_end - i + 1
        if n < 16:
            return None
        starts = np.array([e] + ts[i:j_end], dtype=np.int64)
        dt = np.append(starts[1:], t_limit) - starts
        rates = rate + np.concatenate([[0], np.cumsum(self.deltas[i:j_end], dtype=np.int64)])
        if int(rates.max()) * (t_limit - e) + acc >= 1 << 62 or int(rates.min()) < 0:
            return None  # not within int64 (the loop's Python ints then)
        grown = rates * dt
        accs = acc + np.concatenate([[0], np.cumsum(grown[:-1])])
        js = np.minimum(self.path.last_reached_many(base + (accs + grown) // SUB_PER_PG), last_k)
        js = np.maximum.accumulate(np.maximum(js, k))
        if js[-1] > k and self.volume.first_below(k, int(js[-1]), self.s + self.sc.pump.empty_nl) is not None:
            return None  # the pump empties in this epoch: the loop finds the stroke
        prev = np.concatenate([[k], js[:-1]])
        base_sub = base * SUB_PER_PG
        starts_l, accs_l, rates_l = starts.tolist(), accs.tolist(), rates.tolist()
        assign = self.ideal.assign
        for seg in np.nonzero((js > prev) & (rates > 0))[0].tolist():
            assign(int(prev[seg]), int(js[seg]), (RATE, starts_l[seg], base_sub + accs_l[seg], rates_l[seg]))
        self.segs.extend(zip(starts_l, accs_l, rates_l, [base] * n))
        rate = rates_l[-1]
        if j_end < len(ts) and ts[j_end] == t_limit:  # the loop applies a change at t_limit too
            rate += self.deltas[j_end]
            j_end += 1
        return acc + int(grown.sum()), t_limit, int(js[-1]), rate, j_end

    def _rate_at(self, t):
        return self.rate_after[bisect_right(self.change_ts, t)]

    def _accrue_missed(self, t0, t1):
        """The ideal while the pump is empty: prescribed, and missed."""
        self.missed_spans.append((t0, t1))
        rate = self._rate_at(t0)
        t = t0
        for tc, d in self.changes:
            if tc <= t0:
                continue
            if tc >= t1:
                break
            self.missed_sub += rate * (tc - t)
            self.prescribed_sub += rate * (tc - t)
            t = tc
            rate += d
        self.missed_sub += rate * (t1 - t)
        self.prescribed_sub += rate * (t1 - t)

    # -- invariants --------------------------------------------------------------------------------

    def _violate(self, name, line):
        self.violations.append((name, line))

    def judge(self):
        self.pieces = self._clock_pieces()
        self.programs = self._programs()
        self.periodic_lists = self._periodic_lists()
        self.granted = self._granted()
        self.held = self._holds()
        self._physics()
        # Empty onsets depend on ideal times and cancel boluses: iterate to a fixed point (twice suffices:
        # an onset only ever cancels boluses after it).
        self.empty_onsets = []
        for _ in range(3):
            self.changes = self._rate_changes()
            self.change_ts = [tc for tc, _ in self.changes]
            self.deltas = [d for _, d in self.changes]
            self.rate_after = [0]  # rate_after[i]: the rate after the first i changes
            for _, d in self.changes:
                self.rate_after.append(self.rate_after[-1] + d)
            onsets = list(self.empty_onsets)
            self._ideal()
            if self.empty_onsets == onsets:
                break
        inv = {}
        self._judged = None
        self._itable = None
        inv["never_ahead"] = self._never_ahead()
        inv["never_a_stroke_behind"] = self._never_behind()
        inv["rolling_24h_limit"] = self._rolling_limit()
        inv["ptm_lockout_and_count"] = self._ptm()
        inv["periodic_once_each"] = self._periodic()
        inv["priming_volume_and_rate"] = self._priming()
        inv["no_stroke_while_stopped"] = self._stopped()
        inv["critical_alarm_audible"] = self._audible()
        inv["eri_precedes_eos"] = self._eri_eos()
        inv["runaway_contained"] = self._runaway()
        inv["under_delivery_alarm"] = self._under_delivery()
        for name, line in self.violations:
            inv.setdefault(name, {"pass": False, "worst": None})
            inv[name]["pass"] = False
            inv[name].setdefault("detail", line)
        return inv

    # -- comparing the fired strokes with their ideal times ----------------------------------------

    def _extremes(self, k0, k1, prime_only=False):
        """(max ideal - fired, max fired - ideal) over strokes [k0, k1), or (None, None) if none.
        Unassigned ideal times count as -1 (unless prime_only: then only prime strokes count).
        Where the fired train and the ideal are one progression the difference is 0 without listing
        the strokes; elsewhere they are listed, a chunk at a time."""
        early = late = None
        for a, b, i in self.strokes.pieces(k0, k1):
            for c, d, pay in self.ideal.pieces(a, b):
                if prime_only and (pay is None or pay[0] != PRIME):
                    continue
                if self._same_progression(c, d, i, pay):  # most stretches: no need to split
                    early = 0 if early is None else max(early, 0)
                    late = 0 if late is None else max(late, 0)
                    continue
                for lo, hi in self._cells(c, d, pay):
                    e, lt = self._cell_extremes(lo, hi, i, pay)
                    early = e if early is None else max(early, e)
                    late = lt if late is None else max(late, lt)
        return early, late

    def _cells(self, c, d, pay):
        pts = [c] + (self.ideal.split_points(pay, c, d) if pay is not None else []) + [d]
        return zip(pts, pts[1:])

    def _same_progression(self, lo, hi, i, pay):
        st = self.strokes
        if pay is None or st.kind[i] != 0:
            return False
        if pay[0] == COPY:
            return True
        prog = self.ideal.progression(pay, lo, hi)
        if prog is None:
            return False
        t0, alpha, beta, den = prog
        o, a, p, d = st.args[i]
        a -= st.k0[i] * p  # in terms of the global index, as the ideal's
        # t0 + (alpha + beta*k)/den == o + (a + p*k)/d for every k: same ceil, to the ms
        return beta * d == p * den and (t0 * den + alpha) * d == (o * d + a) * den

    def _cell_extremes(self, lo, hi, i, pay):
        if pay is not None and pay[0] == COPY or self._same_progression(lo, hi, i, pay):
            return 0, 0
        self.listed += hi - lo
        early = late = None
        for c0 in range(lo, hi, CHUNK):
            c1 = min(hi, c0 + CHUNK)
            diff = self.ideal.values(c0, c1) - self.strokes.times(c0, c1)
            e, lt = int(diff.max()), int(-diff.min())
            early = e if early is None else max(early, e)
            late = lt if late is None else max(late, lt)
        return early, late

    def _judged_extremes(self):
        if self._judged is None:
            self._judged = self._extremes_many(0, min(self.strokes_judged, self.n))
        return self._judged

    def _cuts(self, k0, k1, *bounds):
        """Cells [lo, hi) of [k0, k1) cut at every boundary given (int64 arrays)."""
        cuts = np.unique(np.clip(np.concatenate([np.array([k0, k1], dtype=np.int64)]
                                                + [np.asarray(b, dtype=np.int64) for b in bounds]), k0, k1))
        return cuts[:-1], cuts[1:]

    def _ideal_table(self):
        """The ideal's pieces as arrays: start, end, kind, t0, den, base pg, rem sub, kb, step."""
        if self._itable is None:
            m = self.ideal
            rows = []
            for pay in m.pays:
                if pay[0] == RATE:
                    base, rem = divmod(pay[2], SUB_PER_PG)
                    rows.append((RATE, pay[1], pay[3], base, rem, 0, 0))
                elif pay[0] == PRIME:
                    rows.append((PRIME, pay[1], pay[4], 0, 0, pay[2], pay[3]))
                else:
                    rows.append((pay[0], 0, 1, 0, 0, 0, 0))
            cols = [np.asarray(c, dtype=np.int64) for c in zip(*rows)] if rows else [np.zeros(0, np.int64)] * 7
            self._itable = (np.asarray(m.starts, dtype=np.int64), np.asarray(m.ends, dtype=np.int64), *cols)
        return self._itable

    def _slope_pg(self, j):
        """pg per stroke of cum from stroke j on (its path piece)."""
        path = self.path
        i = np.searchsorted(path._xs, np.asarray(j, dtype=np.int64) * self.s, side="right") - 1
        return path._cs[i] * self.s

    def _progressions(self, lo, hi):
        """Cells with one stroke piece and one ideal piece: (stroke piece, ideal piece or -1, whether the
        fired train is the ideal's progression there, and the ideal's need at lo, slope, rate)."""
        o, a, p, d, kind, k0, _k1, _t = self.strokes.table()
        w = np.searchsorted(k0, lo, side="right") - 1
        starts, ends, ikind, t0, den, base, rem, kb, step = self._ideal_table()
        v = np.searchsorted(starts, lo, side="right") - 1
        assigned = (v >= 0) & (lo < ends[np.maximum(v, 0)])
        v = np.where(assigned, v, 0)
        ik = np.where(assigned, ikind[v] if len(ikind) else 0, -1)
        rate_piece = ik == RATE
        need = np.where(rate_piece, (self.path.cum_many(lo + 1) - base[v]) * SUB_PER_PG - rem[v],
                        (lo - kb[v]) * step[v])
        beta = np.where(rate_piece, self._slope_pg(lo + 1) * SUB_PER_PG, step[v])
        num = a[w] + (lo - k0[w]) * p[w]
        # The same progression (same rate as denominator, as the firmware plans it): same ms, every stroke.
        same = ((kind[w] == 0) & ((ik == RATE) | (ik == PRIME)) & (need > 0) & (den[v] == d[w]) & (beta == p[w])
                & ((t0[v] - o[w]) * d[w] + need - num == 0))
        if self.path.k_starts[1:]:  # one path piece for cum(k+1) over the whole cell
            ks = np.asarray(self.path.k_starts[1:], dtype=np.int64)
            same &= np.searchsorted(ks, lo + 1, side="right") == np.searchsorted(ks, hi, side="right")
        same |= (ik == COPY)
        return w, np.where(assigned, v, -1), same, need, beta, den[v]

    def _extremes_many(self, k0, k1):
        """_extremes over [k0, k1), the cells where the fired train is the ideal's progression found at once."""
        if k1 <= k0:
            return None, None
        st = self.strokes
        lo, hi = self._cuts(k0, k1, st.k0, st.k1, self.ideal.starts, self.ideal.ends,
                            np.asarray(self.path.k_starts, dtype=np.int64) - 1)
        _w, _v, same, *_ = self._progressions(lo, hi)
        early = late = 0 if same.any() else None
        for c, d in zip(lo[~same].tolist(), hi[~same].tolist()):
            e, lt = self._extremes(c, d)
            if e is not None:
                early = e if early is None else max(early, e)
                late = lt if late is None else max(late, lt)
        return early, late

    def _never_ahead(self):
        early, _ = self._judged_extremes()
        worst = early if early is not None else 0
        # Strokes the rule never called for (a runaway's uncommanded strokes are judged apart).
        extra = self.n - self.strokes_judged - len(self.r.pump.uncommanded_ms)
        ok = worst <= 0 and extra <= 0
        return {"pass": bool(ok), "worst_early_ms": max(worst, 0), "extra_strokes": max(extra, 0)}

    def _never_behind(self):
        _, late = self._judged_extremes()
        worst = late if late is not None else 0
        # Strokes the rule calls for before the end that never fired (beyond the allowed lateness).
        due = self.ideal.values(self.n, min(self.strokes_judged, self.K)) if self.strokes_judged > self.n else []
        missing = int(np.count_nonzero(np.asarray(due) <= self.end - self.jitter)) if len(due) else 0
        missing += self.missing_before_prime
        ok = worst <= self.jitter and missing == 0
        return {"pass": bool(ok), "worst_late_ms": max(worst, 0), "allowed_ms": self.jitter, "missing_strokes": missing}

    # -- where the drug reached the patient -------------------------------------------------------------

    @property
    def _occlusions(self):
        return [(f.t_ms, f.end_ms) for f in self.sc.faults if f.kind == "occlusion"]

    def arrival_times(self, k0, k1):
        """When strokes [k0, k1) reached the patient: at the stroke, or, pushed against a blocked
        catheter, when the block released (the scenario's fault). The order of the strokes is kept."""
        return self._released(self.strokes.times(k0, k1))

    def _released(self, T):
        """Stroke times moved to the end of any block they were pushed against (in place)."""
        for a, b in self._occlusions:
            T[(T >= a) & (T < b)] = b
        return T

    def arrived_by(self, ts):
        """How many strokes had reached the patient at or before each time in ts (int64 array)."""
        x = np.array(ts, dtype=np.int64)
        for a, b in reversed(self._occlusions):  # undo each release: arrived by t <=> fired by h(t)
            x = np.where((x >= a) & (x < b), a - 1, x)
        return self.strokes.count_le_many(x)

    def arrivals(self):
        """Every stroke's arrival time, in stroke (and arrival) order, and that order."""
        return self.arrival_times(0, self.n), np.arange(self.n)

    def _rolling_limit(self):
        """The largest drug mass that reached the patient in any 24 h, against the limit in force.

        Over head strokes i (in arrival order, which is stroke order): W_i = cum(i+1) - cum(F(i)), F(i)
        the strokes arrived by A_i - 24 h. The strokes are cut into cells where the limit, both path
        pieces and the tail's piece stay the same. Where the tail does not move, or the head's arrival
        time does not, W grows with i: its last stroke is the cell's largest. Where both are trains of
        the same rate and tip mass, W_i = W_lo - m * (phi_i - phi_lo) with phi_i = floor((E + r_i)/p) and
        r_i the head's ceil remainder: its least value is one minmod. Any other cell is listed."""
        n = self.n
        if not n:
            return {"pass": True, "worst_mcg": 0.0}
        st, path = self.strokes, self.path
        o, a, p, d, kind, k0, k1, t_last = st.table()
        prog_t = np.array([t for t, _ in self.programs], dtype=np.int64)
        prog_l = np.array([rx.max_daily_ng * 1000 for _, rx in self.programs], dtype=np.int64)
        occl = np.array(self._occlusions, dtype=np.int64).reshape(-1, 2)
        firsts = st.times_at(k0)
        tail_x = np.concatenate([firsts, t_last, occl[:, 0], occl[:, 1]])
        ks = np.asarray([j for j in path.k_starts if 0 < j <= n], dtype=np.int64)
        lo, hi = self._cuts(0, n, k0, k1, st.count_le_many(occl.ravel() - 1),
                            self.arrived_by(tail_x + DAY - 1), self.arrived_by(prog_t - 1), ks - 1,
                            self.arrived_by(self._arrivals_at(ks - 1) + DAY - 1))
        last = hi - 1
        A_lo, A_last = self._arrivals_at(lo), self._arrivals_at(last)
        F_lo, F_last = self.arrived_by(A_lo - DAY), self.arrived_by(A_last - DAY)
        limit = prog_l[np.searchsorted(prog_t, A_lo, side="right") - 1]
        # Cells whose largest window is at their last stroke.
        at_last = (A_lo == A_last) | (F_lo == F_last)
        w_last = path.cum_many(hi) - path.cum_many(F_last)
        windows = [w_last[at_last]]
        overs = [w_last[at_last] - limit[at_last]]
        # Cells where head and tail are trains of one rate and one tip mass.
        wh = np.searchsorted(k0, lo, side="right") - 1
        x = A_lo - DAY
        wt = np.minimum(np.searchsorted(t_last, x + 1, side="left"), len(k0) - 1)
        m_head, m_tail = self._slope_pg(lo + 1), self._slope_pg(F_lo)
        both = (~at_last & (kind[wh] == 0) & (A_lo == st.times_at(lo)) & (kind[wt] == 0) & (x >= firsts[wt])
                & (x < t_last[wt]) & (d[wh] == d[wt]) & (p[wh] == p[wt]) & (m_head == m_tail))
        if both.any():
            wh, wt, dd, pp = wh[both], wt[both], d[wh[both]], p[wh[both]]
            num = a[wh] + (lo[both] - k0[wh]) * pp  # the head's numerator at lo
            e = (o[wh] - DAY - o[wt]) * dd + num - a[wt]
            phi_lo = (e + (-num) % dd) // pp
            rmin = minmod_many(hi[both] - lo[both], dd, -num, -pp)
            w_lo = path.cum_many(lo[both] + 1) - path.cum_many(F_lo[both])
            w = w_lo + m_head[both] * (phi_lo - (e + rmin) // pp)
            windows.append(w)
            overs.append(w - limit[both])
        worst_window = max(int(v.max()) for v in windows if len(v)) if any(len(v) for v in windows) else None
        worst_over = max(int(v.max()) for v in overs if len(v)) if any(len(v) for v in overs) else None
        rest = ~at_last & ~both
        for c0, c1 in zip(lo[rest].tolist(), hi[rest].tolist()):
            self.listed += c1 - c0
            for b0 in range(c0, c1, CHUNK):
                b1 = min(c1, b0 + CHUNK)
                T = self.arrival_times(b0, b1)
                window = path.cum_many(np.arange(b0 + 1, b1 + 1, dtype=np.int64)) - path.cum_many(
                    self.arrived_by(T - DAY))
                over = window - prog_l[np.searchsorted(prog_t, T, side="right") - 1]
                worst_window = int(window.max()) if worst_window is None else max(worst_window, int(window.max()))
                worst_over = int(over.max()) if worst_over is None else max(worst_over, int(over.max()))
        return {"pass": bool(worst_over <= 0), "worst_mcg": round(worst_window / 1e6, 6),
                "closest_to_limit_mcg": round(-worst_over / 1e6, 6)}

    def _arrivals_at(self, ks):
        return self._released(self.strokes.times_at(ks))

    def _ptm(self):
        grants = [b["pump_t_ms"] for b in self.r.boluses if b["kind"] == "ptm" and b["granted"]]
        worst_gap = None
        ok = True
        first = 0  # the first grant inside (t - 24 h, t]
        for i, t in enumerate(grants):
            while grants[first] <= t - DAY:
                first += 1
            ptm = self._rx_at(t).ptm
            if ptm is None:
                ok = False
                continue
            if i:
                gap = t - grants[i - 1]
                worst_gap = gap if worst_gap is None else min(worst_gap, gap)
                ok &= gap >= ptm[1] * MIN
            ok &= i + 1 - first <= ptm[2]
        return {"pass": bool(ok), "granted": len(grants), "shortest_gap_min": None if worst_gap is None else worst_gap / MIN}

    def _periodic(self):
        decided = {}
        for b in self.r.boluses:
            if b["kind"] == "periodic":
                decided[b["pump_t_ms"]] = decided.get(b["pump_t_ms"], 0) + 1
        # Each periodic time once per local day: at its local time when the clock first reaches it
        # (not again while a clock set back replays it), or at once when a clock set forward jumps it.
        expected = {}
        hw = None
        for i, (a, b, sh) in enumerate(self.pieces):
            if i:
                for _ in self._jumped(a, self._list_at(a)):
                    expected[a] = expected.get(a, 0) + 1
            hi = min(b, self.end) + sh  # the run's last instant is served too; a jump's, on the old clock too
            lo = a + sh if hw is None else max(a + sh, hw + 1)
            d = lo // DAY
            while d * DAY <= hi:
                in_force = self._list_at(max(d * DAY - sh, a))
                for at, _ in in_force:
                    if lo <= d * DAY + at <= hi:
                        t = d * DAY + at - sh
                        expected[t] = expected.get(t, 0) + 1
                d += 1
            hw = hi if hw is None else max(hw, hi)
        skipped = sorted(t for t, c in expected.items() if decided.get(t, 0) < c)
        doubled = sorted(t for t, c in decided.items() if c > expected.get(t, 0))
        ok = not skipped and not doubled
        return {"pass": ok, "expected": sum(expected.values()), "skipped": len(skipped),
                "doubled_or_unexpected": len(doubled)}

    def _priming(self):
        """Every prime stroke the rule called for no earlier than its ideal time (so at most the prime
        rate). A prime whose strokes did not all fire (a hold that never ended, or the end of the
        run, came first) is unfinished, not a violation: the strokes it made are judged."""
        worst = 0
        unfinished = 0
        n = self.n
        for i, (_tp, k, p) in enumerate(self.primes):
            unfinished += min(k + p, n) - k < p
            called = self.prime_called[i] if i < len(self.prime_called) else 0
            hi = min(k + called, n)
            if hi > k:
                # all of them, unless a later prime took some of their numbers
                early, _ = self._extremes(k, hi, prime_only=True)
                if early is not None:
                    worst = max(worst, early)
        volume = sum(p for _, _, p in self.primes) * self.s
        return {"pass": worst <= 0, "primes": len(self.primes), "volume_ml": volume / 1e6,
                "worst_early_ms": max(worst, 0), "unfinished": unfinished}

    def _stopped(self):
        """No stroke inside a hold (strokes at its first ms came first; a stall's retried stroke
        ends it), and none at all after a runaway but the uncommanded ones."""
        st = self.strokes
        bad = 0
        unc = set(self.r.pump.uncommanded_ms)
        for a, b, _keep in self.held:
            lo, hi = st.count_le(a), st.count_le(b - 1)
            if hi > lo:
                bad += sum(1 for t in st.times(lo, hi).tolist() if t not in unc) if unc else hi - lo
        return {"pass": bad == 0, "strokes_while_stopped": bad, "holds": len(self.r.holds)}

    def _audible(self):
        """Every critical alarm sounds at its raising and at least every critical interval while it
        is active (the wake latency allowed), as long as the cell can sound it; and the pump running
        empty (computed here) always raised the empty-reservoir alarm at that ms."""
        interval = self.sc.critical_repeat_minutes * MIN + self.jitter
        tones = np.array(sorted(t for t, _a, cls in self.r.tones if cls == "critical"), dtype=np.int64)
        dead = self.r.cell_dead_ms if self.r.cell_dead_ms is not None else self.end + 1
        spans = [(int(round(a["raised_s"] * 1000)), int(round(a["cleared_s"] * 1000)) if a["cleared_s"] is not None
                  else self.end) for a in self.r.alarms if a["class"] == "critical"]
        worst = 0
        ok = True
        for a, b in _union(spans):
            b = min(b, dead)
            if a >= b:
                continue
            inside = tones[(tones >= a) & (tones <= b)]
            marks = [a] + inside.tolist() + [b]
            if not len(inside) or inside[0] - a > self.jitter:
                ok = False
            gaps = np.diff(marks[1:]) if len(inside) > 1 else []
            if len(gaps):
                worst = max(worst, int(max(gaps)))
            worst = max(worst, marks[-1] - marks[-2])
        ok &= worst <= interval
        raised = {int(round(a["raised_s"] * 1000)) for a in self.r.alarms if a["kind"] == "empty_reservoir"}
        unannounced = [t for t in self.empty_onsets if not any(t <= r <= t + self.jitter for r in raised)]
        ok &= not unannounced
        return {"pass": bool(ok), "longest_silence_s": worst / 1000, "allowed_s": interval / 1000,
                "critical_tones": len(tones), "empty_unannounced": len(unannounced)}

    def _under_delivery(self):
        """The under_delivery alarm (docs/alarms.md "Under-delivery") against the referee's own
        accounting: missed is the ideal written off (holds, empty spans, what was owed at a hold's
        start or the pump running dry) outside a suspend, end of service, runaway or a prime; asked
        is the ideal over all time but priming, and the day before the start at the starting basal.
        The firmware's window is 23 to 24 h (hour buckets), so the referee judges a band: the alarm
        must be active where the missed over the last 23 h passes 10 % of the asked over the last
        24 h by more than `tol` (every window of 23..24 h passes), and must not where the missed
        over 24 h is below 10 % of the asked over 23 h by more than tol, both once the condition
        has held for the check interval (a wake at least every hour: the hourly self-test, plus
        the wake latency). Not judged within a day of a reset (the reserved strokes it counts as
        made, firmware/persist.py), after a critical_fault or once the cell is dead.
        Cost: linear in the holds and in the schedule changes within a day of them."""
        hour = 3_600_000
        w_short, w_long = 23 * hour, 24 * hour
        lag = hour + self.jitter
        end = self.end
        # A stroke or two of the strongest drug: the firmware counts whole ng per accounting step.
        tol = 2 * self.s * max(c for _k, c in self.conc_segs) * SUB_PER_PG
        holds = self.r.holds
        free = _union([(h["start_ms"], end if h["end_ms"] is None else h["end_ms"]) for h in holds
                       if h["kind"] in ("suspended", "end_of_service", "runaway")] + self.prime_spans)
        skip = [(h["start_ms"], end if h["end_ms"] is None else h["end_ms"] + w_long + lag) for h in holds
                if h["kind"] == "power_off"]
        skip += [(round(a["raised_s"] * 1000), end) for a in self.r.alarms if a["kind"] == "critical_fault"]
        if self.r.cell_dead_ms is not None:
            skip.append((self.r.cell_dead_ms, end))
        spans = _subtract(_union(self.missed_spans), free)
        points = sorted((t, m) for t, m in self.missed_points if m > 0 and not _inside(free, t))
        # Where a window can hold missed drug (and a check interval past it): judged in full there.
        near = _union([(a, b + w_long + lag) for a, b in spans] + [(t, t + w_long + lag) for t, _m in points])
        ud = _union([(round(a["raised_s"] * 1000), end + 1 if a["cleared_s"] is None else round(a["cleared_s"] * 1000))
                     for a in self.r.alarms if a["kind"] == "under_delivery"])
        must, must_not = [], []
        prev = 0
        for a, b in near:
            a, b = max(a, 0), min(b, end + 1)
            if a >= b:
                continue
            must_not.append((prev, a))
            prev = b
            r, n = self._ud_band(a, b, spans, points, w_short, w_long, tol)
            must += r
            must_not += n
        must_not.append((prev, end + 1))
        must = _subtract(_late(_union(must), lag), skip)
        must_not = _subtract(_late(_union(must_not), lag), skip)
        missing = _subtract(must, ud)
        extra = _intersect(must_not, ud)
        line = None
        if missing or extra:
            t = min(missing[0][0] if missing else end + 1, extra[0][0] if extra else end + 1)
            m, q = self._ud_amounts(t, spans, points, w_long)
            amounts = f"missed {m:.0f} ng of asked {q:.0f} ng in the 24 h before"
            what = (f"under_delivery not raised by t={t / 1000:.3f} s: {amounts}" if missing and missing[0][0] == t
                    else f"under_delivery active at t={t / 1000:.3f} s with {amounts}")
            self._violate("under_delivery_alarm", what)
            line = what
        return {"pass": line is None, "must_raise_s": sum(b - a for a, b in must) / 1000,
                "unraised_s": sum(b - a for a, b in missing) / 1000, "wrongly_active_s": sum(b - a for a, b in extra) / 1000}

    def _ud_cum(self, lo, hi, spans, points):
        """The asked and missed mass (sub) from lo as piecewise-linear functions over [lo, hi]:
        sorted breakpoints ts, and per breakpoint (asked, missed, asked rate, missed rate) just after it."""
        free = _clip(_union(self.prime_spans), lo, hi)
        on = _clip(spans, lo, hi)
        cuts = {lo, hi}
        i0, i1 = bisect_right(self.change_ts, lo), bisect_right(self.change_ts, hi)
        cuts.update(self.change_ts[i0:i1])
        for a, b in free + on:
            cuts.update((a, b))
        jumps = {}
        for t, m in points[bisect_right(points, (lo, 1 << 80)):bisect_right(points, (hi, 1 << 80))]:
            jumps[t] = jumps.get(t, 0) + m
        cuts.update(jumps)
        ts = sorted(cuts)
        out = []
        asked = missed = 0
        for i, t in enumerate(ts):
            missed += jumps.get(t, 0)
            rate = self.seed_rate if t < 0 else self._rate_at(t)
            asking = not _inside(free, t)
            missing = asking and _inside(on, t)
            ra, rm = (rate if asking else 0), (rate if missing else 0)
            out.append((asked, missed, ra, rm))
            if i + 1 < len(ts):
                dt = ts[i + 1] - t
                asked += ra * dt
                missed += rm * dt
        return ts, out

    def _ud_band(self, a, b, spans, points, w_short, w_long, tol):
        """Over run time [a, b): the spans where the alarm must be raised, and where it must not."""
        ts, vals = self._ud_cum(a - w_long, b, spans, points)

        def at(t, i=None):  # (asked, missed) at t, on the piece i (the one holding t if None)
            if i is None:
                i = bisect_right(ts, t) - 1
            A, M, ra, rm = vals[i]
            return A + ra * (t - ts[i]), M + rm * (t - ts[i])

        marks = sorted({t + d for t in ts for d in (0, w_short, w_long) if a <= t + d < b} | {a, b})
        must, must_not = [], []
        for p, q in zip(marks, marks[1:]):
            # f is linear on [p, q): evaluate both ends on p's pieces.
            pieces = [bisect_right(ts, p - d) - 1 for d in (0, w_short, w_long)]

            def f(t, sign):
                A0, M0 = at(t, pieces[0])
                A23, M23 = at(t - w_short, pieces[1])
                A24, M24 = at(t - w_long, pieces[2])
                if sign > 0:  # missed over 23 h against asked over 24 h
                    return 10 * (M0 - M23) - (A0 - A24) - 10 * tol
                return (A0 - A23) - 10 * (M0 - M24) - 10 * tol  # asked over 23 h against missed over 24 h

            for sign, out in ((1, must), (-1, must_not)):
                span = _positive(f(p, sign), f(q, sign), p, q)
                if span:
                    out.append(span)
        return must, must_not

    def _ud_amounts(self, t, spans, points, w_long):
        """(missed ng, asked ng) over the 24 h before t, for a violation's line."""
        ts, vals = self._ud_cum(t - w_long, t, spans, points)
        A, M, _ra, _rm = vals[-1]
        return M / DAY, A / DAY

    def _eri_eos(self):
        eri, eos = self.r.battery.get("eri_s"), self.r.battery.get("eos_s")
        ok = True
        if eos is not None:
            ok = eri is not None and 0 <= round((eos - eri) * 1000) <= 90 * DAY
        ok &= eos is None or round(eos * 1000) <= 2557 * DAY
        ok &= eri is None or eos is not None or self.end - round(eri * 1000) < 90 * DAY
        gap = None if eri is None or eos is None else round(eos - eri, 3) / 86400
        return {"pass": bool(ok), "eri_to_eos_days": gap}

    def _runaway(self):
        excess = len(self.r.pump.uncommanded_ms)
        faults = sum(1 for f in self.sc.faults if f.kind == "runaway")
        ok = excess <= faults  # the first uncommanded stroke cuts the power: one stroke at most
        return {"pass": ok, "excess_strokes": excess, "excess_ul": excess * self.s / 1000}

    def faults(self):
        """Per scenario fault: when the firmware alarmed, what it missed, what a released block let through."""
        out = []
        alarms = self.r.alarms
        for f in self.sc.faults:
            end_ms = f.end_ms if f.minutes else (f.t_ms + f.ms if f.kind == "adc_glitch" else None)
            entry = {"kind": f.kind, "start_s": f.t_ms / 1000, "end_s": None if end_ms is None else end_ms / 1000,
                     "alarm_s": None, "missed_mcg": None, "after_release_ul": None}
            # A glitch must raise none: alarm_s stays None. Resets (power_loss, hang, battery_sag,
            # flash_bitflip) raise no alarm of their own; pumpsim campaign judges them.
            want = {"motor_stall": "motor_stall", "magnetic_field": "motor_stall", "occlusion": "occlusion",
                    "runaway": "motor_runaway", "battery_drain": "elective_replacement",
                    "adc_glitch": "elective_replacement"}.get(f.kind)
            spans = [(a, b, m) for a, b, m in self.hold_missed if a >= f.t_ms and (not f.minutes or a <= f.end_ms)]
            until = spans[0][1] if spans and f.minutes else self.end
            hit = [a["raised_s"] for a in alarms if a["kind"] == want and f.t_ms <= a["raised_s"] * 1000 <= until]
            entry["alarm_s"] = hit[0] if hit else None
            if f.kind in ("motor_stall", "magnetic_field", "occlusion") and spans:
                a, b, m = spans[0]
                entry["held_s"] = [a / 1000, b / 1000]
                entry["missed_mcg"] = float(Fraction(m, DAY * 1000))
            if f.kind == "occlusion":
                t1 = f.end_ms
                lo, hi = self.arrived_by([t1 - 1, t1 + 60 * MIN - 1]).tolist()
                entry["after_release_ul"] = (hi - lo) * self.s / 1000
            if f.kind == "runaway":
                entry["excess_ul"] = len(self.r.pump.uncommanded_ms) * self.s / 1000
            out.append(entry)
        return out

    # -- figures ------------------------------------------------------------------------------------

    def figures(self):
        n = self.n
        patient_pg = self.path.cum(n)
        bounds = [k for k, _ in self.conc_segs[1:]] + [n]
        delivered_pg = sum(max(min(b, n) - min(k, n), 0) * c * self.s for (k, c), b in zip(self.conc_segs, bounds))
        lag = self._lag()
        # What the ideal wrote off while a limit hold held delivery (the firmware's limit_held).
        limit_starts = {h["start_ms"] for h in self.r.holds if h["kind"] == "limit"}
        withheld_sub = sum(m for a, _b, m in self.hold_missed if a in limit_starts)
        return {
            "prescribed_mcg": float(Fraction(self.prescribed_sub, DAY * 1000)),
            "patient_mcg": patient_pg / 1e6,
            "delivered_mcg": delivered_pg / 1e6,
            "missed_mcg": float(Fraction(self.missed_sub, DAY * 1000)),
            "withheld_mcg": float(Fraction(withheld_sub, DAY * 1000)),
            "max_lag_nl": lag,
            "final_reservoir_nl": self.final_volume_nl,
        }

    def _lag(self):
        """Largest owed-but-undelivered just before a dosing stroke, in nL of that stroke's drug
        (below one stroke when every stroke is on its ms).

        Where the fired train is the ideal's progression inside one dosing segment, stroke k fires at
        t0 + ceil(need_k / rate), so what is owed at its ms - 1 is tip*SUB - rate + ((-need_k) mod rate):
        its largest value is one maxmod. Other strokes are listed."""
        n = min(self.n, self.strokes_judged)
        if not n or not self.segs:
            return 0.0
        starts = np.array([g[0] for g in self.segs], dtype=np.int64)
        # Per segment: the ideal since its epoch as whole pg + remainder (Python ints made int64-safe).
        acc_pg = np.array([g[1] // SUB_PER_PG + g[3] for g in self.segs], dtype=np.int64)
        acc_rem = np.array([g[1] % SUB_PER_PG for g in self.segs], dtype=np.int64)
        rate = np.array([g[2] for g in self.segs], dtype=np.int64)
        st = self.strokes
        xs = np.asarray(self.path.xs[1:], dtype=np.int64)
        lo, hi = self._cuts(0, n, st.k0, st.k1, self.ideal.starts, self.ideal.ends, -(-xs // self.s), xs // self.s,
                            st.count_le_many(starts), np.asarray(self.path.k_starts, dtype=np.int64) - 1)
        w, v, same, need, beta, den = self._progressions(lo, hi)
        _starts, _ends, ikind, t0, _den, base, rem, _kb, _step = self._ideal_table()
        T_lo = st.times_at(lo)
        g = np.searchsorted(starts, T_lo - 1, side="right") - 1
        tip = self._slope_pg(lo)
        vv = np.maximum(v, 0)
        # The stroke's own segment: the one its ideal piece was planned in (same start, mass and rate).
        own = (same & (v >= 0) & (ikind[vv] == RATE) & (g >= 0) & (tip > 0)
               & (starts[np.maximum(g, 0)] == t0[vv]) & (T_lo - 1 >= t0[vv])
               & (acc_pg[np.maximum(g, 0)] == base[vv]) & (acc_rem[np.maximum(g, 0)] == rem[vv])
               & (rate[np.maximum(g, 0)] == den))
        best = None
        if own.any():
            r = maxmod_many(hi[own] - lo[own], den[own], -need[own], -beta[own])
            tip_sub = tip[own] * SUB_PER_PG
            best = float(((tip_sub - den[own] + r) / tip_sub.astype(float)).max())
        for c0, c1 in zip(lo[~own].tolist(), hi[~own].tolist()):
            self.listed += c1 - c0
            T = st.times(c0, c1)
            cum = self.path.cum_many(np.arange(c0, c1 + 1, dtype=np.int64))
            tip_k = np.diff(cum)
            sel = np.nonzero(~self.ideal.is_prime(c0, c1) & (tip_k > 0))[0]
            seg = np.searchsorted(starts, T[sel] - 1, side="right") - 1
            keep = seg >= 0
            sel, seg = sel[keep], seg[keep]
            if not len(sel):
                continue
            owed_sub = ((acc_pg[seg] - cum[sel]) * SUB_PER_PG + acc_rem[seg] + rate[seg] * (T[sel] - 1 - starts[seg]))
            frac = float((owed_sub / (tip_k[sel] * float(SUB_PER_PG))).max())
            best = frac if best is None else max(best, frac)
        return 0.0 if best is None else round(best * self.s, 6)

    def daily(self):
        """Per pump day (from the start): prescribed mcg (exact ideal) and patient mcg (tip)."""
        days = self.sc.days
        # Integrate the ideal rate over each day, excluding priming and counting it while empty.
        prime_spans = []
        for i, (tp, k, p) in enumerate(self.primes):
            if i < len(self.prime_called) and self.prime_called[i] < p:  # unfinished: priming to the end
                end = self.end
            else:
                end = self.ideal.at(k + p - 1) if p and k + p - 1 < self.K else tp
            prime_spans.append((tp, end))
        ts = np.asarray(self.change_ts, dtype=np.int64)
        points = np.unique(np.concatenate([np.array([0, self.end], dtype=np.int64), ts[(ts > 0) & (ts < self.end)],
                                           np.arange(days, dtype=np.int64) * DAY,
                                           np.array([x for span in prime_spans for x in span], dtype=np.int64)]))
        a, b = points[:-1], points[1:]
        rate = np.asarray(self.rate_after, dtype=np.int64)[np.searchsorted(ts, a, side="right")]
        priming = np.zeros(len(a), dtype=bool)
        for pa, pb in prime_spans:
            priming |= (a >= pa) & (a < pb)
        pres = np.zeros(days, dtype=np.int64)  # at most 24 mL/day x 5000 mcg/mL x DAY: inside int64
        np.add.at(pres, np.minimum(a // DAY, days - 1)[~priming], (rate * (b - a))[~priming])
        pres = pres.tolist()
        # Strokes by the end of each day (the last day takes any at the run's last instant).
        edges = np.arange(1, days + 1, dtype=np.int64) * DAY - 1
        by_day = self.strokes.count_le_many(edges)
        by_day[-1] = self.n
        cum = self.path.cum_many(by_day)
        pat = np.diff(np.concatenate([[0], cum]))
        return [{"day": d, "prescribed_mcg": round(pres[d] / DAY / 1000, 3), "patient_mcg": round(int(pat[d]) / 1e6, 3)}
                for d in range(days)]


def _piece_mass(pieces, a, b):
    """pg of a piecewise concentration over out-volume [a, b)."""
    total = 0
    for i, (x, c) in enumerate(pieces):
        nxt = pieces[i + 1][0] if i + 1 < len(pieces) else b
        lo, hi = max(a, x), min(b, nxt)
        if hi > lo:
            total += (hi - lo) * c
    return total


def _normalise(pieces):
    out = []
    for x, c in sorted(pieces):
        if out and out[-1][0] == x:
            out[-1] = (x, c)
        elif out and out[-1][1] == c:
            continue
        else:
            out.append((x, c))
    return out


def _overwrite(pieces, a, b, c):
    """The piecewise function with [a, b) set to c."""
    def at(x):
        v = pieces[0][1]
        for px, pc in pieces:
            if px <= x:
                v = pc
        return v

    out = [(x, pc) for x, pc in pieces if x < a or x >= b]
    out.append((a, c))
    if not any(x == b for x, _ in out):
        out.append((b, at(b)))
    return _normalise(out)


class _Walk:
    """The guard of Referee._ideal's walk through the run. Every step takes a prime or a hold (each
    once, by index), or advances the stroke index k (a dosing epoch that empties the pump fires at
    least one stroke); k goes back only when a prime renumbers it from the prime's first stroke. So
    (primes and holds taken, k) increases strictly at every step, and there are at most
    (P + H + 1) x (K + 1) steps, K the largest stroke index. A step that does not advance is a bug
    in the referee: it raises rather than spin."""

    def __init__(self, primes, holds, strokes):
        self.bound = (primes + holds + 1) * (strokes + 1)
        self.steps = 0
        self.last = None

    def step(self, taken, k, t):
        key = (taken, k)
        self.steps += 1
        if (self.last is not None and key <= self.last) or self.steps > self.bound:
            raise RuntimeError(f"referee: the ideal's walk does not advance at t = {t} ms, stroke {k}, "
                               f"{taken} primes and holds taken (step {self.steps} of at most {self.bound})")
        self.last = key


def _union(spans):
    out = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _positive(f0, f1, p, q):
    """The integer t in [p, q) where the linear f (f0 at p, f1 at q) is > 0, as (start, end), or None."""
    d = q - p
    if f1 == f0:
        return (p, q) if f0 > 0 else None
    if f1 > f0:  # f0 * d + (f1 - f0) * (t - p) > 0
        lo = p + (-f0 * d) // (f1 - f0) + 1
        lo = max(lo, p)
        return (lo, q) if lo < q else None
    hi = p + cdiv(f0 * d, f0 - f1)  # t - p < f0 * d / (f0 - f1)
    hi = min(hi, q)
    return (p, hi) if hi > p else None


def _inside(spans, t):
    """t in one of the sorted disjoint spans [a, b)."""
    i = bisect_right(spans, (t, 1 << 80)) - 1
    return i >= 0 and spans[i][0] <= t < spans[i][1]


def _clip(spans, lo, hi):
    """The sorted disjoint spans cut to [lo, hi]."""
    i = max(bisect_right(spans, (lo, 1 << 80)) - 1, 0)
    out = []
    for a, b in spans[i:]:
        if a >= hi:
            break
        if b > lo:
            out.append((max(a, lo), min(b, hi)))
    return out


def _late(spans, lag):
    """Each span from lag ms after its start: where a condition has held for lag."""
    return [(a + lag, b) for a, b in spans if a + lag < b]


def _subtract(spans, cut):
    """Sorted disjoint spans minus the union of cut."""
    cut = _union(cut)
    out = []
    for a, b in spans:
        for c, d in _clip(cut, a, b):
            if c > a:
                out.append((a, c))
            a = max(a, d)
            if a >= b:
                break
        if a < b:
            out.append((a, b))
    return out


def _intersect(xs, ys):
    """Sorted disjoint spans xs and ys: where both are."""
    out, j = [], 0
    for a, b in xs:
        while j < len(ys) and ys[j][1] <= a:
            j += 1
        k = j
        while k < len(ys) and ys[k][0] < b:
            lo, hi = max(a, ys[k][0]), min(b, ys[k][1])
            if lo < hi:
                out.append((lo, hi))
            k += 1
    return out


def judge(scenario, result):
    ref = Referee(scenario, result)
    inv = ref.judge()
    return ref, inv
