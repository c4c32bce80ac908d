# A board booted on its virtual port, with a fake real clock: the helpers of test_main_boot.py
# and test_toy.py, on CPython and the MicroPython unix port.
#
# Rig(board, data) runs boards/<board>/main.py's make_steps and pumpboard.Pump on the config
# `data` (a dict), with the world's real ms (the fake real clock, the step hardware finishing
# bursts, button presses scripted in real ms, the scheduler) and records what the board did:
# lines printed, events, sounds. realistic(board) is a demo config with a baclofen prescription,
# kept here and never shipped (a parent might copy it); the shipped board.json is the toy.

import json

import machine
import port_time
from hardware import FakeScheduler, StepHardware

port_time.install()

from support import FakeClock  # noqa: E402

import hal.machine_button as machine_button  # noqa: E402
from firmware.config import load  # noqa: E402
from hal.machine_clock import DemoClock, MachineClock  # noqa: E402

MIN = 60_000
HOUR = 60 * MIN
# The board this virtual port runs (one port per run: tools/run_boards.sh runs each).
BOARD = {"rp2": "rpi_pico", "esp32": "esp32", "stm32": "pyboard"}[machine.PORT]
PORT_OF = {"rpi_pico": "rp2", "esp32": "esp32", "pyboard": "stm32"}


def _root():
    here = __file__.replace("\\", "/")
    parts = here.split("/")
    return "/".join(parts[:-3]) or "."


ROOT = _root()


def pumpboard():
    import sys

    if ROOT + "/boards" not in sys.path:
        sys.path.append(ROOT + "/boards")
    import pumpboard

    return pumpboard


def only(board):
    if board != BOARD:
        from support import skip

        skip("the %s runs on the virtual %s port, not %s" % (board, PORT_OF[board], machine.PORT))


def boot_capture(board):
    """main.py's boot(board, make_steps, fault_led) call, captured instead of run."""
    pb = pumpboard()
    calls = []

    def capture(name, make_steps, path="board.json", fault_led=None):
        calls.append((name, make_steps, fault_led))

    real_boot = pb.boot
    pb.boot = capture
    try:
        with open(ROOT + "/boards/" + board + "/main.py") as f:
            exec(f.read(), {"__name__": "main"})
    finally:
        pb.boot = real_boot
    assert len(calls) == 1 and calls[0][0] == board
    return calls[0][1], calls[0][2]


def shipped(board):
    with open(ROOT + "/boards/" + board + "/board.json") as f:
        return json.loads(f.read())


def prescription():
    """A realistic prescription, the scenario's units (tests/boards/prescription.json, also read by
    tests/host/test_demo.py): baclofen 2000 mcg/mL, basal 420..600 mcg/day in four steps, a 40 mcg
    periodic bolus at 07:30 over 15 min, a 20 mcg patient bolus over 10 min with a 180 min
    lockout, 800 mcg a day at most."""
    with open(ROOT + "/tests/boards/prescription.json") as f:
        return json.loads(f.read())


def realistic(board, mode="demo", speed=360):
    """The shipped board's pins and motor with the realistic prescription, in demo (or pump) mode."""
    d = shipped(board)
    del d["toy"]
    d["mode"] = mode
    if mode == "demo":
        d["demo_speed"] = speed
    d.update(prescription())
    return d


def is_sentence(line):
    """A plain sentence: a capital first, and not a tail of bare numbers ("projection 0 0 0")."""
    words = line.split()
    if not words or not line[0].isupper():
        return False
    bare = 0
    for w in words:
        bare = bare + 1 if w.strip(".,:;()").replace("-", "").isdigit() else 0
        if bare >= 2:
            return False
    return not words[-1].strip(".,:;()").isdigit()


class _World:
    """The real ms passing: the fake real clock, the step hardware finishing bursts, the button
    presses of the script (real ms since the start: pin, level), the scheduler. jitter: every
    7th sleep_ms(1) takes this many ms more (a busy host)."""

    def __init__(self, real, hardware, script, sched, jitter):
        self.real = real
        self.hardware = hardware
        self.script = script
        self.sched = sched
        self.jitter = jitter
        self.t = 0
        self.sleeps = 0

    def sleep_ms(self, ms):
        self.sleeps += 1
        if self.jitter and self.sleeps % 7 == 0:
            ms += self.jitter
        self.spend(ms)

    def spend(self, ms):
        for _ in range(ms):
            self.real.advance(1)
            self.t += 1
            self.hardware.tick(self.t)
            while self.script and self.script[0][0] <= self.t:
                _, pin, level = self.script.pop(0)
                machine.Pin.get(pin).drive(level)
            self.sched.run()


