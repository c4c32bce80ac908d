# A dev board: board.json validated, machine backends wired into the firmware's one main loop.
#
# boards/pumpboard.py, shared by every board (deployed beside main.py). Each boards/<board>/main.py
# only says which step engine its port has (PIO, RMT, a timer) and
# calls boot(). Nothing here doses or decides an alarm: the loop in firmware/ does. What is here
# is the board's face: the LED shows the alarm class, and in demo and toy mode it blinks per
# stroke, a granted bolus chirps, a refused one beeps low and button B refills. In toy mode a
# long press of B quietens the alarms sounding (the one place a critical tone may be silenced:
# the firmware still raises and repeats them, the board plays them no more). Outside demo and
# toy mode button B is not even built: nothing but the firmware touches therapy.

from firmware.alarms import (
    ALARM_NAMES,
    BATTERY_CAUSES,
    COMMAND_NAMES,
    CRITICAL,
    CRITICAL_ALARMS,
    EV_ALARM,
    EV_BATTERY_LOW_READING,
    EV_BOLUS,
    EV_BOLUS_CANCELLED,
    EV_BOLUS_END,
    EV_CLOCK_SET,
    EV_COMMAND_ACCEPTED,
    EV_COMMAND_REFUSED,
    EV_COMMAND_REJECTED,
    EV_CRITICAL_FAULT,
    EV_DELIVERY_RESUMED,
    EV_EMPTY_RESERVOIR,
    EV_EOS,
    EV_ERI,
    EV_LIMIT_HELD,
    EV_LIMIT_HOLD_ENDED,
    EV_LIMIT_TRUNCATED,
    EV_LINK_LOCKED,
    EV_LINK_UNLOCKED,
    EV_LOW_RESERVOIR,
    EV_LOW_RESERVOIR_CLEARED,
    EV_OCCLUSION,
    EV_OCCLUSION_RELEASED,
    EV_PRIME,
    EV_PRIME_DONE,
    EV_PRIME_REJECTED,
    EV_PROGRAM,
    EV_PROGRAM_REJECTED,
    EV_PROJECTION,
    EV_REFILL,
    EV_REFILL_REJECTED,
    EV_RESET,
    EV_RESUMED,
    EV_RUNAWAY,
    EV_SILENCED,
    EV_STALL,
    EV_STALL_RECOVERED,
    EV_SUSPENDED,
    EV_TONE,
    EV_UNDER_DELIVERY,
    FAULT_NAMES,
    NON_CRITICAL_ALARMS,
    PERIODIC,
    PTM,
)
from firmware.battery import VOLTAGE_READINGS
from firmware.config import load
from firmware.link import KEY_LEN
from firmware.loop import STATE_NAMES, PumpLoop
from firmware.prescription import mcg_text
from hal.channel import CMD_REFILL, Channel
from hal.train import COUNT_MASK

LONG_PRESS_MS = 1500  # toy mode: holding B this long quietens the alarms instead of refilling
# A link on the USB serial stream takes Ctrl-C for data (a frame may hold 0x03): for this long after
# a reset, before it does, Ctrl-C still reaches the REPL, so mpremote can get in (make deploy).
REPL_WINDOW_MS = 3000
KEY_FILE = "link_keys.bin"  # make deploy's keys (clinician's 32 bytes, then the patient's): journaled at boot, removed

_part = [""]  # what boot() is building, for its one line if that fails


def boot(board, make_steps, path="board.json", fault_led=None, forever=True):
    """Validates `path` for `board`, builds the pump and runs it for ever. An invalid or missing
    config, or a board that cannot be built (a module or class this MicroPython lacks, a pin a
    backend refuses), stops the pump: one line on the REPL naming the cause, and the LED's fault
    pattern (fault_led: the board's own LED, as the config's led_pin may be what is wrong)."""
    try:
        with open(path) as f:
            cfg = load(f.read(), board)
    except OSError:
        stop("board.json: not found on the board (make deploy copies it)", fault_led, forever)
        return
    except ValueError as e:
        stop(str(e), fault_led, forever)
        return
    if cfg.link == "usb":
        repl_window()
    try:
        _part[0] = "the step engine (motor.driver %s)" % cfg.driver
        steps = make_steps(cfg)
        pump = Pump(cfg, steps)
    except Exception as e:  # noqa: BLE001 -- any failure to build ends in the one line, never a traceback
        stop(why_not_built(e), fault_led, forever)
        return
    print("pump: %s, %s driver, %d steps per %d nL stroke%s" % (
        cfg.board, cfg.driver, cfg.steps_per_stroke, cfg.pump.stroke_nl,
        ", demo x%d" % cfg.demo_speed if cfg.demo else (", toy: %d sips, one every %d s" % (
            cfg.sips, cfg.sip_every_s) if cfg.toy else "")))
    if cfg.link == "usb":
        print("Link: on this USB serial port; the REPL's Ctrl-C is off from now until the next reset")
        import micropython

        micropython.kbd_intr(-1)  # the link is the only way in, and a 0x03 in a frame is data
    pump.run()


