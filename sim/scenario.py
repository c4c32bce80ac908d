"""Scenario files (TOML): strict validation with one clear message per problem.

Every problem raises ScenarioError naming the file, the key and what is allowed. Clinical limits
are checked again by the firmware itself (firmware.prescription); its messages pass through.
"""

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path

from firmware.prescription import MAX_STORED_NL, Bolus, Prescription, Profile, PumpParams
from firmware.units import MS_PER_DAY, NL_PER_ML
from sim.pump import stored_below_threshold_nl

DEFAULT_START = "2026-01-01T00:00"
MAX_DAYS = 20_000
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ACTIONS = ("bolus", "ptm", "refill", "cancel_bolus", "program", "prime", "silence", "suspend", "resume")
# [battery] keys and their ranges (the firmware's BatteryParams checks them again; docs/battery.md)
BATTERY_KEYS = {
    "capacity_mah": (100, 5000),
    "quiescent_ua": (1, 100),
    "uc_per_stroke": (1, 10_000),
    "uc_per_tone_s": (0, 100_000),
    "uc_per_command": (0, 100_000),
}
FAULT_KINDS = ("motor_stall", "magnetic_field", "occlusion", "battery_drain", "runaway", "adc_glitch", "power_loss",
               "hang", "flash_bitflip", "battery_sag", "set_clock")
MAX_OUTAGE_S = 30 * 86_400  # a power_loss lasts at most 30 days
HALF_WEEK_MS = 302_400_000  # a set_clock moves the pump's clock at most this far (firmware Controller.set_clock)
GLITCH_MAX_MS = 60_000  # an adc_glitch lasts at most a minute: longer is a failed sensor, not a glitch
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")


class ScenarioError(Exception):
    """Bad input: the message is the one line the user sees."""


@dataclass
class Event:
    t_ms: int  # since the scenario's start
    day: int
    time: str
    action: str
    amount_ng: int = 0
    minutes: int = 0
    volume_nl: int = 0
    concentration: int = 0
    rx: Prescription | None = None  # for "program"
    catheter_cm: int = 0  # for "prime": 0 primes the whole path
    index: int = 0


@dataclass
class Fault:
    t_ms: int  # since the scenario's start
    day: int
    time: str
    kind: str
    minutes: int = 0  # motor_stall, magnetic_field, occlusion
    factor: int = 1  # battery_drain
    strokes: int = 0  # runaway
    mv: int = 0  # adc_glitch: what the battery ADC reads ...
    ms: int = 0  # ... for this many ms
    seconds: int = 0  # power_loss: how long the power is off ...
    tear: bool = False  # ... cut in the middle of the next journal write
    count: int = 0  # flash_bitflip: bits flipped in the journal's region
    to: dt.datetime | None = None  # set_clock: the date and time the clinician sets ...
    jump_ms: int = 0  # ... and how far that moves the pump's clock (signed)
    index: int = 0

    @property
    def end_ms(self):
        return self.t_ms + self.minutes * 60_000


@dataclass
class Scenario:
    name: str
    days: int
    start: dt.datetime
    pump: PumpParams
    volume_nl: int
    rx: Prescription
    events: list[Event] = field(default_factory=list)
    source: str = "<built-in>"
    faults: list[Fault] = field(default_factory=list)
    battery: object = None  # firmware.battery.BatteryParams
    critical_repeat_minutes: int = 10
    compliance_nl: int = 2000  # the catheter line's compliance against a block
    mechanism: object = None  # sim.mechanism_model.MechanismParams; None: an exact mechanism

    @property
    def weekday(self):
        return self.start.weekday()

    @property
    def time_of_day_ms(self):
        s = self.start
        return ((s.hour * 60 + s.minute) * 60 + s.second) * 1000



