# Where the basal schedule and the periodic boluses change: a pure function of the pump clock.

from firmware.units import MS_PER_DAY


def basal_ng_per_day(rx, weekday, ms_of_day):
    profile = rx.profiles[weekday]
    return profile.rates_ng_per_day[profile.step_at(ms_of_day)]


def next_change_ms(rx, periodic, weekday, ms_of_day):
    """ms from ms_of_day to the next basal step, periodic bolus start or midnight (always >= 1)."""
    # Midnight: the weekday, the profile and the periodic list may change.
    best = _next_step_ms(rx.profiles[weekday].starts_ms, ms_of_day)
    return _next_periodic_ms(periodic, ms_of_day, best)


def _next_step_ms(starts, ms_of_day):
    for i in range(len(starts)):
        if starts[i] > ms_of_day:
            return starts[i] - ms_of_day
    return MS_PER_DAY - ms_of_day


def _next_periodic_ms(periodic, ms_of_day, best):
    for i in range(len(periodic)):
        if ms_of_day < periodic[i][0] < ms_of_day + best:
            best = periodic[i][0] - ms_of_day
    return best
