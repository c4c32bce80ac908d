# Self-tests (docs/alarms.md "Self-tests"): at boot and every SELFTEST_MS, planned into the loop's
# deadline like the battery housekeeping. Each checks something the dosing relies on and that
# nothing else watches:
#   (a) a CRC-32 of the prescription and limits in RAM (the pump settings, the battery
#       parameters and the prescription, walked as firmware/state.py packs them into the journal)
#       against the CRC taken when they were last set (boot, restore, program): the journal
#       persisted them then, so that CRC stands for the persisted copy;
#   (b) with a journal: every record written to its current block since the last check still
#       reads back (firmware/journal.py Journal.check: the CRCs re-read from the flash);
#   (c) the tick clock advanced since the last check, in step with the real-time clock (when
#       there is one and it is valid): a tick clock that stopped, or runs fast or slow, would time
#       every stroke wrong. Without a real-time clock the self-tests fall due by the ticks, so a
#       stopped tick clock stops them too: then the watchdog catches it (the loop's wait never
#       returns, nothing feeds the dog);
#   (d) the battery ADC reads within ADC_MIN_MV..ADC_MAX_MV, the range a cell can physically
#       show while the firmware runs: every implant chemistry sits below 4 V (Li/SOCl2 3.67 V
#       open circuit, Li/SVO and Li/CFx about 3.2 V, Li/I2 2.8 V), so above 5000 mV the divider or
#       the ADC's reference failed; and below 1000 mV no microcontroller of these boards still
#       runs (RP2040 and ESP32 need 1.8 V or more), so the reading is not the cell's. A glitch lasts
#       at most a minute: an out-of-range reading is read again ADC_RECHECK_MS later, and only a
#       second one in a row fails.
# A failure holds delivery for good (HOLD_FAULT), raises critical_fault and logs EV_CRITICAL_FAULT
# a=FAULT_* b=the detail (firmware/alarms.py); the self-tests then stop. The hourly run allocates
# nothing (tests/core/test_selftest.py measures it on MicroPython).

from firmware import state
from firmware.alarms import (
    ALARM_CRITICAL_FAULT,
    EV_CRITICAL_FAULT,
    FAULT_BATTERY_ADC,
    FAULT_CLOCK,
    FAULT_JOURNAL_CHECK,
    FAULT_RX_CRC,
)
from firmware.controller import HOLD_FAULT
from firmware.crc32 import Crc32
from micropython import const

SELFTEST_MS = const(3_600_000)  # hourly, on the pump clock's hours
ADC_MIN_MV = const(1000)
ADC_MAX_MV = const(5000)
ADC_RECHECK_MS = const(120_000)  # twice the longest glitch
# Ticks and the real-time clock (whole seconds, so +-1 s apart by rounding) may differ by this
# plus 1/64 of the time between checks (1.6 %: crystals drift by 0.01 %; a clock that stopped or
# halved is far beyond).
CLOCK_SLACK_MS = const(2000)
_CHUNK_INTS = const(32)
_MAX_RTC_S = const(0x7FFFF)  # 6 days between checks at most (they run hourly); more: the RTC jumped


class _CrcWriter:
    """firmware/state.py's pack functions write through put(): this one feeds the CRC instead,
    _CHUNK_INTS at a time (one CRC call per chunk: CPython's binascii path is per call)."""

    def __init__(self):
        self.crc = Crc32()
        self.buf = bytearray(4 * _CHUNK_INTS)
        self.i = 0

    def reset(self):
        self.crc.reset()
        self.i = 0

    def put(self, x):
        b = self.buf
        i = self.i
        b[i] = x & 0xFF
        b[i + 1] = (x >> 8) & 0xFF
        b[i + 2] = (x >> 16) & 0xFF
        b[i + 3] = (x >> 24) & 0xFF
        self.i = i + 4
        if self.i == 4 * _CHUNK_INTS:
            self.flush()

    def flush(self):
        self.crc.update(self.buf, 0, self.i)
        self.i = 0


