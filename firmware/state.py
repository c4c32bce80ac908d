# The pump's whole state as small ints, and back (issue 14, "What is persisted").
#
# pack(loop, values) writes everything a PumpLoop and the objects it owns hold into a preallocated
# list: a layout version, the length, then the fields below in a fixed order. It allocates nothing
# (it runs inside a journal append, at compaction). restore(loop, values, n) validates all of it
# into temporaries first (ValueError "state.<field>: ..." on the first problem, with the fresh loop
# untouched), then overwrites a freshly built loop and serves once, planning its next wake as
# PumpLoop.__init__ does (the dates are restored as they were, not recalculated: see the table).
#
# Times: the pump clock (day, ms of day) and the service clock are stored as they are. Ticks mean
# nothing across a reset: a tick is stored as ms relative to the controller's last wake (ctl._tick,
# the snapshot instant), and restore maps that instant to the new clock's now. Motor stroke counts
# are the hardware's: stored as how far the controller and the watch lag the loop's count.
#
# Field by field (P: persisted, D: derived or cache, recomputed on restore, S: scratch, H: hardware
# or wiring, kept from the fresh loop):
#   PumpLoop   P _last (as a lag), the dates (low_reservoir_min, empty_min, eri_days, eos_days: as of
#              their last recalculation, not now); D _week* (refilled at the next _project()), _next
#              (service()), _strokes (the motor's count), _started (= ctl.started);
#              S _qr; H _clock, _motor, _button, _programmer, _emit, ready;
#              not kept: wakes, refused (diagnostics of this boot)
#   Controller P pump (PumpParams), rx (Prescription, drug name excepted: kept from the fresh config),
#              rx_periodic (its periodic list, or "same as rx"), conc (= rx.concentration), held,
#              weekday0, day, ms, rate, due, priming_left, _priming, _prime_nl, _to_change, _done_day,
#              _done_ms, _trans_ng/day/ms, _hist (compactly, see _pack_hist), _gone_conc/day/ms,
#              _withhold, _withholding, missed, delivered, withheld (Totals), _seen (as a lag);
#              D train, _spare, _planned, _fired, _m_ng, _m_sub, _m_milli, _cap, _deadline (plan()),
#              _tick (now), started (a counter the loop only compares); S _lost_ng, _writeoff,
#              _kind, _ask_ng, _minutes, _slot, _granted_ng, _qr, _end; H _clock, _motor, _emit
#   MissedWindow P asked[], missed[]; D i, pos (the pump clock's hour and ms into it), asked_ng,
#              missed_ng (the sums)
#   Reservoir  P volume_nl; H pump, _alarms
#   Path       P n, vol[:n], conc[:n], gone; D path_nl (pump), _reservoir (= ctl.conc), free segments
#   Boluses    P active slots (kind, base, extra, hi_left while extra, end_left), PTM grants of the
#              last day (newest first, as ages: older ones never count again), ledger entries with
#              mass (day, ms, ng); D rate_sum, n_active, free slots, _led_top; S _qr
#   Alarms     P active, fresh, silenced, critical_repeat_ms, _next_critical (while a critical alarm
#              is active) and _next_non (while any is), tones; S tone_s; H _emit, _clock, _buzzer
#   Gauge      P params (BatteryParams), level, service_day/ms, _mc/_uc/_nc, _marks, eri_*, eos_*,
#              proj_eri_day, proj_eos_day (projections as of their making); D _q_ua.._pct_mc
#              (params), _win_mc/_win_days (the marks), mv (read at every check); S _qr; H _adc
#   MotorWatch P bits, stall, stalls, stall_alarms, _stall_day/ms, _retry_tick (while stalled),
#              _retry_ms, _alarm_due, _missed_big/small, occluded, _poll_tick (while occluded),
#              pressed_nl, pressure, _pressure_tick (while pressure), by_pressure,
#              runaway (the power is cut again on restore), _seen (as a lag);
#              S _n; H _clock, _motor, _ctl, _alarms, _emit, _handler

from firmware.alarms import (
    ALARM_ELECTIVE_REPLACEMENT,
    ALARM_EMPTY_RESERVOIR,
    ALARM_END_OF_SERVICE,
    ALARM_MOTOR_RUNAWAY,
    ALARM_OCCLUSION,
    ALARM_SUSPENDED,
    CRITICAL_ALARMS,
    NON_CRITICAL_ALARMS,
    NON_CRITICAL_REPEAT_MS,
)
from firmware.battery import EOS, ERI, READING_SPACING_MS, SERVICE_DAYS, VOLTAGE_READINGS, BatteryParams, Gauge
from firmware.boluses import MAX_ACTIVE, since_ms
from firmware.controller import (
    HOLD_EMPTY,
    HOLD_EOS,
    HOLD_OCCLUSION,
    HOLD_RUNAWAY,
    HOLD_STALL,
    HOLD_SUSPENDED,
    MissedWindow,
)
from firmware.limits import WINDOW_MS
from firmware.path import MAX_SEGMENTS
from firmware.prescription import (
    MAX_BOLUS_NG,
    MAX_PERIODIC,
    MAX_STEPS,
    Bolus,
    Prescription,
    Profile,
    PumpParams,
)
from firmware.units import MS_PER_DAY, NL_PER_ML, max_rate_ng_per_day
from hal.train import COUNT_MASK
from micropython import const

VERSION = const(1)

_HOURS = const(24)  # MissedWindow buckets
_PTM_SLOTS = const(24)  # Boluses' ring of PTM grants
_LEDGER_SLOTS = const(64)
_MAX_HISTORY = const(4)  # programs in Controller._hist
_RING = const(8)  # Gauge._marks
_MAX_RATE = const(120_000_000)  # 24 mL/day at 5000 mcg/mL, ng/day: no rate or bolus phase exceeds it
_BIG = const(0x1FFFFFFF)  # 2**29 - 1: a sane bound for counters and lifetime totals
_HALF = const(0x20000000)  # ticks_diff's range is -2**29 .. 2**29 - 1; ticks_add takes |delta| < 2**29

