# Event and alarm codes, and the alarm state the controller raises and clears.
#
# The firmware reports through emit(code, a, b, c): four small ints, so reporting never allocates
# inside the firmware. Names are for hosts and logs.

from micropython import const

# Events
EV_LOW_RESERVOIR = const(1)  # a=volume_nl
EV_LOW_RESERVOIR_CLEARED = const(2)  # a=volume_nl
EV_EMPTY_RESERVOIR = const(3)  # a=volume_nl: delivery stopped
EV_DELIVERY_RESUMED = const(4)  # a=volume_nl
EV_LIMIT_TRUNCATED = const(5)  # a=kind, b=requested_ng, c=granted_ng
EV_BOLUS = const(6)  # a=kind, b=reason (0 granted), c=granted_ng
EV_BOLUS_END = const(7)  # a=kind, b=slot
EV_BOLUS_CANCELLED = const(8)  # a=kind, b=slot
EV_REFILL = const(9)  # a=volume_nl now in the reservoir, b=concentration
EV_REFILL_REJECTED = const(10)  # a=reason
EV_PROGRAM = const(11)
EV_PROGRAM_REJECTED = const(12)  # a=reason
EV_UNDER_DELIVERY = const(13)  # a=ng written off (motor behind, or a wake over LATE_WAKE_MS late), b=ms late
EV_PRIME = const(14)  # a=volume_nl the prime will deliver
EV_PRIME_DONE = const(15)  # a=volume_nl delivered
EV_PRIME_REJECTED = const(16)  # a=reason
EV_ALARM = const(17)  # a=alarm id, b=1 raised / 0 cleared
EV_TONE = const(18)  # a=alarm id it sounds for, b=class (CRITICAL or NON_CRITICAL), c=active alarm bits
EV_SILENCED = const(19)  # a=non-critical alarm bits silenced until their next repeat
EV_COMMAND_REJECTED = const(20)  # a=command (COMMAND_NAMES), b=reason
EV_SUSPENDED = const(21)
EV_RESUMED = const(22)
EV_STALL = const(23)  # a stroke did not complete: delivery held, retried with backoff
EV_STALL_RECOVERED = const(24)  # a=stall s, b=missed mg, c=+ng (never made up)
EV_OCCLUSION = const(25)  # a=load reading that crossed the threshold
EV_OCCLUSION_RELEASED = const(26)  # a=nL pushed against the block, counted against the limit now
EV_RUNAWAY = const(27)  # a=strokes the motor made since the last wake, commanded or not, all counted: power cut for good
EV_ERI = const(28)  # a=cause (BATTERY_CAUSES)
EV_EOS = const(29)  # a=cause: delivery stopped for good
EV_PROJECTION = const(30)  # the dates in the status were recalculated
EV_CRITICAL_FAULT = const(31)  # a=what failed (FAULT_NAMES)
EV_LIMIT_HELD = const(32)  # a=ng to withhold: a released block let through more than the limit's margin covers
EV_LIMIT_HOLD_ENDED = const(33)  # a=ng withheld (written off) while held
EV_BATTERY_LOW_READING = const(34)  # a=mV read, b=readings counted so far (0: not at rest or too soon), c=threshold mV
EV_RESET = const(35)  # the pump restarted from its journal: a=s it was off, b=strokes counted unverified, c=cause
EV_CLOCK_SET = const(36)  # the pump clock was set: a=old ms of day, b=old weekday, c=s it moved (signed)
# The link (firmware/link.py): every frame that ends, accepted or not. a = role * 256 + command
# (0 for a frame too broken to read them), b = the result (firmware/link.py RESULT_NAMES), c = the
# field at fault (the index of the request's int), or the counter for an accepted command.
EV_COMMAND_ACCEPTED = const(37)  # a=role * 256 + command, b=0 (OK), c=the frame's counter
EV_COMMAND_REFUSED = const(38)  # a=role * 256 + command, b=result, c=field
EV_LINK_LOCKED = const(39)  # a=MAC failures in the window, b=minutes the link refuses everything
EV_LINK_UNLOCKED = const(40)  # the link's lockout ended

EVENT_NAMES = (
    "",
    "low_reservoir",
    "low_reservoir_cleared",
    "empty_reservoir",
    "delivery_resumed",
    "limit_truncated",
    "bolus",
    "bolus_end",
    "bolus_cancelled",
    "refill",
    "refill_rejected",
    "program",
    "program_rejected",
    "under_delivery",
    "prime",
    "prime_done",
    "prime_rejected",
    "alarm",
    "tone",
    "silenced",
    "command_rejected",
    "suspended",
    "resumed",
    "motor_stall_detected",
    "motor_stall_recovered",
    "occlusion_detected",
    "occlusion_released",
    "motor_runaway",
    "eri",
    "eos",
    "projection",
    "critical_fault",
    "limit_held",
    "limit_hold_ended",
    "battery_low_reading",
    "reset",
    "clock_set",
    "link_command",
    "link_command_refused",
    "link_locked",
    "link_unlocked",
)

