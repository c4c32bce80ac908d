# The hard limit's basal bound and the fluid path, against plain (big) integer arithmetic.

from support import heap_meter, heap_meter_done

from firmware.limits import WINDOW_MS, transition_max_ng, volume_mass_ng, worst_window_ng
from firmware.path import Path
from firmware.prescription import Profile
from firmware.units import MS_PER_DAY

HOUR = 3_600_000


def _window_mass_ceil(rates_by_ms, a, b):
    """Oracle: the basal mass over [a, b) by whole-ms steps of a rate function, exact and slow-free."""
    total = 0
    t = a
    while t < b:
        rate, until = rates_by_ms(t)
        end = min(until, b)
        total += rate * (end - t)
        t = end
    return -(-total // MS_PER_DAY)


def test_thirteen_step_remainders_stay_small_ints():
    # Defect 1.5: 13 steps whose ng/day x duration leave near-maximal remainders summed to
    # 1.12e9 > 2**30 in one variable. Each add is now normalised. On the 32-bit WebAssembly port
    # (frames on its pystack) an overflow would show up as heap allocation, so it is measured
    # there; the 64-bit unix port's small ints are 62-bit, so it proves nothing there.
    starts = [0] + [6_646_153 * i + 7 for i in range(1, 13)]
    rates = [199_999_999 - 7_919 * i for i in range(13)]
    p = Profile(starts, rates, "basal.steps")
    acc = [0, 0]
    qr = [0, 0]
    import sys

    mem = heap_meter() if sys.maxsize < (1 << 32) else None
    before = mem() if mem else 0
    p.add_mass(0, MS_PER_DAY, acc, qr)
    after = mem() if mem else 0
    if mem:
        heap_meter_done()
    assert after - before == 0, "add_mass allocated (a small int overflowed?)"
    assert 0 <= acc[1] < MS_PER_DAY and acc[0] < (1 << 30)
    exact = 0
    for i in range(13):
        end = starts[i + 1] if i < 12 else MS_PER_DAY
        exact += rates[i] * (end - starts[i])
    assert acc[0] == exact // MS_PER_DAY and acc[1] == exact % MS_PER_DAY


def test_worst_window_spans_weekdays_and_counts_the_late_allowance():
    flat = Profile([0], [600_000], "b")
    assert worst_window_ng((flat,) * 7) == -(-600_000 * WINDOW_MS // MS_PER_DAY)
    # Monday ends high, Tuesday starts high: the worst window straddles their midnight.
    mon = Profile([0, 12 * HOUR], [0, 1_200_000], "mon")
    tue = Profile([0, 12 * HOUR], [1_200_000, 0], "tue")
    quiet = Profile([0], [0], "q")
    profiles = (mon, tue, quiet, quiet, quiet, quiet, quiet)

    def rates(t):
        day, ms = divmod(t, MS_PER_DAY)
        p = profiles[day % 7]
        i = max(j for j, s in enumerate(p.starts_ms) if s <= ms)
        nxt = p.starts_ms[i + 1] if i + 1 < len(p.starts_ms) else MS_PER_DAY
        return p.rates_ng_per_day[i], day * MS_PER_DAY + nxt

    best = max(_window_mass_ceil(rates, t - WINDOW_MS, t) for t in range(WINDOW_MS, 8 * MS_PER_DAY, HOUR // 4))
    assert worst_window_ng(profiles) == best == 1_200_000


def test_transition_counts_the_old_program_before_the_change():
    # Defect 1.1: 0 mcg/day until noon then 1200; at midnight a program of 1200 until noon then 0.
    old = (Profile([0, 12 * HOUR], [0, 1_200_000], "old"),) * 7
    new = (Profile([0, 12 * HOUR], [1_200_000, 0], "new"),) * 7
    assert worst_window_ng(old) == worst_window_ng(new) == 600_000 + 14  # 12 h + 1 s of 1200/day
    # The window from yesterday noon to today noon holds 600 + 600 mcg.
    assert transition_max_ng([(old, MS_PER_DAY)], new, 0, MS_PER_DAY) == 1_200_000


def test_stroke_margin_rounds_up():
    assert volume_mass_ng(250, 2000) == 500
    assert volume_mass_ng(333, 7) == 3  # 2.331 ng


def test_path_is_plug_flow_first_in_first_out():
    path = Path(1000, 2000)
    due = [10_000, 0]
    path.push(0, 1000)  # new drug in the reservoir: the path still holds 1000 nL at 2000
    path.flow(600, due)  # 600 nL x 2000 pg/nL = 1.2 mcg out of the tip
    assert due == [10_000 - 1200, 0]
    assert path.tip_pg(250) == 250 * 2000 and path.tip_strokes(250) == 1
    path.flow(600, due)  # 400 nL of old drug, then 200 nL of new
    assert due == [10_000 - 1200 - 800 - 200, 0]
    assert path.n == 1 and path.vol[0] == 1000 and path.conc[0] == 1000
    # A new catheter piece at the tip: empty, and the rest keeps its drug.
    assert path.empty_tip(300)
    assert path.tip_pg(250) == 0 and path.tip_pg(400) == 100 * 1000


def test_a_new_catheter_piece_replaces_exactly_its_volume_at_the_tip():
    path = Path(1000, 10)
    path.push(0, 20)
    path.flow(200, [0, 0])  # tip: 800 of 10, then 200 of 20
    path.push(0, 30)
    path.flow(100, [0, 0])  # 700 of 10, 200 of 20, 100 of 30
    assert path.n == 3 and path.vol[:3] == [700, 200, 100]
    assert path.empty_tip(750)  # all of the first segment and 50 of the second
    assert path.n == 3 and path.vol[:3] == [750, 150, 100] and path.conc[:3] == [0, 20, 30]
    assert path.empty_tip(1000) and path.n == 1 and path.vol[0] == 1000 and path.conc[0] == 0
    assert path.max_concentration(5) == 5 and path.min_concentration(40) == 40


def test_a_path_with_no_segment_free_refuses_a_new_piece_and_changes_nothing():
    path = Path(600, 1)
    for c in (2, 3, 4, 5, 6):
        path.push(0, c)
        path.flow(100, [0, 0])
    assert path.n == 6 and not path.can_change()
    before = (list(path.vol), list(path.conc))
    assert not path.empty_tip(50)  # would need a seventh segment
    assert (path.vol, path.conc) == before
    assert path.empty_tip(100)  # replaces the whole first segment: fits
    assert path.conc[:6] == [0, 2, 3, 4, 5, 6] and path.vol[0] == 100
    assert path.min_concentration(9) == 2 and path.max_concentration(1) == 6