# Worst-case ints per part (asserted against the layout by tests/core/test_state.py):
_FIXED_INTS = const(179)  # header 2, settings 17, controller 33, window 48, path 2, boluses 20, the
# PTM and ledger counts 2, alarms 6, gauge 22, watch 20, loop 5, the gauge's voltage confirmation 4
_RX_INTS = const(220)  # concentration, limit, PTM 4, periodic 1 + 8 x 3, 7 distinct 13-step profiles
_RXP_INTS = const(25)  # rx_periodic: its own periodic list
# The program history (<= 4 programs), each as (time, rate) runs of its basal within the last limit
# window: a run at each program's start in the window plus every step start; a program touches at
# most 3 days, and the 4 touch at most 6 day-profiles in all (they follow one another).
_HIST_RUNS = const(82)  # 4 + 6 x 13
_HIST_INTS = const(173)  # count, 4 x (end, runs), 2 x 82
_LINK_INTS = const(42)  # the link (firmware/link.py): 2 counters, lockout 1, failures 1 + 5, keys 1 + 32
MAX_INTS = const(867)  # + path 2 x 6, PTM grants 24, ledger 3 x 64, the link
_ALL_ALARMS = CRITICAL_ALARMS | NON_CRITICAL_ALARMS  # every alarm bit


# -- pack ------------------------------------------------------------------------------------------


class _Writer:
    # The cursor lives here, so the pack functions keep small frames (MicroPython puts a frame of
    # more than about 11 words on the heap at every call).
    def __init__(self):
        self.v = None
        self.i = 0
        self.at = 0  # a count's slot, filled in once known
        self.k = 0
        self.lo = 0  # history: the start of the current program's runs, relative ms
        self.end = 0
        self.wd = 0
        self.d = 0
        self.runs = 0
        self.prof = None

    def put(self, x):
        self.v[self.i] = x  # pyright: ignore[reportOptionalSubscript] (v is set by pack())
        self.i += 1

    def put_bool(self, x):
        self.v[self.i] = 1 if x else 0  # pyright: ignore[reportOptionalSubscript]
        self.i += 1

    def reserve(self):
        self.at = self.i
        self.k = 0
        self.put(0)

    def fill(self):
        self.v[self.at] = self.k  # pyright: ignore[reportOptionalSubscript]


_w = _Writer()


def pack(loop, values):
    """Writes the whole state of loop into values (a list of at least MAX_INTS); returns n."""
    if len(values) < MAX_INTS:
        raise ValueError("state: values must hold MAX_INTS")
    w = _w
    w.v = values
    w.i = 0
    w.put(VERSION)
    w.put(0)  # n, at the end
    _pack_settings(w, loop)
    _pack_rx(w, loop.ctl.rx)
    _pack_rx_periodic(w, loop.ctl)
    _pack_ctl(w, loop.ctl)
    _pack_hist(w, loop.ctl)
    _pack_window(w, loop.ctl.window)
    _pack_path(w, loop.ctl.path)
    _pack_boluses(w, loop.ctl.boluses)
    _pack_ptm(w, loop.ctl)
    _pack_ledger(w, loop.ctl.boluses)
    _pack_alarms(w, loop.alarms, loop.ctl._tick, loop._clock)
    _pack_gauge(w, loop.gauge)
    _pack_watch(w, loop)
    w.put(_rel(loop._clock, loop.ctl._tick, loop._last))
    w.put(loop.low_reservoir_min)
    w.put(loop.empty_min)
    w.put(loop.eri_days)
    w.put(loop.eos_days)
    _pack_confirm(w, loop.gauge)
    _pack_link(w, loop)
    values[1] = w.i
    w.v = None
    return values[1]


def _rel(clock, ref, tick):
    # tick as ms after ref; -2**29 itself would not go back through ticks_add
    d = clock.ticks_diff(tick, ref)
    return d if d > -_HALF else -_HALF + 1


def pack_rx(rx, values, at):
    """rx in _pack_rx's layout (what parse_rx reads) into values[at:], allocation-free (the link's
    PRESCRIPTION reply); returns the index after its last int (at + at most _RX_INTS)."""
    w = _w  # pack()'s writer: neither runs inside the other
    w.v = values
    w.i = at
    _pack_rx(w, rx)
    w.v = None
    return w.i