# Bolus kinds
CLINICIAN = const(0)
PERIODIC = const(1)
PTM = const(2)
KIND_NAMES = ("clinician", "periodic", "ptm")

# Reasons a request is denied or rejected (0: granted)
OK = const(0)
LOCKOUT = const(1)
MAX_PER_DAY = const(2)
LIMIT = const(3)
RATE = const(4)
EMPTY = const(5)
BUSY = const(6)
NOT_CONFIGURED = const(7)
CAPACITY = const(8)
CONCENTRATION = const(9)
NO_BOLUS = const(10)
PRIMING = const(11)
PATH_FULL = const(12)
PROGRAMS_FULL = const(13)  # a fifth program within a limit window
STOPPED = const(14)  # delivery is held: suspended, stalled, occluded, end of service or motor fault
NOT_SUSPENDED = const(15)
NOTHING_TO_SILENCE = const(16)
ALREADY_SUSPENDED = const(17)
REASON_NAMES = (
    "",
    "lockout",
    "max_per_day",
    "limit",
    "rate",
    "reservoir_empty",
    "bolus_table_full",
    "ptm_not_configured",
    "over_capacity",
    "concentration_incompatible",
    "no_active_bolus",
    "priming",
    "path_full",
    "busy",
    "delivery_stopped",
    "not_suspended",
    "no_silenceable_alarm",
    "already_suspended",
)

# Programmer commands (for EV_COMMAND_REJECTED)
COMMAND_NAMES = ("refill", "bolus", "program", "prime", "silence", "suspend", "resume", "cancel_bolus",
                 "set_clock")

# What made the battery level change (EV_ERI, EV_EOS)
BATTERY_CAUSES = ("", "projection", "voltage", "after_eri", "service_limit")

FAULT_NAMES = ("", "memory", "self_check", "journal", "restore", "rx_crc", "journal_check", "clock", "battery_adc")
FAULT_JOURNAL = const(3)  # the journal holds no state to trust (a=FAULT_JOURNAL, b=firmware.journal WHY_*)
FAULT_RESTORE = const(4)  # the journal's newest state failed validation
# The self-tests (firmware/selftest.py): EV_CRITICAL_FAULT a=FAULT_*, b=the detail named here
FAULT_RX_CRC = const(5)  # the prescription and limits in RAM changed since set (b=CRC now, low 16 bits)
FAULT_JOURNAL_CHECK = const(6)  # a record journaled since the last self-test no longer reads back (b=its offset)
FAULT_CLOCK = const(7)  # the tick clock stopped, or disagrees with the real-time clock (b=ms ticked since the last check)
FAULT_BATTERY_ADC = const(8)  # the battery ADC read outside its physical range twice in a row (b=mV)

# Alarms: ids, and one bit each. Critical alarms mean medication is no longer flowing.
AL_EMPTY_RESERVOIR = const(0)
AL_END_OF_SERVICE = const(1)
AL_MOTOR_STALL = const(2)
AL_OCCLUSION = const(3)
AL_MOTOR_RUNAWAY = const(4)
AL_CRITICAL_FAULT = const(5)
AL_LOW_RESERVOIR = const(6)
AL_ELECTIVE_REPLACEMENT = const(7)
AL_SUSPENDED = const(8)
AL_UNDER_DELIVERY = const(9)
AL_CLOCK_LOST = const(10)
N_ALARMS = const(11)
ALARM_NAMES = (
    "empty_reservoir",
    "end_of_service",
    "motor_stall",
    "occlusion",
    "motor_runaway",
    "critical_fault",
    "low_reservoir",
    "elective_replacement",
    "suspended",
    "under_delivery",
    "clock_lost",
)
ALARM_EMPTY_RESERVOIR = const(1)
ALARM_END_OF_SERVICE = const(2)
ALARM_MOTOR_STALL = const(4)
ALARM_OCCLUSION = const(8)
ALARM_MOTOR_RUNAWAY = const(16)
ALARM_CRITICAL_FAULT = const(32)
ALARM_LOW_RESERVOIR = const(64)
ALARM_ELECTIVE_REPLACEMENT = const(128)
ALARM_SUSPENDED = const(256)
ALARM_UNDER_DELIVERY = const(512)  # the drug missed in the last 24 h passed UNDER_DELIVERY_PERCENT (controller.py)
ALARM_CLOCK_LOST = const(1024)  # the real-time clock was invalid or behind the journal at boot (firmware/persist.py)
CRITICAL_ALARMS = const(63)
NON_CRITICAL_ALARMS = const(1984)

# Tone classes
NON_CRITICAL = const(1)  # one tone, 1 s, every NON_CRITICAL_REPEAT_MS
CRITICAL = const(2)  # two-tone, 3 s, every critical repeat interval; nothing silences it
CLASS_NAMES = ("", "non_critical", "critical")
NON_CRITICAL_REPEAT_MS = const(3_600_000)
CRITICAL_TONE_S = const(3)
NON_CRITICAL_TONE_S = const(1)


