# Where the basal schedule and the periodic boluses change: a pure function of the pump clock.

from firmware.units import MS_PER_DAY


def basal_rate_nl_per_day(rx, weekday, ms_of_day):
    profile = rx.profiles[weekday]
    return profile.rates_nl_per_day[profile.step_at(ms_of_day)]


def next_change_ms(rx, weekday, ms_of_day):
    """ms from ms_of_day to the next basal step, periodic bolus start or midnight (always >= 1)."""
    best = MS_PER_DAY - ms_of_day  # midnight: the weekday, and so the profile, may change
    starts = rx.profiles[weekday].starts_ms
    for i in range(len(starts)):
        if starts[i] > ms_of_day:
            if starts[i] - ms_of_day < best:
                best = starts[i] - ms_of_day
            break
    periodic = rx.periodic
    for i in range(len(periodic)):
        at = periodic[i][0]
        if ms_of_day < at and at - ms_of_day < best:
            best = at - ms_of_day
    return best
