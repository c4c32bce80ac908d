# The virtual rp2 port's machine (boards/virtual/rp2/machine.py) against the port's own sources:
# every expected value below is read from MicroPython v1.24.0..v1.28.0, file named beside it, never
# from the fake. On CPython (pytest) and on the MicroPython unix port (tools/run_boards.sh).

import machine
import vmachine
import vport
from steps_support import MICROPYTHON


def _error(fn, *args, **kw):
    """(exception type name, message) that fn(*args, **kw) raised, or None."""
    try:
        fn(*args, **kw)
    except Exception as e:
        return (type(e).__name__, str(e))
    return None


def _never(_):
    raise AssertionError("the callback ran")


# -- Pin -----------------------------------------------------------------------------------------


def test_pin_ids_are_the_gpio_numbers_and_the_pico_pins_csv_names():
    machine.board("RPI_PICO")
    # ports/rp2/machine_pin.c machine_pin_find: an int 0..NUM_BANK0_GPIOS-1 (30 on the RP2040)
    for i in range(30):
        assert machine.Pin(i).id == i
        assert machine.Pin("GPIO%d" % i) is machine.Pin(i)  # cpu names (make-pins.py adds all 30)
    # ports/rp2/boards/RPI_PICO/pins.csv: GP0..GP22, GP25..GP28, LED = GPIO25
    for i in list(range(23)) + [25, 26, 27, 28]:
        assert machine.Pin("GP%d" % i) is machine.Pin(i)
    assert machine.Pin("LED") is machine.Pin(25) is machine.Pin.get("LED") is machine.Pin.get(25)
    for name in ("GP23", "GP24", "GP29", "X1", "LED_RED", "gp2", "WL_GPIO0"):
        assert _error(machine.Pin, name) == ("ValueError", 'unknown named pin "%s"' % name), name
    for bad in (30, 47, -1, 2.0, None, True):  # bool: not mp_obj_is_int
        assert _error(machine.Pin, bad) == ("ValueError", "invalid pin"), bad


def test_a_pin_is_one_object_per_gpio_and_init_sets_the_pull_every_time():
    machine.reset_fakes()
    p = machine.Pin(14, machine.Pin.IN, machine.Pin.PULL_UP)
    p.irq(handler=_never, trigger=machine.Pin.IRQ_RISING)
    q = machine.Pin(14)  # mp_pin_make_new: the table's object; Pin(id) alone configures nothing
    assert q is p and q.handler is _never and q.pull == machine.Pin.PULL_UP and q.value() == 1
    assert p.irq() is p and p.handler is _never  # irq() without arguments changes nothing
    machine.Pin(14, machine.Pin.IN)  # machine_pin_obj_init_helper: the pull always (None: none)
    assert p.pull is None and p.value() == 0
    o = machine.Pin(3, value=1)  # a value without a mode is not applied
    assert o.history == [] and o.mode == machine.Pin.IN
    o.init(machine.Pin.OUT, value=1)
    assert o.history == [1] and o.value() == 1
    o.init(machine.Pin.OPEN_DRAIN, value=0)  # mp_hal_pin_open_drain_with_value: driven low reads 0
    o.drive(1)
    assert o.value() == 0
    o.value(1)  # released: the line
    assert o.value() == 1


def test_pin_keywords_and_alternate_functions_as_the_port_takes_them():
    machine.reset_fakes()
    # machine_pin.c allowed_args: mode, pull, value, alt; no `drive`
    assert _error(machine.Pin, 2, machine.Pin.OUT, drive=1)[0] == "TypeError"
    # ports/rp2/boards/rp2040_af.csv: AF8 (GPCK) only on GPIO 20..25; AF1..7 and AF9 everywhere
    assert _error(machine.Pin, 2, machine.Pin.ALT, alt=8) == ("ValueError", "invalid pin af: 8")
    assert machine.Pin(21, machine.Pin.ALT, alt=machine.Pin.ALT_GPCK).alt == 8
    assert machine.Pin(2, machine.Pin.ALT, alt=machine.Pin.ALT_PIO0).alt == 6
    assert _error(machine.Pin, 2, machine.Pin.ALT, alt=10) == ("ValueError", "invalid pin af: 10")
    assert _error(machine.Pin(4).irq, _never, machine.Pin.IRQ_RISING, priority=1)[0] == "TypeError"


def test_pico_w_led_is_the_wireless_chips_pin_and_gpio25_its_select_line():
    try:
        machine.board("RPI_PICO_W")
        # ports/rp2/boards/RPI_PICO_W/pins.csv: LED = WL_GPIO0 = EXT_GPIO0; no GP23..GP25, GP29
        led = machine.Pin("LED", machine.Pin.OUT, value=1)
        assert led.ext and led is machine.Pin("WL_GPIO0") is machine.Pin("EXT_GPIO0") is machine.Pin.get("LED")
        assert led is not machine.Pin(25) and led.history == [1]
        assert _error(machine.Pin, "GP25") == ("ValueError", 'unknown named pin "GP25"')
        # The int path takes any GPIO (machine_pin_obj_table): GPIO25 is the chip's SPI select
        # (pico-sdk boards/pico_w.h CYW43_DEFAULT_PIN_WL_CS), not the LED
        cs = machine.Pin(25, machine.Pin.OUT)
        cs.value(1)
        assert cs.wireless == "WL_CS" and led.history == [1]
        assert [machine.Pin(i).wireless is not None for i in (22, 23, 24, 25, 26, 29)] == [
            False, True, True, True, False, True]
        # machine_pin.c / machine_pin_cyw43.c on an external pin
        assert _error(led.irq, _never) == ("ValueError", "expecting a regular GPIO Pin")
        assert _error(machine.Pin, "LED", machine.Pin.IN, machine.Pin.PULL_UP) == (
            "ValueError", "pulls are not supported for external pins")
        assert _error(machine.Pin, "LED", machine.Pin.OPEN_DRAIN) == (
            "ValueError", "only Pin.OUT and Pin.IN are supported for this pin")
        assert _error(machine.ADC, led) == ("ValueError", "Pin doesn't have ADC capabilities")
    finally:
        machine.board("RPI_PICO")


