# pyboard (STM32): the step engine is a pyb.Timer in PWM mode counting its periods; the ULN2003
# is stepped from a pyb.Timer's update IRQ (machine.Timer here is a soft timer with a whole-ms
# period: 300 steps/s would run at 333). Everything else is shared. Runs on boot.

try:
    from pumpboard import boot
except MemoryError:
    # Loaded from the filesystem, the pump's bytecode alone needs more than the pyboard v1.1's GC
    # heap (about 100 KB: 128 KB of RAM less the stack and static data; `make heap` measures it).
    # A frozen build runs it from flash: boards/pyboard/README.md, "Memory".
    print("pump stopped: out of memory loading the pump's modules: build MicroPython with "
          "boards/pyboard/manifest.py (frozen; boards/pyboard/README.md, Memory)")
    raise SystemExit from None  # MicroPython parses `from` and drops it


def make_steps(cfg):
    if cfg.driver == "uln2003":
        import pyb

        from hal.steps_timer import TimerPhases

        return TimerPhases(cfg.phase_pins, cfg.steps_per_s, timer=pyb.Timer(cfg.timer, freq=cfg.steps_per_s))
    from hal.steps_pyb import TimerSteps

    return TimerSteps(cfg.timer, cfg.timer_channel, cfg.step_pin, cfg.dir_pin, cfg.steps_per_s)


boot("pyboard", make_steps, fault_led="LED_RED")  # the pyboard's red LED