def repl_window():
    """Before the link takes the USB stream: REPL_WINDOW_MS in which Ctrl-C still stops main.py."""
    import time

    print("Link on USB in %d s: Ctrl-C now for the REPL" % (REPL_WINDOW_MS // 1000))
    end = time.ticks_add(time.ticks_ms(), REPL_WINDOW_MS)
    while time.ticks_diff(end, time.ticks_ms()) > 0:
        time.sleep_ms(20)


def why_not_built(e):
    """One line for an exception raised while building the board: the part, and what was missing."""
    text = str(e)
    what = text
    if isinstance(e, ImportError):
        what = "this MicroPython has no module %s (%s)" % (_quoted(text) or "it needs", text)
    elif isinstance(e, AttributeError):
        name = _quoted(text[text.find("attribute"):]) if "attribute" in text else ""
        owner = _lacking(name) if name else ""
        if owner:
            what = "this MicroPython has no %s.%s (%s)" % (owner, name, text)
    elif not isinstance(e, ValueError):
        what = "%s: %s" % (type(e).__name__, text)
    elif text.startswith("board.json: "):
        return text  # a backend naming the key itself
    return "%s: %s" % (_part[0] or "the board", what)


def _quoted(text):
    """The first 'quoted' word of text, or ''."""
    i = text.find("'")
    j = text.find("'", i + 1) if i >= 0 else -1
    return text[i + 1:j] if j > i else ""


def _lacking(name):
    """The port module (imported by a backend) that has no attribute `name`, or ''. The message
    alone cannot say: MicroPython's is "'module' object has no attribute 'PWM'" (py/runtime.c)."""
    import sys

    for mod in ("machine", "pyb", "rp2", "esp32"):
        m = sys.modules.get(mod)
        if m is not None and not hasattr(m, name):
            return mod
    return ""


def stop(line, led_pin, forever=True):
    """The pump does not start: say why in one line, and show the fault pattern on the LED."""
    print("pump stopped: " + line)
    if led_pin is None:
        return
    from hal.machine_clock import MachineClock
    from hal.machine_led import Led

    try:
        led = Led(led_pin)
    except Exception:  # noqa: BLE001 -- the line above is the message; no LED to show it on
        return
    led.fault()
    clock = MachineClock((led,))
    led.poll(clock.ticks_ms())
    while forever:
        clock.wait(clock.ticks_add(clock.ticks_ms(), 1000), _never)


def _never():
    return False


class Pump:
    """The board's backends around one PumpLoop. Also a Poller: it runs in the clock's wait; and
    the loop's annunciator, so toy mode can quieten a tone (tone() below). clock: the board's
    (a DemoClock in demo mode, else the port's ticks) unless a test passes one."""

    def __init__(self, cfg, steps, clock=None):
        from hal.machine_adc import BatteryAdc
        from hal.machine_button import Button
        from hal.machine_buzzer import Buzzer
        from hal.machine_clock import DemoClock, MachineClock
        from hal.machine_led import Led
        from hal.machine_motor import StrokeMotor

        self.cfg = cfg
        self.toy = cfg.toy
        self.playful = cfg.demo or cfg.toy  # the face: a blink per stroke, the bolus sounds, button B
        if clock is None:
            clock = DemoClock(cfg.demo_speed) if cfg.demo else MachineClock()
        self.clock = clock
        # The motor last: if anything before it fails, the driver was never enabled.
        _part[0] = "the LED (led_pin %r)" % (cfg.led_pin,)
        self.led = Led(cfg.led_pin)
        _part[0] = "the buzzer (buzzer_pin %r)" % (cfg.buzzer_pin,)
        self.buzzer = Buzzer(cfg.buzzer_pin, cfg.timer)  # the pyboard's buzzer keeps off the step engine's timer
        _part[0] = "button A (button_a_pin %r)" % (cfg.button_a_pin,)
        self.button_a = Button(cfg.button_a_pin)
        self.button_b = None
        if self.playful and cfg.button_b_pin is not None:
            _part[0] = "button B (button_b_pin %r)" % (cfg.button_b_pin,)
            self.button_b = Button(cfg.button_b_pin)
        if cfg.battery_adc_pin is not None:
            _part[0] = "the battery ADC (battery.adc_pin %r)" % (cfg.battery_adc_pin,)
            self.adc = BatteryAdc(cfg.battery_adc_pin, cfg.divider_num, cfg.divider_den)
        else:
            print("Battery: no ADC pin in board.json, so the gauge counts charge only")
            self.adc = _NoCell()
        load_adc = None
        if cfg.load_adc_pin is not None:
            _part[0] = "the load ADC (motor.load_adc_pin %r)" % (cfg.load_adc_pin,)
            import machine

            load_adc = machine.ADC(machine.Pin(cfg.load_adc_pin))
        _part[0] = "the motor (motor.enable_pin, motor.stall_pin)"
        self.motor = StrokeMotor(self.clock, steps, cfg.steps_per_stroke, cfg.enable_pin, cfg.stall_pin, load_adc)
        self.programmer = Channel()
        self.refills = 0
        self.quietened = 0  # long presses of B that quietened an alarm (toy mode)
        self._muted = 0  # alarm bits whose tones the board does not play (toy mode, until they clear)
        self._b_down = False  # button B pressed and not yet acted on
        self._b_long = False  # ... and held long enough to quieten
        self._strokes = 0
        self._shown = -1
        self._built = False  # emit() runs while the loop is built
        persist = self._persist(cfg) if cfg.journal is not None else None
        if persist is None:
            print("Journal: none in board.json, so a reset forgets the pump's state")
        watchdog = None
        if cfg.watchdog_ms:  # started last: from here on the loop must feed it
            from hal.machine_watchdog import MachineWatchdog

            _part[0] = "the watchdog (watchdog.timeout_ms %r)" % (cfg.watchdog_ms,)
            watchdog = MachineWatchdog(cfg.watchdog_ms)
        link_port = self._link_port(cfg) if cfg.link else None
        _part[0] = "the firmware's loop"
        self.loop = PumpLoop(self.clock, self.motor, self, self.button_a, self.programmer, self.adc,
                             cfg.pump, cfg.rx, self.emit, cfg.volume_nl, cfg.weekday, cfg.time_of_day_ms,
                             cfg.battery, cfg.critical_repeat_minutes, persist, watchdog, link_port)
        self._built = True
        if link_port is not None:
            _part[0] = "the link's keys (%s)" % KEY_FILE
            self._provision()
        _part[0] = ""
        self._strokes = self.motor.strokes()
        for p in (self.motor, self.buzzer, self.led, self):
            self.clock.add_poller(p)
        print(self.sentence(EV_PROJECTION, 0, 0, 0))  # the boot's projection, emitted before the loop existed

    def run(self):
        self.loop.run()

    @staticmethod
    def _persist(cfg):
        """The journal over the board's flash regions, timed by machine.RTC: the state survives a reset."""
        import machine

        from firmware.persist import Persist
        from hal.machine_rtc import MachineRtc
        from hal.machine_storage import defaults, open_regions

        _part[0] = "the journal's flash region (journal)"
        region = defaults(cfg.board)  # board.json's keys over the board's defaults
        region.update(cfg.journal)
        state_dev, events_dev = open_regions(region)
        _part[0] = "the real-time clock (machine.RTC)"
        return Persist(state_dev, MachineRtc(machine.RTC()), events_dev)

    @staticmethod
    def _link_port(cfg):
        """The link's bytes (board.json "link"): the USB serial stream, or a UART."""
        from hal.machine_link import UartLink, UsbSerialLink, make_uart

        if cfg.link == "usb":
            import select
            import sys

            _part[0] = "the link (link.port usb: sys.stdin.buffer, select.poll)"
            return UsbSerialLink(sys.stdin.buffer, sys.stdout.buffer, select.poll())
        _part[0] = "the link's UART (link.uart %d, tx_pin %r, rx_pin %r)" % (cfg.link_uart, cfg.link_tx_pin,
                                                                          cfg.link_rx_pin)
        fixed = cfg.board == "pyboard"  # its UARTs' pins are the id's: the port takes none
        return UartLink(make_uart(cfg.link_uart, cfg.link_baudrate, None if fixed else cfg.link_tx_pin,
                                  None if fixed else cfg.link_rx_pin))

    def _provision(self):
        """make deploy's keys, if it left them: into the journal once, then the file is removed (it
        stays only if the journal could not take them). Without keys every command is refused."""
        import os

        from firmware.persist import FAULTED

        link = self.loop.link
        if link is None:
            return
        try:
            with open(KEY_FILE, "rb") as f:
                keys = f.read()
        except OSError:
            if not link.provisioned:
                print("Link: no keys in the journal: every command is refused (make deploy provisions them)")
            return
        if self.loop.persist is None or self.loop.persist.booted == FAULTED:
            print("Link: the journal cannot be written: %s kept, keys not provisioned" % KEY_FILE)
            return
        if len(keys) != 2 * KEY_LEN:
            print("Link: %s holds %d bytes, not %d: ignored" % (KEY_FILE, len(keys), 2 * KEY_LEN))
        elif link.provisioned:
            print("Link: keys in the journal already%s" % (
                "" if link.keys == keys else "; %s holds others, ignored (keys are provisioned once: a new "
                "pair needs the journal erased)" % KEY_FILE))
        else:
            try:
                link.provision(keys[:KEY_LEN], keys[KEY_LEN:])
                print("Link: keys provisioned into the journal")
            except ValueError as e:
                print("Link: %s: %s" % (KEY_FILE, e))
        os.remove(KEY_FILE)

    # -- the annunciator (hal/interfaces.py), in front of the buzzer ----------------------------------

    def tone(self, cls, alarm):
        if not self._muted >> alarm & 1:
            self.buzzer.tone(cls, alarm)

    # -- Poller -------------------------------------------------------------------------------------

    def poll(self, now):
        n = self.motor.strokes()
        if n != self._strokes:
            self._strokes = n
            if self.playful:
                self.led.blink()
        active = self.loop.alarms.active
        self._muted &= active  # a cleared alarm sounds again if it comes back
        shown = 2 if active & CRITICAL_ALARMS else (1 if active & NON_CRITICAL_ALARMS else 0)
        if shown != self._shown:
            self._shown = shown
            if shown:
                self.led.pattern(shown)
            else:
                self.led.off()
        if self.button_b is not None:
            self._poll_b()

    def _poll_b(self):
        """B acts once it is let go (a refill), or in toy mode once held LONG_PRESS_MS (quiet)."""
        b = self.button_b
        if b is None:
            return
        if b.pending():
            b.presses()
            self._b_down = True
            self._b_long = False
        if not self._b_down:
            return
        held = b.held_ms()
        if held < 0:
            self._b_down = False
            if not self._b_long:
                self.refill()
        elif held >= LONG_PRESS_MS and self.toy and not self._b_long:
            self._b_long = True
            self.quieten()

    def refill(self):
        """Button B: top the reservoir up to full with the drug in it (demo: the child's pretend
        refill; toy: back to its sips)."""
        ctl = self.loop.ctl
        # The controller's volume is as of its last wake: the strokes since have left it too.
        since = (self.motor.strokes() - ctl.strokes_seen()) & COUNT_MASK
        room = self.cfg.full_nl - ctl.reservoir.volume_nl + since * ctl.pump.stroke_nl
        if room > 0 and self.programmer.send((CMD_REFILL, room, ctl.conc)):
            self.refills += 1

    def quieten(self):
        """Toy mode, a long press of B: the alarms active now sound no more until they clear; the
        LED still shows them."""
        active = self.loop.alarms.active
        if not active:
            print("Nothing to quieten: no alarm is on")
            return
        self._muted = active
        self.buzzer.off()
        self.quietened += 1
        print("Quietened: the alarm sounds stop until the alarm is over; the light still shows it")

    # -- events -------------------------------------------------------------------------------------

    def emit(self, code, a, b, c):
        if code == EV_BOLUS and a == PTM and self.playful:
            if b:
                self.buzzer.beep_low()  # "not yet": lockout, or the day's count used
            else:
                self.buzzer.chirp()
        if not self._built and code == EV_PROJECTION:
            return  # the loop is being built: its first projection is printed once it is
        line = self.sentence(code, a, b, c)
        if line:
            print(line)  # one REPL line per event (rare: strokes are not events)

    def sentence(self, code, a, b, c):
        """The event as one plain sentence (pump and demo: mL and mcg; toy: sips)."""
        if self.toy:
            line = self._toy_sentence(code, a, b, c)
            if line:
                return line
        if code == EV_LOW_RESERVOIR:
            return "Low reservoir: %s left, refill soon" % _ml(a)
        if code == EV_LOW_RESERVOIR_CLEARED:
            return "Reservoir no longer low: %s in it" % _ml(a)
        if code == EV_EMPTY_RESERVOIR:
            return "Reservoir empty (%s left, the empty mark): delivery stopped, refill now" % _ml(a)
        if code == EV_DELIVERY_RESUMED:
            return "Delivery resumed with %s in the reservoir" % _ml(a)
        if code == EV_LIMIT_TRUNCATED:
            return "%s cut to %s by the daily limit (%s asked for)" % (_KIND_TEXT[a], mcg_text(c), mcg_text(b))
        if code == EV_BOLUS:
            if b:
                return "%s refused: %s" % (_KIND_TEXT[a], _REASON_TEXT[b])
            minutes = self._bolus_minutes(a)
            return "%s granted: %s%s" % (_KIND_TEXT[a], mcg_text(c), " over %d min" % minutes if minutes else "")
        if code == EV_BOLUS_END:
            return "%s finished" % _KIND_TEXT[a]
        if code == EV_BOLUS_CANCELLED:
            return "%s cancelled" % _KIND_TEXT[a]
        if code == EV_REFILL:
            return "Refilled: %s of %d mcg/mL" % (_ml(a), b)
        if code in (EV_REFILL_REJECTED, EV_PROGRAM_REJECTED, EV_PRIME_REJECTED):
            return "%s refused: %s" % ("Refill" if code == EV_REFILL_REJECTED else (
                "New prescription" if code == EV_PROGRAM_REJECTED else "Priming"), _REASON_TEXT[a])
        if code == EV_PROGRAM:
            return "New prescription in force"
        if code == EV_UNDER_DELIVERY:
            return "Under-delivery: %s written off, never made up (the motor fell behind or a wake came late)" % (
                mcg_text(a))
        if code == EV_PRIME:
            return "Priming: %s to fill the line" % _ml(a)
        if code == EV_PRIME_DONE:
            return "Priming done: %s pushed" % _ml(a)
        if code == EV_ALARM:
            if b:
                return "Alarm on: %s (%s)" % (_ALARM_TEXT[a], "critical" if CRITICAL_ALARMS >> a & 1 else "non-critical")
            return "Alarm over: %s" % _ALARM_TEXT[a]
        if code == EV_TONE:
            if self._muted >> a & 1:
                return "Alarm sound for %s not played: quietened (the light still shows it)" % _ALARM_TEXT[a]
            if b == CRITICAL:
                return "Alarm sound: the critical two-tone for %s, again every %d min while it lasts" % (
                    _ALARM_TEXT[a], self.cfg.critical_repeat_minutes)
            return "Alarm sound: one tone for %s, again every hour while it lasts" % _ALARM_TEXT[a]
        if code == EV_SILENCED:
            return "Alarm sound silenced until its next hourly repeat"
        if code == EV_COMMAND_REJECTED:
            return "Programmer's %s refused: %s" % (COMMAND_NAMES[a], _REASON_TEXT[b])
        if code == EV_SUSPENDED:
            return "Delivery suspended"
        if code == EV_RESUMED:
            return "Delivery resumed after a suspend"
        if code == EV_STALL:
            return "Motor stalled: delivery held, the stroke is retried"
        if code == EV_STALL_RECOVERED:
            return "Motor turning again after a stall of %s; %s missed, never made up" % (
                _duration(a // 60) if a >= 60 else "%d s" % a, "%d mcg" % (b * 1000 + c // 1000))  # b mg, c ng
        if code == EV_OCCLUSION:
            return "Occlusion: the motor's load reached %d%% of normal, delivery held" % a
        if code == EV_OCCLUSION_RELEASED:
            return "Occlusion released: %d nL pushed through, counted against the daily limit" % a
        if code == EV_RUNAWAY:
            return "Motor runaway: %d strokes since the last check, motor power cut for good" % a
        if code == EV_ERI:
            return "Battery: replacement due (%s)" % _CAUSE_TEXT[a]
        if code == EV_EOS:
            return "Battery: end of service (%s), delivery stopped for good" % _CAUSE_TEXT[a]
        if code == EV_PROJECTION:
            loop = self.loop
            return "Reservoir low in %s and empty in %s at this prescription" % (
                _duration(loop.low_reservoir_min), _duration(loop.empty_min))
        if code == EV_CRITICAL_FAULT:
            return "Critical fault: the %s check failed, delivery stopped" % FAULT_NAMES[a].replace("_", " ")
        if code == EV_LIMIT_HELD:
            return "Delivery held for the daily limit: %s to withhold" % mcg_text(a)
        if code == EV_LIMIT_HOLD_ENDED:
            return "Daily limit hold over: %s withheld" % mcg_text(a)
        if code == EV_BATTERY_LOW_READING:
            if b:
                return "Battery read %d mV, under %d mV: %d of the %d low readings at rest, minutes apart, that act" % (
                    a, c, b, VOLTAGE_READINGS)
            return "Battery read %d mV, under %d mV, but not at rest: to be read again" % (a, c)
        if code == EV_RESET:
            return "Restarted from the journal after %s off: %d strokes counted as made, none repeated" % (
                _seconds(a), b)
        if code == EV_CLOCK_SET:
            return "Clock set %s %s (it read %s %s): doses follow the new time, none repeated or skipped" % (
                "forward" if c >= 0 else "back", _seconds(c if c >= 0 else -c), _WEEKDAYS[b], _hhmm(a))
        if code == EV_COMMAND_ACCEPTED or code == EV_COMMAND_REFUSED:
            return _link_sentence(code, a, b, c)
        if code == EV_LINK_LOCKED:
            return "Link locked for %d min after %d failed authentications: delivery goes on" % (b, a)
        if code == EV_LINK_UNLOCKED:
            return "Link lockout ended"
        return "Event %d" % code  # a code added to firmware/alarms.py without a sentence here

    def _toy_sentence(self, code, a, b, c):
        """Toy mode's own words where an event carries an amount: sips, not mL or mcg."""
        if code == EV_LOW_RESERVOIR:
            return "Low water: %s left, refill soon (a short press of B)" % _sips(self._sips(a))
        if code == EV_LOW_RESERVOIR_CLEARED:
            return "Water no longer low: %s" % _sips(self._sips(a))
        if code == EV_EMPTY_RESERVOIR:
            return "Empty: the toy stopped pumping; a short press of B refills it"
        if code == EV_DELIVERY_RESUMED:
            return "Pumping again with %s" % _sips(self._sips(a))
        if code == EV_BOLUS and a == PTM:
            if b:
                return "Button bolus: not yet (%s)" % _REASON_TEXT[b]
            return "Button bolus: yes, %s more over %d min" % (_sips(c // self.cfg.pump.stroke_nl), self.cfg.bolus_minutes)
        if code in (EV_BOLUS_END, EV_BOLUS_CANCELLED) and a == PTM:
            return "Button bolus %s" % ("finished" if code == EV_BOLUS_END else "cancelled")
        if code == EV_REFILL:
            return "Refilled: %s" % _sips(self._sips(a))
        if code == EV_UNDER_DELIVERY:
            return "Missed: about %s the motor did not pump in time" % _sips(a // self.cfg.pump.stroke_nl)
        if code == EV_PROJECTION:
            loop = self.loop
            return "The water runs low in %s and out in %s" % (
                _duration(loop.low_reservoir_min), _duration(loop.empty_min))
        return ""

    def _sips(self, volume_nl):
        """Sips left above the toy's empty mark."""
        left = volume_nl - self.cfg.pump.empty_nl
        return left // self.cfg.pump.stroke_nl if left > 0 else 0

    def _bolus_minutes(self, kind):
        """The minutes of a bolus just granted, from the prescription (0: not known here)."""
        if not self._built:
            return 0
        ctl = self.loop.ctl
        if kind == PTM and ctl.rx.ptm is not None:
            return ctl.rx.ptm[0].minutes
        if kind == PERIODIC:
            for at_ms, bolus in ctl.rx_periodic.periodic:
                if at_ms == ctl.ms:
                    return bolus.minutes
        return 0

    def state(self):
        return STATE_NAMES[self.loop.state()]


# Plain words for the firmware's codes (firmware/alarms.py: KIND_NAMES, REASON_NAMES, ALARM_NAMES,
# BATTERY_CAUSES); test_main_boot checks one per code.
_KIND_TEXT = ("Clinician bolus", "Scheduled bolus", "Patient bolus")
_REASON_TEXT = (
    "",
    "too soon after the last one",
    "the day's boluses are used up",
    "it would pass the daily limit",
    "too fast for the pump",
    "the reservoir is empty",
    "too many boluses at once",
    "no patient bolus is prescribed",
    "more than the reservoir holds",
    "the drug's concentration does not fit the prescription",
    "no bolus is running",
    "the pump is priming",
    "the line still holds the old drug",
    "too many prescription changes within a day",
    "delivery is stopped",
    "delivery is not suspended",
    "no alarm can be silenced",
    "delivery is already suspended",
)
_ALARM_TEXT = ("empty reservoir", "end of service", "motor stall", "occlusion", "motor runaway", "critical fault",
               "low reservoir", "battery replacement due", "delivery suspended",
               "a large part of the day's dose was missed", "the clock was lost")
_CAUSE_TEXT = ("", "projected from the charge used", "the cell's voltage", "90 days after the replacement warning",
               "the service limit")
assert len(_ALARM_TEXT) == len(ALARM_NAMES) and len(_CAUSE_TEXT) == len(BATTERY_CAUSES)


def _ml(volume_nl):
    """nL as mL, to the uL, without trailing zeros: "19.997 mL", "2 mL"."""
    s = "%d.%03d" % (volume_nl // 1_000_000, volume_nl % 1_000_000 // 1000)
    return s.rstrip("0").rstrip(".") + " mL"


def _sips(n):
    return "1 sip" if n == 1 else "%d sips" % n


def _duration(minutes):
    """Minutes in words ("about 2 h 5 min"); -1: never (not within the pump's service)."""
    if minutes < 0:
        return "more than the pump's service life"
    if minutes < 60:
        return "about %d min" % minutes
    if minutes < 2880:
        return "about %d h %d min" % (minutes // 60, minutes % 60)
    return "about %d days" % (minutes // 1440)


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _hhmm(ms_of_day):
    return "%02d:%02d" % (ms_of_day // 3_600_000, ms_of_day // 60_000 % 60)


def _seconds(s):
    """Seconds in words ("1 h 2 min 5 s")."""
    if s < 60:
        return "%d s" % s
    if s < 3600:
        return "%d min %d s" % (s // 60, s % 60)
    return "%d h %d min" % (s // 3600, s % 3600 // 60)


class _NoCell:
    """No battery ADC wired: a nominal cell voltage, so only the coulomb count can raise ERI."""

    def read_mv(self):
        return 3200


def _link_sentence(code, a, b, c):
    """A link command (firmware/link.py): its role, command, result and field."""
    from firmware.link import COMMAND_NAMES as LINK_COMMANDS
    from firmware.link import RESULT_NAMES

    role = ("unknown sender", "patient", "clinician")[a >> 8] if a >> 8 <= 2 else "unknown sender"
    cmd = a & 0xFF
    what = LINK_COMMANDS[cmd] if 0 < cmd < len(LINK_COMMANDS) else "a frame"
    if code == EV_COMMAND_ACCEPTED:
        return "Link: %s %s accepted" % (role, what)
    why = RESULT_NAMES[b].replace("_", " ") if b in RESULT_NAMES else "result code %d unknown" % b
    return "Link: %s %s refused: %s%s" % (role, what, why, ", at int %d of the request" % c if c else "")
