"""An exact, independent oracle for docs/delivery.md: stroke times, tip masses and decisions.

Built from the scenario's input data alone (sim/scenario.Scenario). It imports nothing from
firmware/ or sim/, calls none of their functions and reads nothing back from a run.

- A small reference model decides every request: PTM lockout and rolling-24 h count; the hard
  limit with its two margins (WINDOW_MS windows, the margin volume of the strongest drug), the basal
  bound across program changes, the bolus ledger, truncation; the 24 mL/day rate room; the bolus
  table; priming and the empty reservoir. It also decides programs, refills and primes.
- The ideal (basal steps, two-phase boluses) is integrated exactly per constant-rate segment, in
  u = 1/86 400 000 ng, so that R ng/day accrues R u per ms. A stroke's tip mass in pg is
  86 400 u. Strokes are placed one by one in closed form within a segment, never per ms.
- The path is plug flow: a FIFO of [nL, mcg/mL] pieces, tip first (0 mcg/mL: unprimed).

Times are ms since the scenario's start; the pump clock is t + time_of_day_ms at the start.
Outputs: `strokes` (ms), `tip` (pg each stroke pushed out of the tip) and `decisions`:
(t_ms, kind, granted ng or reason) for "ptm", "clinician" and "periodic", and
(t_ms, action, "ok" or reason) for "refill", "program", "prime" and "cancel".

Where docs/delivery.md is silent, the oracle takes these rules (the firmware's intent, restated):
- At one instant: the strokes due at it first (and what they cause: empty reservoir, end of the
  prime), then bolus ends, the midnight swap of the periodic list and periodic starts, then the
  inputs in file order.
- Checks, in order. Bolus: priming, reservoir_empty, bolus_table_full, limit (truncate; deny under
  one stroke), rate on the dose granted. PTM: ptm_not_configured, lockout, max_per_day, then as a
  bolus. Program: another drug, busy, rate, limit. Refill with a new drug: path_full, basal steps
  or rate room at the new drug (concentration_incompatible), limit, bolus sizes and rates
  (concentration_incompatible). Prime: priming, reservoir_empty, path_full.
- Rate room counts the active boluses' rates in force now (q + 1 or q), not their top rates.
- Ledger: an entry counts while now - end < WIN; a cancelled bolus keeps its mass and its end.
- PTM: lockout while now - last grant < lockout; count the grants with now - grant < 24 h.
- Programs before the oldest one remembered, and before the start, are that one.
- The path merges adjacent pieces of one drug; a new drug needs a piece unless the inlet piece
  is already that drug; at most 6 pieces, the unprimed piece of a prime included.
- A prime of less than one stroke still empties its piece, cancels boluses and writes off what
  is owed, and the prescription restarts at once.
"""

from bisect import bisect_right

DAY = 86_400_000
HOUR = 3_600_000
MIN = 60_000
WIN = DAY + 1000  # WINDOW_MS: a limit window is 24 h plus the 1000 ms late-wake allowance
U_PER_PG = 86_400  # 1 pg in u (1/86 400 000 ng)
MAX_ACTIVE = 4  # boluses running at once
MAX_REMEMBERED = 4  # programs replaced within WIN that the limit still counts
MAX_PIECES = 6  # drugs the path FIFO can hold at once
MAX_ML_DAY_NG = 24_000  # 24 mL/day at C mcg/mL is 24 000 * C ng/day
MIN_NL_DAY = 48_000  # a non-zero basal step runs at 0.048 mL/day at least

DOSE, PRIME, EMPTY = "dose", "prime", "empty"


