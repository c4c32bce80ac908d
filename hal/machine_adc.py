# Battery ADC for a board (hal/interfaces.py: Battery ADC): the cell through a resistor divider.
#
# read_mv() = the mean of SAMPLES raw read_u16() values, times ref_mv / 65535 (the pin's
# voltage), times divider_num / divider_den (the divider: a 3:1 divider has num 3, den 1), floor.
# Integers only, and every intermediate below 2**30 (a small int on 32-bit ports) over the
# whole accepted range, with the exact floor of raw * ref_mv * num / (65535 * den):
#   raw * ref_mv            <= 65535 * MAX_REF_MV      = 327_675_000
#   q * num (q <= ref_mv)   <= MAX_REF_MV * MAX_NUM    =  50_000_000
#   r * num (r < 65535)     <  65535 * MAX_NUM         = 655_350_000
#   SAMPLES * 65535                                     =     524_280
# with 1 <= den <= num <= 4 * den (the cell reads at most 4 times the pin), num <= MAX_NUM.
#
# ESP32: the ADC is set to 11 dB attenuation (about 0..3.1 V full scale, not quite linear near
# the ends): calibrate ref_mv against a meter for a gauge better than about 5 %.

import machine

from micropython import const

SAMPLES = const(8)
FULL_SCALE = const(65535)
MAX_REF_MV = const(5000)
MAX_NUM = const(10_000)
MAX_RATIO = const(4)


def _positive_int(v):
    return not isinstance(v, bool) and isinstance(v, int) and v >= 1


class BatteryAdc:
    def __init__(self, pin, divider_num, divider_den, ref_mv=3300):
        if not _positive_int(divider_num) or not _positive_int(divider_den) or divider_num > MAX_NUM \
                or divider_num < divider_den or divider_num > MAX_RATIO * divider_den:
            raise ValueError("battery divider_num/divider_den: integers with 1 <= den <= num <= 4 * den, num <= 10000")
        if not _positive_int(ref_mv) or ref_mv > MAX_REF_MV:
            raise ValueError("battery ref_mv: must be an integer 1..5000")
        self._num = divider_num
        self._den = divider_den
        self._ref = ref_mv
        if isinstance(pin, (int, str)):
            pin = machine.Pin(pin)
        adc = machine.ADC(pin)
        atten = getattr(machine.ADC, "ATTN_11DB", None)  # ESP32: the full 0..3.1 V range
        if atten is not None and hasattr(adc, "atten"):
            adc.atten(atten)
        self._adc = adc

    def read_raw(self):
        """The mean of SAMPLES conversions, 0..65535."""
        s = 0
        for _ in range(SAMPLES):
            s += self._adc.read_u16()
        return s // SAMPLES

    def read_mv(self):
        return self.to_mv(self.read_raw())

    def to_mv(self, raw):
        """floor(raw * ref_mv * num / (65535 * den)), every intermediate below 2**30."""
        r = raw * self._ref
        q = r // FULL_SCALE  # (no divmod: its tuple would allocate at every wake)
        r -= q * FULL_SCALE
        return (q * self._num + r * self._num // FULL_SCALE) // self._den
