# Each board's main.py boots, with the fakes of machine/rp2/esp32/pyb, in demo mode, and runs one
# simulated hour of the shipped board.json: strokes counted, a granted bolus (chirp), a bolus in
# lockout ("not yet" beep), the low-reservoir alarm's tone, and a refill (button B). On the unix
# port (tools/run_boards.sh) and on CPython. Expected strokes come from the prescription's
# definition, not from the firmware: 420 mcg/day basal (06:00..12:00) at 2000 mcg/mL in 250 nL
# strokes of 500 ng each, plus the 20 mcg patient bolus.

import json

import machine
import port_time
from hardware import FakeScheduler, StepHardware

port_time.install()

from support import FakeClock  # noqa: E402

import hal.machine_button as machine_button  # noqa: E402
from firmware.alarms import ALARM_LOW_RESERVOIR, EV_BOLUS, EV_REFILL, PTM  # noqa: E402
from firmware.config import load  # noqa: E402

MIN = 60_000
HOUR = 60 * MIN
# The board this virtual port runs (one port per run: tools/run_boards.sh runs each).
BOARD = {"rp2": "rpi_pico", "esp32": "esp32", "stm32": "pyboard"}[machine.PORT]
FAULT_LED = {"rpi_pico": 25, "esp32": 2, "pyboard": "LED_RED"}[BOARD]


def _root():
    here = __file__.replace("\\", "/")
    parts = here.split("/")
    return "/".join(parts[:-3]) or "."


ROOT = _root()


def _pumpboard():
    import sys

    if ROOT + "/boards" not in sys.path:
        sys.path.append(ROOT + "/boards")
    import pumpboard

    return pumpboard


class _World:
    """The real ms passing: the fake real clock, the step hardware finishing bursts, the button
    presses of the script (real ms since the start: pin, level), the scheduler."""

    def __init__(self, real, hardware, script, sched):
        self.real = real
        self.hardware = hardware
        self.script = script
        self.sched = sched
        self.t = 0

    def sleep_ms(self, ms):
        for _ in range(ms):
            self.real.advance(1)
            self.t += 1
            self.hardware.tick(self.t)
            while self.script and self.script[0][0] <= self.t:
                _, pin, level = self.script.pop(0)
                machine.Pin.get(pin).drive(level)
            self.sched.run()


def _boot(board):
    """main.py's boot(board, make_steps, fault_led) call, captured instead of run."""
    pumpboard = _pumpboard()
    calls = []

    def capture(name, make_steps, path="board.json", fault_led=None):
        calls.append((name, make_steps, fault_led))

    real_boot = pumpboard.boot
    pumpboard.boot = capture
    try:
        with open(ROOT + "/boards/" + board + "/main.py") as f:
            exec(f.read(), {"__name__": "main"})
    finally:
        pumpboard.boot = real_boot
    assert len(calls) == 1 and calls[0][0] == board
    return calls[0][1], calls[0][2]


def _only(board):
    if board != BOARD:
        from support import skip

        skip("the %s runs on the virtual %s port, not %s" % (board, {"rpi_pico": "rp2", "esp32": "esp32",
                                                                     "pyboard": "stm32"}[board], machine.PORT))


def _engine_class(board):
    if board == "rpi_pico":
        import rp2

        return rp2.StateMachine
    if board == "esp32":
        import esp32

        esp32.reset_fakes()
        return esp32.RMT126
    import pyb

    return pyb.Timer


