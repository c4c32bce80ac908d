# The virtual stm32 port (boards/virtual/stm32: machine, pyb) behaves as MicroPython's stm32 port
# on a pyboard v1.1, errors included: each expected value here is read from MicroPython's sources
# (named beside it, v1.24.0..v1.28.0), never from the fake. On CPython and the unix port.

import machine
import pyb
import vport
from support import skip

MICROPYTHON = __import__("sys").implementation.name == "micropython"


def _raises(exc_type, fn, *args, **kw):
    """The message of the exc_type fn raised (AssertionError if it did not)."""
    try:
        fn(*args, **kw)
    except exc_type as e:
        return str(e)
    raise AssertionError("%s not raised" % exc_type.__name__)


class _NoDict:
    """Pin.dict() cleared while a test runs (test_machine_backends maps GPIO numbers with it)."""

    def __enter__(self):
        self.saved = machine.Pin.dict()
        machine.Pin.dict(None)

    def __exit__(self, *exc):
        machine.Pin.dict(self.saved)
        return False


# -- machine.Pin: names only (ports/stm32/pin.c pin_find, PYBV11/pins.csv) ---------------------------


def test_pins_are_the_pyboards_names():
    machine.reset_fakes()
    with _NoDict():
        for name in ("X1", "X12", "X17", "X22", "Y1", "Y12", "LED_RED", "LED_BLUE", "SW", "A0", "B6", "C13"):
            machine.Pin(name)
        # X13..X16, X23, X24 are reset/power pins: commented out of pins.csv; no "LED" on a pyboard
        for name in ("X13", "X16", "X23", "X24", "Y13", "LED", "Z9", "PA0", "A16"):
            assert _raises(ValueError, machine.Pin, name) == "Pin(%s) doesn't exist" % name
        # not a str: mp_obj_str_get_str() on the error path (py/objstr.c)
        for bad, kind in ((5, "int"), (2.0, "float")):
            assert _raises(TypeError, machine.Pin, bad) == "can't convert '%s' object to str implicitly" % kind
        # X1 is the cpu pin A0: one pin object (the port's pins are constants)
        assert machine.Pin("X1") is machine.Pin("A0") and machine.Pin("A0").id == "X1"
        assert machine.Pin("X17") is machine.Pin("SW")  # both PB3
        assert machine.Pin("X9").name() == "B6" and machine.Pin("X9").names() == ["B6", "X9"]


def test_pin_dict_and_mapper_map_other_ids():
    machine.reset_fakes()
    with _NoDict():
        machine.Pin.dict({7: machine.Pin("Y7")})
        assert machine.Pin(7) is machine.Pin("Y7") and machine.Pin.get(7) is machine.Pin("Y7")
        assert _raises(TypeError, machine.Pin, 8)  # not in the dict: as before
    saved = machine.Pin.mapper()
    try:
        machine.Pin.mapper(lambda i: machine.Pin("Y8") if i == "pump" else None)
        assert machine.Pin("pump") is machine.Pin("Y8")
    finally:
        machine.Pin.mapper(saved)


def test_pin_modes_and_af():
    machine.reset_fakes()
    p = machine.Pin("X1")
    # pin_obj_init_helper(): an AF mode needs an af 0..15
    assert _raises(ValueError, p.init, machine.Pin.ALT) == "invalid pin af: -1"
    p.init(machine.Pin.AF_PP, alt=1)
    assert p.mode == machine.Pin.ALT and p.alt == 1
    assert _raises(ValueError, p.init, 99) == "invalid pin mode: 99"
    # af_list(): AF<index>_TIM<n> names (stm32f4xx_prefix.c AF()); PA0: AF1 TIM2 (CH1, ETR), AF2 TIM5, AF3 TIM8
    assert [(a.index(), a.name()) for a in p.af_list()] == [(1, "AF1_TIM2"), (1, "AF1_TIM2"), (2, "AF2_TIM5"),
                                                             (3, "AF3_TIM8")]


# -- machine.ADC (ports/stm32/machine_adc.c) ---------------------------------------------------------


def test_adc_only_on_pins_with_an_adc_channel():
    machine.reset_fakes()
    # stm32f405_af.csv ADC column: PA0 ADC123_IN0, PC0 ADC123_IN10, PB1 ADC12_IN9
    assert machine.ADC("X1").channel == 0 and machine.ADC(machine.Pin("X19")).channel == 10
    assert machine.ADC("Y12").channel == 9
    for name, cpu in (("X9", "B6"), ("Y1", "C6"), ("LED_RED", "A13")):
        assert _raises(ValueError, machine.ADC, name) == "Pin(%s) does not have ADC capabilities" % cpu
    assert machine.ADC(16).channel == 16  # an int is an ADC1 channel, unchecked
    assert _raises(TypeError, machine.ADC, "X1", atten=3)  # one positional argument only