class Rig:
    """boards/<board>/main.py's engine and pumpboard.Pump on `data`, on a fake real clock.

    script: (real ms, pin, level) button levels; service_ms: real ms each firmware wake costs
    (the unix port's service and its prints); jitter: see _World; keep_clock: the real-time clock kept
    as it is (the flash always is), as at a reboot. Records printed lines
    (`printed`), events (code, a, b, c, real ms) and sounds (name, class, real ms) played."""

    def __init__(self, board, data, script=(), service_ms=0, jitter=0, keep_clock=False):
        if keep_clock:  # the real-time clock as the test left it (a reboot: as the reset left it)
            import vmachine

            rtc, follow = vmachine._rtc, vmachine.RTC.follow
            machine.reset_fakes()
            vmachine._rtc, vmachine.RTC.follow = rtc, follow
        else:
            machine.reset_fakes()
        make_steps, self.fault_led = boot_capture(board)
        self.cfg = cfg = load(json.dumps(data), board)
        self.steps = steps = make_steps(cfg)
        self.real = real = FakeClock()
        if cfg.demo:
            clock = DemoClock(cfg.demo_speed)
            clock._real_ms = real.ticks_ms
            clock._real = real.ticks_ms()
            clock._virtual = real.ticks_ms()
        else:
            clock = MachineClock()
            clock.ticks_ms = real.ticks_ms
        clock.ticks_add = real.ticks_add
        clock.ticks_diff = real.ticks_diff
        self.clock = clock
        self.pb = pb = pumpboard()
        self.printed = []
        self._had_print = hasattr(pb, "print")
        self._print = pb.print if self._had_print else None
        pb.print = lambda *a: self.printed.append(" ".join(str(x) for x in a))
        self.sched = FakeScheduler()  # run at each ms of the world: deterministic on both runtimes
        self._micropython = machine_button.micropython
        machine_button.micropython = self.sched
        try:
            self.pump = pump = pb.Pump(cfg, steps, clock)
        except BaseException:
            self.close()
            raise
        for part in (pump.button_a, pump.button_b, pump.buzzer, pump.led):
            if part is not None:
                part.ticks_ms = real.ticks_ms
                part._ticks_diff = real.ticks_diff
                if hasattr(part, "_ticks_add"):
                    part._ticks_add = real.ticks_add
        self.world = world = _World(real, StepHardware(steps, cfg.steps_per_stroke, cfg.steps_per_s),
                                    list(script), self.sched, jitter)
        clock._sleep_ms = world.sleep_ms
        self.sounds = []
        buzzer = pump.buzzer
        for name in ("tone", "chirp", "beep_low"):
            self._record(buzzer, name)
        self.events = []
        emit = pump.emit

        def record(code, a, b, c):
            self.events.append((code, a, b, c, world.t))
            emit(code, a, b, c)

        loop = pump.loop
        loop._emit = record  # behind the loop's own: every event is still logged and journaled
        service = loop.service

        def costly():
            world.spend(service_ms)  # the wake's own real time, before the firmware reads the clock
            service()

        self.service = costly if service_ms else service
        self.strokes0 = pump.motor.strokes()
        self.late_ms = 0  # the latest a wake came after the deadline the clock was given

    def _record(self, buzzer, name):
        play = getattr(buzzer, name)
        sounds = self.sounds
        world = self.world

        def played(*args):
            sounds.append((name, args[0] if args else 0, world.t))
            play(*args)

        setattr(buzzer, name, played)

    def strokes(self):
        return self.pump.motor.strokes() - self.strokes0

    def run(self, ms):
        """Runs the board's loop for `ms` of its clock (virtual ms in demo mode, else real)."""
        clock = self.clock
        loop = self.pump.loop
        end = clock.ticks_add(clock.ticks_ms(), ms)
        while clock.ticks_diff(end, clock.ticks_ms()) > 0:
            deadline = loop.deadline()
            if clock.ticks_diff(deadline, end) > 0:
                deadline = end
            clock.wait(deadline, loop.ready)
            late = clock.ticks_diff(clock.ticks_ms(), deadline)
            if late > self.late_ms:
                self.late_ms = late
            self.service()

    def press(self, pin, at_ms, hold_ms=120):
        """Button `pin` down at real ms at_ms (from the rig's start) for hold_ms."""
        script = self.world.script
        script.append((at_ms, pin, 0))
        script.append((at_ms + hold_ms, pin, 1))
        script.sort(key=lambda e: e[0])

    def close(self):
        machine_button.micropython = self._micropython
        if self._had_print:
            self.pb.print = self._print
        else:
            del self.pb.print
