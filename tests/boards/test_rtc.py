# The board's real-time clock (hal/machine_rtc.py) over each virtual port's machine.RTC, whose
# behaviour comes from ports/rp2/machine_rtc.c + main.c, ports/esp32/machine_rtc.c and
# ports/stm32/rtc.c (MicroPython v1.24.0-v1.28.0): on CPython and on the MicroPython unix port
# (tools/run_boards.sh), one port per run.

import machine
import vmachine
from support import raises

from hal.machine_rtc import VALID_FROM_S, MachineRtc

# Known dates, the seconds since 2024-01-01 derived by hand (not by the code under test):
KNOWN = (
    # 2024 is a leap year: 366 days * 86400
    ((2025, 1, 1, 0, 0, 0), 31622400),
    # 366 + 365 (2025) + 31 (Jan) + 28 (Feb 2026) = 790 days = 68256000 s; 12:34:56 = 45296 s
    ((2026, 3, 1, 12, 34, 56), 68301296),
    # 366 + 3 * 365 = 1461 days to 2028; + 31 + 28 = 1520 days = 131328000 s; + 86399 s
    ((2028, 2, 29, 23, 59, 59), 131414399),
    # 34 years, 9 of them leap (2024..2056): 12419 days; + 8 = 12427 days = 1073692800 s;
    # 13:37:03 = 49023 s: 1073741823 = 2**30 - 1, the last small int
    ((2058, 1, 9, 13, 37, 3), 1073741823),
)
INVALID = ((2024, 12, 31, 23, 59, 59), (2058, 1, 9, 13, 37, 4), (2000, 1, 1, 0, 0, 0), (2099, 12, 31, 0, 0, 0))

# Each port's machine.RTC().datetime() after a power-on, from its C source: rp2 2021-01-01 (main.c;
# weekday computed 0..6 from Monday: a Friday, 4; subseconds 0); esp32 2000-01-01 (system time 0;
# a Saturday, 5); stm32 2015-01-01 (rtc.c RTC_CalendarConfig, RTC_WEEKDAY_THURSDAY 4, the
# subsecond register at its top, 255).
POWER_ON = {"rp2": (2021, 1, 1, 4, 0, 0, 0, 0), "esp32": (2000, 1, 1, 5, 0, 0, 0, 0),
            "stm32": (2015, 1, 1, 4, 0, 0, 0, 255)}
# whether the port's clock survives machine.reset() or a watchdog reset
KEEPS_ON_HARD_RESET = {"rp2": False, "esp32": True, "stm32": True}


class _Fixed:
    """A machine.RTC stand-in reading one datetime tuple and recording what is set."""

    def __init__(self, t):
        self.t = t
        self.set = []

    def datetime(self, t=None):
        if t is None:
            return self.t
        self.set.append(t)


def _tuple(ymd_hms, weekday=0, sub=0):
    y, m, d, hh, mm, ss = ymd_hms
    return (y, m, d, weekday, hh, mm, ss, sub)


def _fresh():
    machine.reset_fakes()
    machine.RTC.follow_ticks(False)  # exact time: only advance_ms moves it
    return machine.RTC(), MachineRtc()


def _oracle():
    """CPython's datetime module (None on MicroPython)."""
    try:
        import datetime
    except ImportError:
        return None
    return datetime


def test_the_conversion_gives_the_seconds_of_known_dates():
    for fields, s in KNOWN:
        assert MachineRtc(_Fixed(_tuple(fields))).now_s() == s, fields
        rtc = _Fixed(None)
        MachineRtc(rtc).set_s(s)
        assert rtc.set[-1][:3] == fields[:3] and rtc.set[-1][4:7] == fields[3:], (s, rtc.set)
    for fields in INVALID:
        assert MachineRtc(_Fixed(_tuple(fields))).now_s() == -1, fields


def test_the_conversion_agrees_with_cpythons_datetime():
    dt = _oracle()
    if dt is None:
        return  # the known dates above on MicroPython
    epoch = dt.datetime(2024, 1, 1)
    last = (1 << 30) - 1
    step = 86400 * 3 + 3607  # about every 3 days, a different time of day each
    for s in list(range(VALID_FROM_S, last, step)) + [VALID_FROM_S, last]:
        d = epoch + dt.timedelta(seconds=s)
        fields = (d.year, d.month, d.day, d.hour, d.minute, d.second)
        assert MachineRtc(_Fixed(_tuple(fields, d.weekday(), 999))).now_s() == s, d
        rtc = _Fixed(None)
        MachineRtc(rtc).set_s(s)
        assert rtc.set[-1] == _tuple(fields, d.isoweekday(), 0), (d, rtc.set[-1])
    before = epoch + dt.timedelta(seconds=VALID_FROM_S - 1)
    assert MachineRtc(_Fixed(_tuple((before.year, 12, 31, 23, 59, 59)))).now_s() == -1


def test_the_port_comes_up_at_its_default_date_which_reads_not_valid():
    rtc, clock = _fresh()
    assert rtc.datetime() == POWER_ON[machine.PORT]
    assert clock.now_s() == -1
    assert machine.RTC() is rtc  # the port's singleton


