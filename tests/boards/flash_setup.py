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
    vflash.set_up_journal(PORT, cfg, set_up)
    return cfg