# -- ADC -----------------------------------------------------------------------------------------


def test_adc_takes_a_channel_or_one_of_the_four_adc_gpios():
    machine.reset_fakes()
    # ports/rp2/machine_adc.c: an int below NUM_ADC_CHANNELS (5) is a channel (4: CORE_TEMP); else
    # a pin, which must be GPIO 26..29 (ADC_BASE_PIN 26), channel = gpio - 26
    for ch in range(5):
        assert machine.ADC(ch).channel == ch
    assert machine.ADC.CORE_TEMP == 4
    for gpio in (26, 27, 28, 29):
        assert machine.ADC(gpio).channel == gpio - 26
        assert machine.ADC(machine.Pin(gpio)).channel == gpio - 26
    assert machine.ADC("GP28").channel == 2
    for bad in (5, 15, 25, machine.Pin(0), machine.Pin(14), "GP22"):
        assert _error(machine.ADC, bad) == ("ValueError", "Pin doesn't have ADC capabilities"), bad
    assert _error(machine.ADC, 30) == ("ValueError", "invalid pin")
    assert _error(machine.ADC, 26, atten=3)[0] == "TypeError"  # one argument, no keywords


# -- Timer ---------------------------------------------------------------------------------------


def test_the_shared_timer_and_pin_irq_default_to_soft():
    # hard=False by default: extmod/machine_timer.c, ports/rp2/machine_timer.c,
    # ports/esp32/machine_timer.c; Pin.irq: ports/rp2/machine_pin.c, ports/stm32/pin.c
    assert vmachine.Timer(period=10, callback=_never).hard is False
    t = machine.Timer()
    t.init(period=10, callback=_never)
    assert t.hard is False
    p = machine.Pin(5)
    p.irq(_never)
    assert p.hard is False and p.trigger == machine.Pin.IRQ_FALLING | machine.Pin.IRQ_RISING


def test_rp2_timer_period_is_whole_microseconds_and_hard_comes_in_1_26():
    # ports/rp2/machine_timer.c: delta_us = 1000000.0 / freq, or period * 1000000 / tick_hz,
    # truncated, at least 1; only Timer(-1)
    cases = (({"freq": 300}, 3333), ({"freq": 1000}, 1000), ({"freq": 7}, 142857),
             ({"freq": 2_000_000}, 1), ({"period": 5}, 5000), ({"period": 3, "tick_hz": 10_000}, 300),
             ({"period": 250, "tick_hz": 1_000_000}, 250), ({"freq": 2.5}, 400000))
    for kw, us in cases:
        t = machine.Timer(callback=_never, **kw)
        assert t.period_us == us, (kw, t.period_us)
        assert t.period_ms == (us // 1000 if us % 1000 == 0 else None)
    # no period: 0xffffffff as a 32-bit mp_int_t is -1; (uint64_t)-1 * 1000000 / 1000
    assert machine.Timer(callback=_never).period_us == ((2**64 - 1) * 1_000_000 % 2**64) // 1000
    assert _error(machine.Timer, 0) == ("ValueError", "Timer doesn't exist")
    assert _error(machine.Timer, 1, period=5) == ("ValueError", "Timer doesn't exist")
    t = machine.Timer()
    if vport.at_least(1, 26):
        t.init(period=5, callback=_never, hard=True)
        assert t.hard is True
    else:  # v1.24.0, v1.25.0: allowed_args has no `hard`
        assert _error(t.init, period=5, callback=_never, hard=True) == ("TypeError", "extra keyword arguments given")
        assert _error(t.init, period=5, callback=_never, hard=False)[0] == "TypeError"


def test_a_hard_callback_that_raises_is_stopped_a_soft_one_is_not():
    hits = []

    def boom(t):
        hits.append(1)
        raise RuntimeError("in the handler")

    if vport.at_least(1, 26):
        # mp_irq_dispatch: a hard callback's exception is printed; alarm_callback then returns 0
        t = machine.Timer(mode=machine.Timer.PERIODIC, period=1, callback=boom, hard=True)
        assert t.fire() and not t.active and not t.fire()
        # mp_irq_handler: a Pin's hard handler that raised is disabled
        p = machine.Pin(6, machine.Pin.IN)
        p.irq(boom, machine.Pin.IRQ_RISING, True)
        p.drive(1)
        assert p.handler is None
        assert len(hits) == 2
    t = machine.Timer(period=1, callback=boom)  # soft: scheduled, raised in the main program
    assert _error(t.fire) == ("RuntimeError", "in the handler") and t.active


def test_a_hard_handler_runs_with_the_heap_locked():
    # mp_irq_dispatch: gc_lock() around a hard handler; an allocation raises MemoryError there
    if not MICROPYTHON or not vport.at_least(1, 26):
        return
    out = []

    def allocates(t):
        out.append([t])

    t = machine.Timer(period=1, callback=allocates, hard=True)
    t.fire()
    assert out == [] and not t.active  # the MemoryError stopped it
    t = machine.Timer(period=1, callback=allocates)
    t.fire()
    assert len(out) == 1 and t.active
