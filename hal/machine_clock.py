# Clock backend for MicroPython boards: the port's own wrapping ticks.

import time


class MachineClock:
    def __init__(self):
        # Bound once: the controller calls these on every wake.
        self.ticks_ms = time.ticks_ms
        self.ticks_add = time.ticks_add
        self.ticks_diff = time.ticks_diff