def _demo_hour(board, volume_ml):
    machine.reset_fakes()
    engine = _engine_class(board)
    make_steps, fault_led = _boot(board)
    assert fault_led is not None
    with open(ROOT + "/boards/" + board + "/board.json") as f:
        data = json.loads(f.read())
    assert data["demo"] is True  # shipped as the toy
    data["pump"]["volume_ml"] = volume_ml
    cfg = load(json.dumps(data), board)
    pumpboard = _pumpboard()
    steps = make_steps(cfg)
    assert isinstance(getattr(steps, "_sm", None) or getattr(steps, "_rmt", None) or steps._tim, engine)

    sched = FakeScheduler()  # run at each ms of the world: deterministic on both runtimes
    saved = machine_button.micropython
    machine_button.micropython = sched
    try:
        pump = pumpboard.Pump(cfg, steps)
        real = FakeClock()
        clock = pump.clock
        clock._real_ms = real.ticks_ms
        clock._real = real.ticks_ms()
        for b in (pump.button_a, pump.button_b):
            b.ticks_ms = real.ticks_ms
            b._ticks_diff = real.ticks_diff
        sounds = []
        pump.buzzer.chirp = lambda: sounds.append(("chirp", clock.ticks_ms()))
        pump.buzzer.beep_low = lambda: sounds.append(("beep_low", clock.ticks_ms()))
        tone = pump.buzzer.tone
        pump.buzzer.tone = lambda cls, alarm: (sounds.append(("tone", alarm)), tone(cls, alarm))
        events = []
        emit = pump.emit

        def record(code, a, b, c):
            events.append((code, a, b, c, clock.ticks_ms()))
            emit(code, a, b, c)

        pump.loop._emit = record
        pump.loop.ctl._emit = record
        pump.loop.alarms._emit = record
        pump.loop.watch._emit = record
        speed = cfg.demo_speed
        a, b = cfg.button_a_pin, cfg.button_b_pin
        # Real ms of the presses: A at 10 virtual minutes, A again at 20 (lockout), B at 45.
        script = []
        for virtual_min, pin in ((10, a), (20, a), (45, b)):
            t = virtual_min * MIN // speed
            script += [(t, pin, 0), (t + 120, pin, 1)]
        world = _World(real, StepHardware(steps, cfg.steps_per_stroke, cfg.steps_per_s), script, sched)
        clock._sleep_ms = world.sleep_ms
        start = clock.ticks_ms()
        strokes0 = pump.motor.strokes()
        end = clock.ticks_add(start, HOUR)
        loop = pump.loop
        while clock.ticks_diff(end, clock.ticks_ms()) > 0:
            deadline = loop.deadline()
            if clock.ticks_diff(deadline, end) > 0:
                deadline = end
            clock.wait(deadline, loop.ready)
            loop.service()
    finally:
        machine_button.micropython = saved
    return pump, cfg, events, sounds, pump.motor.strokes() - strokes0, start


def _check_hour(board):
    # 2.005 mL: 0.005 mL above the 2 mL low threshold, 20 strokes: the low alarm comes within the hour.
    pump, cfg, events, sounds, strokes, start = _demo_hour(board, 2.005)
    clock = pump.clock
    boluses = [e for e in events if e[0] == EV_BOLUS and e[1] == PTM]
    assert [e[2] == 0 for e in boluses] == [True, False], boluses  # granted, then refused (lockout)
    assert [s[0] for s in sounds if s[0] in ("chirp", "beep_low")] == ["chirp", "beep_low"]
    # Basal 420 mcg/day from 06:00 (the demo starts 08:00): 840 strokes/day, 35 in the hour; the
    # bolus 20 mcg = 40 strokes of 500 ng; one stroke may be in flight at the hour's end.
    basal = 420_000 * HOUR // 86_400_000 // 500
    assert basal == 35
    assert basal + 40 - 1 <= strokes <= basal + 40, strokes
    assert pump.refills == 1 and [e for e in events if e[0] == EV_REFILL], events
    tones = [s for s in sounds if s[0] == "tone"]
    assert tones and tones[0][1] == 0 + _low_id()  # the low-reservoir alarm sounded before the refill
    assert not pump.loop.alarms.active & ALARM_LOW_RESERVOIR  # and the refill cleared it
    ctl = pump.loop.ctl
    assert ctl.reservoir.volume_nl > 19_000_000  # topped up to the 20 mL reservoir, less what flowed since
    assert clock.ticks_diff(clock.ticks_ms(), start) >= HOUR
    print("%s demo hour: %d strokes, boluses %s, sounds %s" % (board, strokes, [e[2] for e in boluses],
                                                               [s[0] for s in sounds]))


def _low_id():
    n = 0
    bits = ALARM_LOW_RESERVOIR
    while not bits & 1:
        bits >>= 1
        n += 1
    return n


def test_rpi_pico_main_runs_a_demo_hour():
    _only("rpi_pico")
    _check_hour("rpi_pico")


def test_esp32_main_runs_a_demo_hour():
    _only("esp32")
    _check_hour("esp32")