def copy_prescription(rx, basal=None, ptm=None, max_daily_ng=None, concentration=None, periodic=None):
    """A new Prescription from rx with parts replaced (validated by the firmware).

    The firmware recompiles a prescription's profiles in place on a new concentration, so each
    copy gets its own profiles.
    """
    return Prescription(
        concentration or rx.concentration,
        basal if basal is not None else _fresh_profiles(rx.profiles),
        periodic if periodic is not None else rx.periodic,
        ptm if ptm is not None else rx.ptm,
        max_daily_ng if max_daily_ng is not None else rx.max_daily_ng,
        rx.drug,
    )


def _fresh_profiles(profiles):
    made = {}
    out = []
    for p in profiles:
        if id(p) not in made:
            made[id(p)] = Profile(list(p.starts_ms), list(p.rates_ng_per_day), p.key)
        out.append(made[id(p)])
    return tuple(out)


class _Reader:
    """Typed access to one TOML table, with the key path for messages."""

    def __init__(self, source, table, path):
        self.source = source
        self.table = table
        self.path = path

    def fail(self, key, message):
        where = f"{self.path}.{key}" if self.path and key else (self.path or key)
        raise ScenarioError(f"{self.source}: {where}: {message}")

    def only(self, *allowed):
        for key in self.table:
            if key not in allowed:
                self.fail(key, "unknown key (allowed: " + ", ".join(allowed) + ")")

    def has(self, key):
        return key in self.table

    def integer(self, key, lo, hi, default=None):
        if key not in self.table:
            if default is None:
                self.fail(key, f"missing (an integer {lo}..{hi})")
            return default
        v = self.table[key]
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(key, f"must be an integer {lo}..{hi}, not {type(v).__name__} {v!r}")
        if not lo <= v <= hi:
            self.fail(key, f"{v} is out of range {lo}..{hi}")
        return v

    def number(self, key, lo, hi, default=None, unit=""):
        if key not in self.table:
            if default is None:
                self.fail(key, f"missing (a number {lo}..{hi}{unit})")
            return default
        v = self.table[key]
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.fail(key, f"must be a number {lo}..{hi}{unit}, not {type(v).__name__} {v!r}")
        if not lo <= v <= hi:
            self.fail(key, f"{v} is out of range {lo}..{hi}{unit}")
        return v

    def _scaled(self, key, v, decimals):
        """v as an exact integer count of 10**-decimals, from its shortest decimal form."""
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
        if d.as_tuple().exponent < -decimals:
            self.fail(key, f"{v} has more than {decimals} decimals")
        return int(d.scaleb(decimals))

    def milli(self, key, lo, hi, default=None, unit=""):
        """A number with at most 3 decimals, as an integer count of thousandths (mcg -> ng)."""
        return self._scaled(key, self.number(key, lo, hi, default, unit), 3)

    def micro(self, key, lo, hi, default=None, unit=""):
        """mL as whole nL."""
        return self._scaled(key, self.number(key, lo, hi, default, unit), 6)

    def boolean(self, key, default=None):
        if key not in self.table:
            if default is None:
                self.fail(key, "missing (true or false)")
            return default
        v = self.table[key]
        if not isinstance(v, bool):
            self.fail(key, f"must be true or false, not {type(v).__name__} {v!r}")
        return v

    def string(self, key, default=None):
        if key not in self.table:
            if default is None:
                self.fail(key, "missing (a string)")
            return default
        v = self.table[key]
        if not isinstance(v, str):
            self.fail(key, f"must be a string, not {type(v).__name__} {v!r}")
        return v

    def time_ms(self, key, seconds=False):
        v = self.string(key)
        m = _TIME.match(v)
        if not m or (m.group(3) is not None and not seconds):
            self.fail(key, f"{v!r} is not a time {'HH:MM or HH:MM:SS' if seconds else 'HH:MM'} (00:00..23:59)")
        h, mi, se = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        return ((h * 60 + mi) * 60 + se) * 1000

    def sub(self, key, required=False):
        if key not in self.table:
            if required:
                self.fail(key, "missing table")
            return None
        v = self.table[key]
        if not isinstance(v, dict):
            self.fail(key, f"must be a table, not {type(v).__name__}")
        return _Reader(self.source, v, f"{self.path}.{key}" if self.path else key)

    def tables(self, key):
        if key not in self.table:
            return []
        v = self.table[key]
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            self.fail(key, "must be an array of tables")
        base = f"{self.path}.{key}" if self.path else key
        return [_Reader(self.source, x, f"{base}[{i}]") for i, x in enumerate(v)]