def _pack_settings(w, loop):
    p = loop.ctl.pump
    w.put(p.capacity_nl)
    w.put(p.stroke_nl)
    w.put(p.low_nl)
    w.put(p.empty_nl)
    w.put(p.internal_path_nl)
    w.put(p.catheter_cm)
    w.put(p.nl_per_cm)
    w.put(p.prime_nl_per_hour)
    w.put(p.max_stored_nl)
    p = loop.gauge.params
    w.put(p.capacity_mah)
    w.put(p.quiescent_ua)
    w.put(p.uc_per_stroke)
    w.put(p.uc_per_tone_s)
    w.put(p.uc_per_command)
    w.put(p.eri_mv)
    w.put(p.eos_mv)
    w.put(loop.alarms.critical_repeat_ms // 60_000)


def _pack_rx(w, rx):
    w.put(rx.concentration)
    w.put(rx.max_daily_ng)
    if rx.ptm is None:
        w.put(0)
        w.put(0)
        w.put(0)
        w.put(0)
    else:
        w.put(rx.ptm[0].amount_ng)
        w.put(rx.ptm[0].minutes)
        w.put(rx.ptm[1])
        w.put(rx.ptm[2])
    _pack_periodic(w, rx.periodic)
    for d in range(7):
        _pack_profile(w, rx.profiles, d)


def _pack_periodic(w, periodic):
    w.put(len(periodic))
    for i in range(len(periodic)):
        w.put(periodic[i][0])
        w.put(periodic[i][1].amount_ng)
        w.put(periodic[i][1].minutes)


def _pack_profile(w, profiles, d):
    # A weekday equal to an earlier one is stored as -(1 + that weekday).
    e = _first_same(profiles, d)
    if e < d:
        w.put(-1 - e)
    else:
        _pack_steps(w, profiles[d])


def _first_same(profiles, d):
    for e in range(d):
        if _same(profiles[e], profiles[d]):
            return e
    return d


def _pack_steps(w, p):
    w.put(len(p.starts_ms))
    for j in range(len(p.starts_ms)):
        w.put(p.starts_ms[j])
        w.put(p.rates_ng_per_day[j])


def _same(a, b):
    if a is b:
        return True
    if len(a.starts_ms) != len(b.starts_ms):
        return False
    for j in range(len(a.starts_ms)):
        if a.starts_ms[j] != b.starts_ms[j] or a.rates_ng_per_day[j] != b.rates_ng_per_day[j]:
            return False
    return True


def _pack_rx_periodic(w, ctl):
    if ctl.rx_periodic is ctl.rx:
        w.put(-1)
    else:
        _pack_periodic(w, ctl.rx_periodic.periodic)


def _pack_hist(w, ctl):
    # Programs replaced within a limit window: only their basal over the last window can still
    # share one with what comes (Controller._program), so each is stored as the (time, rate) runs
    # of its time in force within [now - WINDOW_MS, its end), in ms from the current pump midnight.
    w.reserve()
    w.wd = ctl.weekday()
    w.lo = ctl.ms - WINDOW_MS
    for h in range(len(ctl._hist)):
        if since_ms(ctl._hist[h][1], ctl._hist[h][2], ctl.day, ctl.ms) < WINDOW_MS:
            w.v[w.at] += 1
            _pack_program(w, ctl, h)


def _pack_program(w, ctl, h):
    w.end = _day_ms(ctl._hist[h][1] - ctl.day, ctl._hist[h][2])
    w.put(w.end)
    w.runs = w.i
    w.put(0)
    w.prof = ctl._hist[h][0]
    w.d = w.lo // MS_PER_DAY
    _pack_first_run(w, w.prof[(w.wd + w.d) % 7])
    while w.d * MS_PER_DAY < w.end:
        _pack_day(w, w.prof[(w.wd + w.d) % 7], w.d * MS_PER_DAY)
        w.d += 1
    w.v[w.runs] = (w.i - w.runs - 1) // 2
    w.lo = w.end
    w.prof = None


def _pack_first_run(w, p):
    w.put(w.lo)
    w.put(p.rates_ng_per_day[p.step_at(w.lo - w.d * MS_PER_DAY)])


def _pack_day(w, p, midnight):
    for j in range(len(p.starts_ms)):
        if w.lo < midnight + p.starts_ms[j] < w.end:
            w.put(midnight + p.starts_ms[j])
            w.put(p.rates_ng_per_day[j])


def _day_ms(days, ms):
    return days * MS_PER_DAY + ms


def _pack_ctl(w, ctl):
    w.put(ctl.weekday0)
    w.put(ctl.day)
    w.put(ctl.ms)
    w.put(ctl.held)
    w.put(ctl.rate)
    w.put(ctl.due[0])
    w.put(ctl.due[1])
    w.put_bool(ctl._priming)
    w.put(ctl.priming_left)
    w.put(ctl._prime_nl)
    w.put(ctl._to_change)
    w.put(ctl._planned)
    w.put(ctl._fired)
    w.put(ctl._done_day)
    w.put(ctl._done_ms)
    w.put(ctl._trans_ng)
    w.put(ctl._trans_day)
    w.put(ctl._trans_ms)
    w.put(ctl._gone_conc)
    w.put(ctl._gone_day)
    w.put(ctl._gone_ms)
    w.put(ctl._withhold[0])
    w.put(ctl._withhold[1])
    w.put(ctl._withholding)
    w.put(ctl.missed.big)
    w.put(ctl.missed.small)
    w.put(ctl.delivered.big)
    w.put(ctl.delivered.small)
    w.put(ctl.withheld.big)
    w.put(ctl.withheld.small)
    w.put(ctl.reservoir.volume_nl)


def _pack_window(w, window):
    for i in range(_HOURS):
        w.put(window.asked[i])
    for i in range(_HOURS):
        w.put(window.missed[i])


def _pack_path(w, path):
    w.put(path.n)
    for i in range(path.n):
        w.put(path.vol[i])
        w.put(path.conc[i])
    w.put(path.gone)


def _pack_boluses(w, b):
    for i in range(MAX_ACTIVE):
        if b.kind[i] < 0:
            w.put(-1)
            w.put(0)
            w.put(0)
            w.put(0)
            w.put(0)
        else:
            w.put(b.kind[i])
            w.put(b.base[i])
            w.put(b.extra[i])
            w.put(b.hi_left[i] if b.extra[i] else 0)
            w.put(b.end_left[i])


def _pack_ptm(w, ctl):
    # The grants of the last day, newest first, as their age: an older one never counts again
    # (the lockout is at most a day).
    b = ctl.boluses
    w.reserve()
    w.lo = b._ptm_n if b._ptm_n < _PTM_SLOTS else _PTM_SLOTS
    for back in range(w.lo):
        w.end = since_ms(b._ptm_day[(b._ptm_n - 1 - back) % _PTM_SLOTS], b._ptm_ms[(b._ptm_n - 1 - back) % _PTM_SLOTS],
                         ctl.day, ctl.ms)
        if w.end >= MS_PER_DAY:
            break
        w.put(w.end)
        w.k += 1
    w.fill()


def _pack_ledger(w, b):
    w.reserve()
    for j in range(b._led_top):
        if b._led_ng[j]:
            w.put(b._led_day[j])
            w.put(b._led_ms[j])
            w.put(b._led_ng[j])
            w.k += 1
    w.fill()


def _pack_alarms(w, a, ref, clock):
    w.put(a.active)
    w.put(a.fresh)
    w.put(a.silenced)
    w.put(_rel(clock, ref, a._next_critical) if a.active & CRITICAL_ALARMS else 0)
    w.put(_rel(clock, ref, a._next_non) if a.active else 0)
    w.put(a.tones)


def _pack_gauge(w, g):
    w.put(g.level)
    w.put(g.service_day)
    w.put(g.service_ms)
    w.put(g._mc)
    w.put(g._uc)
    w.put(g._nc)
    for i in range(_RING):
        w.put(g._marks[i])
    w.put(g.eri_day)
    w.put(g.eri_ms)
    w.put(g.eri_cause)
    w.put(g.eos_day)
    w.put(g.eos_ms)
    w.put(g.eos_cause)
    w.put(g.proj_eri_day)
    w.put(g.proj_eos_day)


def _signed_lag(ref, seen):
    lag = (ref - seen) & COUNT_MASK
    return lag - COUNT_MASK - 1 if lag > COUNT_MASK >> 1 else lag


def _pack_confirm(w, g):
    # The voltage rule's confirmation (firmware/battery.py): ms at rest and since the last counted
    # reading (both saturate), and the low readings counted towards ERI and EOS.
    w.put(g._rest_ms)
    w.put(g._gap_ms)
    w.put(g._n_eri)
    w.put(g._n_eos)


def _pack_link(w, loop):
    # The link's replay counters, its lockout (ms left), its MAC failures (ticks after the snapshot
    # instant, oldest first; 0 where none) and its keys (provisioned, then 32 16-bit halves). A loop
    # without a link port writes "no counter, no lockout, no keys". (Small frames: GUIDE.md §2.)
    link = loop.link
    if link is None:
        w.put(-1)
        w.put(-1)
        w.k = 0
        while w.k < _LINK_INTS - 2:
            w.put(0)
            w.k += 1
        return
    w.put(link.last[1])
    w.put(link.last[2])
    w.put(link.lock_left_ms(loop.ctl._tick))
    w.put(link.fail_n)
    w.k = 0
    while w.k < 5:
        _pack_failure(w, loop, link)
        w.k += 1
    w.put_bool(link.provisioned)
    link.key_ints(w.v, w.i)
    w.i += 32


def _pack_failure(w, loop, link):
    if w.k < link.fail_n:
        w.put(_rel(loop._clock, loop.ctl._tick, link.fail_t[(link.fail_i - link.fail_n + w.k) % 5]))
    else:
        w.put(0)


def _pack_watch(w, loop):
    m = loop.watch
    w.put(m.bits)
    w.put(m.stall)
    w.put(m.stalls)
    w.put(m.stall_alarms)
    w.put(m._stall_day)
    w.put(m._stall_ms)
    w.put(_rel(loop._clock, loop.ctl._tick, m._retry_tick) if m.stall == 1 else 0)
    w.put(m._retry_ms)
    w.put_bool(m._alarm_due)
    w.put(m._missed_big)
    w.put(m._missed_small)
    w.put_bool(m.occluded)
    w.put(_rel(loop._clock, loop.ctl._tick, m._poll_tick) if m.occluded else 0)
    w.put(m.pressed_nl)
    w.put_bool(m.pressure)
    w.put(_rel(loop._clock, loop.ctl._tick, m._pressure_tick) if m.pressure else 0)
    w.put_bool(m.by_pressure)
    w.put_bool(m.runaway)
    # Signed: between the controller's sync and the loop's battery step (a snapshot taken as the
    # journal compacts in PumpLoop.service) the loop's count lags the controller's.
    w.put(_signed_lag(loop._strokes, loop.ctl._seen))
    w.put(_signed_lag(loop._strokes, m._seen))


# -- restore ---------------------------------------------------------------------------------------

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Reader:
    def __init__(self, values, n):
        self.v = values
        self.n = n
        self.i = 2
        self.refused = False  # get() refused the int at i
        self.missing = False  # get() found no int left

    def get(self, key, lo, hi):
        if self.i >= self.n:
            self.missing = True
            raise ValueError("state.%s: missing (the state ends at %d ints)" % (key, self.n))
        x = self.v[self.i]
        if isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= hi:
            self.refused = True
            raise ValueError("state.%s: %s is not in %d..%d" % (key, repr(x)[:20], lo, hi))
        self.i += 1
        return x


def _fail(key, why):
    raise ValueError("state.%s: %s" % (key, why))


def _build(key, fn):
    # The firmware's own checks name the field: say it came from the stored state.
    try:
        return fn()
    except ValueError as e:
        raise ValueError("state.%s: %s" % (key, e)) from None


class _Staged:
    """What _parse read and checked, before _apply assigns any of it (its fields are set as read)."""


def restore(loop, values, n):
    """Overwrites a freshly built loop (same hardware, any valid config) with the state pack()
    wrote, then plans its next wake. ValueError naming the field if anything is out of range or
    inconsistent; then nothing of loop has changed."""
    s = _parse(loop, values, n)
    _apply(loop, s)


def _parse(loop, values, n):
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= len(values) or n > MAX_INTS:
        raise ValueError("state.length: %s is not in 2..%d" % (repr(n)[:20], MAX_INTS))
    if values[0] != VERSION:
        _fail("version", "%s, this firmware reads %d" % (repr(values[0])[:20], VERSION))
    if values[1] != n:
        _fail("length", "says %s, given %d" % (repr(values[1])[:20], n))
    r = _Reader(values, n)
    s = _Staged()
    s.values = values  # pyright: ignore[reportAttributeAccessIssue] (the link's keys are read from it)
    _parse_settings(r, s, loop)
    s.rx = _parse_rx(r, s)  # pyright: ignore[reportAttributeAccessIssue]
    s.rxp = _parse_rx_periodic(r, s)  # pyright: ignore[reportAttributeAccessIssue]
    _parse_ctl(r, s)
    s.hist = _parse_hist(r, s)  # pyright: ignore[reportAttributeAccessIssue]
    _parse_window(r, s)
    _parse_path(r, s)
    _parse_boluses(r, s)
    _parse_ptm(r, s)
    _parse_ledger(r, s)
    _parse_alarms(r, s)
    _parse_gauge(r, s, loop)
    _parse_watch(r, s)
    s.last = r.get("loop.last", -_HALF + 1, 0)  # pyright: ignore[reportAttributeAccessIssue]
    s.dates = (r.get("loop.low_reservoir_min", -1, _BIG), r.get("loop.empty_min", -1, _BIG),  # pyright: ignore[reportAttributeAccessIssue]
               r.get("loop.eri_days", -1, _BIG), r.get("loop.eos_days", 0, _BIG))
    _parse_confirm(r, s)
    _parse_link(r, s)
    if r.i != n:
        _fail("length", "%d ints left over" % (n - r.i))
    _check_consistency(s)
    return s


def _parse_settings(r, s, loop):
    a = [r.get("pump[%d]" % i, 0, _BIG) for i in range(9)]
    s.pump = _build("pump", lambda: PumpParams(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]))
    b = [r.get("battery[%d]" % i, 0, _BIG) for i in range(7)]
    s.battery = _build("battery", lambda: BatteryParams(b[0], b[1], b[2], b[3], b[4], b[5], b[6]))
    s.repeat_ms = r.get("alarms.critical_repeat_minutes", 1, 60) * 60_000
    s.drug = loop.ctl.rx.drug


