# A dev board's configuration (boards/<board>/board.json), validated at boot.
#
# Configuration is data: pins, the driver, steps per stroke, the mode, and for a pump or a demo the
# stroke volume and the starting prescription in the scenario's units (mL, mcg, "HH:MM";
# docs/scenarios.md). Every key is checked here, on the board, and the first bad one stops the
# boot with a ValueError naming it ("board.json: motor.step_pin: ..."). Runs once at boot: it may
# allocate, and it takes floats from JSON (single precision on ESP32 and pyboard), so volumes
# resolve to 1 uL and doses to 1 ng.
#
# Modes: "pump" (real time, the prescription as written), "demo" (the same, time demo_speed times
# faster; the old spelling "demo": true still works) and "toy" (real time, no drug at all: a
# reservoir of sips, a sip every N seconds and a button bolus, from which a made-up prescription is
# derived that passes every limit of firmware/prescription.py; boards/README.md).

from firmware.battery import BatteryParams
from firmware.limits import volume_mass_ng
from firmware.prescription import (
    MAX_BOLUS_MINUTES,
    MAX_BOLUS_NG,
    MAX_LOCKOUT_MINUTES,
    MAX_PTM_PER_DAY,
    MIN_LOCKOUT_MINUTES,
    Bolus,
    Prescription,
    Profile,
    PumpParams,
    bolus_top_rate,
)
from firmware.units import MIN_BASAL_NL_PER_DAY, MS_PER_MINUTE, NL_PER_ML, max_rate_ng_per_day, muldiv

BOARDS = ("rpi_pico", "esp32", "pyboard")
DRIVERS = ("step_dir", "uln2003")
MODES = ("pump", "demo", "toy")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DEMO_SPEED = 1000  # the DemoClock never passes a deadline; the motor's pace bounds the speed (_demo_steps)

# The toy's made-up pump and drug: one sip is one 250 nL stroke of a 1000 mcg/mL "drug" (water),
# so a sip is 250 ng and ng equal nL; the reservoir is the 20 mL one, "empty" at 0.5 mL.
TOY_STROKE_NL = 250
TOY_CONCENTRATION = 1000
TOY_CAPACITY_NL = 20 * NL_PER_ML
TOY_EMPTY_NL = NL_PER_ML // 2
TOY_MAX_SIPS = (TOY_CAPACITY_NL - TOY_EMPTY_NL) // TOY_STROKE_NL  # 78 000: a full 20 mL reservoir
TOY_MAX_LOW_SIPS = (10 * NL_PER_ML - TOY_EMPTY_NL) // TOY_STROKE_NL  # the low threshold is at most 10 mL
_SIP_NL_PER_DAY = TOY_STROKE_NL * 86_400  # a sip a second, in nL (= ng) per day
TOY_MAX_SIP_EVERY_S = _SIP_NL_PER_DAY // MIN_BASAL_NL_PER_DAY  # 450: the least basal, 0.048 mL/day
_TOP_RATE = max_rate_ng_per_day(TOY_CONCENTRATION)  # 24 mL/day, in ng/day of the toy's drug
# A demo's virtual time may run up to 5/4 of its speed while it catches up (hal/machine_clock.py).
_CATCH_UP_NUM = 5
_CATCH_UP_DEN = 4

_TOP = ("board", "mode", "demo", "demo_speed", "start_weekday", "start_time", "motor", "buzzer_pin", "led_pin",
        "button_a_pin", "button_b_pin", "battery", "pump", "drug", "basal", "periodic_bolus", "ptm", "limits",
        "alarms", "toy", "watchdog", "journal", "link")
_DRUG_KEYS = ("drug", "pump", "basal", "periodic_bolus", "ptm", "limits")  # refused in toy mode
_TOY = ("sips", "sip_every_s", "low_sips", "bolus_sips", "bolus_minutes", "bolus_lockout_minutes", "bolus_per_day")
_MOTOR = ("driver", "step_pin", "dir_pin", "enable_pin", "phase_pins", "stall_pin", "load_adc_pin",
          "steps_per_stroke", "demo_steps_per_stroke", "steps_per_s", "state_machine", "timer", "timer_channel")


