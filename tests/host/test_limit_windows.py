"""The firmware's exact basal window maxima against the oracle's independent implementation."""

import oracle
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.limits import transition_max_ng, worst_window_ng
from firmware.prescription import Profile
from sim import scenario

DAY = 86_400_000

profiles = st.lists(st.tuples(st.integers(0, 1439), st.sampled_from([0, 1, 999, 50_000, 600_000, 1_234_567])),
                    min_size=1, max_size=5, unique_by=lambda x: x[0]).map(
    lambda steps: Profile([0] + [m * 60_000 for m, _ in sorted(steps)[1:]], [r for _, r in sorted(steps)], "b"))


def _scenario(weekday):
    start = f"2026-01-{5 + weekday:02d}T00:00"
    text = f'start = "{start}"\n[drug]\nconcentration_mcg_ml = 2000\n[basal]\n'
    text += 'steps = [{start = "00:00", mcg_per_day = 100}]\n[limits]\nmax_daily_mcg = 200000\n'
    return scenario.parse(text, "w.toml")


class _Rx:
    def __init__(self, profs):
        self.profiles = [(p.starts_ms, p.rates_ng_per_day) for p in profs]


@settings(max_examples=30)
@given(st.lists(profiles, min_size=7, max_size=7), st.booleans())
def test_worst_window_matches_the_oracle(week, uniform):
    profs = tuple(week) if not uniform else (week[0],) * 7
    o = oracle.Oracle(_scenario(0))
    assert worst_window_ng(profs) == o.worst(_Rx(profs))


@settings(max_examples=30)
@given(st.lists(st.lists(profiles, min_size=7, max_size=7), min_size=2, max_size=4),
       st.lists(st.integers(1, 2 * 1440), min_size=3, max_size=3), st.integers(0, 6))
def test_windows_across_program_changes_match_the_oracle(programs, gaps_min, weekday):
    # Programs changed at increasing times within the last window; the newest starts now.
    o = oracle.Oracle(_scenario(weekday))
    now = 3 * DAY + 7 * 3_600_000
    changes = [now]
    for g in gaps_min[: len(programs) - 2]:
        changes.insert(0, changes[0] - g * 60_000)
    history, progs = [], []
    for i, week in enumerate(programs[:-1]):
        end = changes[i]
        history.append((tuple(week), end - 3 * DAY))  # firmware: relative to the current day's midnight
        progs.append((_Rx(week), None if i == 0 else changes[i - 1]))
    new = tuple(programs[-1])
    progs.append((_Rx(new), now))
    got = transition_max_ng(history, new, (weekday + 3) % 7, now - 3 * DAY)  # the weekday of "today"
    want = o._window_max(progs, now, now + oracle.WIN)
    assert got == want
