"""Independent oracle for docs/delivery.md: stroke times and bolus decisions from the scenario alone.

It shares no code with firmware/ or sim/ and reads nothing back from a run: a small reference model
decides every request (PTM lockout and count, the hard limit with its margins, truncation, rates,
priming, empty reservoir), and the delivery rule is replayed stroke by stroke in exact integers
(mass in 1/86_400_000 ng, so a rate of R ng/day accrues R per ms).
"""

DAY = 86_400_000
MIN = 60_000
WIN = DAY + 1000  # limit windows: 24 h plus the 1 s late-wake allowance
SUB = 86_400  # 1 pg in 1/86_400_000 ng


def _ceil(a, b):
    return -(-a // b)


class Rx:
    """The parts of a scenario prescription the oracle uses, as plain data."""

    def __init__(self, rx):
        self.profiles = [(tuple(p.starts_ms), tuple(p.rates_ng_per_day)) for p in rx.profiles]
        self.periodic = [(at, b.amount_ng, b.minutes) for at, b in rx.periodic]
        self.ptm = None if rx.ptm is None else (rx.ptm[0].amount_ng, rx.ptm[0].minutes, rx.ptm[1], rx.ptm[2])
        self.limit = rx.max_daily_ng
        self.max_basal = max(max(r) for _, r in self.profiles)


class Oracle:
    def __init__(self, sc):
        self.sc = sc
        pump = sc.pump
        self.s = pump.stroke_nl
        self.empty_nl = pump.empty_nl
        self.capacity = pump.capacity_nl
        self.path_nl = pump.internal_path_nl + pump.catheter_cm * pump.nl_per_cm
        self.nl_per_cm = pump.nl_per_cm
        self.catheter_cm = pump.catheter_cm
        self.prime_nl_per_day = pump.prime_nl_per_hour * 24
        self.tod0 = sc.time_of_day_ms
        self.wd0 = sc.weekday
        self.end = sc.days * DAY
        self.rx = Rx(sc.rx)
        self.history = [(self.rx, None)]  # (program, in force from t) ; the first for ever before
        self.periodic_now = self.rx.periodic
        self.periodic_next = None
        self.conc = sc.rx.concentration
        self.volume = sc.volume_nl
        self.path = [[self.path_nl, self.conc]]  # tip first
        self.t = 0
        self.owed = 0  # ideal minus delivered, in sub
        self.active = []  # [start, q, r_ms, end, ng]
        self.ledger = []  # (end, ng)
        self.ptm_grants = []
        self.priming = 0  # prime strokes left
        self.prime_t0 = 0
        self.prime_done = 0
        self.trans = None  # (max ng, valid until t)
        self.empty = self.volume - self.empty_nl < self.s
        self.strokes = []
        self.decisions = []  # (t, kind, granted_ng or reason)
        self.tip = []

    # -- the prescription's rate -------------------------------------------------------------

    def _day_profile(self, rx, t):
        d = (t + self.tod0) // DAY
        return d, rx.profiles[(self.wd0 + d) % 7]

    def basal(self, rx, t):
        d, (starts, rates) = self._day_profile(rx, t)
        ms = (t + self.tod0) - d * DAY
        i = max(j for j, s in enumerate(starts) if s <= ms)
        return rates[i]

    def _bolus_rate(self, b, t):
        start, q, r_ms, end, _ = b
        if not start <= t < end:
            return 0
        return q + (1 if t < start + r_ms else 0)

    def rate(self, t):
        if self.priming:
            return self.prime_nl_per_day
        return self.basal(self.rx, t) + sum(self._bolus_rate(b, t) for b in self.active)

    def next_change(self, t):
        """The next time after t at which the rate may change."""
        d, (starts, _) = self._day_profile(self.rx, t)
        cands = [d * DAY - self.tod0 + DAY]
        cands += [d * DAY - self.tod0 + s for s in starts]
        for start, _, r_ms, end, _ in self.active:
            cands += [start + r_ms, end]
        cands += [d * DAY - self.tod0 + at for at, _, _ in self.periodic_now]
        return min([c for c in cands if c > t] + [self.end])

    # -- the path ------------------------------------------------------------------------------

    def tip_pg(self):
        left, pg = self.s, 0
        for v, c in self.path:
            take = min(v, left)
            pg += take * c
            left -= take
            if not left:
                break
        return pg + left * self.conc

    def push_stroke(self):
        pg = self.tip_pg()
        left = self.s
        while left:
            v, c = self.path[0]
            take = min(v, left)
            self.path[0][0] -= take
            left -= take
            if not self.path[0][0] and len(self.path) > 1:
                self.path.pop(0)
        if self.path[-1][1] == self.conc or not self.path[-1][0]:
            self.path[-1][1] = self.conc
            self.path[-1][0] += self.s
        else:
            self.path.append([self.s, self.conc])
        return pg

    def concs(self):
        return [c for v, c in self.path if c] + [self.conc]

    # -- the limit's reference model -----------------------------------------------------------

    def _basal_points(self, progs, a, b):
        """[(t, rate)] of the basal over [a, b) under progs = [(rx, from_t)] (from None: for ever)."""
        pts = []
        d0 = (a + self.tod0) // DAY
        d1 = (b + self.tod0) // DAY
        for i, (rx, t0) in enumerate(progs):
            t1 = progs[i + 1][1] if i + 1 < len(progs) else None
            for d in range(d0, d1 + 1):
                starts, rates = rx.profiles[(self.wd0 + d) % 7]
                for s, r in zip(starts, rates):
                    t = d * DAY - self.tod0 + s
                    pts.append((t, r, i))
            if t0 is not None:
                pts.append((t0, None, i))
        out = []
        for t, r, i in sorted(pts, key=lambda x: (x[0], x[2])):
            rx, t0 = progs[i]
            t1 = progs[i + 1][1] if i + 1 < len(progs) else None
            if (t0 is not None and t < t0) or (t1 is not None and t >= t1):
                continue
            if r is None:
                r = self.basal(rx, t)
            out.append((t, r))
        return out

    def _window_max(self, progs, t_lo, t_hi):
        """Largest basal mass in (t - WIN, t] for t_lo <= t <= t_hi, rounded up to whole ng."""
        pts = self._basal_points(progs, t_lo - WIN - DAY, t_hi + DAY)
        times = [p[0] for p in pts]

        def mass(a, b):  # exact, in ng * ms/day
            total = 0
            for j, (t, r) in enumerate(pts):
                nxt = times[j + 1] if j + 1 < len(pts) else b
                lo, hi = max(a, t), min(b, nxt)
                if hi > lo:
                    total += r * (hi - lo)
            return total

        cands = {t_lo, t_hi}
        for t in times:
            for c in (t, t + WIN):
                if t_lo <= c <= t_hi:
                    cands.add(c)
        return max(_ceil(mass(c - WIN, c), DAY) for c in cands)

    def worst(self, rx):
        uniform = len(set(rx.profiles)) == 1
        return self._window_max([(rx, None)], 2 * DAY, 2 * DAY + (1 if uniform else 7) * DAY)

    def basal_cap(self, t):
        cap = self.worst(self.rx)
        if self.trans and t < self.trans[1]:
            cap = max(cap, self.trans[0])
        return cap

    def ledger_ng(self, t):
        return sum(ng for end, ng in self.ledger if t - end < WIN)

    def margin(self, extra=None):
        cmax = max(self.concs() + ([extra] if extra else []))
        return _ceil(self.s * cmax, 1000)

    def rate_room(self, rx, conc=None):
        cmin = min(self.concs() + ([conc] if conc else []))
        return 24_000 * cmin - rx.max_basal - sum(self._bolus_rate(b, self.t) for b in self.active)

    # -- decisions -------------------------------------------------------------------------------

    def _top(self, ng, minutes):
        q, r = divmod(ng * 1440, minutes)
        return q + (1 if r else 0)

    def grant(self, kind, ng, minutes):
        t = self.t
        if self.priming:
            return self._decide(kind, "priming")
        if self.empty:
            return self._decide(kind, "reservoir_empty")
        if len(self.active) >= 4:
            return self._decide(kind, "bolus_table_full")
        room = self.rx.limit - self.margin() - self.basal_cap(t) - self.ledger_ng(t)
        granted = ng
        if ng > room:
            granted = max(room, 0)
            if granted * 1000 // self.conc < self.s:
                return self._decide(kind, "limit")
        room = self.rate_room(self.rx)
        if room < 0 or self._top(granted, minutes) > room:
            return self._decide(kind, "rate")
        q, r = divmod(granted * 1440, minutes)
        self.active.append([t, q, r * MIN, t + minutes * MIN, granted])
        self.ledger.append((t + minutes * MIN, granted))
        self._decide(kind, granted)
        return granted

    def _decide(self, kind, what):
        self.decisions.append((self.t, kind, what))
        return what

    def ptm(self):
        rx, t = self.rx, self.t
        if rx.ptm is None:
            return self._decide("ptm", "ptm_not_configured")
        ng, minutes, lockout, most = rx.ptm
        if self.ptm_grants and t - self.ptm_grants[-1] < lockout * MIN:
            return self._decide("ptm", "lockout")
        if sum(1 for g in self.ptm_grants if t - g < DAY) >= most:
            return self._decide("ptm", "max_per_day")
        got = self.grant("ptm", ng, minutes)
        if isinstance(got, int):
            self.ptm_grants.append(t)
        return got

    def program(self, new):
        t = self.t
        recent = [(rx, t0) for rx, t0 in self.history[1:] if t0 is not None and t - t0 < WIN]
        changes = [t0 for _, t0 in self.history[1:] if t0 is not None and t - t0 < WIN + DAY * 0]
        if len([c for c in changes if t - c < WIN]) >= 4:
            return "busy"
        if self.rate_room(new) < 0:
            return "rate"
        progs = self.history + [(new, t)]
        # Programs older than what a window can reach still fix the past before the first kept change.
        trans = self._window_max(progs, t, t + WIN)
        cap = max(self.worst(new), trans)
        if new.limit - self.margin() - cap - self.ledger_ng(t) < 0:
            return "limit"
        self.history.append((new, t))
        del recent
        self.trans = (trans, t + WIN)
        self.rx = new
        midnight = ((t + self.tod0) // DAY + 1) * DAY - self.tod0
        self.periodic_next = (midnight, new.periodic)
        return "ok"

    def _steps_fit(self, conc):
        """Every basal step can run at conc: 24 mL/day at most, 0.048 mL/day at least."""
        for _starts, rates in self.rx.profiles:
            for r in rates:
                if r > 24_000 * conc or (r and r * 1000 // conc < 48_000):
                    return False
        return True

    def _fits(self, conc):
        """The prescription's own limit and its boluses at conc."""
        rx, sc = self.rx, self.sc
        if self.worst(rx) + _ceil(self.s * conc, 1000) > rx.limit:
            return False
        boluses = [(ng, m) for _, ng, m in rx.periodic] + ([rx.ptm[:2]] if rx.ptm else [])
        for ng, m in boluses:
            if ng * 1000 > self.capacity * conc or ng * 1000 // conc < self.s or \
                    24_000 * conc - rx.max_basal < self._top(ng, m):
                return False
        del sc
        return True

    def refill(self, volume, conc):
        if conc == self.conc:
            if self.volume + volume > self.capacity:
                return "over_capacity"
            self.volume += volume
        else:
            if len(self.path) >= 6 and self.path[-1][0]:
                return "path_full"
            if not self._steps_fit(conc) or self.rate_room(self.rx, conc) < 0:
                return "concentration_incompatible"
            if self.rx.limit - self.margin(conc) - self.basal_cap(self.t) - self.ledger_ng(self.t) < 0:
                return "limit"
            if not self._fits(conc):
                return "concentration_incompatible"
            self.conc = conc
            self.volume = volume
        if self.empty and self.volume - self.empty_nl >= self.s:
            self.empty = False
            self.owed = 0
        return "ok"

    def prime(self, catheter_cm):
        empty = self.path_nl if not catheter_cm else catheter_cm * self.nl_per_cm
        n = empty // self.s
        if self.priming:
            return "priming"
        if max(0, (self.volume - self.empty_nl) // self.s) < n:
            return "reservoir_empty"
        if empty >= self.path_nl:
            self.path = [[self.path_nl, 0]]
        else:
            left = empty
            while left:
                take = min(self.path[0][0], left)
                self.path[0][0] -= take
                left -= take
                if not self.path[0][0] and len(self.path) > 1:
                    self.path.pop(0)
            self.path.insert(0, [empty, 0])
        self._cancel()
        self.owed = 0
        if n:
            self.priming = n
            self.prime_t0 = self.t
            self.prime_done = 0
        return "ok"

    def _cancel(self):
        t = self.t
        self.active = [[b[0], b[1], b[2], min(b[3], t), b[4]] for b in self.active if b[3] > t]
        self.active = [b for b in self.active if b[3] > b[0] and b[3] > t]

    # -- the rule, stroke by stroke ---------------------------------------------------------------

    def _stroke(self, t):
        self.strokes.append(t)
        self.tip.append(self.push_stroke())
        self.volume -= self.s
        if self.priming:
            self.prime_done += 1
            if self.prime_done == self.priming:
                self.priming = 0
                self.owed = 0
        if self.volume - self.empty_nl < self.s:
            self.empty = True
            self.owed = 0
            self._cancel()

    def _advance(self, t_to):
        """Deliver by the rule up to t_to (strokes at t_to included)."""
        while self.t < t_to:
            t1 = min(self.next_change(self.t), t_to)
            rate = self.rate(self.t)
            if self.empty:
                self.t = t1
            elif self.priming:
                j = self.prime_done + 1
                ts = self.prime_t0 + _ceil(j * self.s * DAY, self.prime_nl_per_day)
                if ts <= t1:
                    self.t = ts
                    self._stroke(ts)
                    if ts == t1:
                        self._at(ts)
                else:
                    self.t = t1
                    self._at(t1)
                continue
            elif rate:
                need = self.tip_pg() * SUB - self.owed
                ts = self.t + max(_ceil(need, rate), 0)
                if ts <= t1:
                    self.owed += rate * (ts - self.t) - self.tip_pg() * SUB
                    self.t = ts
                    self._stroke(ts)
                    if ts == t1:
                        self._at(ts)
                    continue
                self.owed += rate * (t1 - self.t)
                self.t = t1
            else:
                self.t = t1
            self._at(self.t)

    def _at(self, t):
        """Changes at an instant: bolus ends, the midnight list swap, periodic starts."""
        self.active = [b for b in self.active if b[3] > t]
        if self.periodic_next and t >= self.periodic_next[0]:
            self.periodic_now = self.periodic_next[1]
            self.periodic_next = None
        if (t + self.tod0) % DAY in [at for at, _, _ in self.periodic_now] and t not in self._periodic_done:
            self._periodic_done.add(t)
            for at, ng, m in self.periodic_now:
                if (t + self.tod0) % DAY == at:
                    self.grant("periodic", ng, m)

    def run(self):
        self._periodic_done = set()
        self._at(0)
        for ev in self.sc.events:
            self._advance(ev.t_ms)
            self.t = ev.t_ms
            self._at(self.t)
            if ev.action == "ptm":
                self.ptm()
            elif ev.action == "bolus":
                self.grant("clinician", ev.amount_ng, ev.minutes)
            elif ev.action == "cancel_bolus":
                self._cancel()
            elif ev.action == "refill":
                self.decisions.append((self.t, "refill", self.refill(ev.volume_nl, ev.concentration)))
            elif ev.action == "program":
                verdict = self.program(Rx(ev.rx)) if ev.rx.concentration == self.conc else "drug_mismatch"
                self.decisions.append((self.t, "program", verdict))
            elif ev.action == "prime":
                self.decisions.append((self.t, "prime", self.prime(ev.catheter_cm)))
        self._advance(self.end)
        return self


def run(scenario):
    return Oracle(scenario).run()
