# Each board's main.py boots on its virtual port (machine/rp2/esp32/pyb), on the unix port
# (tools/run_boards.sh) and on CPython:
# - one simulated hour of demo mode on a realistic config (kept in tests/boards/board_rig.py, never
#   shipped): strokes counted, a granted bolus (chirp), one in lockout ("not yet"), the low-reservoir
#   tone, a refill (button B), each event printed as a plain sentence;
# - several virtual hours at 360x and 1000x on a busy host without any drug written off;
# - button B does nothing to therapy outside demo and toy mode;
# - a board that cannot be built stops with the one line and the fault LED.
# Expected strokes come from the prescription's definition, not from the firmware: mcg/day at
# 2000 mcg/mL in 250 nL strokes of 500 ng each.

import json

import machine
from board_rig import BOARD, HOUR, MIN, ROOT, Rig, boot_capture, is_sentence, only, pumpboard, realistic, shipped

from firmware.alarms import (
    ALARM_LOW_RESERVOIR,
    EV_BOLUS,
    EV_REFILL,
    EV_UNDER_DELIVERY,
    EVENT_NAMES,
    PTM,
)
from firmware.config import load


def _engine_class(board):
    if board == "rpi_pico":
        import rp2

        return rp2.StateMachine
    if board == "esp32":
        import esp32

        esp32.reset_fakes()
        return esp32.RMT
    import pyb

    return pyb.Timer