def _ceil(a, b):
    return -(-a // b)


def bolus_phases(ng, minutes):
    """A ng over minutes: (q, r) with ng * 1440 = q * minutes + r; q + 1 ng/day for r min, then q."""
    return divmod(ng * 1440, minutes)


def top_rate(ng, minutes):
    q, r = bolus_phases(ng, minutes)
    return q + 1 if r else q


class Program:
    """A prescription as plain data: 7 weekday profiles (Monday first), lists and limits."""

    def __init__(self, rx):
        self.profiles = tuple((tuple(p.starts_ms), tuple(p.rates_ng_per_day)) for p in rx.profiles)
        self.periodic = tuple((at, b.amount_ng, b.minutes) for at, b in rx.periodic)
        self.ptm = None if rx.ptm is None else (rx.ptm[0].amount_ng, rx.ptm[0].minutes, rx.ptm[1], rx.ptm[2])
        self.limit = rx.max_daily_ng
        self.concentration = rx.concentration
        self.max_basal = max(max(rates) for _, rates in self.profiles)


class Bolus:
    __slots__ = ("start", "switch", "end", "q", "ng")

    def __init__(self, t, ng, minutes):
        q, r = bolus_phases(ng, minutes)
        self.start, self.switch, self.end, self.q, self.ng = t, t + r * MIN, t + minutes * MIN, q, ng

    def rate(self, t):
        return self.q + 1 if t < self.switch else self.q


class Path:
    """Plug flow: [nL, mcg/mL] pieces, tip first, adjacent equal drugs merged, volumes > 0."""

    def __init__(self, volume_nl, concentration):
        self.pieces = [[volume_nl, concentration]]

    def tip_pg(self, s):
        """What the next s nL out of the tip hold, in pg."""
        first = self.pieces[0]
        if first[0] >= s:
            return s * first[1]
        pg = 0
        for v, c in self.pieces:
            take = v if v < s else s
            pg += take * c
            s -= take
            if not s:
                break
        return pg

    def push(self, s, concentration):
        """A stroke: s nL of the reservoir's drug in at the inlet, the oldest s nL out at the tip."""
        pieces = self.pieces
        left = s
        gone = 0  # the strongest drug whose last part this stroke pushed out
        while left:
            first = pieces[0]
            if first[0] > left:
                first[0] -= left
                break
            left -= first[0]
            if len(pieces) > 1:
                gone = max(gone, first[1])
            pieces.pop(0)
        if pieces and pieces[-1][1] == concentration:
            pieces[-1][0] += s
        else:
            pieces.append([s, concentration])
        return gone

    def drugs(self):
        return [c for _, c in self.pieces if c]

    def takes(self, concentration):
        """Whether a new drug can enter: it joins the inlet piece, or there is room for one more."""
        return self.pieces[-1][1] == concentration or len(self.pieces) < MAX_PIECES

    def emptied_tip(self, volume_nl):
        """The pieces after the last volume_nl at the tip is replaced by an unprimed piece."""
        pieces = [list(p) for p in self.pieces]
        left = volume_nl
        while left:
            take = min(pieces[0][0], left)
            pieces[0][0] -= take
            left -= take
            if not pieces[0][0]:
                pieces.pop(0)
        if pieces and pieces[0][1] == 0:
            pieces[0][0] += volume_nl
        else:
            pieces.insert(0, [volume_nl, 0])
        return pieces


class Oracle:
    def __init__(self, sc):
        pump = sc.pump
        self.sc = sc
        self.s = pump.stroke_nl
        self.capacity = pump.capacity_nl
        self.empty_nl = pump.empty_nl
        self.path_nl = pump.internal_path_nl + pump.catheter_cm * pump.nl_per_cm
        self.nl_per_cm = pump.nl_per_cm
        self.prime_nl_per_hour = pump.prime_nl_per_hour
        # The limit's margin as volume (docs/delivery.md): a stroke of rounding, a runaway's one
        # stroke, and a blocked line's store below the occlusion threshold plus the stroke over it.
        self.margin_nl = self.s + self.s + pump.max_stored_nl + self.s
        self.tod0 = sc.time_of_day_ms
        self.wd0 = sc.weekday
        self.end = sc.days * DAY
        self.prog = Program(sc.rx)
        self.periodic_today = self.prog.periodic  # a program's list applies from the next midnight
        self.conc = sc.rx.concentration  # drug in the reservoir
        self.volume = sc.volume_nl
        self.path = Path(self.path_nl, self.conc)
        self.gone_c = 0  # the strongest drug that left the tip ...
        self.gone_t = -2 * WIN  # ... and when a drug last left it
        self.mode = EMPTY if self.volume - self.empty_nl < self.s else DOSE
        self.t = 0
        self.done_at = None  # the last instant whose schedule changes were applied
        self.owed = 0  # u: ideal since the prescription (re)started minus the tip mass delivered
        self.active = []  # Bolus
        self.ledger = []  # (end, ng) of every granted bolus, until WIN after its end
        self.ptm_grants = []  # times
        self.history = []  # (program, replaced at): programs replaced within WIN
        self.trans = (0, None)  # basal bound of windows spanning the last change, and its time
        self.prime_t0 = self.prime_k = self.prime_n = 0
        self._worst = {}
        self.strokes = []
        self.tip = []
        self.decisions = []

    # -- the pump clock and the basal ------------------------------------------------------------

    def _day(self, t):
        """(pump day index, ms of day, t of that day's midnight)."""
        d, ms = divmod(t + self.tod0, DAY)
        return d, ms, t - ms

    def basal(self, prog, t):
        d, ms, _ = self._day(t)
        starts, rates = prog.profiles[(self.wd0 + d) % 7]
        return rates[bisect_right(starts, ms) - 1]

    def _pieces(self, prog, lo, hi):
        """[(a, b, ng/day)] of prog's basal over [lo, hi)."""
        out = []
        d, _, day0 = self._day(lo)
        while day0 < hi:
            starts, rates = prog.profiles[(self.wd0 + d) % 7]
            for j, r in enumerate(rates):
                a = max(lo, day0 + starts[j])
                b = min(hi, day0 + (starts[j + 1] if j + 1 < len(starts) else DAY))
                if b > a:
                    out.append((a, b, r))
            d += 1
            day0 += DAY
        return out

    # -- the limit's reference model ---------------------------------------------------------------

    def _window_max(self, progs, t_lo, t_hi):
        """Largest basal mass (whole ng, rounded up) in a window (e - WIN, e] for t_lo <= e <= t_hi.

        progs: [(program, in force from t)], oldest first; the first's from is None (for ever before).
        The window mass is piecewise linear in e: its maximum is at an end or where e or e - WIN
        crosses a step, so those ends are enough.
        """
        pieces = []
        for i, (prog, t0) in enumerate(progs):
            lo = t_lo - WIN if t0 is None else max(t_lo - WIN, t0)
            hi = t_hi if i + 1 == len(progs) else min(t_hi, progs[i + 1][1])
            if hi > lo:
                pieces += self._pieces(prog, lo, hi)
        starts = [a for a, _, _ in pieces]
        cum = [0]
        for a, b, r in pieces:
            cum.append(cum[-1] + r * (b - a))

        def upto(x):  # u from t_lo - WIN to x
            i = bisect_right(starts, x) - 1
            if i < 0:
                return 0
            a, b, r = pieces[i]
            return cum[i] + r * (min(x, b) - a)

        ends = {t_lo, t_hi}
        for a, b, _ in pieces:
            ends.update((a, b, a + WIN, b + WIN))
        best = max(upto(e) - upto(e - WIN) for e in ends if t_lo <= e <= t_hi)
        return _ceil(best, DAY)

    def worst(self, prog):
        """A program's own worst WIN window, over a whole week of window ends (rounded up)."""
        key = tuple(prog.profiles)
        if key not in self._worst:
            self._worst[key] = self._window_max([(prog, None)], 0, 7 * DAY)
        return self._worst[key]

    def basal_cap(self):
        cap = self.worst(self.prog)
        ng, since = self.trans
        if since is not None and self.t - since < WIN and ng > cap:
            cap = ng
        return cap

    def ledger_ng(self):
        self.ledger = [(end, ng) for end, ng in self.ledger if self.t - end < WIN]
        return sum(ng for _, ng in self.ledger)

    def margin(self, new_drug=None):
        """The margin's volume of the strongest drug still to leave the tip, or that left it within
        WIN of the latest departure, whole ng rounded up."""
        drugs = self.path.drugs() + [new_drug or self.conc]
        if self.t - self.gone_t < WIN:
            drugs.append(self.gone_c)
        return _ceil(self.margin_nl * max(drugs), 1000)

    def rate_room(self, prog, new_drug=None):
        """ng/day of bolus rate still allowed under 24 mL/day at the weakest drug to be pushed."""
        drugs = self.path.drugs() + [new_drug or self.conc]
        return MAX_ML_DAY_NG * min(drugs) - prog.max_basal - sum(b.rate(self.t) for b in self.active)

    # -- bolus decisions ---------------------------------------------------------------------------

    def _decide(self, kind, what):
        self.decisions.append((self.t, kind, what))
        return what

    def bolus(self, kind, ng, minutes):
        if self.mode == PRIME:
            return self._decide(kind, "priming")
        if self.mode == EMPTY:
            return self._decide(kind, "reservoir_empty")
        if len(self.active) >= MAX_ACTIVE:
            return self._decide(kind, "bolus_table_full")
        room = self.prog.limit - self.margin() - self.basal_cap() - self.ledger_ng()
        granted = ng
        if ng > room:
            granted = max(room, 0)  # whole ng
            if granted * 1000 < self.s * self.conc:  # less than one stroke of the reservoir's drug
                return self._decide(kind, "limit")
        room = self.rate_room(self.prog)
        if room < 0 or top_rate(granted, minutes) > room:
            return self._decide(kind, "rate")
        self.active.append(Bolus(self.t, granted, minutes))
        self.ledger.append((self.t + minutes * MIN, granted))
        return self._decide(kind, granted)

    def ptm(self):
        if self.prog.ptm is None:
            return self._decide("ptm", "ptm_not_configured")
        ng, minutes, lockout, most = self.prog.ptm
        if self.ptm_grants and self.t - self.ptm_grants[-1] < lockout * MIN:
            return self._decide("ptm", "lockout")
        if sum(1 for g in self.ptm_grants if self.t - g < DAY) >= most:
            return self._decide("ptm", "max_per_day")
        got = self.bolus("ptm", ng, minutes)
        if isinstance(got, int):
            self.ptm_grants.append(self.t)
        return got

    def cancel(self):
        had = any(b.end > self.t for b in self.active)
        self.active = []  # the ledger keeps their full mass
        return "ok" if had else "no_active_bolus"

    # -- programs, refills, primes -----------------------------------------------------------------

    def program(self, new):
        if new.concentration != self.conc:
            return "drug_mismatch"  # the firmware raises: the program names another drug
        t = self.t
        recent = [(p, at) for p, at in self.history if t - at < WIN]
        if len(recent) >= MAX_REMEMBERED:
            return "busy"
        if self.rate_room(new) < 0:
            return "rate"
        past = recent + [(self.prog, t)]  # each program with the time it was replaced
        progs = [(p, None if i == 0 else past[i - 1][1]) for i, (p, _) in enumerate(past)] + [(new, t)]
        trans = self._window_max(progs, t, t + WIN)
        cap = max(self.worst(new), trans)
        if new.limit - self.margin() - cap - self.ledger_ng() < 0:
            return "limit"
        self.history = past
        self.trans = (trans, t)
        self.prog = new
        return "ok"

    def _steps_run_at(self, c):
        """Every basal step of the program in force runs at c: 24 mL/day at most, 0.048 at least."""
        return all(r <= MAX_ML_DAY_NG * c and not (r and r * 1000 < MIN_NL_DAY * c)
                   for _, rates in self.prog.profiles for r in rates)

    def _boluses_run_at(self, c):
        """Its periodic and PTM boluses at c: within the reservoir, one stroke at least, 24 mL/day."""
        prog = self.prog
        boluses = [(ng, m) for _, ng, m in prog.periodic] + ([prog.ptm[:2]] if prog.ptm else [])
        return all(ng * 1000 <= self.capacity * c and ng * 1000 >= self.s * c
                   and top_rate(ng, m) <= MAX_ML_DAY_NG * c - prog.max_basal for ng, m in boluses)

    def refill(self, volume, c):
        if c == self.conc:
            if self.volume + volume > self.capacity:
                return "over_capacity"
            self.volume += volume
        else:
            if not self.path.takes(c):
                return "path_full"
            if not self._steps_run_at(c) or self.rate_room(self.prog, c) < 0:
                return "concentration_incompatible"
            if self.prog.limit - self.margin(c) - self.basal_cap() - self.ledger_ng() < 0:
                return "limit"
            if not self._boluses_run_at(c):
                return "concentration_incompatible"
            self.conc = c  # the old drug was withdrawn; the path keeps what it holds
            self.volume = volume
        if self.mode == EMPTY and self.volume - self.empty_nl >= self.s:
            self.mode = DOSE  # the prescription restarts now, owing nothing
            self.owed = 0
        return "ok"

    def prime(self, catheter_cm):
        piece = self.path_nl if not catheter_cm else catheter_cm * self.nl_per_cm
        n = piece // self.s
        if self.mode == PRIME:
            return "priming"
        if (self.volume - self.empty_nl) // self.s < n:
            return "reservoir_empty"
        pieces = self.path.emptied_tip(piece)
        if len(pieces) > MAX_PIECES:
            return "path_full"
        self.path.pieces = pieces
        self.active = []  # cancelled; the ledger keeps them
        self.owed = 0
        if n:
            self.mode = PRIME
            self.prime_t0, self.prime_k, self.prime_n = self.t, 0, n
        return "ok"

    # -- the delivery rule -------------------------------------------------------------------------

    def _next_change(self):
        """The next instant after t at which the rate or the schedule may change."""
        t = self.t
        d, ms, day0 = self._day(t)
        starts = self.prog.profiles[(self.wd0 + d) % 7][0]
        i = bisect_right(starts, ms)
        nxt = day0 + (starts[i] if i < len(starts) else DAY)
        for at, _, _ in self.periodic_today:
            if ms < at and day0 + at < nxt:
                nxt = day0 + at
        for b in self.active:
            for x in (b.switch, b.end):
                if t < x < nxt:
                    nxt = x
        return nxt

    def _rate(self):
        return self.basal(self.prog, self.t) + sum(b.rate(self.t) for b in self.active)

    def _stroke(self, t):
        self.strokes.append(t)
        self.tip.append(self.path.tip_pg(self.s))
        gone = self.path.push(self.s, self.conc)
        if gone:  # its strokes stay in windows for WIN: so does its margin (docs/delivery.md)
            if t - self.gone_t >= WIN or gone > self.gone_c:
                self.gone_c = gone
            self.gone_t = t
        self.volume -= self.s
        if self.mode == PRIME:
            self.prime_k += 1
            if self.prime_k == self.prime_n:
                self.mode = DOSE  # primed: the prescription starts now, owing nothing
                self.owed = 0
        if self.volume - self.empty_nl < self.s:
            self.mode = EMPTY  # stopped: what is owed is written off; boluses are cancelled
            self.owed = 0
            self.active = []

    def _deliver_until(self, t_to):
        """Strokes due at or before t_to under the rate in force since t (constant up to t_to)."""
        s = self.s
        rate = None
        while True:
            if self.mode == PRIME:
                ts = self.prime_t0 + _ceil((self.prime_k + 1) * s * HOUR, self.prime_nl_per_hour)
                if ts > t_to:
                    break
                self.t = ts
                self._stroke(ts)
                rate = None
            elif self.mode == DOSE:
                if rate is None:
                    rate = self._rate()
                if not rate:
                    break
                m = self.path.tip_pg(s) * U_PER_PG
                ts = self.t + max(0, _ceil(m - self.owed, rate))
                if ts > t_to:
                    break
                self.owed += rate * (ts - self.t) - m
                self.t = ts
                self._stroke(ts)
                if self.mode != DOSE:
                    rate = None
            else:
                break
        if self.mode == DOSE:
            self.owed += (rate if rate is not None else self._rate()) * (t_to - self.t)
        self.t = t_to

    def _instant(self, t):
        """Schedule changes at t, once: bolus ends, the midnight list swap, periodic starts."""
        if self.done_at == t:
            return
        self.done_at = t
        self.active = [b for b in self.active if b.end > t]
        _, ms, _ = self._day(t)
        if ms == 0:
            self.periodic_today = self.prog.periodic
        for at, ng, minutes in self.periodic_today:
            if at == ms:
                self.bolus("periodic", ng, minutes)

    def advance(self, t_to):
        """Everything up to and including the instant t_to (before any input at t_to)."""
        while True:
            t1 = min(self._next_change(), t_to) if self.done_at == self.t else self.t
            self._deliver_until(t1)
            self._instant(t1)
            if t1 >= t_to:
                return

    def run(self):
        for ev in self.sc.events:
            self.advance(ev.t_ms)
            a = ev.action
            if a == "ptm":
                self.ptm()
            elif a == "bolus":
                self.bolus("clinician", ev.amount_ng, ev.minutes)
            elif a == "cancel_bolus":
                self._decide("cancel", self.cancel())
            elif a == "refill":
                self._decide("refill", self.refill(ev.volume_nl, ev.concentration))
            elif a == "program":
                self._decide("program", self.program(Program(ev.rx)))
            elif a == "prime":
                self._decide("prime", self.prime(ev.catheter_cm))
        self.advance(self.end)
        return self

    # -- views for tests -------------------------------------------------------------------------

    def bolus_decisions(self):
        return [d for d in self.decisions if d[1] in ("ptm", "clinician", "periodic")]


def run(scenario):
    return Oracle(scenario).run()