def _parse_periodic(r, key, count):
    out = []
    for i in range(count):
        at = r.get("%s[%d].at_ms" % (key, i), 0, MS_PER_DAY - 1)
        amount = r.get("%s[%d].amount_ng" % (key, i), 1, MAX_BOLUS_NG)
        minutes = r.get("%s[%d].minutes" % (key, i), 1, 1440)
        out.append((at, _build(key, lambda: Bolus(amount, minutes, "periodic_bolus[%d]" % i))))
    return tuple(out)


def _parse_rx(r, s):
    conc = r.get("rx.concentration", 10, 5000)
    max_daily = r.get("rx.max_daily_ng", 1, MAX_BOLUS_NG)
    amount = r.get("rx.ptm.amount_ng", 0, MAX_BOLUS_NG)
    minutes = r.get("rx.ptm.minutes", 0, 1440)
    lockout = r.get("rx.ptm.lockout_minutes", 0, 1440)
    per_day = r.get("rx.ptm.max_per_day", 0, 24)
    ptm = None
    if amount:
        ptm = (_build("rx.ptm", lambda: Bolus(amount, minutes, "ptm")), lockout, per_day)
    elif minutes or lockout or per_day:
        _fail("rx.ptm", "settings without a dose")
    periodic = _parse_periodic(r, "rx.periodic", r.get("rx.periodic", 0, MAX_PERIODIC))
    profiles = []
    for d in range(7):
        k = r.get("rx.profiles[%d]" % d, -d, MAX_STEPS)
        if k < 0:
            profiles.append(profiles[-1 - k])
        elif not k:
            _fail("rx.profiles[%d]" % d, "no steps")
        else:
            starts = []
            rates = []
            for j in range(k):
                starts.append(r.get("rx.profiles[%d][%d].start_ms" % (d, j), 0, MS_PER_DAY - 1))
                rates.append(r.get("rx.profiles[%d][%d].ng_per_day" % (d, j), 0, MAX_BOLUS_NG))
            profiles.append(_build("rx.profiles[%d]" % d, lambda: Profile(starts, rates, "basal." + _DAYS[d])))
    rx = _build("rx", lambda: Prescription(conc, profiles, periodic, ptm, max_daily, s.drug))
    if s.pump is not None:  # None: a host reading a pump's own (pumpctl), the pump's checks are the pump's
        _build("rx", lambda: rx.check_pump(s.pump))
    return rx


