# ESP32: the step engine is the RMT peripheral (MicroPython 1.27+ and older RMT APIs); the
# ULN2003 is stepped from a machine.Timer. Everything else is shared. Runs on boot.

from pumpboard import boot


def make_steps(cfg):
    if cfg.driver == "uln2003":
        from hal.steps_timer import TimerPhases

        return TimerPhases(cfg.phase_pins, cfg.steps_per_s, timer_id=0)  # the ESP32 has hardware timers 0..3 only
    from hal.steps_esp32 import RmtSteps

    return RmtSteps(cfg.step_pin, cfg.dir_pin, cfg.steps_per_s)


boot("esp32", make_steps, fault_led=2)  # GPIO 2: the LED of most ESP32 dev kits
