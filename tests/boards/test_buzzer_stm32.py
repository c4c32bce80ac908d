# The pyboard's buzzer (hal/machine_buzzer.py) on a pyb.Timer PWM channel, on the virtual stm32
# port, every release modelled (1.24 has no machine.PWM): on CPython and the MicroPython unix port.
# Timer values expected from ports/stm32/timer.c, pins from stm32f405_af.csv and PYBV11/pins.csv.

import machine
import port_time
import pyb

port_time.install()  # CPython: the port's time.ticks_* (hal/machine_*.py bind them)

from support import FakeClock  # noqa: E402

from hal.machine_buzzer import CRITICAL, CRITICAL_PATTERN, Buzzer, pyb_timer_channels  # noqa: E402


def _root():
    parts = __file__.replace("\\", "/").split("/")
    return "/".join(parts[:-3]) or "."


ROOT = _root()


def _main_pump():
    """boards/pyboard/main.py's Pump, built from its shipped board.json as boot() builds it."""
    import sys

    if ROOT + "/boards" not in sys.path:
        sys.path.append(ROOT + "/boards")
    import pumpboard

    from firmware.config import load

    calls = []
    real_boot = pumpboard.boot
    pumpboard.boot = lambda board, make_steps, path="board.json", fault_led=None: calls.append(make_steps)
    try:
        with open(ROOT + "/boards/pyboard/main.py") as f:
            exec(f.read(), {"__name__": "main"})
    finally:
        pumpboard.boot = real_boot
    with open(ROOT + "/boards/pyboard/board.json") as f:
        cfg = load(f.read(), "pyboard")
    return pumpboard.Pump(cfg, calls[0](cfg)), cfg


def _output(b):
    """(Hz, compare, period + 1) the buzzer's timer channel is set to."""
    tim = b._pwm.tim
    top = tim.period() + 1
    div = (tim.prescaler() + 1) * top
    return (tim.source_freq() + div // 2) // div, b._pwm.ch.pulse_width(), top


def test_the_pyboards_main_builds_its_pump_and_sounds_a_tone():
    # Defect 1 (issue 13): the buzzer needed machine.PWM, which the stm32 port has only from 1.28.0:
    # on 1.24..1.27 the pyboard's main.py stopped with AttributeError.
    machine.reset_fakes()
    pump, cfg = _main_pump()
    b = pump.buzzer
    assert b._pwm.tim.id != cfg.timer and b._pwm.ch.drives_pin
    fake = FakeClock()
    b.ticks_ms = fake.ticks_ms
    b._ticks_add = fake.ticks_add
    b._ticks_diff = fake.ticks_diff
    b.tone(CRITICAL, 0)
    b.poll(0)
    hz, cmp, top = _output(b)
    assert hz == CRITICAL_PATTERN[0][0] and 2 * cmp in (top - 1, top)  # 50 %, to one timer tick
    fake.advance(CRITICAL_PATTERN[0][1])
    b.poll(0)
    hz, cmp, top = _output(b)
    assert hz == CRITICAL_PATTERN[1][0] and 2 * cmp in (top - 1, top)  # a new period, its own 50 %


def test_the_buzzer_takes_its_pins_channel_never_the_step_timers():
    machine.reset_fakes()
    b = Buzzer("X9")  # PB6: TIM4_CH1 only
    assert (b._pwm.tim.id, b._pwm.ch.number) == (4, 1) and b._pwm.ch.drives_pin
    machine.reset_fakes()
    b = Buzzer("X1", step_timer=2)  # PA0: TIM2_CH1 (the step engine's timer) or TIM5_CH1
    assert (b._pwm.tim.id, b._pwm.ch.number) == (5, 1) and b._pwm.ch.drives_pin
    machine.reset_fakes()
    b = Buzzer("X1", step_timer=5)
    assert (b._pwm.tim.id, b._pwm.ch.number) == (2, 1)
    for pin, step_timer in (("Y9", 2), ("X5", 2), ("X11", 4)):  # PB10: TIM2_CH3 only; PA4, PC4: none
        machine.reset_fakes()
        try:
            Buzzer(pin, step_timer)
        except ValueError as e:
            assert str(e).startswith("board.json: buzzer_pin: '%s' has no timer channel" % pin), str(e)
        else:
            raise AssertionError("buzzer on %s with motor.timer %d accepted" % (pin, step_timer))


def test_every_pin_the_buzzer_knows_is_driven_by_that_channel():
    # The buzzer's table against the virtual port's alternate functions: each (timer, channel) is a
    # TIMn_CHm function of the pin, and every X/Y pin with such a function is in the table.
    names = ["X%d" % i for i in range(1, 23) if not 13 <= i <= 16] + ["Y%d" % i for i in range(1, 13)]
    for name in names:
        machine.reset_fakes()
        chans = [(t, int(f[2:])) for _, t, f in machine.Pin(name).timer_afs() if f in ("CH1", "CH2", "CH3", "CH4")]
        assert list(pyb_timer_channels(name)) == chans, (name, pyb_timer_channels(name), chans)
        for t, c in chans:
            ch = pyb.Timer(t, freq=1000).channel(c, pyb.Timer.PWM, pin=pyb.Pin(name))
            assert ch.drives_pin, (name, t, c)
