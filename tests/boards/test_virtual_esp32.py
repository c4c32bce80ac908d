# The virtual esp32 port (boards/virtual/esp32) behaves as the port's sources say, errors included:
# esp32.RMT per API (ports/esp32/esp32_rmt.c v1.26.0, v1.28.0; ESP-IDF's rmt drivers under them) and
# machine.Pin, ADC, Timer (ports/esp32/machine_pin.c, machine_adc.c, machine_timer.c). Expected values
# come from those sources. On CPython and the MicroPython unix port, esp32 releases only.

import esp32
import machine
import vport

STEP = (500, 500)  # one step of 1 ms at 1 MHz
LEVELS = (1, 0)


def _rmt127(finite_loop=False, **kw):
    machine.reset_fakes()
    esp32.reset_fakes(127, finite_loop)
    return esp32.RMT(pin=machine.Pin(5, machine.Pin.OUT), resolution_hz=1_000_000, **kw)


def _raises_msg(exc_type, text, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc_type as e:
        return text in str(e)
    return False


def raises(exc_type, fn, *args, **kw):
    return _raises_msg(exc_type, "", fn, *args, **kw)


# -- esp32.RMT, 1.27+ ---------------------------------------------------------------------------------


def test_rmt_api_follows_the_release():
    machine.reset_fakes()
    esp32.reset_fakes()
    assert esp32.RMT is (esp32.RMT127 if vport.at_least(1, 27) else esp32.RMT126)
    r = esp32.RMT(0, pin=5)
    assert hasattr(r, "loop_count") == vport.at_least(1, 27) and hasattr(r, "active") == vport.at_least(1, 27)


def test_rmt_active_false_keeps_tx_ongoing_so_wait_done_never_turns_true():
    # esp32_rmt_deactivate: rmt_disable, enabled = false, tx_ongoing untouched; the aborted
    # transmission's done callback never comes (ESP-IDF rmt_tx_disable recycles it silently)
    r = _rmt127()
    assert r.wait_done() and not r.active()  # not enabled yet
    r.write_pulses(STEP * 10, LEVELS * 10)
    assert r.tx_ongoing == 1 and r.active() and not r.wait_done()
    assert r.active(False) is False
    assert r.tx_ongoing == 1 and not r.ongoing and r.stops == 1
    assert r.wait_done()  # disabled: True
    r.write_pulses(STEP, LEVELS)  # re-enables the channel, one more on the counter
    assert r.enabled and r.tx_ongoing == 2
    r.finish()  # its done callback: minus one
    assert r.tx_ongoing == 1 and not r.ongoing
    for _ in range(3):
        assert not r.wait_done(timeout=0)  # for ever, though nothing is on the wire
    assert r.active()  # enabled && tx_ongoing > 0
    assert r.wait_done(timeout=-1)  # rmt_tx_wait_all_done: nothing in flight
    r.write_pulses(STEP, LEVELS)  # not blocked: the wire is free
    assert r.tx_ongoing == 2
    assert raises(ValueError, r.active, True)  # "activate by calling write_pulses()"


def test_rmt_deinit_resets_and_a_new_rmt_starts_clean():
    r = _rmt127()
    r.write_pulses(STEP, LEVELS)
    r.active(False)
    r.deinit()
    assert r.tx_ongoing == 0 and r.deinited
    assert machine.Pin.get(5).signal is None  # rmt_tx_destroy releases the GPIO
    for call in (r.wait_done, r.clock_div, lambda: r.write_pulses(STEP, LEVELS), lambda: r.loop_count(1)):
        assert _raises_msg(OSError, "already deinitialized", call)
    r.deinit()  # twice is fine
    n = esp32.RMT(pin=machine.Pin(5), resolution_hz=1_000_000)
    assert n.tx_ongoing == 0 and not n.enabled and n.wait_done() and machine.Pin.get(5).signal is n
    n.write_pulses(STEP, LEVELS)
    n.finish()
    assert n.wait_done(timeout=0) and not n.active()


def test_rmt_write_while_transmitting_would_block():
    r = _rmt127()
    r.write_pulses(STEP * 4, LEVELS * 4)
    assert _raises_msg(AssertionError, "blocks", r.write_pulses, STEP, LEVELS)  # rmt_tx_wait_all_done(-1)
    assert _raises_msg(AssertionError, "blocks", r.wait_done, timeout=100)
    assert not r.wait_done(timeout=0)
    r.finish()
    assert r.wait_done(timeout=100)
    r.write_pulses(STEP, LEVELS)
    assert len(r.writes) == 2 and r.lengths_us == [4000, 1000]


def test_rmt_loop_count_breaks_a_loop_only_when_set_to_zero():
    # esp32_rmt_loop_in: deactivate when enabled && tx_ongoing > 0 && old != 0 && new == 0
    r = _rmt127(finite_loop=True)
    r.loop_count(3)
    r.write_pulses(STEP, LEVELS)
    assert r.writes[-1][2] == 3 and r.lengths_us[-1] == 3000 and esp32.steps(r.writes[-1]) == 3
    r.loop_count(5)  # stored for the next write; the running one goes on
    assert r.ongoing and r.stops == 0
    r.loop_count(0)  # breaks it
    assert not r.ongoing and r.stops == 1 and not r.enabled and r.tx_ongoing == 1
    assert raises(ValueError, r.loop_count, -2)
    r2 = _rmt127(finite_loop=True)
    r2.loop_count(-1)
    r2.write_pulses(STEP, LEVELS)
    assert _raises_msg(AssertionError, "never ends", r2.finish)
    assert _raises_msg(AssertionError, "for ever", r2.write_pulses, STEP, LEVELS)


def test_rmt_original_esp32_has_no_loop_count():
    # rmt_transmit: loop_count > 0 without SOC_RMT_SUPPORT_TX_LOOP_COUNT is ESP_ERR_NOT_SUPPORTED,
    # after write_pulses has enabled the channel; nothing goes out
    r = _rmt127()
    r.loop_count(2)
    assert raises(OSError, r.write_pulses, STEP, LEVELS)
    assert r.enabled and r.tx_ongoing == 0 and r.writes == [] and r.wait_done()
    r.loop_count(0)
    r.write_pulses(STEP, LEVELS)
    assert r.tx_ongoing == 1


def test_rmt_abort_of_a_transmission_over_300_ms_panics_an_original_esp32():
    for abort in ("active", "deinit", "loop_count"):
        for finite_loop in (False, True):
            r = _rmt127(finite_loop=finite_loop)
            if abort == "loop_count":
                if not finite_loop:
                    continue
                r.loop_count(301)  # 301 ms
                r.write_pulses(STEP, LEVELS)
            else:
                r.write_pulses((30_000, 1000) * 10, LEVELS * 10)  # 310 ms
            assert r.lengths_us[-1] > 300_000
            call = {"active": lambda: r.active(False), "deinit": r.deinit, "loop_count": lambda: r.loop_count(0)}[abort]
            if finite_loop:
                call()  # S3/C3: no panic
                assert esp32.aborted_long == 0 and r.stops == 1
            else:
                assert _raises_msg(AssertionError, "panics", call)
                assert esp32.aborted_long == 1
    r = _rmt127()
    r.write_pulses((25_000, 25_000) * 6, LEVELS * 6)  # 300 ms exactly: not over
    r.deinit()
    assert esp32.aborted_long == 0 and r.stops == 1


def test_rmt_constructor_1_27():
    machine.reset_fakes()
    esp32.reset_fakes(127)
    assert _raises_msg(TypeError, "'pin' argument required", esp32.RMT)
    assert _raises_msg(TypeError, "extra positional", esp32.RMT, 0, 5)  # pin is keyword-only
    assert _raises_msg(TypeError, "extra keyword", esp32.RMT, pin=5, loop=True)
    assert _raises_msg(ValueError, "mutually exclusive", esp32.RMT, pin=5, resolution_hz=1000, clock_div=8)
    assert raises(ValueError, esp32.RMT, pin=5, resolution_hz=0)
    assert raises(ValueError, esp32.RMT, pin=5, clock_div=256)
    assert _raises_msg(ValueError, "at least 64", esp32.RMT, pin=5, num_symbols=48)  # the original ESP32
    assert raises(ValueError, esp32.RMT, pin=5, num_symbols=65)
    assert _raises_msg(ValueError, "invalid pin", esp32.RMT, pin=28)  # no GPIO 28 on an ESP32
    assert raises(OSError, esp32.RMT, pin=34)  # input only
    r = esp32.RMT(pin=5)
    assert r.resolution_hz == 10_000_000 and r.clock_div() == 8 and esp32.RMT.source_freq() == 80_000_000
    assert esp32.RMT(pin=5, clock_div=80).resolution_hz == 1_000_000
    assert esp32.RMT.PULSE_MAX == 32767
    for _ in range(4):
        esp32.RMT(pin=5)
    esp32.RMT(pin=5, num_symbols=128)  # two memory blocks: all 8 of the ESP32's taken
    assert raises(OSError, esp32.RMT, pin=5)  # "no free tx channels"
    r.deinit()
    esp32.RMT(pin=5)
    esp32.reset_fakes(127, True)
    assert esp32.RMT(pin=5, num_symbols=48).num_symbols == 48  # S3/C3: 48-symbol blocks


def test_rmt_write_pulses_modes_and_durations():
    r = _rmt127()
    r.write_pulses((10, 20, 30), True)  # mode 1: levels toggle from `data`
    r.finish()
    r.write_pulses(7, (1, 0, 1))  # mode 2: one duration
    r.finish()
    assert [esp32.expand(w) for w in r.writes] == [[(1, 10), (0, 20), (1, 30)], [(1, 7), (0, 7), (1, 7)]]
    assert raises(ValueError, r.write_pulses, (1, 2), (1,))
    assert raises(ValueError, r.write_pulses, (), True)  # "No pulses"
    assert _raises_msg(AssertionError, "15 bits", r.write_pulses, (32768, 1), (1, 0))
    assert _raises_msg(AssertionError, "15 bits", r.write_pulses, (0, 1), (1, 0))


# -- esp32.RMT, up to 1.26 ------------------------------------------------------------------------------


def _rmt126(channel=0, **kw):
    machine.reset_fakes()
    esp32.reset_fakes(126)
    return esp32.RMT(channel, pin=machine.Pin(5, machine.Pin.OUT), **kw)


def test_rmt_1_26_constructor():
    r = _rmt126(clock_div=80)
    assert r.resolution_hz == 1_000_000 and r.clock_div() == 8 * 10 and r.channel == 0
    assert not hasattr(r, "active") and not hasattr(r, "loop_count") and esp32.RMT.PULSE_MAX == 32767
    assert _raises_msg(TypeError, "'id'", esp32.RMT, pin=5, resolution_hz=1_000_000)  # id first
    assert raises(TypeError, esp32.RMT, 1, pin=5, resolution_hz=1_000_000)
    assert _raises_msg(ValueError, "bitstream", esp32.RMT, 7, pin=5)  # RMT_LAST_TX_CHANNEL
    assert raises(OSError, esp32.RMT, 8, pin=5)
    assert raises(OSError, esp32.RMT, 0, pin=6)  # the channel's driver is installed already
    assert raises(ValueError, esp32.RMT, 1, pin=5, clock_div=0)
    assert esp32.RMT(1, pin=6).resolution_hz == 10_000_000  # clock_div 8 by default


def test_rmt_1_26_deinit_does_not_stop_the_transmitter():
    # rmt_driver_uninstall never stops TX; ping-pong (wrap) is always on: a sequence of 64 items or
    # more, no longer refilled, cycles for ever; a shorter one (end marker in memory) runs out
    r = _rmt126()
    r.write_pulses(STEP * 64, LEVELS * 64)  # 64 items
    r.deinit()
    assert not r.wait_done()  # no driver on the channel: ESP_FAIL
    assert _raises_msg(AssertionError, "still transmits", esp32.RMT, 0, pin=5)
    assert _raises_msg(AssertionError, "never ends", r.finish)
    esp32.RMT(1, pin=5)  # another channel is free
    r = _rmt126()
    r.write_pulses(STEP * 63, LEVELS * 63)
    r.deinit()
    r.finish()  # ran out
    n = esp32.RMT(0, pin=5)
    assert n.wait_done() and r.wait_done()  # the old object asks the channel id: now n's driver
    assert _raises_msg(AssertionError, "freed", r.write_pulses, STEP, LEVELS)


def test_rmt_1_26_blocks_and_loops():
    r = _rmt126()
    r.write_pulses(STEP, LEVELS)
    assert not r.wait_done(timeout=0)
    assert _raises_msg(AssertionError, "blocks", r.write_pulses, STEP, LEVELS)  # rmt_write_items' semaphore
    assert _raises_msg(AssertionError, "blocks", r.wait_done, timeout=10)
    r.finish()
    assert r.wait_done()
    r.loop(True)
    assert raises(ValueError, r.write_pulses, (1,) * 127, True)  # "Too many pulses for loop"
    r.write_pulses(STEP, LEVELS)
    assert _raises_msg(AssertionError, "never ends", r.finish)
    r.loop(False)  # the loop ends after this pass
    r.finish()
    assert r.wait_done()


def test_rmt_pin_takes_the_signal_and_a_pin_init_takes_it_back():
    for api in (126, 127):
        machine.reset_fakes()
        esp32.reset_fakes(api)
        p = machine.Pin(5, machine.Pin.OUT, value=0)
        assert p.signal is None
        r = esp32.RMT(0, pin=p) if api < 127 else esp32.RMT(pin=p)
        assert p.signal is r and machine.Pin(5) is p
        p.init(machine.Pin.OUT, value=0)  # gpio_output_enable: the plain GPIO output again
        assert p.signal is None and p.value() == 0


# -- machine ----------------------------------------------------------------------------------------


def test_pin_ids_of_the_original_esp32():
    machine.reset_fakes()
    for good in list(range(24)) + [25, 26, 27] + list(range(32, 40)):
        assert machine.Pin(good).id == good
    for bad in (-1, 24, 28, 29, 30, 31, 40, 48, "LED", "GPIO2", True, 2.0):
        assert _raises_msg(ValueError, "invalid pin", machine.Pin, bad), bad
    assert machine.Pin(5) is machine.Pin(5)  # one object per GPIO
    for gpio in range(34, 40):
        assert _raises_msg(ValueError, "only be input", machine.Pin, gpio, machine.Pin.OUT)
        assert machine.Pin(gpio, machine.Pin.IN, machine.Pin.PULL_UP).value() == 1
    assert raises(TypeError, machine.Pin, 5, machine.Pin.OUT, alt=1)  # no `alt` on esp32


def test_pin_irq_is_soft_and_has_no_hard_argument():
    machine.reset_fakes()
    p = machine.Pin(18, machine.Pin.IN, machine.Pin.PULL_UP)
    seen = []
    assert raises(TypeError, lambda: p.irq(seen.append, machine.Pin.IRQ_FALLING, hard=True))
    assert raises(TypeError, lambda: p.irq(seen.append, machine.Pin.IRQ_FALLING, priority=1))
    p.irq(seen.append, machine.Pin.IRQ_FALLING)
    assert not p.hard
    machine.hold_scheduler(True)  # the main program busy: edges queue in the scheduler
    for _ in range(10):
        p.drive(0)
        p.drive(1)
    assert seen == [] and machine.scheduled_lost == 2  # MICROPY_SCHEDULER_DEPTH 8 on esp32
    machine.hold_scheduler(False)
    assert seen == [p] * 8
    p.drive(0)
    assert len(seen) == 9


def test_adc_only_on_adc_gpios():
    machine.reset_fakes()
    for gpio in (32, 33, 34, 35, 36, 37, 38, 39, 0, 2, 4, 12, 13, 14, 15, 25, 26, 27):
        assert machine.ADC(machine.Pin(gpio)).channel == gpio
        assert machine.ADC(gpio).channel == gpio
    assert machine.ADC(34).block == 1 and machine.ADC(26).block == 2
    for bad in (1, 3, 5, 16, 23, 28, 29, 40):
        assert _raises_msg(ValueError, "invalid pin", machine.ADC, bad), bad
    assert raises(ValueError, machine.ADC, 34, atten=4)
    assert machine.ADC(34, atten=machine.ADC.ATTN_11DB).channel == 34
    a = machine.ADC(34)
    a.set_raw(4095)  # 12 bits scaled as mp_machine_adc_read_u16: raw << 4 | raw >> 8
    assert a.read_u16() == 65535
    a.set_raw(2048)
    assert a.read_u16() == 32768 | 8
    a.set_raw(0)
    assert a.read_u16() == 0


def test_timer_ids_hard_and_period():
    machine.reset_fakes()
    assert raises(TypeError, machine.Timer)  # the id is required
    t = machine.Timer(0)
    assert machine.Timer(0) is t and machine.Timer(3) is not t
    if vport.at_least(1, 25):
        for bad in (-1, 4):
            assert _raises_msg(ValueError, "invalid Timer number", machine.Timer, bad)
    else:
        assert machine.Timer(4) is t and machine.Timer(-1) is machine.Timer(3)  # 1.24: group/index bits
    if vport.at_least(1, 27):
        assert _raises_msg(ValueError, "hard Timers are not implemented", t.init, freq=100, hard=True)
        t.init(freq=100, hard=False)
    else:
        assert raises(TypeError, t.init, freq=100, hard=False)
    assert raises(TypeError, t.init, 100)  # keyword-only
    t.init(freq=300, callback=None)
    assert t.period_ticks == 33_333  # 10 MHz / 300.0, truncated
    t.init(period=25, tick_hz=10_000, mode=machine.Timer.ONE_SHOT)
    assert t.period_ticks == 25_000 and t.period_ms == 2
    hits = []
    t.init(mode=machine.Timer.ONE_SHOT, period=10, callback=hits.append)
    assert t.fire() and not t.fire() and hits == [t]


def test_timer_callbacks_are_scheduled_and_a_full_queue_loses_ticks():
    machine.reset_fakes()
    hits = []
    t = machine.Timer(1, mode=machine.Timer.PERIODIC, freq=1000, callback=hits.append)
    machine.hold_scheduler(True)
    for _ in range(10):
        assert t.fire()
    assert hits == [] and machine.scheduled_lost == 2 and t.fired == 10
    machine.run_scheduled()
    assert hits == [t] * 8
    machine.hold_scheduler(False)
    t.fire()
    assert len(hits) == 9
    t.deinit()
    assert not t.fire()
