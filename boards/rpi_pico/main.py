# Raspberry Pi Pico (RP2040): the step engine is a PIO state machine; everything else is shared.
# Runs on boot. Its board.json, beside it, says the pins, the driver and the prescription.

from pumpboard import boot


def make_steps(cfg):
    from hal.steps_rp2 import PioPhases, PioSteps

    if cfg.driver == "uln2003":
        return PioPhases(cfg.state_machine, cfg.phase_pins[0], cfg.steps_per_s)
    return PioSteps(cfg.state_machine, cfg.step_pin, cfg.dir_pin, cfg.steps_per_s)


# The board's own LED, for a config that cannot name one: "LED" is GPIO25 on a Pico, the wireless
# chip's WL_GPIO0 on a Pico W, where GPIO25 is that chip's SPI select (ports/rp2/boards/*/pins.csv)
boot("rpi_pico", make_steps, fault_led="LED")
