"""The simulator's watchdog (hal/interfaces.py "Watchdog"): the firmware's HAL backend in sim/.

It bites TIMEOUT_MS after the last feed, as machine.WDT does on a board: sim/runner.py's wait()
treats its expiry as an event, and a bite resets the firmware through the runner's _Reset path
(cause "watchdog"). A hung loop (the scenario's `hang` fault) never feeds it again.
"""

# Longer than a board's (rp2 takes 8388 ms at most, hal/machine_watchdog.py): the loop wakes at
# least every timeout // 2 to feed, and at 8 s a simulated year would take some 8 million wakes
# (12 days of the default scenario with a journal: 259,447 wakes and 5.9 s at 8 s; 34,870 and
# 0.9 s at 1 minute; 3,899 and 0.2 s at 10 minutes). At 2 hours the feeding wakes fall on the
# hourly self-tests' (30 days of the default scenario with a journal: 1,852 wakes and 0.20 s; 2,327
# and 0.23 s at 1 hour; 1,132 and 0.11 s before the watchdog and self-tests). A hang is reset up to
# this long after the loop's last feed; the time is written off as any outage's.
TIMEOUT_MS = 7_200_000


class SimWatchdog:
    def __init__(self, clock, timeout_ms=TIMEOUT_MS):
        self._clock = clock
        self.timeout_ms = timeout_ms
        self.fed_ms = clock.now_ms  # started with the firmware: its countdown runs from the boot
        self.feeds = 0

    def feed(self):
        self.fed_ms = self._clock.now_ms
        self.feeds += 1

    def expires_ms(self):
        """The simulated ms at which it bites unless fed before."""
        return self.fed_ms + self.timeout_ms
