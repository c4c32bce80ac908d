# Watchdog for a board (hal/interfaces.py: Watchdog) over machine.WDT(timeout=ms).
#
# The timeout each port's machine.WDT accepts (MicroPython v1.28.0), checked here so a bad config
# fails at construction with the same message on every port, before the dog is started:
#   rp2    ports/rp2/machine_wdt.c: WDT_TIMEOUT_MAX 8388 (0xffffff / 2 / 1000: the RP2040 counts
#          the 24-bit load register down twice per µs); the C code takes the ms as uint32, so a
#          negative one "exceeds" too. 0 would start a dog that bites at once: refused here.
#   esp32  ports/esp32/machine_wdt.c: timeout_ms <= 0 is "WDT timeout too short"; no upper bound
#          there (ESP-IDF's task watchdog takes a uint32 of ms): bounded here by the small ints.
#   stm32  ports/stm32/machine_wdt.c: the IWDG at about 32 kHz / 4 (8 ticks a ms), a 12-bit reload
#          and a prescaler of up to 6 halvings: 1..32767 ms (32768 halves to 512, 4096 ticks: "too long").
# Another port ("pyboard" is stm32's sys.platform): refused, its limits are unknown.

import sys

import machine

LIMITS_MS = {"rp2": (1, 8388), "esp32": (1, 0x3FFFFFFF), "stm32": (1, 32767)}
_PLATFORM_PORT = {"rp2": "rp2", "esp32": "esp32", "pyboard": "stm32"}


def port_name():
    """The port this runs on: the virtual board's machine.PORT, else from sys.platform."""
    p = getattr(machine, "PORT", None)
    return p if p is not None else _PLATFORM_PORT.get(sys.platform, sys.platform)


def check_timeout(port, timeout_ms):
    """Raises ValueError unless timeout_ms is an int the port's machine.WDT takes."""
    limits = LIMITS_MS.get(port)
    if limits is None:
        raise ValueError("watchdog: no known timeout limits for port %r" % (port,))
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) \
            or not limits[0] <= timeout_ms <= limits[1]:
        raise ValueError("watchdog.timeout_ms: must be an integer %d..%d on %s, not %r" % (
            limits[0], limits[1], port, timeout_ms))


class MachineWatchdog:
    """Starts machine.WDT(timeout=timeout_ms) at once: it can never be stopped."""

    def __init__(self, timeout_ms, port=None):
        port = port if port is not None else port_name()
        check_timeout(port, timeout_ms)
        self.timeout_ms = timeout_ms
        self._wdt = machine.WDT(timeout=timeout_ms)
        self.feed = self._wdt.feed  # bound once: the loop feeds at every wake
