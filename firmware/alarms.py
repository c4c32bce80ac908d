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
)

# Alarm bits
ALARM_LOW_RESERVOIR = const(1)  # non-critical
ALARM_EMPTY_RESERVOIR = const(2)  # critical: medication no longer flowing
CRITICAL_ALARMS = const(2)


class Alarms:
    def __init__(self, emit):
        self._emit = emit
        self.active = 0

    def raise_(self, bit, code, a):
        if not self.active & bit:
            self.active |= bit
            self._emit(code, a, 0, 0)

    def clear(self, bit, code, a):
        if self.active & bit:
            self.active &= ~bit
            self._emit(code, a, 0, 0)

    def critical(self):
        return bool(self.active & CRITICAL_ALARMS)