def _parse_rx_periodic(r, s):
    count = r.get("rx_periodic", -1, MAX_PERIODIC)
    if count < 0:
        return None
    periodic = _parse_periodic(r, "rx_periodic", count)
    rx = s.rx
    # Only its periodic list is used (today's, until the pump midnight).
    return _build("rx_periodic", lambda: Prescription(rx.concentration, rx.profiles, periodic, None, rx.max_daily_ng))


def _parse_ctl(r, s):
    pump = s.pump
    s.weekday0 = r.get("ctl.weekday0", 0, 6)
    s.day = r.get("ctl.day", 0, _BIG)
    s.ms = r.get("ctl.ms", 0, MS_PER_DAY - 1)
    s.held = r.get("ctl.held", 0, 127)
    s.rate = r.get("ctl.rate", 0, _MAX_RATE)
    s.due0 = r.get("ctl.due_ng", -_MAX_RATE, _MAX_RATE)
    s.due1 = r.get("ctl.due_sub", 0, MS_PER_DAY - 1)
    s.priming = r.get("ctl.priming", 0, 1)
    s.priming_left = r.get("ctl.priming_left", -_BIG, pump.path_nl // pump.stroke_nl)
    s.prime_nl = r.get("ctl.prime_nl", 0, pump.path_nl)
    s.to_change = r.get("ctl.to_change_ms", 0, MS_PER_DAY)
    s.planned = r.get("ctl.planned", -1, _BIG)
    s.fired = r.get("ctl.fired", 0, _BIG)
    s.done_day = r.get("ctl.done_day", -1, s.day + 4)  # ahead of the clock after it was set back
    s.done_ms = r.get("ctl.done_ms", -1, MS_PER_DAY - 1)
    s.trans_ng = r.get("ctl.trans_ng", 0, _BIG)
    s.trans_day = r.get("ctl.trans_day", -2, s.day)
    s.trans_ms = r.get("ctl.trans_ms", 0, MS_PER_DAY - 1)
    s.gone_conc = r.get("ctl.gone_conc", 0, 5000)
    s.gone_day = r.get("ctl.gone_day", -2, s.day)
    s.gone_ms = r.get("ctl.gone_ms", 0, MS_PER_DAY - 1)
    s.withhold0 = r.get("ctl.withhold_ng", -_MAX_RATE, _BIG)
    s.withhold1 = r.get("ctl.withhold_sub", 0, MS_PER_DAY - 1)
    s.withholding = r.get("ctl.withholding_ng", 0, _BIG)
    s.totals = [r.get("ctl.%s.%s" % (t, part), 0, _BIG if part == "big" else NL_PER_ML - 1)
                for t in ("missed", "delivered", "withheld") for part in ("big", "small")]
    s.volume_nl = r.get("ctl.reservoir.volume_nl", 0, pump.capacity_nl)


def _parse_hist(r, s):
    count = r.get("ctl.hist", 0, _MAX_HISTORY)
    lo = s.ms - WINDOW_MS
    wd = (s.weekday0 + s.day) % 7
    hist = []
    for h in range(count):
        key = "ctl.hist[%d]" % h
        # Two programs at one instant: the first replaced was in force for no time, but still counts.
        end = r.get(key + ".end_ms", lo if h else lo + 1, s.ms)
        runs = r.get(key + ".runs", 1, _HIST_RUNS if end > lo else 1)
        times = [r.get(key + "[0].at_ms", lo, lo)]
        rates = [r.get(key + "[0].ng_per_day", 0, MAX_BOLUS_NG)]
        for j in range(1, runs):
            times.append(r.get("%s[%d].at_ms" % (key, j), times[-1] + 1, end - 1))
            rates.append(r.get("%s[%d].ng_per_day" % (key, j), 0, MAX_BOLUS_NG))
        hist.append((_build(key, lambda: _history_profiles(times, rates, wd)), s.day + end // MS_PER_DAY,
                     end % MS_PER_DAY))
        lo = end
    return hist


def _history_profiles(times, rates, wd):
    # Profiles that give the stored runs on the days they cover (at most 3 of the 7 weekdays);
    # the program is never looked at outside them (Controller._program, firmware/limits.py).
    profiles = [None] * 7
    d = times[0] // MS_PER_DAY
    j = 0
    while d * MS_PER_DAY <= times[-1]:
        starts = [0]
        day_rates = [rates[0]]
        while j < len(times) and times[j] < (d + 1) * MS_PER_DAY:
            if times[j] <= d * MS_PER_DAY:
                day_rates[0] = rates[j]
            else:
                starts.append(times[j] - d * MS_PER_DAY)
                day_rates.append(rates[j])
            j += 1
        if j and times[j - 1] < d * MS_PER_DAY:
            day_rates[0] = rates[j - 1]
        profiles[(wd + d) % 7] = Profile(starts, day_rates, "history")  # pyright: ignore[reportCallIssue, reportArgumentType]
        d += 1
    idle = Profile([0], [0], "history")
    for i in range(7):
        if profiles[i] is None:
            profiles[i] = idle  # pyright: ignore[reportCallIssue, reportArgumentType]
    return tuple(profiles)


def _parse_window(r, s):
    w = MissedWindow(s.ms, 0)
    for i in range(_HOURS):
        w.asked[i] = r.get("ctl.window.asked[%d]" % i, 0, _BIG)
    for i in range(_HOURS):
        w.missed[i] = r.get("ctl.window.missed[%d]" % i, 0, _BIG)
    w.asked_ng = 0
    w.missed_ng = 0
    for i in range(_HOURS):
        w.asked_ng += w.asked[i]
        w.missed_ng += w.missed[i]
    if w.asked_ng > _BIG or w.missed_ng > _BIG:
        _fail("ctl.window", "sums beyond small ints")
    s.window = w


def _parse_path(r, s):
    from firmware.path import Path

    path_nl = s.pump.path_nl
    p = Path(path_nl, s.rx.concentration)
    p.n = r.get("ctl.path.n", 1, MAX_SEGMENTS)
    total = 0
    for i in range(p.n):
        p.vol[i] = r.get("ctl.path.vol[%d]" % i, 0, path_nl)
        p.conc[i] = r.get("ctl.path.conc[%d]" % i, 0, 5000)
        total += p.vol[i]
    if total != path_nl:
        _fail("ctl.path.vol", "segments hold %d nL, the path %d nL" % (total, path_nl))
    p.gone = r.get("ctl.path.gone", 0, 5000)
    s.path = p


def _parse_boluses(r, s):
    from firmware.boluses import Boluses

    b = Boluses()
    for i in range(MAX_ACTIVE):
        key = "ctl.boluses[%d]" % i
        b.kind[i] = r.get(key + ".kind", -1, 2)
        free = b.kind[i] < 0
        b.base[i] = r.get(key + ".base", 0, 0 if free else _MAX_RATE)
        b.extra[i] = r.get(key + ".extra", 0, 0 if free else 1)
        b.end_left[i] = 0
        b.hi_left[i] = r.get(key + ".hi_left", 0, 0 if free or not b.extra[i] else 1440 * 60_000)
        b.end_left[i] = r.get(key + ".end_left", b.hi_left[i] if not free else 0, 0 if free else 1440 * 60_000)
        if not free:
            b.n_active += 1
            b.rate_sum += b.base[i] + b.extra[i]
    if b.rate_sum > _MAX_RATE:
        _fail("ctl.boluses", "rates add up to more than 24 mL/day")
    s.boluses = b


def _parse_ptm(r, s):
    b = s.boluses
    k = r.get("ctl.ptm", 0, _PTM_SLOTS)
    age = 0
    for back in range(k):
        age = r.get("ctl.ptm[%d].age_ms" % back, age, MS_PER_DAY - 1)
        t = s.ms - age
        b._ptm_day[k - 1 - back] = s.day + t // MS_PER_DAY
        b._ptm_ms[k - 1 - back] = t % MS_PER_DAY
    b._ptm_n = k


def _parse_ledger(r, s):
    b = s.boluses
    k = r.get("ctl.ledger", 0, _LEDGER_SLOTS)
    for j in range(k):
        b._led_day[j] = r.get("ctl.ledger[%d].day" % j, 0, s.day + 2)
        b._led_ms[j] = r.get("ctl.ledger[%d].ms" % j, 0, MS_PER_DAY - 1)
        b._led_ng[j] = r.get("ctl.ledger[%d].ng" % j, 1, _BIG)
    b._led_top = k


def _parse_alarms(r, s):
    s.active = r.get("alarms.active", 0, _ALL_ALARMS)
    s.fresh = r.get("alarms.fresh", 0, _ALL_ALARMS)
    s.silenced = r.get("alarms.silenced", 0, _ALL_ALARMS)
    if s.fresh & ~s.active or s.silenced & ~s.active or s.silenced & CRITICAL_ALARMS:
        _fail("alarms.fresh", "fresh or silenced alarms that are not active non-critical ones")
    crit = s.active & CRITICAL_ALARMS
    s.next_critical = r.get("alarms.next_critical_ms", -_HALF + 1 if crit else 0, s.repeat_ms if crit else 0)
    s.next_non = r.get("alarms.next_non_critical_ms", -_HALF + 1 if s.active else 0,
                       NON_CRITICAL_REPEAT_MS if s.active else 0)
    s.tones = r.get("alarms.tones", 0, _BIG)


def _parse_gauge(r, s, loop):
    g = Gauge(loop.gauge._adc, s.battery)
    g.level = r.get("gauge.level", 0, EOS)
    g.service_day = r.get("gauge.service_day", 0, _BIG)
    g.service_ms = r.get("gauge.service_ms", 0, MS_PER_DAY - 1)
    g._mc = r.get("gauge.mc", 0, _BIG)
    g._uc = r.get("gauge.uc", 0, 999)
    g._nc = r.get("gauge.nc", 0, 999)
    for i in range(_RING):
        g._marks[i] = r.get("gauge.marks[%d]" % i, 0, g._mc)
    reached = g.level >= ERI
    g.eri_day = r.get("gauge.eri_day", 0 if reached else -1, g.service_day if reached else -1)
    g.eri_ms = r.get("gauge.eri_ms", 0, MS_PER_DAY - 1 if reached else 0)
    g.eri_cause = r.get("gauge.eri_cause", 1 if reached else 0, 4 if reached else 0)
    reached = g.level == EOS
    g.eos_day = r.get("gauge.eos_day", g.eri_day if reached else -1, g.service_day if reached else -1)
    g.eos_ms = r.get("gauge.eos_ms", 0, MS_PER_DAY - 1 if reached else 0)
    g.eos_cause = r.get("gauge.eos_cause", 1 if reached else 0, 4 if reached else 0)
    g.proj_eri_day = r.get("gauge.proj_eri_day", -1, _BIG)
    g.proj_eos_day = r.get("gauge.proj_eos_day", 0, _BIG)
    # The projection's window, as Gauge._new_day set it at the last new day.
    day = g.service_day
    if day >= 7:
        g._win_mc = g._marks[day % _RING] - g._marks[(day - 7) % _RING]
        g._win_days = 7
    else:
        g._win_mc = g._marks[day % _RING] if day else 0
        g._win_days = day
    if g._win_mc < 0:
        _fail("gauge.marks", "the charge counted went down")
    if day > SERVICE_DAYS + 7 * 365:
        _fail("gauge.service_day", "beyond any service")
    s.gauge = g


def _parse_confirm(r, s):
    g = s.gauge
    g._rest_ms = r.get("gauge.rest_ms", -3_600_000, READING_SPACING_MS)  # < 0: a tone still sounding
    g._gap_ms = r.get("gauge.gap_ms", 0, READING_SPACING_MS)
    g._n_eri = r.get("gauge.readings_eri", 0, 2 * VOLTAGE_READINGS)  # ERI at 3, then on to EOS
    g._n_eos = r.get("gauge.readings_eos", 0, VOLTAGE_READINGS)


def _parse_link(r, s):
    s.link_last = (r.get("link.patient_counter", -1, 0x3FFFFFFE), r.get("link.clinician_counter", -1, 0x3FFFFFFE))
    s.link_lock = r.get("link.lock_left_ms", 0, 600_000)
    s.link_fail_n = r.get("link.failures", 0, 5)
    s.link_fails = [r.get("link.failures[%d].ms" % k, -_HALF + 1 if k < s.link_fail_n else 0, 0) for k in range(5)]
    s.link_keyed = r.get("link.provisioned", 0, 1)
    s.link_keys_at = r.i
    for k in range(32):
        r.get("link.keys[%d]" % k, 0, 0xFFFF if s.link_keyed else 0)


def _apply_link(loop, s, now):
    link = loop.link
    if link is None:
        return
    clock = loop._clock
    link.last[1], link.last[2] = s.link_last
    link.locked = s.link_lock > 0
    link.lock_t = clock.ticks_add(now, s.link_lock - 600_000)
    link.fail_n = s.link_fail_n
    link.fail_i = s.link_fail_n % 5
    for k in range(5):
        link.fail_t[k] = clock.ticks_add(now, s.link_fails[k])
    if s.link_keyed:
        link.set_key_ints(s.values, s.link_keys_at)


def parse_rx(values, start, n, pump, drug):
    """A prescription in _pack_rx's layout from values[start:n] (the link's PROGRAM), validated
    as restore() validates a stored one: (rx, the index after its last int: n unless ints are left
    over) or (None, the index of the int at fault; n when ints are missing). pump None: the checks
    against a pump's parameters are left out (a host decoding a PRESCRIPTION reply)."""
    r = _Reader(values, n)
    r.i = start
    s = _Staged()
    s.drug = drug  # pyright: ignore[reportAttributeAccessIssue]
    s.pump = pump  # pyright: ignore[reportAttributeAccessIssue]
    try:
        rx = _parse_rx(r, s)
    except ValueError as e:
        if r.refused or r.missing:  # get() stops at the int it refused, or at n when ints are missing
            return None, r.i
        # the prescription's own checks, on a whole part: the first int of the part they name
        why = str(e)
        for key, at in (("max_daily", 1), ("ptm", 2), ("periodic", 6), ("basal", 7)):
            if key in why:
                return None, start + at
        return None, start
    return rx, r.i


def _parse_watch(r, s):
    s.bits = r.get("watch.bits", 0, 7)
    s.stall = r.get("watch.stall", 0, 2)
    s.stalls = r.get("watch.stalls", 1 if s.stall else 0, _BIG)
    s.stall_alarms = r.get("watch.stall_alarms", 0, s.stalls)
    s.stall_day = r.get("watch.stall_day", 0, s.day)
    s.stall_ms = r.get("watch.stall_ms", 0, MS_PER_DAY - 1)
    stalled = s.stall == 1
    s.retry = r.get("watch.retry_ms_left", -_HALF + 1 if stalled else 0, 240_000 if stalled else 0)
    s.retry_ms = r.get("watch.retry_ms", 15_000 if s.stall else 0, 240_000)
    s.alarm_due = r.get("watch.alarm_due", 0, 1)
    s.missed_big = r.get("watch.missed_big", 0, s.totals[0])
    s.missed_small = r.get("watch.missed_small", 0, NL_PER_ML - 1)
    s.occluded = r.get("watch.occluded", 0, 1)
    s.poll = r.get("watch.poll_ms_left", -_HALF + 1 if s.occluded else 0, 60_000 if s.occluded else 0)
    s.pressed_nl = r.get("watch.pressed_nl", 0, _BIG)
    s.pressure = r.get("watch.pressure", 0, 0 if s.occluded else 1)
    s.pressure_ms = r.get("watch.pressure_ms_ago", -_HALF + 1 if s.pressure else 0, 0)
    s.by_pressure = r.get("watch.by_pressure", 0, s.occluded)
    s.runaway = r.get("watch.runaway", 0, 1)
    s.ctl_lag = r.get("ctl.strokes_lag", -65_535, 65_535)
    s.watch_lag = r.get("watch.strokes_lag", -65_535, 65_535)


def _check_consistency(s):
    # Each cause's hold and its alarm are set and cleared together (controller.py, loop.py,
    # mechanism.py): a state where they differ was not written by this firmware.
    for hold, alarm, name in ((HOLD_EMPTY, ALARM_EMPTY_RESERVOIR, "empty_reservoir"),
                              (HOLD_SUSPENDED, ALARM_SUSPENDED, "suspended"),
                              (HOLD_EOS, ALARM_END_OF_SERVICE, "end_of_service"),
                              (HOLD_OCCLUSION, ALARM_OCCLUSION, "occlusion"),
                              (HOLD_RUNAWAY, ALARM_MOTOR_RUNAWAY, "motor_runaway")):
        if bool(s.held & hold) != bool(s.active & alarm):
            _fail("ctl.held", "the %s hold and its alarm disagree" % name)
    if bool(s.held & HOLD_STALL) != (s.stall == 1):
        _fail("watch.stall", "the stall hold and the watch disagree")
    if bool(s.held & HOLD_OCCLUSION) != bool(s.occluded):
        _fail("watch.occluded", "the occlusion hold and the watch disagree")
    if bool(s.held & HOLD_RUNAWAY) != bool(s.runaway):
        _fail("watch.runaway", "the runaway hold and the watch disagree")
    if (s.gauge.level >= ERI) != bool(s.active & ALARM_ELECTIVE_REPLACEMENT) \
            or (s.gauge.level == EOS) != bool(s.active & ALARM_END_OF_SERVICE):
        _fail("gauge.level", "the battery level and its alarms disagree")
    if s.priming and s.held & ~HOLD_EMPTY & ~HOLD_RUNAWAY & ~HOLD_EOS & ~HOLD_STALL & ~HOLD_OCCLUSION \
            & ~HOLD_SUSPENDED:
        _fail("ctl.priming", "priming under a limit hold")
    if s.rate > max_rate_ng_per_day(5000):
        _fail("ctl.rate", "beyond 24 mL/day")


def _apply(loop, s):
    # Nothing here can fail: every value was checked by _parse.
    ctl = loop.ctl
    clock = loop._clock
    now = clock.ticks_ms()
    ctl.pump = s.pump
    ctl.reservoir.pump = s.pump
    ctl.rx = s.rx
    ctl.rx_periodic = s.rx if s.rxp is None else s.rxp
    ctl.conc = s.rx.concentration
    ctl.weekday0 = s.weekday0
    ctl.day = s.day
    ctl.ms = s.ms
    ctl.held = s.held
    ctl.rate = s.rate
    ctl.due[0] = s.due0
    ctl.due[1] = s.due1
    ctl._priming = bool(s.priming)
    ctl.priming_left = s.priming_left
    ctl._prime_nl = s.prime_nl
    ctl._to_change = s.to_change
    ctl._planned = s.planned
    ctl._fired = s.fired
    ctl._done_day = s.done_day
    ctl._done_ms = s.done_ms
    ctl._trans_ng = s.trans_ng
    ctl._trans_day = s.trans_day
    ctl._trans_ms = s.trans_ms
    ctl._gone_conc = s.gone_conc
    ctl._gone_day = s.gone_day
    ctl._gone_ms = s.gone_ms
    ctl._withhold[0] = s.withhold0
    ctl._withhold[1] = s.withhold1
    ctl._withholding = s.withholding
    for i, t in enumerate((ctl.missed, ctl.delivered, ctl.withheld)):
        t.big = s.totals[2 * i]
        t.small = s.totals[2 * i + 1]
    ctl.reservoir.volume_nl = s.volume_nl
    ctl._hist = s.hist
    ctl.window = s.window
    ctl.path = s.path
    ctl.boluses = s.boluses
    ctl._tick = now
    a = loop.alarms
    a.active = s.active
    a.fresh = s.fresh
    a.silenced = s.silenced
    a.critical_repeat_ms = s.repeat_ms
    a._next_critical = clock.ticks_add(now, s.next_critical)
    a._next_non = clock.ticks_add(now, s.next_non)
    a.tones = s.tones
    a.tone_s = 0
    loop.gauge = s.gauge
    m = loop.watch
    m.bits = s.bits
    m.stall = s.stall
    m.stalls = s.stalls
    m.stall_alarms = s.stall_alarms
    m._stall_day = s.stall_day
    m._stall_ms = s.stall_ms
    m._retry_tick = clock.ticks_add(now, s.retry)
    m._retry_ms = s.retry_ms
    m._alarm_due = bool(s.alarm_due)
    m._missed_big = s.missed_big
    m._missed_small = s.missed_small
    m.occluded = bool(s.occluded)
    m._poll_tick = clock.ticks_add(now, s.poll)
    m.pressed_nl = s.pressed_nl
    m.pressure = bool(s.pressure)
    m._pressure_tick = clock.ticks_add(now, s.pressure_ms)
    m.by_pressure = bool(s.by_pressure)
    m.runaway = bool(s.runaway)
    # The newest of the three counts is the motor's now (a board's count starts again at a reset).
    ahead = -s.ctl_lag if -s.ctl_lag > -s.watch_lag else -s.watch_lag
    count = (loop._motor.strokes() - (ahead if ahead > 0 else 0)) & COUNT_MASK
    loop._strokes = count
    ctl._seen = (count - s.ctl_lag) & COUNT_MASK
    m._seen = (count - s.watch_lag) & COUNT_MASK
    if m.runaway:
        loop._motor.enable(False)  # the power stays cut across a reset
    loop._last = clock.ticks_add(now, s.last)
    loop._started = ctl.started
    loop._week_rx = None  # the dates' week is refilled for the restored prescription at their next recalculation
    # The dates stay as of their last recalculation (a boot that writes time off recalculates them).
    loop.low_reservoir_min, loop.empty_min, loop.eri_days, loop.eos_days = s.dates
    _apply_link(loop, s, now)
    loop._next = now
    loop.selftest.start(now)  # the prescription restored: the self-tests from it, on its clock
    loop.service()
