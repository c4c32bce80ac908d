# Real-time clock for a board (hal/interfaces.py: RTC) over machine.RTC().datetime().
#
# now_s(): whole seconds since EPOCH (2024-01-01 00:00:00), or -1 when the clock is not valid.
# The epoch is 2024, not 2000, so the seconds stay a small int (< 2**30, a 32-bit port's
# one-word int) until 2058-01-09 13:37:03 (2024-01-01 + 2**30 - 1 s); seconds since 2000 would
# outgrow it in 2034. A reading from 2058-01-09 13:37:04 on is -1 too (the firmware must be given
# a later epoch before then).
#
# Valid: from VALID_FROM (2025-01-01 00:00:00, 31622400 s after the epoch). Every port's RTC comes
# up at a fixed date before it after it lost its time (MicroPython v1.24.0-v1.28.0):
#   rp2    2021-01-01 00:00:00 at every hard boot (ports/rp2/main.c: aon_timer_start at
#          timeutils_seconds_since_epoch(2021, 1, 1, 0, 0, 0)): a power-on, machine.reset() and a
#          watchdog reset all lose the time; a soft reset keeps it.
#   esp32  2000-01-01 00:00:00 at a power-on (ESP-IDF's system time starts at 0; MicroPython's
#          esp32 epoch is 2000); machine_rtc.c reads gettimeofday(). Other resets keep it.
#   stm32  2015-01-01 00:00:00 (ports/stm32/rtc.c RTC_CalendarConfig) when the backup domain lost
#          its power (no VBAT); other resets keep it (rtc_init_start finds the RTC running).
# So the programmer must set the clock (set_s) on a board once, and again after each such loss.
#
# The conversion is integer-only (days from the civil date, H. Hinnant's algorithm), every value a
# small int; no `time` module (its epoch differs between ports). datetime() itself allocates its
# tuple (the port's C): now_s() is for the boot and the self-tests, not a per-wake path.

import machine

DAYS_1970_TO_EPOCH = 19723  # 1970-01-01 .. 2024-01-01
VALID_FROM_S = 31622400  # 2025-01-01 00:00:00: 366 days (2024 is a leap year) after the epoch
_MAX_S = (1 << 30) - 1  # the last small int: 2058-01-09 13:37:03


def days_from_civil(year, month, day):
    """Days from 1970-01-01 to the proleptic Gregorian date (year >= 0)."""
    if month <= 2:
        year -= 1
    era = year // 400
    yoe = year - era * 400  # 0..399
    doy = (153 * (month + (9 if month <= 2 else -3)) + 2) // 5 + day - 1  # day of a year from 1 March
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def civil_from_days(days):
    """(year, month, day) of the date `days` after 1970-01-01 (the inverse of days_from_civil)."""
    days += 719468
    era = days // 146097
    doe = days - era * 146097  # 0..146096
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153  # month from March, 0..11
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if month <= 2 else 0), month, doy - (153 * mp + 2) // 5 + 1


class MachineRtc:
    """hal/interfaces.py RTC over a machine.RTC() (the port's singleton unless one is given)."""

    def __init__(self, rtc=None):
        self._rtc = rtc if rtc is not None else machine.RTC()

    def now_s(self):
        """Whole seconds since 2024-01-01, or -1 if the clock reads before 2025 (it lost its time)
        or past 2058-01-09 13:37:03."""
        t = self._rtc.datetime()  # (year, month, day, weekday, hours, minutes, seconds, subseconds)
        year = t[0]
        if year < 2025 or year > 2058:  # (a default date: no arithmetic)
            return -1
        s = (days_from_civil(year, t[1], t[2]) - DAYS_1970_TO_EPOCH) * 86400 + t[4] * 3600 + t[5] * 60 + t[6]
        return s if VALID_FROM_S <= s <= _MAX_S else -1

    def set_s(self, s):
        """Sets the clock to `s` seconds after 2024-01-01 (VALID_FROM_S.._MAX_S): the day a programmer
        sets it. The weekday is 1..7 from Monday, as stm32 stores it (rp2 and esp32 ignore the field
        and compute their own, 0..6 from Monday); subseconds 0."""
        if isinstance(s, bool) or not isinstance(s, int) or not VALID_FROM_S <= s <= _MAX_S:
            raise ValueError("rtc.set_s: must be an integer %d..%d (2025-01-01..2058-01-09 13:37:03), not %r"
                             % (VALID_FROM_S, _MAX_S, s))
        days = s // 86400 + DAYS_1970_TO_EPOCH
        sec = s % 86400
        y, m, d = civil_from_days(days)
        weekday = (days + 3) % 7 + 1  # 1970-01-01 was a Thursday (4)
        self._rtc.datetime((y, m, d, weekday, sec // 3600, sec // 60 % 60, sec % 60, 0))