def test_pyboard_main_runs_a_demo_hour():
    _only("pyboard")
    _check_hour("pyboard")


def test_an_invalid_board_json_stops_the_pump_with_one_line_and_the_fault_pattern():
    pumpboard = _pumpboard()
    machine.reset_fakes()
    printed = []
    real_print = pumpboard.print if hasattr(pumpboard, "print") else None
    pumpboard.print = lambda *a: printed.append(" ".join(str(x) for x in a))
    try:
        with open(ROOT + "/boards/rpi_pico/board.json") as f:
            data = json.loads(f.read())
        data["motor"]["step_pin"] = 31
        text = json.dumps(data)
        path = ROOT + "/build/test_bad_board.json"
        try:
            import os

            os.mkdir(ROOT + "/build")
        except OSError:
            pass
        with open(path, "w") as f:
            f.write(text)
        made = []
        pumpboard.boot("rpi_pico", lambda cfg: made.append(cfg), path=path, fault_led=FAULT_LED, forever=False)
    finally:
        if real_print is None:
            del pumpboard.print
        else:
            pumpboard.print = real_print
    assert made == []  # nothing built: the pump did not start
    assert printed == ["pump stopped: board.json: motor.step_pin: must be a GPIO number 0..28, not 31"], printed
    led = machine.Pin.get(FAULT_LED)
    assert led.history[-1] == 1  # the fault pattern started on the LED: its first flash is on


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

    make_steps, _ = _boot(BOARD)
    pumpboard = _pumpboard()
    machine.reset_fakes()
    with open(ROOT + "/boards/" + BOARD + "/board.json") as f:
        text = f.read()
    make_steps(load(text, BOARD))  # the step engine's code loaded too
    machine.reset_fakes()
    gc.collect()
    before = gc.mem_alloc()
    cfg = load(text, BOARD)
    pump = pumpboard.Pump(cfg, make_steps(cfg))
    gc.collect()
    taken = gc.mem_alloc() - before
    print("heap after boot (%s config): the pump takes %d B; %d B free of %d B" % (
        BOARD, taken, gc.mem_free(), gc.mem_alloc() + gc.mem_free()))
    assert pump.loop is not None and taken < 32_000, taken


def test_each_main_builds_the_uln2003_engine_of_its_port():
    machine.reset_fakes()
    for board, kind, timer_id in (("rpi_pico", None, None), ("esp32", machine.Timer, 0),
                                  ("pyboard", machine.Timer, -1)):
        if board != BOARD:
            continue
        if kind is None:
            import rp2

            kind = rp2.StateMachine
        make_steps, _ = _boot(board)
        with open(ROOT + "/boards/" + board + "/board.json") as f:
            data = json.loads(f.read())
        pins = [6, 7, 8, 9] if board != "pyboard" else ["Y3", "Y4", "Y5", "Y6"]
        data["motor"] = {"driver": "uln2003", "phase_pins": pins, "steps_per_stroke": 64, "steps_per_s": 500}
        steps = make_steps(load(json.dumps(data), board))
        engine = getattr(steps, "_sm", None) or getattr(steps, "_tim", None)
        assert isinstance(engine, kind), (board, engine)
        if timer_id is not None:
            assert engine.id == timer_id, (board, engine.id)  # the ESP32 has no virtual timer -1


def test_the_boards_own_poll_allocates_nothing():
    # Pump.poll runs about once a ms in the clock's wait (LED per stroke, alarm pattern, button B).
    import gc

    if not hasattr(gc, "mem_alloc"):
        from support import skip

        skip("allocation is measured on MicroPython")
    make_steps, _ = _boot(BOARD)
    pumpboard = _pumpboard()
    machine.reset_fakes()
    with open(ROOT + "/boards/" + BOARD + "/board.json") as f:
        cfg = load(f.read(), BOARD)
    pump = pumpboard.Pump(cfg, make_steps(cfg))
    machine.set_record(False)  # the fake pins' history lists would grow
    now = pump.clock.ticks_ms()
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
            n += 1
        allocated = gc.mem_alloc() - before
    finally:
        gc.enable()
        machine.set_record(True)
    print("Pump.poll: %d B over %d polls" % (allocated, n))
    assert allocated == 0, allocated