class Alarms:
    """Latched alarms and when they sound.

    An alarm latches while its cause holds (raise_/clear, called by whoever owns the cause) and
    sounds its first tone at the next sound(): at once, in the loop. Repeats: while any critical
    alarm is active, the critical tone every critical_repeat_ms; otherwise one non-critical tone
    every hour, unless silenced (silence lasts until that class's next repeat). Tones are played
    through the annunciator (hal.interfaces Annunciator) and reported as EV_TONE.
    """

    def __init__(self, emit, clock, annunciator=None, critical_repeat_ms=600_000):
        if not 60_000 <= critical_repeat_ms <= 3_600_000 or critical_repeat_ms % 60_000:
            raise ValueError("alarms.critical_repeat_minutes: must be 1..60")
        self._emit = emit
        self._clock = clock
        # A controller run without the main loop (its own tests) has no buzzer: tones are events only.
        self._buzzer = annunciator if annunciator is not None else _NoBuzzer()
        self.active = 0
        self.fresh = 0  # raised since the last sound(): their first tone is due
        self.silenced = 0
        self.critical_repeat_ms = critical_repeat_ms
        self._next_critical = 0  # tick of the next critical repeat (while one is active)
        self._next_non = 0  # tick of the next non-critical repeat
        self.tones = 0  # lifetime count
        self.tone_s = 0  # seconds of the last sound() (for the battery gauge)

    def raise_(self, bit, code, a):
        if not self.active & bit:
            self.active |= bit
            self.fresh |= bit
            if code:
                self._emit(code, a, 0, 0)
            self._emit(EV_ALARM, _id(bit), 1, 0)

    def clear(self, bit, code, a):
        if self.active & bit:
            self.active &= ~bit
            self.fresh &= ~bit
            self.silenced &= ~bit
            if code:
                self._emit(code, a, 0, 0)
            self._emit(EV_ALARM, _id(bit), 0, 0)

    def critical(self):
        return bool(self.active & CRITICAL_ALARMS)

    def silence(self):
        """Silences the active non-critical alarms until their next repeat: OK, or the reason not."""
        bits = self.active & NON_CRITICAL_ALARMS
        if not bits:
            return NOTHING_TO_SILENCE
        self.silenced = bits
        self.fresh &= ~bits
        self._next_non = self._clock.ticks_add(self._clock.ticks_ms(), NON_CRITICAL_REPEAT_MS)
        self._emit(EV_SILENCED, bits, 0, 0)
        return OK

    def sound(self):
        """Plays what is due now (first tones, then repeats); returns the seconds of tone played."""
        self.tone_s = 0
        if not self.active and not self.fresh:  # nothing to sound: the usual wake
            return 0
        now = self._clock.ticks_ms()
        fresh = self.fresh
        if fresh:
            self.fresh = 0
            if fresh & CRITICAL_ALARMS:
                self._tone(_id(fresh & CRITICAL_ALARMS), CRITICAL, now)
            if fresh & NON_CRITICAL_ALARMS:
                self._tone(_id(fresh & NON_CRITICAL_ALARMS), NON_CRITICAL, now)
        if self.active & CRITICAL_ALARMS:
            if self._clock.ticks_diff(now, self._next_critical) >= 0:
                self._tone(_id(self.active & CRITICAL_ALARMS), CRITICAL, now)
        elif self.active & NON_CRITICAL_ALARMS:
            if self._clock.ticks_diff(now, self._next_non) >= 0:
                self.silenced = 0
                self._tone(_id(self.active & NON_CRITICAL_ALARMS), NON_CRITICAL, now)
        return self.tone_s

    def _tone(self, alarm, cls, now):
        if cls == CRITICAL:
            self._next_critical = self._clock.ticks_add(now, self.critical_repeat_ms)
            self.tone_s += CRITICAL_TONE_S
        else:
            self.tone_s += NON_CRITICAL_TONE_S
        # Any tone restarts the hourly non-critical interval: it is heard as often as it repeats.
        self._next_non = self._clock.ticks_add(now, NON_CRITICAL_REPEAT_MS)
        self.tones += 1
        self._buzzer.tone(cls, alarm)
        self._emit(EV_TONE, alarm, cls, self.active)

    def ms_to_next(self, now):
        """ms from the tick now to the next tone due, or -1 if none will sound."""
        if self.fresh:
            return 0
        if self.active & CRITICAL_ALARMS:
            t = self._clock.ticks_diff(self._next_critical, now)
        elif self.active & NON_CRITICAL_ALARMS:
            t = self._clock.ticks_diff(self._next_non, now)
        else:
            return -1
        return t if t > 0 else 0


class _NoBuzzer:
    def tone(self, cls, alarm):
        pass


def _id(bits):
    """The id of the lowest set bit: the most urgent alarm among bits."""
    i = 0
    while not bits & 1:
        bits >>= 1
        i += 1
    return i
