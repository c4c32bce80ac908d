# pyboard (STM32): the step engine is a pyb.Timer in PWM mode counting its periods; the ULN2003
# is stepped from a pyb.Timer's update IRQ (machine.Timer here is a soft timer with a whole-ms
# period: 300 steps/s would run at 333). Everything else is shared. Runs on boot.

from pumpboard import boot


def make_steps(cfg):
    if cfg.driver == "uln2003":
        import pyb

        from hal.steps_timer import TimerPhases

        return TimerPhases(cfg.phase_pins, cfg.steps_per_s, timer=pyb.Timer(cfg.timer, freq=cfg.steps_per_s))
    from hal.steps_pyb import TimerSteps

    return TimerSteps(cfg.timer, cfg.timer_channel, cfg.step_pin, cfg.dir_pin, cfg.steps_per_s)


boot("pyboard", make_steps, fault_led="LED_RED")  # the pyboard's red LED