def _check_hour(board):
    engine = _engine_class(board)
    data = realistic(board)
    data["pump"]["volume_ml"] = 2.005  # 0.005 mL above the 2 mL low mark, 20 strokes: low within the hour
    rig = Rig(board, data)
    try:
        steps = rig.steps
        assert isinstance(getattr(steps, "_sm", None) or getattr(steps, "_rmt", None) or steps._tim, engine)
        cfg = rig.cfg
        a, b = cfg.button_a_pin, cfg.button_b_pin
        # Real ms of the presses: A at 10 virtual minutes, A again at 20 (lockout), B at 45.
        for virtual_min, pin in ((10, a), (20, a), (45, b)):
            rig.press(pin, virtual_min * MIN // cfg.demo_speed)
        start = rig.clock.ticks_ms()
        rig.run(HOUR)
    finally:
        rig.close()
    pump = rig.pump
    events = rig.events
    boluses = [e for e in events if e[0] == EV_BOLUS and e[1] == PTM]
    assert [e[2] == 0 for e in boluses] == [True, False], boluses  # granted, then refused (lockout)
    assert [s[0] for s in rig.sounds if s[0] in ("chirp", "beep_low")] == ["chirp", "beep_low"]
    # Basal 420 mcg/day from 06:00 (the demo starts 08:00): 840 strokes/day, 35 in the hour; the
    # bolus 20 mcg = 40 strokes of 500 ng; one stroke may be in flight at the hour's end.
    basal = 420_000 * HOUR // 86_400_000 // 500
    assert basal == 35
    strokes = rig.strokes()
    assert basal + 40 - 1 <= strokes <= basal + 40, strokes
    assert pump.refills == 1 and [e for e in events if e[0] == EV_REFILL], events
    tones = [s for s in rig.sounds if s[0] == "tone"]
    assert tones and tones[0][1] == 1  # the low-reservoir alarm's non-critical tone, before the refill
    assert not pump.loop.alarms.active & ALARM_LOW_RESERVOIR  # and the refill cleared it
    assert pump.loop.ctl.reservoir.volume_nl > 19_000_000  # topped up to the 20 mL reservoir, less what flowed since
    assert rig.clock.ticks_diff(rig.clock.ticks_ms(), start) >= HOUR
    # One plain sentence per event, as a person reads them.
    lines = rig.printed
    for want in ("Patient bolus granted: 20 mcg over 10 min", "Patient bolus refused: too soon after the last one",
                 "Low reservoir: 2 mL left, refill soon", "Alarm on: low reservoir (non-critical)"):
        assert want in lines, (want, lines)
    assert [x for x in lines if x.startswith("Refilled: ") and x.endswith(" of 2000 mcg/mL")], lines
    assert all(is_sentence(x) for x in lines), [x for x in lines if not is_sentence(x)]
    print("%s demo hour: %d strokes, boluses %s, sounds %s" % (board, strokes, [e[2] for e in boluses],
                                                               [s[0] for s in rig.sounds]))


def test_rpi_pico_main_runs_a_demo_hour():
    only("rpi_pico")
    _check_hour("rpi_pico")


def test_esp32_main_runs_a_demo_hour():
    only("esp32")
    _check_hour("esp32")


def test_pyboard_main_runs_a_demo_hour():
    only("pyboard")
    _check_hour("pyboard")


def _no_write_off(speed, hours):
    # From 07:00: the 07:30 periodic bolus (40 mcg over 15 min) and a patient bolus (20 mcg over 10
    # min) asked for at 07:35 run at once, on top of the basal: the prescription's top rate. The
    # host is busy: each wake costs 3 real ms and every 7th poll comes 5 ms late, as on the unix port.
    data = realistic(BOARD, speed=speed)
    data["start_time"] = "07:00"
    data["pump"]["volume_ml"] = 20
    rig = Rig(BOARD, data, service_ms=3, jitter=5)
    try:
        rig.press(rig.cfg.button_a_pin, 35 * MIN // speed)
        rig.run(hours * HOUR)
    finally:
        rig.close()
    assert rig.late_ms == 0, (speed, rig.late_ms)  # no wake ever came after its deadline
    written_off = [e for e in rig.events if e[0] == EV_UNDER_DELIVERY]
    assert written_off == [], (speed, written_off[:3], len(written_off))
    assert rig.pump.loop.ctl.missed.small == 0 and rig.pump.loop.ctl.missed.big == 0
    granted = [e for e in rig.events if e[0] == EV_BOLUS and e[2] == 0]
    assert len(granted) == 2, granted  # the periodic and the patient bolus
    # 07:00..12:00 at 420 mcg/day, then 480 (the prescription's steps), plus 40 + 20 mcg of boluses.
    ng = 420_000 * (5 if hours >= 5 else hours) // 24 + 480_000 * (hours - 5 if hours > 5 else 0) // 24 + 60_000
    assert ng % 500 == 0
    assert ng // 500 - 1 <= rig.strokes() <= ng // 500, (speed, rig.strokes(), ng // 500)
    return rig


def test_the_demo_writes_nothing_off_at_360x():
    rig = _no_write_off(360, 4)
    assert rig.cfg.steps_per_stroke == 10  # the most steps the motor can turn between strokes at 360x


def test_the_demo_writes_nothing_off_at_1000x():
    rig = _no_write_off(1000, 4)
    assert rig.cfg.steps_per_stroke == 2


def test_button_b_does_nothing_to_therapy_outside_demo_and_toy():
    # A pump (mode pump) with B wired: a press of B, then a long one, as a child would.
    data = realistic(BOARD, mode="pump")
    data["pump"]["volume_ml"] = 10
    rig = Rig(BOARD, data)
    try:
        assert rig.pump.button_b is None  # not even built
        b = rig.cfg.button_b_pin
        machine.Pin(b, machine.Pin.IN, machine.Pin.PULL_UP)  # the button is wired all the same
        rig.press(b, 5000)
        rig.press(b, 10_000, 3000)  # a long press is nothing special either
        rig.run(30_000)
    finally:
        rig.close()
    assert rig.pump.refills == 0 and [e for e in rig.events if e[0] == EV_REFILL] == []
    # 420 mcg/day is a 500 ng stroke every 103 s: none in these 30 s, and the reservoir is as it was.
    assert rig.strokes() == 0
    assert rig.pump.loop.ctl.reservoir.volume_nl == 10_000_000


def test_a_long_press_of_b_in_demo_mode_refills_and_quietens_nothing():
    data = realistic(BOARD, speed=60)
    data["pump"]["volume_ml"] = 1.9  # below the 2 mL low mark: the low alarm sounds at once
    rig = Rig(BOARD, data)
    try:
        rig.press(rig.cfg.button_b_pin, 1000, 3000)
        rig.run(4 * MIN)  # 4 real s at 60x
    finally:
        rig.close()
    assert rig.pump.refills == 1 and rig.pump.quietened == 0 and rig.pump._muted == 0
    refill = [e for e in rig.events if e[0] == EV_REFILL]
    assert refill and refill[0][4] >= 4000  # on release, after 3 s held


def test_every_event_code_reads_as_a_sentence():
    # Each code of firmware/alarms.py EVENT_NAMES, with the arguments it carries, in pump and in toy
    # mode: a capital first, no bare numbers, never the fallback "Event N".
    for data in (realistic(BOARD, mode="pump"), shipped(BOARD)):
        if data.get("mode") == "pump":
            data["motor"]["steps_per_stroke"] = 8
        rig = Rig(BOARD, data)
        rig.close()
        pump = rig.pump
        args = {1: (2_000_000, 0, 0), 2: (2_500_000, 0, 0), 3: (500_000, 0, 0), 4: (600_000, 0, 0),
                5: (2, 20_000, 12_500), 6: (2, 0, 20_000), 9: (19_997_250, 2000, 0), 13: (1500, 0, 0),
                14: (500_000, 0, 0), 15: (500_000, 0, 0), 17: (0, 1, 0), 18: (6, 1, 64), 19: (64, 0, 0),
                20: (4, 16, 0), 24: (930, 0, 250_000), 25: (180, 0, 0), 26: (1750, 0, 0), 27: (12, 0, 0),
                28: (2, 0, 0), 29: (3, 0, 0), 31: (1, 0, 0), 32: (2500, 0, 0), 33: (2500, 0, 0),
                34: (2450, 1, 2600), 35: (95, 12, 0), 37: (2 * 256 + 5, 0, 17), 38: (2 * 256 + 4, 24, 9),
                39: (5, 10, 0)}
        for code in range(1, len(EVENT_NAMES)):
            a, b, c = args.get(code, (1, 1, 0))
            line = pump.sentence(code, a, b, c)
            assert is_sentence(line) and not line.startswith("Event "), (EVENT_NAMES[code], line)
        for reason in range(1, 18):
            assert is_sentence(pump.sentence(EV_BOLUS, PTM, reason, 0))
        if pump.toy:
            assert pump.sentence(9, 537_500, 1000, 0) == "Refilled: 150 sips"
            assert pump.sentence(1, 507_500, 0, 0) == "Low water: 30 sips left, refill soon (a short press of B)"
            assert pump.sentence(EV_BOLUS, PTM, 0, 1250) == "Button bolus: yes, 5 sips more over 1 min"
            assert pump.sentence(EV_BOLUS, PTM, 1, 0) == "Button bolus: not yet (too soon after the last one)"
        else:
            assert pump.sentence(9, 19_997_250, 2000, 0) == "Refilled: 19.997 mL of 2000 mcg/mL"
            assert pump.sentence(1, 2_000_000, 0, 0) == "Low reservoir: 2 mL left, refill soon"
            assert pump.sentence(34, 1000, 0, 2600) == (
                "Battery read 1000 mV, under 2600 mV, but not at rest: to be read again")
            assert pump.sentence(EV_BOLUS, PTM, 0, 20_000) == "Patient bolus granted: 20 mcg over 10 min"
            assert pump.sentence(35, 95, 12, 0) == (
                "Restarted from the journal after 1 min 35 s off: 12 strokes counted as made, none repeated")
            assert pump.sentence(30, 0, 0, 0).startswith("Reservoir low in about ")


def test_an_invalid_board_json_stops_the_pump_with_one_line_and_the_fault_pattern():
    data = shipped(BOARD)
    data["motor"]["step_pin"] = {"rpi_pico": 31, "esp32": 40, "pyboard": "X31"}[BOARD]
    want = {"rpi_pico": "motor.step_pin: must be a GPIO number 0..22 or 26..28, or a name GP0..GP22, GP26..GP28, not 31",
            "esp32": "motor.step_pin: must be a GPIO number 0..39, not 40",
            "pyboard": "motor.step_pin: must be a pyboard pin name X1..X22 or Y1..Y12, not 'X31'"}[BOARD]
    printed, made, led = _boot_with(data, lambda cfg: made_steps(cfg))
    assert made == []  # nothing built: the pump did not start
    assert printed == ["pump stopped: board.json: " + want], printed
    assert led.history[-1] == 1  # the fault pattern started on the LED: its first flash is on


_made = []


def made_steps(cfg):
    _made.append(cfg)


def _boot_with(data, make_steps):
    """pumpboard.boot() on `data` written to build/, with main.py's fault LED: (lines printed,
    configs make_steps got, the fault LED's fake pin)."""
    pb = pumpboard()
    machine.reset_fakes()
    _, fault_led = boot_capture(BOARD)
    printed = []
    del _made[:]
    real_print = pb.print if hasattr(pb, "print") else None
    pb.print = lambda *a: printed.append(" ".join(str(x) for x in a))
    try:
        path = ROOT + "/build/test_board.json"
        try:
            import os

            os.mkdir(ROOT + "/build")
        except OSError:
            pass
        with open(path, "w") as f:
            f.write(json.dumps(data))
        pb.boot(BOARD, make_steps, path=path, fault_led=fault_led, forever=False)
    finally:
        if real_print is None:
            del pb.print
        else:
            pb.print = real_print
    return printed, list(_made), machine.Pin.get(fault_led)


def test_a_step_engine_this_micropython_lacks_stops_the_pump_with_one_line():
    def make_steps(cfg):
        raise ImportError("no module named 'rp2'")  # MicroPython's message (py/builtinimport.c)

    printed, _, led = _boot_with(shipped(BOARD), make_steps)
    assert printed == ["pump stopped: the step engine (motor.driver step_dir): this MicroPython has no module rp2 "
                       "(no module named 'rp2')"], printed
    assert led.history[-1] == 1


def test_a_machine_class_this_micropython_lacks_stops_the_pump_with_one_line():
    # The buzzer needs machine.PWM (as the stm32 port before 1.28.0 has none): a backend that asks
    # for it on a machine without it. The message is MicroPython's (py/runtime.c, NORMAL reporting).
    import hal.machine_buzzer as machine_buzzer

    class NeedsPwm:
        def __init__(self, pin, *timer):
            if not hasattr(machine, "PWM"):
                raise AttributeError("'module' object has no attribute 'PWM'")

    make_steps, _ = boot_capture(BOARD)
    real_buzzer = machine_buzzer.Buzzer
    pwm = getattr(machine, "PWM", None)
    machine_buzzer.Buzzer = NeedsPwm
    if pwm is not None:
        delattr(machine, "PWM")
    try:
        printed, _, led = _boot_with(shipped(BOARD), make_steps)
    finally:
        machine_buzzer.Buzzer = real_buzzer
        if pwm is not None:
            machine.PWM = pwm
    pin = shipped(BOARD)["buzzer_pin"]
    assert printed == ["pump stopped: the buzzer (buzzer_pin %r): this MicroPython has no machine.PWM ('module' "
                       "object has no attribute 'PWM')" % (pin,)], printed
    assert led.history[-1] == 1


def test_a_backend_refusing_its_pin_stops_the_pump_with_one_line():
    import hal.machine_buzzer as machine_buzzer

    class NoChannel:
        def __init__(self, pin, *timer):
            raise ValueError("Pin(%s) doesn't have an alt for Timer" % (pin,))

    make_steps, _ = boot_capture(BOARD)
    real_buzzer = machine_buzzer.Buzzer
    machine_buzzer.Buzzer = NoChannel
    try:
        printed, _, led = _boot_with(shipped(BOARD), make_steps)
    finally:
        machine_buzzer.Buzzer = real_buzzer
    pin = shipped(BOARD)["buzzer_pin"]
    assert printed == ["pump stopped: the buzzer (buzzer_pin %r): Pin(%s) doesn't have an alt for Timer" % (pin, pin)], \
        printed
    assert led.history[-1] == 1


def test_heap_after_boot_with_the_boards_config():
    # What the pump's objects take once booted (code loaded before: frozen on a board, it stays in
    # flash). Measured on MicroPython only; the unix port is 64-bit, about twice a board's size.
    import gc

    if not hasattr(gc, "mem_alloc"):
        from support import skip

        skip("the heap is measured on MicroPython")
    import hal.machine_adc  # noqa: F401  (code, not the pump: loaded first)
    import hal.machine_button  # noqa: F401
    import hal.machine_buzzer  # noqa: F401
    import hal.machine_clock  # noqa: F401
    import hal.machine_led  # noqa: F401
    import hal.machine_motor  # noqa: F401

    make_steps, _ = boot_capture(BOARD)
    pb = pumpboard()
    pump = None
    for text in (json.dumps(shipped(BOARD)), json.dumps(realistic(BOARD))):
        pump = None  # the last config's pump is not counted
        machine.reset_fakes()
        make_steps(load(text, BOARD))  # the step engine's code loaded too
        machine.reset_fakes()
        gc.collect()
        before = gc.mem_alloc()
        cfg = load(text, BOARD)
        pump = pb.Pump(cfg, make_steps(cfg))
        gc.collect()
        taken = gc.mem_alloc() - before
        print("heap after boot (%s %s config): the pump takes %d B; %d B free of %d B" % (
            BOARD, cfg.mode, taken, gc.mem_free(), gc.mem_alloc() + gc.mem_free()))
        # The event log's ring (1024 events of 18 B, firmware/eventlog.py) is most of it.
        assert pump.loop is not None and taken < 40_000, taken


def test_each_main_builds_the_uln2003_engine_of_its_port():
    machine.reset_fakes()
    for board, kind, timer_id in (("rpi_pico", None, None), ("esp32", machine.Timer, 0),
                                  ("pyboard", "pyb.Timer", 2)):
        if board != BOARD:
            continue
        if kind is None:
            import rp2

            kind = rp2.StateMachine
        if kind == "pyb.Timer":  # a hardware timer: machine.Timer is the whole-ms soft timer there
            import pyb

            kind = pyb.Timer
        make_steps, _ = boot_capture(board)
        data = shipped(board)
        pins = [6, 7, 8, 9] if board != "pyboard" else ["Y3", "Y4", "Y5", "Y6"]
        data["motor"] = {"driver": "uln2003", "phase_pins": pins, "steps_per_stroke": 64, "steps_per_s": 500}
        steps = make_steps(load(json.dumps(data), board))
        engine = getattr(steps, "_sm", None) or getattr(steps, "_tim", None)
        assert isinstance(engine, kind), (board, engine)
        if timer_id is not None:
            assert engine.id == timer_id, (board, engine.id)  # the ESP32 has no virtual timer -1
        if board == "pyboard":  # motor.timer (default 2) at exactly steps_per_s
            assert engine.freq() == 500 and engine._callback == steps._cb


def test_the_boards_own_poll_allocates_nothing():
    # Pump.poll runs about once a ms in the clock's wait (LED per stroke, alarm pattern, button B).
    import gc

    if not hasattr(gc, "mem_alloc"):
        from support import skip

        skip("allocation is measured on MicroPython")
    make_steps, _ = boot_capture(BOARD)
    pb = pumpboard()
    machine.reset_fakes()
    cfg = load(json.dumps(shipped(BOARD)), BOARD)
    pump = pb.Pump(cfg, make_steps(cfg))
    machine.set_record(False)  # the fake pins' history lists would grow
    now = pump.clock.ticks_ms()
    b = machine.Pin.get(cfg.button_b_pin)
    try:
        pump.poll(now)
        gc.collect()
        gc.disable()
        before = gc.mem_alloc()
        n = 0
        while n < 2000:
            pump.poll(now)
            if n == 1000:
                pump._strokes -= 1  # a stroke seen: the LED blinks
            if n == 1500:
                pump._b_down = True  # button B held (and already acted on): its time read at every poll
                pump._b_long = True
                pump.button_b._accepted = True
                pump.button_b._level = b.value()
            n += 1
        allocated = gc.mem_alloc() - before
    finally:
        gc.enable()
        machine.set_record(True)
    print("Pump.poll: %d B over %d polls" % (allocated, n))
    assert allocated == 0, allocated


def test_pyboard_main_out_of_memory_loading_the_pump_stops_with_one_line():
    # The pyboard's GC heap (about 100 KB) is smaller than the pump's bytecode loaded from the
    # filesystem (make heap): main.py says so in one line and points at the frozen build.
    only("pyboard")
    import sys

    pb = pumpboard()  # the real module, put back after
    printed = []

    class Raises:
        def __getattr__(self, name):
            raise MemoryError("memory allocation failed, allocating 1024 bytes")

    sys.modules["pumpboard"] = Raises()
    try:
        with open(ROOT + "/boards/pyboard/main.py") as f:
            code = f.read()
        try:
            exec(code, {"__name__": "main", "print": lambda *a: printed.append(" ".join(a))})
        except SystemExit:
            pass
        else:
            raise AssertionError("main.py went on without its modules")
    finally:
        sys.modules["pumpboard"] = pb
    assert len(printed) == 1 and printed[0].startswith("pump stopped: out of memory loading the pump's modules"), printed
    assert "boards/pyboard/manifest.py" in printed[0]