class SelfTest:
    """loop: the PumpLoop; rtc: the real-time clock (now_s() -> s, -1 when not valid) or None."""

    def __init__(self, loop, clock, rtc):
        self._loop = loop
        self._clock = clock
        self._rtc = rtc
        self._w = _CrcWriter()
        self.crc_hi = 0  # the CRC of the prescription and limits when they were last set
        self.crc_lo = 0
        self.due = 0  # tick of the next self-test
        self._at = 0  # tick of the last one ...
        self._rtc_at = -1  # ... and the real-time clock then (-1: not valid)
        self._adc_bad = 0  # out-of-range battery readings in a row
        self.runs = 0
        self.failed = 0  # the FAULT_* that failed (0: none)
        self._on = False  # from start(): not while the journal restores the state
        self._fresh = True

    def start(self, now):
        """Boot (after the journal restored the state): the reference CRC; the checks run at the
        loop's first service(), once the battery was read."""
        self.rebase()
        self._at = now
        self._rtc_at = self._rtc_s()
        self.due = now
        self._on = True
        self._fresh = True  # the next run is the first since start(): the clock's reference

    def rebase(self):
        """The prescription or the limits were set (program): their CRC from now on."""
        self._walk()
        self.crc_hi = self._w.crc.hi
        self.crc_lo = self._w.crc.lo

    def clock_set(self):
        """The clinician set the pump's clock, and the real-time clock with it: the next check
        takes a new reference instead of comparing across the jump (the ticks still must advance)."""
        self._rtc_at = -1

    def _walk(self):
        w = self._w
        w.reset()
        state._pack_settings(w, self._loop)
        state._pack_rx(w, self._loop.ctl.rx)
        w.flush()

    def _rtc_s(self):
        return self._rtc.now_s() if self._rtc is not None else -1

    def is_due(self, now):
        """Due by the ticks, or by the real-time clock (a tick clock that stopped never gets there)."""
        if not self._on or self.failed or self._loop.ctl.held & HOLD_FAULT:
            return False
        if self._clock.ticks_diff(now, self.due) >= 0:
            return True
        if self._rtc_at < 0:
            return False
        s = self._rtc_s()
        return s >= 0 and s - self._rtc_at > (SELFTEST_MS + CLOCK_SLACK_MS) // 1000

    def ms_to_next(self, now):
        """ms to the next self-test (0: now), -1 when there is none."""
        if not self._on or self.failed or self._loop.ctl.held & HOLD_FAULT:
            return -1
        t = self._clock.ticks_diff(self.due, now)
        return t if t > 0 else 0

    def run(self, now):
        self.runs += 1
        if not self._rx_ok():
            self._fail(FAULT_RX_CRC, self._w.crc.final_lo())
        elif not self._journal_ok():
            self._fail(FAULT_JOURNAL_CHECK, self._loop.persist.journal.checked_to)
        elif not self._clock_ok(now):
            self._fail(FAULT_CLOCK, self._clock.ticks_diff(now, self._at))
        elif not self._adc_ok():
            self._adc_bad += 1
            if self._adc_bad >= 2:
                self._fail(FAULT_BATTERY_ADC, self._loop.gauge.mv)
            else:
                self.due = self._clock.ticks_add(now, ADC_RECHECK_MS)
            return
        self._adc_bad = 0
        self._fresh = False
        self._at = now
        self._rtc_at = self._rtc_s()
        # On the pump clock's hours (the controller's time of day, accounted to now): a loop
        # restored from its state tests at the same instants as it would have.
        self.due = self._clock.ticks_add(now, SELFTEST_MS - self._loop.ctl.ms % SELFTEST_MS)

    def _rx_ok(self):
        self._walk()
        return self._w.crc.hi == self.crc_hi and self._w.crc.lo == self.crc_lo

    def _journal_ok(self):
        p = self._loop.persist
        return p is None or p.journal.block < 0 or p.journal.check()

    def _clock_ok(self, now):
        ms = self._clock.ticks_diff(now, self._at)
        if ms < 0 or ms == 0 and not self._fresh:
            return False
        s = self._rtc_s()
        if s < 0 or self._rtc_at < 0:
            return True  # nothing to compare with (the journal raises clock_lost)
        s -= self._rtc_at
        if s < 0 or s > _MAX_RTC_S:
            return False
        d = ms - s * 1000
        return -CLOCK_SLACK_MS - ms // 64 <= d <= CLOCK_SLACK_MS + ms // 64

    def _adc_ok(self):
        mv = self._loop.gauge.mv
        return ADC_MIN_MV <= mv <= ADC_MAX_MV

    def _fail(self, what, detail):
        self.failed = what
        loop = self._loop
        loop.ctl.hold(HOLD_FAULT)
        loop.alarms.raise_(ALARM_CRITICAL_FAULT, 0, 0)
        loop.emit_event(EV_CRITICAL_FAULT, what, detail, 0)