class _Reader:
    def __init__(self, table, path):
        if not isinstance(table, dict):
            raise ValueError("board.json: %s: must be an object" % (path or "top level"))
        self.t = table
        self.path = path

    def key(self, k):
        return self.path + "." + k if self.path else k

    def fail(self, k, why):
        raise ValueError("board.json: %s: %s" % (self.key(k), why))

    def only(self, allowed):
        for k in self.t:
            if k not in allowed:
                self.fail(k, "unknown key")

    def has(self, k):
        return k in self.t and self.t[k] is not None

    def get(self, k, default):
        if k not in self.t:
            if default is _REQUIRED:
                self.fail(k, "missing")
            return default
        return self.t[k]

    def integer(self, k, lo, hi, default=None):
        v = self.get(k, default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.fail(k, "must be an integer %d..%d, not %r" % (lo, hi, v))
        return v

    def flag(self, k, default):
        v = self.get(k, default)
        if not isinstance(v, bool):
            self.fail(k, "must be true or false, not %r" % (v,))
        return v

    def text(self, k, choices, default=None):
        v = self.get(k, default)
        if v not in choices:
            self.fail(k, "must be one of %s, not %r" % (", ".join(choices), v))
        return v

    def scaled(self, k, lo, hi, digits, default=None):
        """A number lo..hi with at most `digits` decimals, as an int count of 10**-digits."""
        v = self.get(k, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            self.fail(k, "must be a number %s..%s, not %r" % (lo, hi, v))
        if isinstance(v, int):
            return v * 10 ** digits
        x = v * 10 ** digits
        n = int(round(x))
        if abs(x - n) > 0.01 + abs(n) * _FLOAT_EPS:  # a finer value, not the port's float rounding
            self.fail(k, "has more than %d decimals: %r" % (digits, v))
        return n

    def time_ms(self, k, default=None):
        v = self.get(k, default)
        if not isinstance(v, str) or len(v) != 5 or v[2] != ":" or not (v[:2] + v[3:]).isdigit() \
                or int(v[:2]) > 23 or int(v[3:]) > 59:
            self.fail(k, "%r is not a time HH:MM (00:00..23:59)" % (v,))
        return (int(v[:2]) * 60 + int(v[3:])) * 60_000

    def sub(self, k, required=False):
        if k not in self.t:
            if required:
                self.fail(k, "missing")
            return _Reader({}, self.key(k))
        return _Reader(self.t[k], self.key(k))

    def items(self, k):
        v = self.get(k, [])
        if not isinstance(v, list):
            self.fail(k, "must be a list")
        return [_Reader(x, "%s[%d]" % (self.key(k), i)) for i, x in enumerate(v)]


_REQUIRED = object()
# ESP32 and pyboard floats are single precision: JSON's 2.6 is 2.5999999 there.
_FLOAT_EPS = 2e-7 if 1.0 + 1e-8 == 1.0 else 1e-12


# Pico GPIOs that are not on its header, and why (RP2040 and Pico W datasheets). A Pico W wires
# them to its wireless chip; its LED is the chip's WL_GPIO0, Pin("LED") on both boards
# (ports/rp2/boards/RPI_PICO{,_W}/pins.csv, MicroPython 1.24..1.28).
_PICO_INTERNAL = {
    23: "GPIO 23 is not on the Pico's pins: it sets the power supply's mode (on a Pico W it powers the wireless chip)",
    24: "GPIO 24 is not on the Pico's pins: it senses USB power (on a Pico W it is the wireless chip's data line)",
    25: "GPIO 25 drives the LED on a Pico but is the wireless chip's SPI select on a Pico W: "
        "use \"LED\" for the LED",
    29: "GPIO 29 is not on the Pico's pins: it measures VSYS (on a Pico W it is also the wireless chip's clock)",
}
_PICO_PINS = "a GPIO number 0..22 or 26..28, or a name GP0..GP22, GP26..GP28"
# The pyboard's names (ports/stm32/boards/PYBV11/pins.csv): X13..X16 are RST, GND, 3V3 and VIN.
_PYB_LEDS = ("LED_RED", "LED_GREEN", "LED_YELLOW", "LED_BLUE")
# The link's UART (board.json "link"): the ids a board may use, and on the pyboard its fixed pins
# (ports/stm32/boards/PYBV11/mpconfigboard.h: UART1 B6/B7, 2 A2/A3, 3 B10/B11, 4 A0/A1, 6 C6/C7).
# UART0 of an esp32 is its REPL's; a Pico's UART pins are those of its id (checked by hal/machine_link.py).
_LINK_UARTS = {"rpi_pico": (0, 1), "esp32": (1, 2), "pyboard": (1, 2, 3, 4, 6)}
_PYB_UART_PINS = {1: ("X9", "X10"), 2: ("X3", "X4"), 3: ("Y9", "Y10"), 4: ("X1", "X2"), 6: ("Y1", "Y2")}
LINK_BAUD_MIN = 1200
LINK_BAUD_MAX = 1_000_000


class _Pins:
    """The board's pin rules, and every pin used once only (a Pico pin by number or by name alike)."""

    def __init__(self, board):
        self.board = board
        self.used = {}

    def pin(self, r, k, output, adc=False, required=True, led=False):
        """The pin at r's key k, as machine.Pin takes it: an int, or a name where the port has one.
        led: the key is led_pin, which may also name the board's LED."""
        if not r.has(k):
            if required:
                r.fail(k, "missing (a pin)")
            return None
        given = r.t[k]
        if self.board == "pyboard":
            p = self._pyboard(r, k, given, led)
        elif self.board == "rpi_pico":
            p = self._pico(r, k, given, adc, led)
        else:
            p = given
            if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= 39:
                r.fail(k, "must be a GPIO number 0..39, not %r" % (p,))
            if output and p >= 34:
                r.fail(k, "GPIO %d is input-only on the ESP32" % p)
            if adc and not 32 <= p <= 39:
                r.fail(k, "must be an ADC1 pin (GPIO 32..39) on the ESP32, not %d" % p)
        if p in self.used:
            r.fail(k, "pin %r is also %s" % (given, self.used[p]))
        self.used[p] = r.key(k)
        return p

    def _pico(self, r, k, p, adc, led):
        if p == "LED":
            if not led:
                r.fail(k, "\"LED\" is the board's LED: only led_pin may name it")
            return p
        if isinstance(p, str) and p[:2] == "GP" and p[2:].isdigit() and str(int(p[2:])) == p[2:]:
            n = int(p[2:])
        elif isinstance(p, int) and not isinstance(p, bool):
            n = p
        else:
            n = -1
        if n in _PICO_INTERNAL:
            r.fail(k, _PICO_INTERNAL[n])
        if not 0 <= n <= 28:
            r.fail(k, "must be %s%s, not %r" % (_PICO_PINS, ", or \"LED\"" if led else "", p))
        if adc and not 26 <= n <= 28:
            r.fail(k, "must be an ADC pin (GPIO 26..28) on the Pico, not %r" % (p,))
        return n

    def _pyboard(self, r, k, p, led):
        if led and p in _PYB_LEDS:
            return p
        if not isinstance(p, str) or len(p) < 2 or p[0] not in "XY" or not p[1:].isdigit() \
                or not 1 <= int(p[1:]) <= (22 if p[0] == "X" else 12):
            r.fail(k, "must be a pyboard pin name X1..X22 or Y1..Y12%s, not %r" % (
                " or an LED " + ", ".join(_PYB_LEDS) if led else "", p))
        if p[0] == "X" and 13 <= int(p[1:]) <= 16:
            r.fail(k, "%s is the pyboard's %s, not a pin" % (p, ("RST", "GND", "3V3", "VIN")[int(p[1:]) - 13]))
        return p


class BoardConfig:
    """Everything a board's main.py wires, validated (load() sets every attribute)."""

    def __init__(self):
        self.board = ""
        self.mode = "pump"
        self.demo = False  # mode demo
        self.toy = False  # mode toy
        self.demo_speed = 1  # virtual ms per real ms
        self.weekday = 0
        self.time_of_day_ms = 0
        self.driver = ""
        self.step_pin = self.dir_pin = self.enable_pin = self.stall_pin = self.load_adc_pin = None
        self.phase_pins = None
        self.steps_per_stroke = 0  # the steps the motor turns per stroke (demo mode: demo_steps_per_stroke)
        self.steps_per_s = 0
        self.state_machine = 0
        self.timer = 0
        self.timer_channel = 0
        self.buzzer_pin = self.led_pin = self.button_a_pin = self.button_b_pin = self.battery_adc_pin = None
        self.divider_num = self.divider_den = 1
        self.battery = BatteryParams()
        self.pump = PumpParams()
        self.volume_nl = 0
        self.full_nl = 0  # what a refill (button B) tops the reservoir up to
        self.rx = None
        self.critical_repeat_minutes = 10
        self.watchdog_ms = 0  # machine.WDT's timeout (0: none)
        self.journal = None  # board.json's "journal" object (hal/machine_storage.py reads it), or None
        # the programmer and handset link (firmware/link.py): "" none, "usb" the USB serial stream, "uart"
        self.link = ""
        self.link_uart = 0
        self.link_baudrate = 0
        self.link_tx_pin = self.link_rx_pin = None
        # mode toy: the toy's own numbers (boards/README.md)
        self.sips = self.sip_every_s = self.low_sips = 0
        self.bolus_sips = self.bolus_minutes = self.bolus_lockout_minutes = self.bolus_per_day = 0
        self._demo_steps = None  # motor.demo_steps_per_stroke as given (checked against the prescription)

    def _parse(self, top, board):
        top.only(_TOP)
        self.board = top.text("board", BOARDS, _REQUIRED)
        if self.board != board:
            top.fail("board", "is %r, but this is the %s's main.py" % (self.board, board))
        self._mode(top)
        self.weekday = WEEKDAYS.index(top.text("start_weekday", WEEKDAYS, "mon"))
        self.time_of_day_ms = top.time_ms("start_time", "08:00")
        pins = _Pins(self.board)
        self._motor(top.sub("motor", True), pins)
        self.buzzer_pin = pins.pin(top, "buzzer_pin", True)
        self.led_pin = pins.pin(top, "led_pin", True, led=True)
        self.button_a_pin = pins.pin(top, "button_a_pin", False)
        # The toy's refill and quiet button; a demo's refill; a pump has none (B never touches therapy).
        if self.toy and not top.has("button_b_pin"):
            top.fail("button_b_pin", "missing (a pin): the toy's refill and quiet button")
        self.button_b_pin = pins.pin(top, "button_b_pin", False, required=False)
        bat = top.sub("battery")
        bat.only(("adc_pin", "divider_num", "divider_den", "capacity_mah", "quiescent_ua", "uc_per_stroke"))
        self.battery_adc_pin = pins.pin(bat, "adc_pin", False, adc=True, required=False)
        self.divider_num = bat.integer("divider_num", 1, 4, 1)
        self.divider_den = bat.integer("divider_den", 1, 4, 1)
        self.battery = _firmware(lambda: BatteryParams(bat.integer("capacity_mah", 100, 5000, 720),
                                                    bat.integer("quiescent_ua", 1, 100, 10),
                                                    bat.integer("uc_per_stroke", 1, 10_000, 50)))
        if self.toy:
            self._toy(top)
        else:
            self._prescription(top)
        if self.demo:
            self._demo_steps_per_stroke(top)
        # A stroke's steps must end before the next stroke can be due: at the pump's top rate
        # (24 mL/day) strokes come every 3.6 ms per nL of stroke (900 ms for 250 nL).
        elif self.steps_per_stroke * 1000 // self.steps_per_s * 10 >= self.pump.stroke_nl * 36:
            top.sub("motor").fail("steps_per_stroke", "takes %d ms at steps_per_s; at 24 mL/day strokes come every %d ms: "
                                  "raise motor.steps_per_s" % (
                                      self.steps_per_stroke * 1000 // self.steps_per_s, self.pump.stroke_nl * 36 // 10))
        alarms = top.sub("alarms")
        alarms.only(("critical_repeat_minutes",))
        self.critical_repeat_minutes = alarms.integer("critical_repeat_minutes", 1, 60, 10)
        # A pump runs under the watchdog; demo and toy boards only when asked (a watchdog cannot be
        # stopped: a student who breaks into the REPL is reset timeout_ms later, main.py and all).
        dog = top.sub("watchdog")
        dog.only(("timeout_ms",))
        self.watchdog_ms = dog.integer("timeout_ms", 0, 0x3FFFFFFF, 0 if self.demo or self.toy else 8000)
        if top.has("journal"):
            if self.demo:  # the demo clock runs demo_speed times the real-time clock's pace
                top.fail("journal", "mode demo keeps no journal: its clock runs %dx the real-time clock's, so a "
                         "reset's time off would be counted wrong (use mode pump or toy)" % self.demo_speed)
            j = top.sub("journal")  # the values are checked against the board's flash (hal/machine_storage.py)
            j.only(("partition" if self.board == "esp32" else "start", "state_blocks", "event_blocks"))
            self.journal = top.t["journal"]
        if top.has("link"):
            self._link(top, pins)

    def _link(self, top, pins):
        # The keys and replay counters live in the journal: without one a reset would forget the
        # counters, and a recorded command could be replayed.
        if self.journal is None:
            top.fail("link", "needs a journal (add \"journal\": {}): the link's keys and replay counters live in it%s" % (
                "; mode demo keeps none" if self.demo else ""))
        r = top.sub("link")
        self.link = r.text("port", ("usb", "uart"), _REQUIRED)
        if self.link == "usb":
            r.only(("port",))
            return
        r.only(("port", "uart", "baudrate", "tx_pin", "rx_pin"))
        ids = _LINK_UARTS[self.board]
        uart = r.get("uart", _REQUIRED)
        if uart not in ids or isinstance(uart, bool):
            r.fail("uart", "must be one of %s on the %s, not %r%s" % (", ".join(str(i) for i in ids), self.board, uart,
                                                                    " (UART0 is the REPL's: use \"port\": \"usb\")"
                                                                    if self.board == "esp32" and uart == 0 else ""))
        self.link_uart = uart
        self.link_baudrate = r.integer("baudrate", LINK_BAUD_MIN, LINK_BAUD_MAX, 115_200)
        if self.board == "pyboard":
            for k in ("tx_pin", "rx_pin"):
                if k in r.t:
                    r.fail(k, "the pyboard's UART%d has fixed pins (%s, %s): remove it" % ((uart,) + _PYB_UART_PINS[uart]))
            fixed = _Reader({"tx_pin": _PYB_UART_PINS[uart][0], "rx_pin": _PYB_UART_PINS[uart][1]}, r.path)
            self.link_tx_pin = pins.pin(fixed, "tx_pin", True)
            self.link_rx_pin = pins.pin(fixed, "rx_pin", False)
        else:
            self.link_tx_pin = pins.pin(r, "tx_pin", True)
            self.link_rx_pin = pins.pin(r, "rx_pin", False)

    def _mode(self, top):
        demo = top.flag("demo", False)  # the old spelling of "mode": "demo"
        self.mode = top.text("mode", MODES, "demo" if demo else "pump")
        if "demo" in top.t and demo != (self.mode == "demo"):
            top.fail("demo", "is the old spelling of \"mode\": \"demo\", and says %s with mode %r: "
                     "keep mode only" % ("true" if demo else "false", self.mode))
        self.demo = self.mode == "demo"
        self.toy = self.mode == "toy"
        if self.toy:
            for k in _DRUG_KEYS + ("demo_speed",):
                if k in top.t:
                    if k == "demo_speed":
                        top.fail(k, "mode toy runs in real time: remove demo_speed")
                    top.fail(k, "mode toy takes no drug keys: remove %s (the toy's numbers are under \"toy\")" % k)
        elif "toy" in top.t:
            top.fail("toy", "is for mode toy only (this is mode %s)" % self.mode)
        self.demo_speed = top.integer("demo_speed", 1, MAX_DEMO_SPEED, 360) if self.demo else 1

    def _motor(self, m, pins):
        m.only(_MOTOR)
        self.driver = m.text("driver", DRIVERS, _REQUIRED)
        self.step_pin = self.dir_pin = None
        self.phase_pins = None
        if self.driver == "step_dir":
            for k in ("phase_pins",):
                if m.has(k):
                    m.fail(k, "is for the uln2003 driver")
            self.step_pin = pins.pin(m, "step_pin", True)
            self.dir_pin = pins.pin(m, "dir_pin", True)
            self.enable_pin = pins.pin(m, "enable_pin", True, required=False)
            self.stall_pin = pins.pin(m, "stall_pin", False, required=False)
        else:
            for k in ("step_pin", "dir_pin", "enable_pin", "stall_pin"):
                if m.has(k):
                    m.fail(k, "is for a step_dir driver (the ULN2003 has 4 phase pins)")
            self.enable_pin = self.stall_pin = None
            phases = m.get("phase_pins", _REQUIRED)
            if not isinstance(phases, list) or len(phases) != 4:
                m.fail("phase_pins", "must be a list of 4 pins (IN1..IN4)")
            r = _Reader({"phase_pins[%d]" % i: p for i, p in enumerate(phases)}, m.path)
            self.phase_pins = tuple(pins.pin(r, "phase_pins[%d]" % i, True) for i in range(4))
            if self.board == "rpi_pico" and any(self.phase_pins[i] != self.phase_pins[0] + i for i in range(4)):
                m.fail("phase_pins", "must be 4 consecutive GPIOs on the Pico (one PIO 'out pins, 4')")
        self.load_adc_pin = pins.pin(m, "load_adc_pin", False, adc=True, required=False)
        self.steps_per_stroke = m.integer("steps_per_stroke", 1, 65_535, _REQUIRED)
        self.steps_per_s = m.integer("steps_per_s", 10, 20_000, 1000)
        if self.demo:
            # Time runs demo_speed times faster, the motor does not: each stroke is a short twitch
            # (at most 50 ms), and it must end before the next stroke is due (_demo_steps_per_stroke).
            self._demo_steps = m.integer("demo_steps_per_stroke", 1, self.steps_per_stroke, None) \
                if m.has("demo_steps_per_stroke") else None
            if self._demo_steps is not None and self._demo_steps * 1000 // self.steps_per_s > 50:
                m.fail("demo_steps_per_stroke", "takes more than 50 ms at steps_per_s: a demo's stroke must be short")
        self.state_machine = m.integer("state_machine", 0, 7, 0)
        self.timer = m.integer("timer", 1, 14, 2)
        self.timer_channel = m.integer("timer_channel", 1, 4, 1)

    def _prescription(self, top):
        pump = top.sub("pump", True)
        pump.only(("reservoir_ml", "volume_ml", "stroke_nl", "low_reservoir_ml", "empty_ml"))
        capacity_nl = pump.integer("reservoir_ml", 20, 40, 20) * NL_PER_ML
        self.pump = _firmware(lambda: PumpParams(capacity_nl, pump.integer("stroke_nl", 50, 5000, _REQUIRED),
                                              pump.scaled("low_reservoir_ml", 0.5, 10, 6, 2),
                                              pump.scaled("empty_ml", 0, 2, 6, 0.5)))
        self.volume_nl = pump.scaled("volume_ml", 0, capacity_nl // NL_PER_ML, 6, capacity_nl // NL_PER_ML)
        drug = top.sub("drug", True)
        drug.only(("name", "concentration_mcg_ml"))
        conc = drug.integer("concentration_mcg_ml", 10, 5000, _REQUIRED)
        name = drug.get("name", "baclofen")
        if not isinstance(name, str) or not 1 <= len(name) <= 32:
            drug.fail("name", "must be a name of 1..32 characters")
        basal = top.sub("basal", True)
        basal.only(("steps", "weekdays"))
        profiles = [_profile(basal, "steps")] * 7
        days = basal.sub("weekdays")
        days.only(WEEKDAYS)
        for i in range(7):
            if days.has(WEEKDAYS[i]):
                profiles[i] = _profile(days, WEEKDAYS[i])
        periodic = []
        for p in top.items("periodic_bolus"):
            p.only(("at", "mcg", "minutes"))
            at = p.time_ms("at", _REQUIRED)
            periodic.append((at, _firmware(lambda: Bolus(p.scaled("mcg", 0.001, 200_000, 3, _REQUIRED),
                                                         p.integer("minutes", 1, 1440, _REQUIRED), p.path))))
        ptm = None
        if "ptm" in top.t:
            r = top.sub("ptm")
            r.only(("mcg", "minutes", "lockout_minutes", "max_per_day"))
            ptm = (_firmware(lambda: Bolus(r.scaled("mcg", 0.001, 200_000, 3, _REQUIRED),
                                           r.integer("minutes", 1, 1440, _REQUIRED), "ptm")),
                   r.integer("lockout_minutes", 15, 1440, 60), r.integer("max_per_day", 1, 24, _REQUIRED))
        limits = top.sub("limits", True)
        limits.only(("max_daily_mcg",))
        max_daily_ng = limits.scaled("max_daily_mcg", 0.001, 200_000, 3, _REQUIRED)
        rx = _firmware(lambda: Prescription(conc, profiles, tuple(periodic), ptm, max_daily_ng, name))
        _firmware(lambda: rx.check_pump(self.pump))
        self.rx = rx
        self.full_nl = capacity_nl

    def _demo_steps_per_stroke(self, top):
        """A demo's stroke is demo_steps_per_stroke steps (default: up to 16), short enough that the
        motor keeps up at the prescription's top rate (basal plus every bolus at once) even while
        the demo clock catches up: a stroke whose steps have not ended when the next is due falls
        behind, and the firmware writes off what a motor fails to deliver."""
        m = top.sub("motor")
        every_ms = self._top_rate_every_ms()  # real ms between strokes at the top rate
        # A burst, plus a poll to start it and one to see it end, within the strokes' spacing at
        # the demo clock's fastest catch-up pace: the most steps that takes.
        budget_ms = every_ms * _CATCH_UP_DEN // _CATCH_UP_NUM - 2
        if budget_ms >= self._burst_ms(self.steps_per_stroke):
            fits = self.steps_per_stroke
        else:  # budget_ms < 65 535 steps' ms: the product stays a small int
            fits = budget_ms * self.steps_per_s // 1000 if budget_ms > 0 else 0
        if not fits:
            top.fail("demo_speed", "at %dx the prescription's top rate (basal plus every bolus at once) brings a stroke "
                     "every %d ms, too fast for even one motor step: at most %dx" % (
                         self.demo_speed, every_ms, self._top_speed()))
        if self._demo_steps is None:
            self.steps_per_stroke = min(fits, 16, 50 * self.steps_per_s // 1000)
            if not self.steps_per_stroke:
                m.fail("demo_steps_per_stroke", "one step takes more than 50 ms at steps_per_s: a demo's stroke must "
                       "be short")
        elif self._demo_steps > fits:
            m.fail("demo_steps_per_stroke", "%d steps take %d ms, but at %dx the prescription's top rate (basal plus "
                   "every bolus at once) brings a stroke every %d ms: at most %d steps" % (
                       self._demo_steps, self._burst_ms(self._demo_steps), self.demo_speed, every_ms, fits))
        else:
            self.steps_per_stroke = self._demo_steps

    def _top_virtual_ms(self):
        """Virtual ms between strokes at the prescription's top rate, the pump's 24 mL/day at most."""
        rx = self.rx
        assert rx is not None  # parsed before
        cap = max_rate_ng_per_day(rx.concentration)
        boluses = [b for _, b in rx.periodic] + ([rx.ptm[0]] if rx.ptm is not None else [])
        top = rx.max_basal_ng_per_day
        for b in boluses:  # each is at most cap - basal (Prescription.check_pump): the sum stays small
            top += bolus_top_rate(b.amount_ng, b.minutes)
            if top > cap:
                top = cap
        # A stroke is stroke_nl x concentration pg; a day is 86 400 000 ms: ms = 86 400 x pg / ng per day.
        return muldiv(86_400, self.pump.stroke_nl * rx.concentration, top)

    def _top_rate_every_ms(self):
        return self._top_virtual_ms() // self.demo_speed

    def _burst_ms(self, steps):
        return (steps * 1000 + self.steps_per_s - 1) // self.steps_per_s

    def _top_speed(self):
        """The fastest demo_speed at which one step fits (_demo_steps_per_stroke's budget)."""
        every_ms = ((self._burst_ms(1) + 2) * _CATCH_UP_NUM + _CATCH_UP_DEN - 1) // _CATCH_UP_DEN
        return self._top_virtual_ms() // every_ms

    def _toy(self, top):
        """The toy's numbers, and the made-up prescription the firmware runs: a sip is one stroke."""
        t = top.sub("toy", True)
        t.only(_TOY)
        self.sips = t.integer("sips", 2, TOY_MAX_SIPS, _REQUIRED)
        self.sip_every_s = t.integer("sip_every_s", 1, TOY_MAX_SIP_EVERY_S, _REQUIRED)
        self.low_sips = t.integer("low_sips", 1, min(self.sips - 1, TOY_MAX_LOW_SIPS), max(self.sips // 5, 1))
        self.bolus_minutes = t.integer("bolus_minutes", 1, MAX_BOLUS_MINUTES, 1)
        self.bolus_lockout_minutes = t.integer("bolus_lockout_minutes", MIN_LOCKOUT_MINUTES, MAX_LOCKOUT_MINUTES,
                                               MIN_LOCKOUT_MINUTES)
        self.bolus_per_day = t.integer("bolus_per_day", 1, MAX_PTM_PER_DAY, MAX_PTM_PER_DAY)
        pump = PumpParams(TOY_CAPACITY_NL, TOY_STROKE_NL, TOY_EMPTY_NL + self.low_sips * TOY_STROKE_NL, TOY_EMPTY_NL)
        basal_ng = _SIP_NL_PER_DAY // self.sip_every_s  # ng = nL at the toy's concentration
        # Boluses that can share a limit window (24 h + 1 s) with a new one: those of the last 24 h
        # (fewer than bolus_per_day) and those granted up to 1 s + a bolus's minutes before that
        # (one per lockout), so the daily limit never refuses a bolus the toy's rules allow.
        lockout_ms = self.bolus_lockout_minutes * MS_PER_MINUTE
        in_window = self.bolus_per_day + (1000 + self.bolus_minutes * MS_PER_MINUTE) // lockout_ms + 1
        profiles = (Profile([0], [basal_ng], "toy.sip_every_s"),) * 7
        worst_ng = Prescription(TOY_CONCENTRATION, profiles, (), None, MAX_BOLUS_NG, "water").worst_window_ng()
        margin_ng = volume_mass_ng(pump.margin_nl, TOY_CONCENTRATION)
        # The most sips a bolus may have: the pump's 24 mL/day with the basal running, the
        # reservoir, and the firmware's largest daily limit with every bolus of a window in it.
        by_rate = muldiv(_TOP_RATE - basal_ng, self.bolus_minutes, 1440 * TOY_STROKE_NL)
        by_limit = (MAX_BOLUS_NG - worst_ng - margin_ng) // in_window // TOY_STROKE_NL
        most = min(by_rate, by_limit, TOY_MAX_SIPS)
        self.bolus_sips = t.integer("bolus_sips", 1, TOY_MAX_SIPS, 5)
        if self.bolus_sips > most:
            why = ("the pump's top rate, 24 mL/day, with a sip every %d s and the bolus over %d min" % (
                self.sip_every_s, self.bolus_minutes)) if most == by_rate else (
                "the firmware's largest daily limit, 200000 mcg, with %d boluses a day" % self.bolus_per_day)
            t.fail("bolus_sips", "must be an integer 1..%d (%s), not %d" % (most, why, self.bolus_sips))
        ptm = (Bolus(self.bolus_sips * TOY_STROKE_NL, self.bolus_minutes, "toy.bolus_sips"), self.bolus_lockout_minutes,
               self.bolus_per_day)
        max_daily_ng = worst_ng + margin_ng + in_window * self.bolus_sips * TOY_STROKE_NL
        rx = _firmware(lambda: Prescription(TOY_CONCENTRATION, profiles, (), ptm, max_daily_ng, "water"))
        _firmware(lambda: rx.check_pump(pump))
        self.pump = pump
        self.rx = rx
        self.full_nl = TOY_EMPTY_NL + self.sips * TOY_STROKE_NL
        self.volume_nl = self.full_nl


def load(text, board):
    """Parses and validates board.json's text for `board`; a BoardConfig, or a ValueError naming the key."""
    import json

    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("board.json: not valid JSON") from None
    c = BoardConfig()
    c._parse(_Reader(data, ""), board)
    return c


def _profile(r, k):
    steps = r.items(k)
    if not 1 <= len(steps) <= 13:
        r.fail(k, "must have 1 to 13 steps")
    starts = []
    rates = []
    for s in steps:
        s.only(("start", "mcg_per_day"))
        starts.append(s.time_ms("start", _REQUIRED))
        rates.append(s.scaled("mcg_per_day", 0, 200_000, 3, _REQUIRED))
    return _firmware(lambda: Profile(starts, rates, r.key(k)))


def _firmware(build):
    """The firmware's own checks name the key; say where it came from."""
    try:
        return build()
    except ValueError as e:
        text = str(e)
        if text.startswith("board.json: "):
            raise
        raise ValueError("board.json: " + text) from None