# -- machine.PWM: from v1.28.0 only (ports/stm32/mpconfigport.h MICROPY_PY_MACHINE_PWM) -----------------


def test_machine_pwm_exists_from_1_28_only():
    machine.reset_fakes()
    if not vport.at_least(1, 28):
        assert not hasattr(machine, "PWM")
        assert _raises(AttributeError, getattr, machine, "PWM")
        return
    pwm = machine.PWM("X9")
    pwm.freq(7)  # machine_pwm.c: only freq <= 0 is "too small"
    assert _raises(ValueError, pwm.freq, 0) == "freq too small"
    assert _raises(ValueError, pwm.freq, 60_000_000) == "freq too large"  # 84 MHz / 60 MHz rounds to 1
    assert _raises(ValueError, machine.PWM, "X5") == "Pin(A4) doesn't have PWM capabilities"


# -- machine.Timer: extmod/machine_timer.c's soft timer -------------------------------------------------


def test_machine_timer_is_the_whole_ms_soft_timer():
    machine.reset_fakes()
    assert _raises(ValueError, machine.Timer, 0) == "Timer doesn't exist"  # only -1
    hits = []
    t = machine.Timer(-1, freq=300, callback=hits.append)
    assert t.period_ms == 3 and not t.hard  # delta_ms = (uint32_t)(1000.0 / 300): 333 Hz
    assert machine.Timer(freq=3000, callback=hits.append).period_ms == 1  # at least 1 ms: 1000 Hz
    assert machine.Timer(period=5, tick_hz=100, callback=hits.append).period_ms == 50
    assert _raises(ValueError, machine.Timer, freq=0, callback=hits.append) == "period too large"
    t.init(mode=machine.Timer.ONE_SHOT, period=10, callback=hits.append)
    machine.hold_scheduler(True)  # the main program busy: scheduled callbacks wait
    try:
        assert t.fire() and not t.fire() and hits == []  # scheduled, not called
    finally:
        machine.hold_scheduler(False)
    assert hits == [t]


def test_machine_timer_hard_keyword_from_1_28():
    machine.reset_fakes()
    hits = []
    if not vport.at_least(1, 28):
        assert _raises(TypeError, machine.Timer, freq=100, callback=hits.append, hard=True)
        return
    t = machine.Timer(freq=100, callback=hits.append, hard=True)
    assert t.fire() and hits == [t]  # a hard callback runs at once


def test_machine_timer_full_schedule_queue_loses_the_tick():
    machine.reset_fakes()
    hits = []
    t = machine.Timer(freq=1000, callback=hits.append)
    machine.hold_scheduler(True)
    try:
        for _ in range(10):
            t.fire()
    finally:
        machine.hold_scheduler(False)
    # MICROPY_SCHEDULER_DEPTH 8 (ports/stm32/mpconfigport.h); softtimer.c ignores a full queue
    assert len(hits) == 8 and machine.scheduled_lost == 2


# -- pyb.Timer (ports/stm32/timer.c) -----------------------------------------------------------------


def test_pyb_timer_ids_and_identity():
    machine.reset_fakes()
    for bad in (0, 15):
        assert _raises(ValueError, pyb.Timer, bad) == "Timer(%d) doesn't exist" % bad
    assert pyb.Timer(4) is pyb.Timer(4, freq=1000)  # MP_STATE_PORT(pyb_timer_obj_all)
    assert _raises(TypeError, pyb.Timer(4).init)  # neither freq, period nor prescaler and period


