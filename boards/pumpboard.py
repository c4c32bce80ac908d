# A dev board: board.json validated, machine backends wired into the firmware's one main loop.
#
# boards/pumpboard.py, shared by every board (deployed beside main.py). Each boards/<board>/main.py
# only says which step engine its port has (PIO, RMT, a timer) and
# calls boot(). Nothing here doses or decides an alarm: the loop in firmware/ does. What is here
# is the board's face: the LED blinks per stroke and shows the alarm class, button B refills
# (demo mode), and in demo mode a granted bolus chirps and a refused one beeps low.

from firmware.alarms import (
    ALARM_NAMES,
    CRITICAL_ALARMS,
    EV_ALARM,
    EV_BOLUS,
    EVENT_NAMES,
    KIND_NAMES,
    NON_CRITICAL_ALARMS,
    PTM,
    REASON_NAMES,
)
from firmware.config import load
from firmware.loop import STATE_NAMES, PumpLoop
from hal.channel import CMD_REFILL, Channel


def boot(board, make_steps, path="board.json", fault_led=None, forever=True):
    """Validates `path` for `board`, builds the pump and runs it for ever. An invalid or missing
    config stops the pump: one line on the REPL naming the key, and the LED's fault pattern
    (fault_led: the board's own LED, as the config's led_pin may be what is wrong)."""
    try:
        with open(path) as f:
            cfg = load(f.read(), board)
    except OSError:
        stop("board.json: not found on the board (make deploy copies it)", fault_led, forever)
        return
    except ValueError as e:
        stop(str(e), fault_led, forever)
        return
    pump = Pump(cfg, make_steps(cfg))
    print("pump: %s, %s driver, %d steps per %d nL stroke%s" % (
        cfg.board, cfg.driver, cfg.steps_per_stroke, cfg.pump.stroke_nl,
        ", demo x%d" % cfg.demo_speed if cfg.demo else ""))
    pump.run()


def stop(line, led_pin, forever=True):
    """The pump does not start: say why in one line, and show the fault pattern on the LED."""
    print("pump stopped: " + line)
    if led_pin is None:
        return
    from hal.machine_clock import MachineClock
    from hal.machine_led import Led

    led = Led(led_pin)
    led.fault()
    clock = MachineClock((led,))
    led.poll(clock.ticks_ms())
    while forever:
        clock.wait(clock.ticks_add(clock.ticks_ms(), 1000), _never)


def _never():
    return False


class Pump:
    """The board's backends around one PumpLoop. Also a Poller: it runs in the clock's wait."""

    def __init__(self, cfg, steps):
        from hal.machine_adc import BatteryAdc
        from hal.machine_button import Button
        from hal.machine_buzzer import Buzzer
        from hal.machine_clock import DemoClock, MachineClock
        from hal.machine_led import Led
        from hal.machine_motor import StrokeMotor

        self.cfg = cfg
        self.clock = DemoClock(cfg.demo_speed) if cfg.demo else MachineClock()
        load_adc = None
        if cfg.load_adc_pin is not None:
            import machine

            load_adc = machine.ADC(machine.Pin(cfg.load_adc_pin))
        self.motor = StrokeMotor(self.clock, steps, cfg.steps_per_stroke, cfg.enable_pin, cfg.stall_pin, load_adc)
        self.buzzer = Buzzer(cfg.buzzer_pin)
        self.led = Led(cfg.led_pin)
        self.button_a = Button(cfg.button_a_pin)
        self.button_b = Button(cfg.button_b_pin) if cfg.button_b_pin is not None else None
        if cfg.battery_adc_pin is not None:
            self.adc = BatteryAdc(cfg.battery_adc_pin, cfg.divider_num, cfg.divider_den)
        else:
            print("battery: no ADC pin in board.json: the gauge counts charge only")
            self.adc = _NoCell()
        self.programmer = Channel()
        self.refills = 0
        self._strokes = 0
        self._shown = -1
        self.loop = PumpLoop(self.clock, self.motor, self.buzzer, self.button_a, self.programmer, self.adc,
                             cfg.pump, cfg.rx, self.emit, cfg.volume_nl, cfg.weekday, cfg.time_of_day_ms,
                             cfg.battery, cfg.critical_repeat_minutes)
        self._strokes = self.motor.strokes()
        for p in (self.motor, self.buzzer, self.led, self):
            self.clock.add_poller(p)

    def run(self):
        self.loop.run()

    def poll(self, now):
        n = self.motor.strokes()
        if n != self._strokes:
            self._strokes = n
            if self.cfg.demo:
                self.led.blink()
        active = self.loop.alarms.active
        shown = 2 if active & CRITICAL_ALARMS else (1 if active & NON_CRITICAL_ALARMS else 0)
        if shown != self._shown:
            self._shown = shown
            if shown:
                self.led.pattern(shown)
            else:
                self.led.off()
        if self.button_b is not None and self.button_b.pending():
            self.button_b.presses()
            self.refill()

    def refill(self):
        """Button B: top the reservoir up to full with the drug in it (demo: the child's pretend refill)."""
        ctl = self.loop.ctl
        room = ctl.pump.capacity_nl - ctl.reservoir.volume_nl
        if room > 0 and self.programmer.send((CMD_REFILL, room, ctl.conc)):
            self.refills += 1

    def emit(self, code, a, b, c):
        if code == EV_BOLUS and a == PTM and self.cfg.demo:
            if b:
                self.buzzer.beep_low()  # "not yet": lockout, or the day's count used
            else:
                self.buzzer.chirp()
        # One REPL line per event (rare: strokes are not events), as the simulator's events.jsonl.
        if code == EV_BOLUS:
            print("bolus %s %s" % (KIND_NAMES[a], "granted" if not b else "denied: " + REASON_NAMES[b]))
        elif code == EV_ALARM:
            print("alarm %s %s" % (ALARM_NAMES[a], "raised" if b else "cleared"))
        elif code < len(EVENT_NAMES):
            print("%s %d %d %d" % (EVENT_NAMES[code], a, b, c))

    def state(self):
        return STATE_NAMES[self.loop.state()]


class _NoCell:
    """No battery ADC wired: a nominal cell voltage, so only the coulomb count can raise ERI."""

    def read_mv(self):
        return 3200