def _firmware(reader, key, build):
    """Run a firmware constructor; its ValueError already names the field."""
    try:
        return build()
    except ValueError as e:
        raise ScenarioError(f"{reader.source}: {e}") from None


def _profile(reader, key, steps_key="steps"):
    steps = reader.tables(steps_key)
    base = f"{reader.path}.{steps_key}" if reader.path else steps_key
    if not 1 <= len(steps) <= 13:
        reader.fail(steps_key, f"must have 1 to 13 steps, not {len(steps)}")
    starts, rates = [], []
    for s in steps:
        s.only("start", "mcg_per_day")
        starts.append(s.time_ms("start"))
        rates.append(s.milli("mcg_per_day", 0, 200_000, unit=" mcg/day"))
    return _firmware(reader, key, lambda: Profile(starts, rates, base))


def _basal(reader):
    reader.only("steps", "weekdays")
    default = _profile(reader, "steps")
    profiles = [default] * 7
    days = reader.sub("weekdays")
    if days is not None:
        days.only(*WEEKDAYS)
        for i, name in enumerate(WEEKDAYS):
            if days.has(name):
                profiles[i] = _profile(days, name, name)
    return profiles


def _ptm(reader):
    reader.only("mcg", "minutes", "lockout_minutes", "max_per_day")
    amount = reader.milli("mcg", 0.001, 200_000, unit=" mcg")
    minutes = reader.integer("minutes", 1, 1440)
    lockout = reader.integer("lockout_minutes", 15, 1440, default=60)
    most = reader.integer("max_per_day", 1, 24)
    return (_firmware(reader, "ptm", lambda: Bolus(amount, minutes, "ptm")), lockout, most)


def parse(text, source, days_override=None, name_default="scenario"):
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{source}: TOML syntax error: {e}") from None
    return parse_data(data, source, days_override, name_default)