def test_set_s_round_trips_through_the_ports_datetime():
    rtc, clock = _fresh()
    dt = _oracle()
    for fields, s in KNOWN:
        clock.set_s(s)
        assert clock.now_s() == s
        t = rtc.datetime()
        assert t[:3] == fields[:3] and t[4:7] == fields[3:], t
        if dt is not None:
            d = dt.date(*fields[:3])
            assert t[3] == (d.isoweekday() if machine.PORT == "stm32" else d.weekday()), t
    for bad in (VALID_FROM_S - 1, 1 << 30, -1, 1.5e8, True, "68301296"):
        raises(ValueError, lambda: clock.set_s(bad))


def test_the_clock_runs_on_and_off_and_the_port_decides_what_a_reset_keeps():
    rtc, clock = _fresh()
    s = 68301296  # 2026-03-01 12:34:56, a Sunday
    clock.set_s(s)
    machine.RTC.advance_ms(999)
    assert clock.now_s() == s
    machine.RTC.advance_ms(1)
    assert clock.now_s() == s + 1
    machine.RTC.boot("soft")
    assert clock.now_s() == s + 1
    machine.RTC.advance_ms(3 * 86400_000)  # three days off, on the clock's own supply
    machine.RTC.boot("hard")
    if KEEPS_ON_HARD_RESET[machine.PORT]:
        assert clock.now_s() == s + 1 + 3 * 86400
        # a Wednesday: 2 computed (0 is Monday); stm32 stored Sunday (7) and advanced it three days
        assert rtc.datetime()[3] == (3 if machine.PORT == "stm32" else 2)
    else:
        assert rtc.datetime() == POWER_ON[machine.PORT] and clock.now_s() == -1
    clock.set_s(s)
    machine.RTC.boot("power")
    assert rtc.datetime() == POWER_ON[machine.PORT] and clock.now_s() == -1
    raises(ValueError, lambda: machine.RTC.boot("cold"))
    raises(ValueError, lambda: machine.RTC.advance_ms(-1))


def test_the_clock_follows_the_boards_ticks_across_their_wrap():
    rtc, clock = _fresh()
    saved = vmachine._ticks_ms
    now = [vmachine.TICKS_PERIOD - 700]  # ticks_ms 700 ms before it wraps
    try:
        vmachine._ticks_ms = lambda: now[0]
        machine.RTC.follow_ticks(True)
        clock.set_s(VALID_FROM_S)
        now[0] = 300  # 1000 ms later, past the wrap
        assert clock.now_s() == VALID_FROM_S + 1
        now[0] = 300 + 59_000
        assert clock.now_s() == VALID_FROM_S + 60
        machine.RTC.follow_ticks(False)
        now[0] = 300 + 120_000
        assert clock.now_s() == VALID_FROM_S + 60
    finally:
        vmachine._ticks_ms = saved
        machine.RTC.follow_ticks(False)


def test_the_subseconds_as_each_port_gives_them():
    rtc, clock = _fresh()
    clock.set_s(VALID_FROM_S)
    machine.RTC.advance_ms(250)
    # rp2: always 0; esp32: tv_usec; stm32: SSR counting down from 255, 256 a second
    assert rtc.datetime()[7] == {"rp2": 0, "esp32": 250000, "stm32": 255 - 64}[machine.PORT]
    assert clock.now_s() == VALID_FROM_S


def test_the_weekday_field_is_computed_or_stored_as_the_port_does():
    rtc, clock = _fresh()
    rtc.datetime((2026, 3, 1, 2, 12, 34, 56, 0))  # a Sunday, set as a Tuesday (2)
    # rp2, esp32 ignore it (timeutils computes 6: Sunday); stm32 stores it
    assert rtc.datetime()[3] == (2 if machine.PORT == "stm32" else 6)
    assert clock.now_s() == 68301296


def test_datetime_refuses_what_the_port_refuses():
    rtc, clock = _fresh()
    e = raises(TypeError, lambda: rtc.datetime(68301296))
    assert "isn't a tuple or list" in str(e)
    e = raises(ValueError, lambda: rtc.datetime((2026, 3, 1, 7, 12, 34, 56)))
    assert "requested length 8 but object has length 7" in str(e)
    raises(TypeError, lambda: rtc.datetime((2026, 3, 1, 7, "12", 34, 56, 0)))
    raises(TypeError, lambda: machine.RTC(1))
    # which fields the port's C reads as ints: rp2 neither weekday nor subseconds; esp32 the
    # subseconds (µs) only; stm32 the weekday only
    reads = {"rp2": (), "esp32": (7,), "stm32": (3,)}[machine.PORT]
    for i in (3, 7):
        t = [2026, 3, 1, 7, 12, 34, 56, 0]
        t[i] = "x"
        if i in reads:
            raises(TypeError, lambda: rtc.datetime(tuple(t)))
        else:
            rtc.datetime(t)  # a list is taken too
            assert clock.now_s() == 68301296
    # a date the port's C takes unchecked (a wrong calendar on the board): refused by the fake
    for t in ((2026, 2, 29, 7, 0, 0, 0, 0), (2026, 13, 1, 7, 0, 0, 0, 0), (2026, 3, 1, 7, 24, 0, 0, 0)):
        raises(ValueError, lambda: rtc.datetime(t))
