# The virtual boards' flash as a test wants it: erased, and the student's one-time set-up for the
# journal's regions (boards/README.md "The journal's flash region") done or not.

import machine
import vflash

from hal import machine_storage as ms

PORT = machine.PORT
BOARD = {"rp2": "rpi_pico", "esp32": "esp32", "stm32": "pyboard"}[PORT]


def fresh_flash(set_up=True):
    """An erased chip, the fakes reset; returns the board's default journal config."""
    vflash.wipe()
    machine.reset_fakes()
    cfg = ms.defaults(BOARD)
    if PORT == "rp2":
        import rp2

        rp2.format_littlefs(1408 * 1024 if not set_up else cfg["start"])
    elif PORT == "esp32":
        import esp32

        esp32.flash_partition_table(None if not set_up else esp32._TABLE_STOCK + (
            ("journal", 1, 0x81, 0x200000, 0x1C000),))
    else:
        import pyb

        pyb.flash_power_cut(False)
        if set_up:
            pyb.format_littlefs(cfg["start"])
    return cfg
