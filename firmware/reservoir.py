# Reservoir volume, tracked per stroke, and its low and empty thresholds.

from firmware.alarms import (
    ALARM_EMPTY_RESERVOIR,
    ALARM_LOW_RESERVOIR,
    EV_DELIVERY_RESUMED,
    EV_EMPTY_RESERVOIR,
    EV_LOW_RESERVOIR,
    EV_LOW_RESERVOIR_CLEARED,
)


class Reservoir:
    def __init__(self, pump, volume_nl, alarms):
        if not 0 <= volume_nl <= pump.capacity_nl:
            raise ValueError("pump.volume_ml: must be 0..reservoir_ml")
        self.pump = pump
        self.volume_nl = volume_nl
        self._alarms = alarms
        self.check()

    def strokes_available(self):
        """Strokes that leave the volume at or above the empty threshold."""
        spare = self.volume_nl - self.pump.empty_nl
        return spare // self.pump.stroke_nl if spare > 0 else 0

    def strokes_to_low(self):
        """Index of the stroke that takes the volume to the low threshold, or 0 if already there."""
        above = self.volume_nl - self.pump.low_nl
        if above <= 0:
            return 0
        s = self.pump.stroke_nl
        return (above + s - 1) // s

    def empty(self):
        return self.strokes_available() == 0

    def take(self, volume_nl):
        self.volume_nl -= volume_nl

    def check(self):
        """Raise or clear the low and empty alarms for the current volume."""
        # Checked at every change point: raise_() and clear() only when the alarm changes.
        alarms = self._alarms
        v = self.volume_nl
        if v <= self.pump.low_nl:
            if not alarms.active & ALARM_LOW_RESERVOIR:
                alarms.raise_(ALARM_LOW_RESERVOIR, EV_LOW_RESERVOIR, v)
        elif alarms.active & ALARM_LOW_RESERVOIR:
            alarms.clear(ALARM_LOW_RESERVOIR, EV_LOW_RESERVOIR_CLEARED, v)
        if v - self.pump.empty_nl < self.pump.stroke_nl:  # empty(): no stroke left above the threshold
            if not alarms.active & ALARM_EMPTY_RESERVOIR:
                alarms.raise_(ALARM_EMPTY_RESERVOIR, EV_EMPTY_RESERVOIR, v)
        elif alarms.active & ALARM_EMPTY_RESERVOIR:
            alarms.clear(ALARM_EMPTY_RESERVOIR, EV_DELIVERY_RESUMED, v)
