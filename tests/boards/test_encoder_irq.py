# The motor's encoder counts rotor pulses in a hard IRQ where the port's Pin.irq has `hard`
# (ports/rp2/machine_pin.c and ports/stm32/pin.c: handler, trigger, hard), and a scheduled one on
# the esp32, whose Pin.irq takes handler, trigger, wake only (ports/esp32/machine_pin.c, v1.24.0..
# v1.28.0). On every virtual port, on CPython and the MicroPython unix port.

import machine
from steps_support import alloc, raises

from hal.machine_motor import StrokeMotor

HARD = {"rp2": True, "stm32": True, "esp32": False}[machine.PORT]
PIN = {"rp2": 13, "stm32": "X9", "esp32": 13}[machine.PORT]


class _Clock:
    def ticks_add(self, t, d):
        return t + d

    def ticks_diff(self, a, b):
        return a - b


class _Steps:
    def bursts(self):
        return 0

    def busy(self):
        return False


def _handler(_):
    pass


def test_the_encoder_asks_for_a_hard_irq_where_the_port_has_one_and_allocates_nothing():
    machine.reset_fakes()
    motor = StrokeMotor(_Clock(), _Steps(), 200)
    motor.encoder(PIN, 4)
    pin = machine.Pin.get(PIN)
    handler = motor._enc_ref
    assert pin.handler == handler and pin.trigger == machine.Pin.IRQ_RISING
    assert pin.hard is HARD, (machine.PORT, pin.hard)
    if not HARD:
        assert raises(TypeError, lambda: pin.irq(handler=_handler, hard=True))
    pin.drive(1)
    pin.drive(0)
    pin.drive(1)
    pin.drive(0)
    assert motor._pulses == 2

    def pulse():
        handler(pin)

    def edge():
        pin.drive(1)  # the fake runs a hard handler with the heap locked, as mp_irq_dispatch does
        pin.drive(0)

    used = alloc(pulse)
    assert used in (None, 0), used
    assert motor._pulses == 402  # alloc() calls it 2 x 200 times
    if HARD:  # (the esp32 fake's scheduler is Python: its own allocations would count here)
        used = alloc(edge)
        assert used in (None, 0), used
        assert motor._pulses == 802 and pin.handler == handler  # a hard handler that failed is disabled