def test_pyb_timer_freq_as_the_port_computes_it():
    machine.reset_fakes()
    # compute_prescaler_period_from_freq(): period = source // freq, then while it does not fit the
    # counter: /5 if exact, /3 if exact, else halve; registers hold prescaler - 1 and period - 1.
    # Sources: 84 MHz (TIM2..7, 12..14), 168 MHz (TIM1, 8..11); TIM2 and TIM5 are 32-bit.
    # e.g. 84 MHz / 220 = 381818: halve (190909), halve (95454), /3: prescaler 12, period 31818
    for tim_id, freq, psc, arr in ((2, 1000, 0, 83_999), (4, 1000, 4, 16_799), (4, 220, 11, 31_817),
                                   (1, 1000, 4, 33_599), (5, 1, 0, 83_999_999), (3, 880, 2, 31_817)):
        t = pyb.Timer(tim_id, freq=freq)
        assert (t.prescaler(), t.period()) == (psc, arr), (tim_id, freq, t.prescaler(), t.period())
    assert pyb.Timer(4, freq=1000).freq() == 1000
    assert isinstance(pyb.Timer(4, freq=220).freq(), float)  # not exact: a float
    assert _raises(ValueError, pyb.Timer, 4, freq=0) == "must have positive freq"
    if vport.at_least(1, 27):
        assert not pyb.Timer(4, freq=10, hard=False).hard  # the keyword appears in v1.27.0
    else:
        assert _raises(TypeError, pyb.Timer, 4, freq=10, hard=False)


def test_pyb_channel_pin_needs_an_alt_of_its_timer():
    machine.reset_fakes()
    t = pyb.Timer(2, freq=1000)
    # pin_find_af(pin, AF_FN_TIM, 2): X9 (PB6) has TIM4 only
    assert _raises(ValueError, t.channel, 1, pyb.Timer.PWM, pin=pyb.Pin("X9")) == \
        "Pin(B6) doesn't have an alt for Timer(2)"
    msg = "pin argument needs to be %sa Pin type" % ("" if vport.at_least(1, 25) else "be ")
    assert _raises(ValueError, t.channel, 1, pyb.Timer.PWM, pin="X1") == msg
    ch = t.channel(1, pyb.Timer.PWM, pin=pyb.Pin("X1"))
    assert ch.drives_pin and pyb.Pin("X1").mode == pyb.Pin.AF_PP and pyb.Pin("X1").alt == 1
    # any TIM2 function will do for the port, even another channel's: X1 is TIM2 CH1, not CH3
    assert not t.channel(3, pyb.Timer.PWM, pin=pyb.Pin("X1")).drives_pin
    assert t.channel(3) is not None and t.channel(4) is None
    assert _raises(ValueError, t.channel, 5, pyb.Timer.PWM) == "invalid channel (5)"


def test_pyb_compare_and_period_are_preloaded_and_freq_keeps_the_compare():
    machine.reset_fakes()
    t = pyb.Timer(4, freq=1000)
    ch = t.channel(1, pyb.Timer.PWM, pin=pyb.Pin("X9"), pulse_width_percent=50)
    assert ch.pulse_width() == 8400  # 50 * 16800 // 100: written at once at configuration
    t.advance(1)
    assert ch.pulses == 1
    ch.pulse_width(0)
    assert ch.pulse_width() == 0 and ch.compare == 8400  # lands at the next update
    t.advance(1)
    assert ch.compare == 0 and ch.pulses == 1
    ch.pulse_width_percent(50)
    t.freq(500)  # pyb_timer_freq(): PSC and ARR only; the compare stays 8400 (25 % of 33600)
    assert t.period() == 33_599 and ch.pulse_width() == 8400
    assert ch.pulse_width_percent() == 25.0


def test_pyb_update_held_while_irqs_are_off():
    machine.reset_fakes()
    t = pyb.Timer(4, freq=1000)
    hits = []
    t.callback(hits.append)
    t.advance(1)
    assert hits == [t]
    irq = pyb.disable_irq()
    t.advance(1)
    assert hits == [t]  # held: the NVIC pending bit
    t.advance(1)  # a second update while pending: still one pending bit
    pyb.enable_irq(irq)
    assert hits == [t, t] and t.updates == 3
    seen = []
    pyb.on_call(seen.append)
    try:
        pyb.enable_irq(pyb.disable_irq())
    finally:
        pyb.on_call(None)
    assert seen == ["disable_irq", "enable_irq"]


def test_pyb_callback_is_a_hard_irq():
    machine.reset_fakes()
    t = pyb.Timer(4, freq=1000)
    t.callback(lambda tim: 1 // 0)
    t.advance(2)
    # timer_handle_irq_channel(): the exception is printed and the callback disabled
    assert isinstance(t.uncaught, ZeroDivisionError) and t._callback is None
    if not MICROPYTHON:
        skip("the GC lock of a hard IRQ is modelled on MicroPython (heap_lock)")
    t.callback(lambda tim: [tim])  # allocates: MemoryError with the GC locked
    machine.set_record(False)  # (the lock is modelled while the fakes record nothing)
    try:
        t.advance(1)
    finally:
        machine.set_record(True)
    assert isinstance(t.uncaught, MemoryError) and t._callback is None
