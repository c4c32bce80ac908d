# A dev board's configuration (boards/<board>/board.json), validated at boot.
#
# Configuration is data: pins, the driver, steps per stroke, the stroke volume and the starting
# prescription in the scenario's units (mL, mcg, "HH:MM"; docs/scenarios.md). Every key is checked
# here, on the board, and the first bad one stops the boot with a ValueError naming it
# ("board.json: motor.step_pin: ..."). Runs once at boot: it may allocate, and it takes floats
# from JSON (single precision on ESP32 and pyboard), so volumes resolve to 1 uL and doses to 1 ng.

from firmware.battery import BatteryParams
from firmware.prescription import Bolus, Prescription, Profile, PumpParams
from firmware.units import NL_PER_ML

BOARDS = ("rpi_pico", "esp32", "pyboard")
DRIVERS = ("step_dir", "uln2003")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DEMO_SPEED = 1000  # a board polls about once a real ms: at 1000x a wake is a virtual second late

_TOP = ("board", "demo", "demo_speed", "start_weekday", "start_time", "motor", "buzzer_pin", "led_pin",
        "button_a_pin", "button_b_pin", "battery", "pump", "drug", "basal", "periodic_bolus", "ptm", "limits",
        "alarms")
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


class _Pins:
    """The board's pin rules, and every pin used once only."""

    def __init__(self, board):
        self.board = board
        self.used = {}

    def pin(self, r, k, output, adc=False, required=True):
        if not r.has(k):
            if required:
                r.fail(k, "missing (a pin)")
            return None
        p = r.t[k]
        if self.board == "pyboard":
            if not isinstance(p, str) or len(p) < 2 or p[0] not in "XY" or not p[1:].isdigit() \
                    or not 1 <= int(p[1:]) <= (22 if p[0] == "X" else 12):
                r.fail(k, "must be a pyboard pin name X1..X22 or Y1..Y12, not %r" % (p,))
        else:
            top = 28 if self.board == "rpi_pico" else 39
            if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= top:
                r.fail(k, "must be a GPIO number 0..%d, not %r" % (top, p))
            if self.board == "esp32" and output and p >= 34:
                r.fail(k, "GPIO %d is input-only on the ESP32" % p)
            if adc and self.board == "rpi_pico" and not 26 <= p <= 28:
                r.fail(k, "must be an ADC pin (GPIO 26..28) on the Pico, not %d" % p)
            if adc and self.board == "esp32" and not 32 <= p <= 39:
                r.fail(k, "must be an ADC1 pin (GPIO 32..39) on the ESP32, not %d" % p)
        if p in self.used:
            r.fail(k, "pin %r is also %s" % (p, self.used[p]))
        self.used[p] = r.key(k)
        return p


class BoardConfig:
    """Everything a board's main.py wires, validated (load() sets every attribute)."""

    def __init__(self):
        self.board = ""
        self.demo = False
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
        self.rx = None
        self.critical_repeat_minutes = 10

    def _parse(self, top, board):
        top.only(_TOP)
        self.board = top.text("board", BOARDS, _REQUIRED)
        if self.board != board:
            top.fail("board", "is %r, but this is the %s's main.py" % (self.board, board))
        self.demo = top.flag("demo", False)
        self.demo_speed = top.integer("demo_speed", 1, MAX_DEMO_SPEED, 360) if self.demo else 1
        self.weekday = WEEKDAYS.index(top.text("start_weekday", WEEKDAYS, "mon"))
        self.time_of_day_ms = top.time_ms("start_time", "08:00")
        pins = _Pins(self.board)
        self._motor(top.sub("motor", True), pins)
        self.buzzer_pin = pins.pin(top, "buzzer_pin", True)
        self.led_pin = pins.pin(top, "led_pin", True)
        self.button_a_pin = pins.pin(top, "button_a_pin", False)
        self.button_b_pin = pins.pin(top, "button_b_pin", False, required=False)
        bat = top.sub("battery")
        bat.only(("adc_pin", "divider_num", "divider_den", "capacity_mah", "quiescent_ua", "uc_per_stroke"))
        self.battery_adc_pin = pins.pin(bat, "adc_pin", False, adc=True, required=False)
        self.divider_num = bat.integer("divider_num", 1, 4, 1)
        self.divider_den = bat.integer("divider_den", 1, 4, 1)
        self.battery = _firmware(lambda: BatteryParams(bat.integer("capacity_mah", 100, 5000, 720),
                                                    bat.integer("quiescent_ua", 1, 100, 10),
                                                    bat.integer("uc_per_stroke", 1, 10_000, 50)))
        self._prescription(top)
        # A stroke's steps must end before the next stroke can be due: at the pump's top rate
        # (24 mL/day) strokes come every 3.6 ms per nL of stroke (900 ms for 250 nL).
        if not self.demo and self.steps_per_stroke * 1000 // self.steps_per_s * 10 >= self.pump.stroke_nl * 36:
            top.sub("motor").fail("steps_per_stroke", "takes %d ms at steps_per_s; at 24 mL/day strokes come every %d ms: "
                                  "raise motor.steps_per_s" % (
                                      self.steps_per_stroke * 1000 // self.steps_per_s, self.pump.stroke_nl * 36 // 10))
        alarms = top.sub("alarms")
        alarms.only(("critical_repeat_minutes",))
        self.critical_repeat_minutes = alarms.integer("critical_repeat_minutes", 1, 60, 10)

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
            # Time runs demo_speed times faster, the motor does not: each stroke is a short twitch,
            # which must end long before the next stroke is due (about 5 strokes a second at 360x).
            self.steps_per_stroke = m.integer("demo_steps_per_stroke", 1, self.steps_per_stroke,
                                           min(self.steps_per_stroke, 16))
            if self.steps_per_stroke * 1000 // self.steps_per_s > 50:
                m.fail("demo_steps_per_stroke", "takes more than 50 ms at steps_per_s: a toy's stroke must be short")
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