def parse_data(data, source, days_override=None, name_default="scenario"):
    """A scenario from an already-loaded TOML table (sim/sweep.py's variants); data is not modified."""
    top = _Reader(source, data, "")
    top.only("name", "days", "start", "pump", "catheter", "drug", "basal", "periodic_bolus", "ptm", "limits", "event",
             "alarms", "battery", "fault", "mechanism")
    name = top.string("name", default=name_default)
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        top.fail("name", f"{name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    days = top.integer("days", 1, MAX_DAYS, default=30)
    start_text = top.string("start", default=DEFAULT_START)
    try:
        start = dt.datetime.strptime(start_text, "%Y-%m-%dT%H:%M")
    except ValueError:
        top.fail("start", f"{start_text!r} is not a date and time YYYY-MM-DDTHH:MM")

    pump_r = top.sub("pump") or _Reader(source, {}, "pump")
    pump_r.only("reservoir_ml", "volume_ml", "stroke_nl", "low_reservoir_ml", "empty_ml", "internal_path_ml",
                "prime_ml_per_hour")
    capacity_ml = pump_r.integer("reservoir_ml", 20, 40, default=20)
    if capacity_ml not in (20, 40):
        pump_r.fail("reservoir_ml", f"{capacity_ml} is not allowed (20 or 40)")
    cath_r = top.sub("catheter") or _Reader(source, {}, "catheter")
    cath_r.only("length_cm", "ml_per_cm", "compliance_ul", "max_stored_ul")
    pump = _firmware(
        pump_r,
        "pump",
        lambda: PumpParams(
            capacity_ml * NL_PER_ML,
            pump_r.integer("stroke_nl", 50, 5000, default=250),
            pump_r.micro("low_reservoir_ml", 0.5, 10, default=2.0, unit=" mL"),
            pump_r.micro("empty_ml", 0, 2, default=0.5, unit=" mL"),
            pump_r.micro("internal_path_ml", 0, 1, default=0.2, unit=" mL"),
            cath_r.integer("length_cm", 5, 150, default=50),
            cath_r.micro("ml_per_cm", 0.001, 0.01, default=0.0026, unit=" mL/cm"),
            pump_r.micro("prime_ml_per_hour", 0.1, 1.0, default=1.0, unit=" mL/h"),
            cath_r.micro("max_stored_ul", 0, MAX_STORED_NL / 1000, default=2.0, unit=" uL") // 1000,
        ),
    )
    volume_nl = pump_r.micro("volume_ml", 0, capacity_ml, default=capacity_ml, unit=" mL")

    drug_r = top.sub("drug", required=True)
    drug_r.only("name", "concentration_mcg_ml")
    drug = drug_r.string("name", default="baclofen")
    concentration = drug_r.integer("concentration_mcg_ml", 10, 5000)

    profiles = _basal(top.sub("basal", required=True))
    periodic = _periodic(top)
    ptm_r = top.sub("ptm")
    ptm = _ptm(ptm_r) if ptm_r is not None else None
    limits_r = top.sub("limits", required=True)
    limits_r.only("max_daily_mcg")
    max_daily_ng = limits_r.milli("max_daily_mcg", 0.001, 200_000, unit=" mcg")

    rx = _firmware(top, "", lambda: Prescription(concentration, profiles, tuple(periodic), ptm, max_daily_ng, drug))
    _firmware(top, "", lambda: rx.check_pump(pump))

    scenario = Scenario(name, days, start, pump, volume_nl, rx, source=source)
    scenario.compliance_nl = cath_r.micro("compliance_ul", 0.5, 50, default=2.0, unit=" uL") // 1000
    stored_nl = stored_below_threshold_nl(scenario.compliance_nl, pump.stroke_nl)
    if stored_nl > pump.max_stored_nl:
        cath_r.fail("compliance_ul", f"a {scenario.compliance_nl / 1000:g} uL line stores {stored_nl / 1000:g} uL of "
                    f"{pump.stroke_nl} nL strokes below the occlusion threshold, more than catheter.max_stored_ul "
                    f"{pump.max_stored_nl / 1000:g} uL (the most the firmware's limit margin covers)")
    alarms_r = top.sub("alarms") or _Reader(source, {}, "alarms")
    alarms_r.only("critical_repeat_minutes")
    scenario.critical_repeat_minutes = alarms_r.integer("critical_repeat_minutes", 1, 60, default=10)
    scenario.battery = _battery(top.sub("battery") or _Reader(source, {}, "battery"))
    scenario.mechanism = _mechanism(top.sub("mechanism") or _Reader(source, {}, "mechanism"))
    scenario.events = _events(top, scenario)
    scenario.faults = _faults(top, scenario)
    if days_override is not None:
        if not 1 <= days_override <= MAX_DAYS:
            raise ScenarioError(f"--days: {days_override} is out of range 1..{MAX_DAYS}")
        scenario.days = days_override
        scenario.events = [e for e in scenario.events if e.t_ms < days_override * MS_PER_DAY]
        scenario.faults = [f for f in scenario.faults if f.t_ms < days_override * MS_PER_DAY]
    return scenario


def _periodic(reader):
    periodic = []
    for p in reader.tables("periodic_bolus"):
        p.only("at", "mcg", "minutes")
        at = p.time_ms("at")
        amount = p.milli("mcg", 0.001, 200_000, unit=" mcg")
        minutes = p.integer("minutes", 1, 1440)
        periodic.append((at, _firmware(p, "", lambda a=amount, m=minutes, k=p.path: Bolus(a, m, k))))
    return tuple(periodic)


def _battery(reader):
    from firmware.battery import BatteryParams

    keys = BATTERY_KEYS
    reader.only(*keys)
    given = {}
    for key, (lo, hi) in keys.items():
        if reader.has(key):
            given[key] = reader.integer(key, lo, hi)
    return _firmware(reader, "battery", lambda: BatteryParams(**given))


def _mechanism(reader):
    """The simulated mechanism's volume error (sim/mechanism_model.py); default: exact."""
    from sim.mechanism_model import RANGES, SEED_MAX, MechanismParams

    reader.only(*RANGES, "seed")
    given = {key: reader.number(key, lo, hi, default=0, unit=" %") for key, (lo, hi) in RANGES.items()}
    return MechanismParams(**given, seed=reader.integer("seed", 0, SEED_MAX, default=0))


def _faults(top, scenario):
    faults = []
    for i, f in enumerate(top.tables("fault")):
        kind = f.string("kind")
        if kind not in FAULT_KINDS:
            f.fail("kind", f"{kind!r} is not one of: " + ", ".join(FAULT_KINDS))
        day = f.integer("day", 0, scenario.days - 1) if f.has("day") else f.fail("day", "missing")
        t_ms = day * MS_PER_DAY + f.time_ms("time", seconds=True) - scenario.time_of_day_ms
        if not 0 <= t_ms < scenario.days * MS_PER_DAY:
            f.fail("time", f"day {day} {f.table['time']} is outside the run (it starts {scenario.start:%H:%M} on day 0)")
        fault = Fault(t_ms, day, f.table["time"], kind, index=i)
        common = ("day", "time", "kind")
        if kind == "battery_drain":
            f.only(*common, "factor")
            fault.factor = f.integer("factor", 1, 100)
        elif kind == "runaway":
            f.only(*common, "strokes")
            fault.strokes = f.integer("strokes", 1, 1000)
        elif kind == "adc_glitch":
            f.only(*common, "mv", "ms")
            fault.mv = f.integer("mv", 0, 5000)
            fault.ms = f.integer("ms", 1, GLITCH_MAX_MS)
        elif kind == "power_loss":
            f.only(*common, "seconds", "tear")
            fault.seconds = f.integer("seconds", 0, MAX_OUTAGE_S)
            fault.tear = f.boolean("tear", default=False)
        elif kind in ("hang", "battery_sag"):
            f.only(*common)
        elif kind == "flash_bitflip":
            f.only(*common, "count")
            fault.count = f.integer("count", 1, 1000)
        elif kind == "set_clock":
            f.only(*common, "to")
            text = f.string("to")
            try:
                fault.to = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S" if text.count(":") == 2 else "%Y-%m-%dT%H:%M")
            except ValueError:
                f.fail("to", f"{text!r} is not a date and time YYYY-MM-DDTHH:MM[:SS]")
        else:
            f.only(*common, "minutes")
            fault.minutes = f.integer("minutes", 1, 30 * 1440)
        faults.append(fault)
    faults.sort(key=lambda x: (x.t_ms, x.index))
    # The pump's clock as each set_clock finds it: the start, the run's time and the settings before.
    moved_ms = 0
    for f in faults:
        if f.kind == "set_clock":
            shown = scenario.start + dt.timedelta(milliseconds=f.t_ms + moved_ms)
            f.jump_ms = round((f.to - shown).total_seconds() * 1000)
            if not -HALF_WEEK_MS < f.jump_ms <= HALF_WEEK_MS:
                top.fail(f"fault[{f.index}].to", f"{f.to:%Y-%m-%dT%H:%M:%S} is more than 3.5 days from the pump's "
                         f"clock then ({shown:%Y-%m-%dT%H:%M:%S}): set it in steps")
            moved_ms += f.jump_ms
    timed = [f for f in faults if f.minutes]  # every pair, whatever lies between them
    for i, b in enumerate(timed):
        for a in timed[:i]:
            if b.t_ms < a.end_ms:
                top.fail(f"fault[{b.index}]", f"overlaps fault[{a.index}] ({a.kind} until {a.end_ms / 60_000:g} min); "
                         "mechanism faults must not overlap")
    return faults


def _events(top, scenario):
    start_ms = scenario.time_of_day_ms
    timed = []
    for i, e in enumerate(top.tables("event")):
        action = e.string("action")
        if action not in ACTIONS:
            e.fail("action", f"{action!r} is not one of: " + ", ".join(ACTIONS))
        day = e.integer("day", 0, scenario.days - 1) if e.has("day") else e.fail("day", "missing")
        t_of_day = e.time_ms("time", seconds=True)
        t_ms = day * MS_PER_DAY + t_of_day - start_ms
        if not 0 <= t_ms < scenario.days * MS_PER_DAY:
            e.fail("time", f"day {day} {e.table['time']} is outside the run (it starts {scenario.start:%H:%M} on day 0)")
        timed.append((t_ms, i, day, action, e))
    # Walk them in time order: a refill's default drug, and what a program keeps from the one before,
    # are those in force when it comes, whatever the order in the file.
    timed.sort(key=lambda x: (x[0], x[1]))
    events = []
    concentration = scenario.rx.concentration
    current = scenario.rx
    common = ("day", "time", "action")
    for t_ms, i, day, action, e in timed:
        ev = Event(t_ms, day, e.table["time"], action, index=i)
        if action == "bolus":
            e.only(*common, "mcg", "minutes")
            ev.amount_ng = e.milli("mcg", 0.001, 200_000, unit=" mcg")
            ev.minutes = e.integer("minutes", 1, 1440)
            _firmware(e, "", lambda ev=ev, k=e.path: Bolus(ev.amount_ng, ev.minutes, k))
        elif action == "refill":
            e.only(*common, "volume_ml", "concentration_mcg_ml")
            ev.volume_nl = e.micro("volume_ml", 0.000001, scenario.pump.capacity_nl / NL_PER_ML, unit=" mL")
            ev.concentration = e.integer("concentration_mcg_ml", 10, 5000, default=concentration)
            concentration = ev.concentration
        elif action == "program":
            e.only(*common, "steps", "weekdays", "max_daily_mcg", "ptm", "periodic_bolus")
            basal = _basal(_Reader(e.source, {k: v for k, v in e.table.items() if k in ("steps", "weekdays")}, e.path))
            ptm_r = e.sub("ptm")
            ptm = _ptm(ptm_r) if ptm_r is not None else None
            limit = e.milli("max_daily_mcg", 0.001, 200_000, unit=" mcg") if e.has("max_daily_mcg") else None
            periodic = _periodic(e) if e.has("periodic_bolus") else None
            rx = _firmware(e, "", lambda: copy_prescription(current, basal, ptm, limit, concentration, periodic))
            _firmware(e, "", lambda: rx.check_pump(scenario.pump))
            ev.rx = current = rx
        elif action == "prime":
            e.only(*common, "catheter_cm")
            if e.has("catheter_cm"):
                ev.catheter_cm = e.integer("catheter_cm", 1, scenario.pump.catheter_cm)
        else:
            e.only(*common)
        events.append(ev)
    return events


def read_text(path, what="scenario"):
    """A TOML file's text; a missing, unreadable or non-UTF-8 file is one ScenarioError line."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a {what} file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{path}: cannot read: {e}") from None


def load(path, days_override=None):
    return parse(read_text(path), str(path), days_override, name_default=Path(path).stem)


def builtin(name="default", days_override=None):
    text = resources.files("sim.scenarios").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return parse(text, f"<built-in {name}>", days_override, name_default=name)


PRESCRIPTION_TABLES = ("drug", "basal", "periodic_bolus", "ptm", "limits")


def load_prescription(path):
    """The Prescription of a TOML file's [drug], [basal], [[periodic_bolus]], [ptm] and [limits]
    tables (pumpctl program), checked as a scenario's; a whole scenario file may be given (its other
    tables are ignored)."""
    try:
        data = tomllib.loads(read_text(path, "prescription"))
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{path}: TOML syntax error: {e}") from None
    return parse_data({k: v for k, v in data.items() if k in PRESCRIPTION_TABLES}, str(path)).rx
