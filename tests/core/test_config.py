# board.json validation (firmware/config.py): each board's shipped config loads, and every kind of
# bad key stops the boot with one line naming it. Runs on CPython and both MicroPython ports.

import json

from support import raises

from firmware.config import load

HOUR = 3_600_000

# The shipped Pico config's content, inline: the wasm port's FS holds no boards/ files.
PICO = {
    "board": "rpi_pico", "demo": True, "demo_speed": 480, "start_weekday": "mon", "start_time": "08:00",
    "motor": {"driver": "step_dir", "step_pin": 2, "dir_pin": 3, "enable_pin": 4, "stall_pin": None,
              "load_adc_pin": None, "steps_per_stroke": 200, "steps_per_s": 1000, "state_machine": 0},
    "buzzer_pin": 15, "led_pin": "LED", "button_a_pin": 14, "button_b_pin": 13,
    "battery": {"adc_pin": 28, "divider_num": 3, "divider_den": 1},
    "pump": {"reservoir_ml": 20, "volume_ml": 6.0, "stroke_nl": 250, "low_reservoir_ml": 2.0, "empty_ml": 0.5},
    "drug": {"name": "baclofen", "concentration_mcg_ml": 2000},
    "basal": {"steps": [{"start": "00:00", "mcg_per_day": 600}, {"start": "06:00", "mcg_per_day": 420.5}]},
    "periodic_bolus": [{"at": "07:30", "mcg": 40, "minutes": 15}],
    "ptm": {"mcg": 20, "minutes": 10, "lockout_minutes": 180, "max_per_day": 3},
    "limits": {"max_daily_mcg": 800},
    "alarms": {"critical_repeat_minutes": 10},
}


def _copy(d):
    return json.loads(json.dumps(d))


def _with(path, value):
    """PICO with the key at path (a list of keys/indexes) set to value (or removed if value is _GONE)."""
    d = _copy(PICO)
    t = d
    for k in path[:-1]:
        t = t[k]
    if value is _GONE:
        del t[path[-1]]
    else:
        t[path[-1]] = value
    return json.dumps(d)


_GONE = object()


def test_the_pico_config_loads_in_the_scenarios_units():
    c = load(json.dumps(PICO), "rpi_pico")
    assert c.board == "rpi_pico" and c.demo and c.demo_speed == 480
    assert c.driver == "step_dir" and (c.step_pin, c.dir_pin, c.enable_pin, c.stall_pin) == (2, 3, 4, None)
    # Demo mode: time runs 480x faster, the motor does not: a stroke is a short twitch (below).
    assert c.steps_per_stroke == 7 and c.steps_per_s == 1000
    assert load(_with(["demo"], False), "rpi_pico").steps_per_stroke == 200
    # Out of demo: 200 steps at 200 steps/s take 1000 ms, strokes of 250 nL come every 900 ms at 24 mL/day.
    d = _copy(PICO)
    d["demo"] = False
    d["motor"]["steps_per_s"] = 223  # 896 ms: fits
    assert load(json.dumps(d), "rpi_pico").steps_per_s == 223
    d["motor"]["steps_per_s"] = 222  # 900 ms: does not
    e = raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))
    assert "motor.steps_per_stroke: takes 900 ms at steps_per_s; at 24 mL/day strokes come every 900 ms" in str(e), str(e)
    assert (c.buzzer_pin, c.led_pin, c.button_a_pin, c.button_b_pin, c.battery_adc_pin) == (15, "LED", 14, 13, 28)
    assert c.weekday == 0 and c.time_of_day_ms == 8 * HOUR
    # mL -> nL, mcg -> ng, "HH:MM" -> ms: by definition of the units
    assert c.pump.capacity_nl == 20_000_000 and c.volume_nl == 6_000_000 and c.pump.stroke_nl == 250
    assert c.pump.low_nl == 2_000_000 and c.pump.empty_nl == 500_000
    assert c.rx.concentration == 2000 and c.rx.max_daily_ng == 800_000
    assert list(c.rx.profiles[0].starts_ms) == [0, 6 * HOUR]
    assert list(c.rx.profiles[0].rates_ng_per_day) == [600_000, 420_500]
    assert c.rx.periodic[0][0] == 7 * HOUR + 30 * 60_000 and c.rx.periodic[0][1].amount_ng == 40_000
    assert c.rx.ptm[0].amount_ng == 20_000 and c.rx.ptm[1:] == (180, 3)
    assert c.critical_repeat_minutes == 10


def test_each_bad_key_is_named_in_one_line():
    cases = [
        (["motor", "step_pin"], 99, "motor.step_pin: must be a GPIO number 0..22 or 26..28, or a name GP0..GP22"),
        (["motor", "step_pin"], 15, "buzzer_pin: pin 15 is also motor.step_pin"),
        (["motor", "driver"], "l298n", "motor.driver: must be one of step_dir, uln2003"),
        (["motor", "steps_per_stroke"], 0, "motor.steps_per_stroke: must be an integer 1..65535"),
        (["motor", "steps_per_stroke"], _GONE, "motor.steps_per_stroke: missing"),
        (["motor", "speed"], 3, "motor.speed: unknown key"),
        (["motor", "demo_steps_per_stroke"], 60, "motor.demo_steps_per_stroke: takes more than 50 ms"),
        (["motor", "demo_steps_per_stroke"], 201, "motor.demo_steps_per_stroke: must be an integer 1..200"),
        (["battery", "adc_pin"], 5, "battery.adc_pin: must be an ADC pin (GPIO 26..28)"),
        (["demo"], "yes", "demo: must be true or false"),
        (["demo_speed"], 0, "demo_speed: must be an integer 1..1000"),
        (["start_time"], "25:00", "start_time: '25:00' is not a time HH:MM"),
        (["pump", "stroke_nl"], 10, "pump.stroke_nl: must be an integer 50..5000"),
        (["pump", "volume_ml"], 6.0000001, "pump.volume_ml: has more than 6 decimals"),
        (["pump", "volume_ml"], 25, "pump.volume_ml: must be a number 0..20"),
        (["pump", "reservoir_ml"], 30, "pump.reservoir_ml: must be 20 or 40"),
        (["basal", "steps", 0, "mcg_per_day"], "600", "basal.steps[0].mcg_per_day: must be a number"),
        (["basal", "steps", 1, "start"], "06:00:00", "basal.steps[1].start: '06:00:00' is not a time"),
        (["limits", "max_daily_mcg"], 100, "exceeds limits.max_daily_mcg"),  # the firmware's own check
        (["ptm", "lockout_minutes"], 5, "ptm.lockout_minutes: must be an integer 15..1440"),
        (["board"], "esp32", "board: is 'esp32', but this is the rpi_pico's main.py"),
        (["alarms", "critical_repeat_minutes"], 61, "alarms.critical_repeat_minutes: must be an integer 1..60"),
    ]
    for path, value, want in cases:
        text = _with(path, value)
        e = raises(ValueError, lambda: load(text, "rpi_pico"))
        text = str(e)
        assert text.startswith("board.json: ") and want in text, (path, text)
        assert "\n" not in text


def test_not_json_and_not_an_object():
    assert "not valid JSON" in str(raises(ValueError, lambda: load("{board: pico", "rpi_pico")))
    assert "top level: must be an object" in str(raises(ValueError, lambda: load("[1, 2]", "rpi_pico")))


def test_the_uln2003_takes_four_consecutive_pins_on_the_pico():
    d = _copy(PICO)
    d["motor"] = {"driver": "uln2003", "phase_pins": [6, 7, 8, 9], "steps_per_stroke": 64, "steps_per_s": 500}
    c = load(json.dumps(d), "rpi_pico")
    assert c.phase_pins == (6, 7, 8, 9) and c.step_pin is None and c.enable_pin is None
    d["motor"]["phase_pins"] = [6, 7, 9, 8]
    assert "4 consecutive GPIOs" in str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico")))
    d["motor"]["phase_pins"] = [6, 7, 8]
    assert "list of 4 pins" in str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico")))
    d["motor"]["phase_pins"] = [6, 7, 8, 9]
    d["motor"]["step_pin"] = 2
    assert "is for a step_dir driver" in str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico")))


def test_board_pin_rules_for_esp32_and_pyboard():
    d = _copy(PICO)
    d["board"] = "esp32"
    d["battery"]["adc_pin"] = 34
    d["led_pin"] = 2
    d["led_pin"] = 5
    c = load(json.dumps(d), "esp32")
    assert c.battery_adc_pin == 34
    d["motor"]["step_pin"] = 35
    assert "GPIO 35 is input-only on the ESP32" in str(raises(ValueError, lambda: load(json.dumps(d), "esp32")))
    p = _copy(PICO)
    p["board"] = "pyboard"
    p["motor"] = {"driver": "step_dir", "step_pin": "X1", "dir_pin": "X2", "steps_per_stroke": 200}
    p.update({"buzzer_pin": "X9", "led_pin": "Y12", "button_a_pin": "Y1", "button_b_pin": "Y2",
              "battery": {"adc_pin": "X12"}})
    c = load(json.dumps(p), "pyboard")
    assert c.step_pin == "X1" and c.timer == 2 and c.timer_channel == 1
    p["led_pin"] = 25
    assert "must be a pyboard pin name" in str(raises(ValueError, lambda: load(json.dumps(p), "pyboard")))


# Every integer key: (path, lo, hi, default, attribute read back), from the schema in
# boards/README.md. Base: the Pico config out of demo, 8 steps per stroke (fits any rate).
INTEGER_KEYS = (
    (["motor", "steps_per_s"], 10, 20_000, 1000, lambda c: c.steps_per_s),
    (["motor", "state_machine"], 0, 7, 0, lambda c: c.state_machine),
    (["motor", "timer"], 1, 14, 2, lambda c: c.timer),
    (["motor", "timer_channel"], 1, 4, 1, lambda c: c.timer_channel),
    (["battery", "divider_num"], 1, 4, 1, lambda c: c.divider_num),
    (["battery", "divider_den"], 1, 4, 1, lambda c: c.divider_den),
    (["battery", "capacity_mah"], 100, 5000, 720, lambda c: c.battery.capacity_mah),
    (["battery", "quiescent_ua"], 1, 100, 10, lambda c: c.battery.quiescent_ua),
    (["battery", "uc_per_stroke"], 1, 10_000, 50, lambda c: c.battery.uc_per_stroke),
    (["alarms", "critical_repeat_minutes"], 1, 60, 10, lambda c: c.critical_repeat_minutes),
    (["ptm", "lockout_minutes"], 15, 1440, 60, lambda c: c.rx.ptm[1]),
    (["pump", "stroke_nl"], 50, 5000, None, lambda c: c.pump.stroke_nl),
    (["motor", "steps_per_stroke"], 1, 8, None, lambda c: c.steps_per_stroke),
)


def _base():
    d = _copy(PICO)
    d["demo"] = False
    d["motor"]["steps_per_stroke"] = 8
    d["ptm"]["minutes"] = 1
    return d


def _set(d, path, value):
    t = d
    for k in path[:-1]:
        t = t[k]
    if value is _GONE:
        if path[-1] in t:
            del t[path[-1]]
    else:
        t[path[-1]] = value
    return json.dumps(d)


def test_every_integer_key_takes_its_range_and_default_and_names_itself_outside_it():
    for path, lo, hi, default, read in INTEGER_KEYS:
        key = ".".join(path)
        for v in (lo, hi):
            assert read(load(_set(_base(), path, v), "rpi_pico")) == v, (key, v)
        for v in (lo - 1, hi + 1, 2.0, True, "3"):
            if v == hi + 1 and key == "motor.steps_per_stroke":
                continue  # 9 is valid: only the base's burst budget bounds it
            text = str(raises(ValueError, lambda: load(_set(_base(), path, v), "rpi_pico")))
            assert text.startswith("board.json: " + key + ": "), (key, v, text)
        if default is None:
            text = str(raises(ValueError, lambda: load(_set(_base(), path, _GONE), "rpi_pico")))
            assert text == "board.json: " + key + ": missing", text
        else:
            assert read(load(_set(_base(), path, _GONE), "rpi_pico")) == default, key


def test_defaults_of_the_optional_keys():
    d = _base()
    for k in ("demo", "demo_speed", "start_weekday", "start_time", "button_b_pin", "alarms"):
        del d[k]
    for k in ("enable_pin", "stall_pin", "load_adc_pin"):
        del d["motor"][k]
    d["battery"] = {}
    for k in ("volume_ml", "low_reservoir_ml", "empty_ml", "reservoir_ml"):
        del d["pump"][k]
    del d["drug"]["name"]
    c = load(json.dumps(d), "rpi_pico")
    assert not c.demo and c.demo_speed == 1 and c.weekday == 0 and c.time_of_day_ms == 8 * HOUR
    assert c.button_b_pin is None and c.enable_pin is None and c.stall_pin is None and c.load_adc_pin is None
    assert c.battery_adc_pin is None and c.critical_repeat_minutes == 10
    assert c.pump.capacity_nl == 20_000_000 and c.volume_nl == 20_000_000  # a full 20 mL pump
    assert c.pump.low_nl == 2_000_000 and c.pump.empty_nl == 500_000 and c.rx.drug == "baclofen"
    d["demo"] = True
    d["ptm"]["minutes"] = 10  # the base's 1-minute bolus is too fast for any demo stroke at 360x (below)
    c = load(json.dumps(d), "rpi_pico")
    assert c.demo_speed == 360 and c.steps_per_stroke == 8  # min(steps_per_stroke, 16)
    d["start_weekday"] = "sun"
    d["start_time"] = "23:59"
    c = load(json.dumps(d), "rpi_pico")
    assert c.weekday == 6 and c.time_of_day_ms == 23 * HOUR + 59 * 60_000


def test_required_keys_are_named_when_missing():
    for path in (["board"], ["motor"], ["motor", "driver"], ["motor", "step_pin"], ["motor", "dir_pin"],
                 ["buzzer_pin"], ["led_pin"], ["button_a_pin"], ["pump"], ["drug"], ["drug", "concentration_mcg_ml"],
                 ["basal"], ["limits"], ["limits", "max_daily_mcg"], ["ptm", "max_per_day"],
                 ["basal", "steps", 0, "start"], ["periodic_bolus", 0, "at"], ["periodic_bolus", 0, "mcg"]):
        text = str(raises(ValueError, lambda: load(_set(_base(), path, _GONE), "rpi_pico")))
        key = ".".join(str(k) for k in path).replace(".0.", "[0].").replace(".0", "[0]")
        assert text.startswith("board.json: " + key + ": "), (path, text)


def test_schedules_profiles_and_boluses_in_the_scenarios_units():
    d = _base()
    d["basal"]["weekdays"] = {"sat": [{"start": "00:00", "mcg_per_day": 300}],
                              "sun": [{"start": "00:00", "mcg_per_day": 200}, {"start": "12:30", "mcg_per_day": 250}]}
    d["periodic_bolus"] = [{"at": "07:30", "mcg": 40, "minutes": 15}, {"at": "19:05", "mcg": 12.5, "minutes": 30}]
    c = load(json.dumps(d), "rpi_pico")
    assert list(c.rx.profiles[5].rates_ng_per_day) == [300_000] and list(c.rx.profiles[0].rates_ng_per_day) == [
        600_000, 420_500]
    assert list(c.rx.profiles[6].starts_ms) == [0, 12 * HOUR + 30 * 60_000]
    assert [(t, b.amount_ng, b.minutes) for t, b in c.rx.periodic] == [
        (7 * HOUR + 30 * 60_000, 40_000, 15), (19 * HOUR + 5 * 60_000, 12_500, 30)]
    del d["ptm"]
    assert load(json.dumps(d), "rpi_pico").rx.ptm is None  # no patient button bolus configured
    d["basal"]["steps"] = [{"start": "%02d:00" % h, "mcg_per_day": 400} for h in range(14)]
    assert "basal.steps: must have 1 to 13 steps" in str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico")))
    d["basal"]["steps"] = []
    assert "basal.steps: must have 1 to 13 steps" in str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico")))
    d["basal"]["steps"] = [{"start": "00:00", "mcg_per_day": 400}]
    assert list(load(json.dumps(d), "rpi_pico").rx.profiles[0].starts_ms) == [0]  # one step is a profile
    d["basal"]["weekdays"] = {"funday": []}
    assert "basal.weekdays.funday: unknown key" in str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico")))


def test_messages_start_with_the_file_and_key():
    for text, want in (("{board: pico", "board.json: not valid JSON"),
                       ("[1, 2]", "board.json: top level: must be an object")):
        assert str(raises(ValueError, lambda: load(text, "rpi_pico"))) == want


def _pin_result(board, key, pin):
    """load() with the buzzer (an output) or the battery ADC on `pin`: None if accepted, else the message."""
    d = _base()
    d["board"] = board
    if board == "pyboard":
        d["motor"] = {"driver": "step_dir", "step_pin": "X1", "dir_pin": "X2", "steps_per_stroke": 8}
        d.update({"buzzer_pin": "X9", "led_pin": "Y11", "button_a_pin": "Y1", "button_b_pin": "Y2"})
    elif board == "esp32":
        d.update({"buzzer_pin": 23, "led_pin": 5, "button_a_pin": 18, "button_b_pin": 19})
    d["battery"] = {}
    if key == "battery.adc_pin":
        d["battery"]["adc_pin"] = pin
    else:
        d["buzzer_pin"] = pin
    try:
        load(json.dumps(d), board)
    except ValueError as e:
        return str(e)
    return None


def test_pin_rules_at_their_boundaries():
    ok = (("rpi_pico", "buzzer_pin", 0), ("rpi_pico", "buzzer_pin", 22), ("rpi_pico", "buzzer_pin", 26),
          ("rpi_pico", "buzzer_pin", 28), ("rpi_pico", "buzzer_pin", "GP0"), ("rpi_pico", "buzzer_pin", "GP28"),
          ("rpi_pico", "battery.adc_pin", 26), ("rpi_pico", "battery.adc_pin", 28),
          ("rpi_pico", "battery.adc_pin", "GP27"), ("esp32", "buzzer_pin", 0), ("esp32", "buzzer_pin", 33),
          ("esp32", "battery.adc_pin", 32), ("esp32", "battery.adc_pin", 39), ("pyboard", "buzzer_pin", "X22"),
          ("pyboard", "buzzer_pin", "Y12"), ("pyboard", "battery.adc_pin", "X12"))
    for board, key, pin in ok:
        assert _pin_result(board, key, pin) is None, (board, key, pin, _pin_result(board, key, pin))
    pico = "must be a GPIO number 0..22 or 26..28, or a name GP0..GP22, GP26..GP28, not "
    bad = (("rpi_pico", "buzzer_pin", 29, "GPIO 29 is not on the Pico's pins: it measures VSYS (on a Pico W it is also "
            "the wireless chip's clock)"),
           ("rpi_pico", "buzzer_pin", 30, pico + "30"),
           ("rpi_pico", "buzzer_pin", -1, pico + "-1"),
           ("rpi_pico", "buzzer_pin", "GP02", pico + "'GP02'"),
           ("rpi_pico", "buzzer_pin", "gp2", pico + "'gp2'"),
           ("rpi_pico", "buzzer_pin", True, pico + "True"),
           ("rpi_pico", "buzzer_pin", "LED", "\"LED\" is the board's LED: only led_pin may name it"),
           ("rpi_pico", "battery.adc_pin", 22, "must be an ADC pin (GPIO 26..28) on the Pico, not 22"),
           ("rpi_pico", "battery.adc_pin", "GP22", "must be an ADC pin (GPIO 26..28) on the Pico, not 'GP22'"),
           ("esp32", "buzzer_pin", 34, "GPIO 34 is input-only on the ESP32"),
           ("esp32", "buzzer_pin", 40, "must be a GPIO number 0..39, not 40"),
           ("esp32", "battery.adc_pin", 31, "must be an ADC1 pin (GPIO 32..39) on the ESP32, not 31"),
           ("pyboard", "buzzer_pin", "X23", "must be a pyboard pin name X1..X22 or Y1..Y12, not 'X23'"),
           ("pyboard", "buzzer_pin", "Y13", "must be a pyboard pin name X1..X22 or Y1..Y12, not 'Y13'"),
           ("pyboard", "buzzer_pin", "X0", "must be a pyboard pin name X1..X22 or Y1..Y12, not 'X0'"),
           ("pyboard", "buzzer_pin", "Z1", "must be a pyboard pin name X1..X22 or Y1..Y12, not 'Z1'"),
           ("pyboard", "buzzer_pin", "X", "must be a pyboard pin name X1..X22 or Y1..Y12, not 'X'"),
           ("pyboard", "buzzer_pin", 3, "must be a pyboard pin name X1..X22 or Y1..Y12, not 3"))
    for board, key, pin, why in bad:
        assert _pin_result(board, key, pin) == "board.json: %s: %s" % (key, why), (board, pin, _pin_result(board, key, pin))


def test_driver_keys_belong_to_their_driver():
    d = _base()
    d["motor"]["phase_pins"] = [6, 7, 8, 9]
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == \
        "board.json: motor.phase_pins: is for the uln2003 driver"
    d["motor"] = {"driver": "uln2003", "phase_pins": [6, 7, 8, 9], "steps_per_stroke": 8, "enable_pin": 4}
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == \
        "board.json: motor.enable_pin: is for a step_dir driver (the ULN2003 has 4 phase pins)"
    del d["motor"]["enable_pin"]
    d["motor"]["phase_pins"] = [15, 16, 17, 18]  # 15 is the buzzer's
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == \
        "board.json: buzzer_pin: pin 15 is also motor.phase_pins[0]"
    del d["motor"]["phase_pins"]
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == "board.json: motor.phase_pins: missing"
    d = _base()
    d["drug"]["name"] = ""
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == \
        "board.json: drug.name: must be a name of 1..32 characters"
    d = _base()
    d["demo"] = True
    d["demo_speed"] = 1  # the motor's pace allows any stroke up to 50 ms at 1x
    d["motor"]["steps_per_stroke"] = 200
    d["motor"]["demo_steps_per_stroke"] = 50  # 50 ms at 1000 steps/s: the most a toy's stroke may take
    assert load(json.dumps(d), "rpi_pico").steps_per_stroke == 50
    d["motor"]["demo_steps_per_stroke"] = 51
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))).startswith(
        "board.json: motor.demo_steps_per_stroke: takes more than 50 ms")


# -- pins by name, per board (ports/rp2/boards/RPI_PICO{,_W}/pins.csv, ports/stm32/boards/PYBV11/pins.csv)


def test_pico_pins_by_number_or_gp_name_and_the_led_by_name():
    d = _base()
    d["motor"].update({"step_pin": "GP2", "dir_pin": 3, "enable_pin": "GP4"})
    d["battery"]["adc_pin"] = "GP28"
    c = load(json.dumps(d), "rpi_pico")
    assert (c.step_pin, c.dir_pin, c.enable_pin, c.battery_adc_pin, c.led_pin) == (2, 3, 4, 28, "LED")
    # By number or by name, the same pin: each once.
    d["buzzer_pin"] = "GP3"
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == \
        "board.json: buzzer_pin: pin 'GP3' is also motor.dir_pin"


def test_pico_gpios_off_the_header_are_refused_saying_why():
    # GP23..GP25 and GP29 are the Pico's power, USB sense, LED and VSYS lines; a Pico W's wireless chip.
    for pin in (23, 24, 25, 29, "GP23", "GP24", "GP25", "GP29"):
        for key in ("buzzer_pin", "led_pin"):
            d = _base()
            d[key] = pin
            text = str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico")))
            n = pin if isinstance(pin, int) else int(pin[2:])
            assert text.startswith("board.json: %s: GPIO %d " % (key, n)) and "Pico W" in text, text
    d = _base()
    d["led_pin"] = 25
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == (
        "board.json: led_pin: GPIO 25 drives the LED on a Pico but is the wireless chip's SPI select on a Pico W: "
        "use \"LED\" for the LED")


def test_pyboard_names_its_leds_for_led_pin_only_and_refuses_its_power_pins():
    d = _base()
    d["board"] = "pyboard"
    d["motor"] = {"driver": "step_dir", "step_pin": "X1", "dir_pin": "X2", "steps_per_stroke": 8}
    d.update({"buzzer_pin": "X9", "button_a_pin": "Y1", "button_b_pin": "Y2", "battery": {}})
    for led in ("LED_RED", "LED_GREEN", "LED_YELLOW", "LED_BLUE", "Y12"):
        d["led_pin"] = led
        assert load(json.dumps(d), "pyboard").led_pin == led
    d["buzzer_pin"] = "LED_RED"
    assert str(raises(ValueError, lambda: load(json.dumps(d), "pyboard"))) == \
        "board.json: buzzer_pin: must be a pyboard pin name X1..X22 or Y1..Y12, not 'LED_RED'"
    for pin, what in (("X13", "RST"), ("X14", "GND"), ("X15", "3V3"), ("X16", "VIN")):
        d["buzzer_pin"] = pin
        assert str(raises(ValueError, lambda: load(json.dumps(d), "pyboard"))) == \
            "board.json: buzzer_pin: %s is the pyboard's %s, not a pin" % (pin, what)


# -- modes


def test_mode_takes_pump_demo_or_toy_and_the_old_demo_key_still_works():
    d = _base()
    d["ptm"]["minutes"] = 10  # a bolus a demo's strokes keep up with (below)
    del d["demo"]
    assert load(json.dumps(d), "rpi_pico").mode == "pump"
    d["mode"] = "demo"
    c = load(json.dumps(d), "rpi_pico")
    assert c.mode == "demo" and c.demo and not c.toy and c.demo_speed == 480
    del d["mode"]
    d["demo"] = True  # the old spelling
    assert load(json.dumps(d), "rpi_pico").mode == "demo"
    d["mode"] = "pump"
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))).startswith(
        "board.json: demo: is the old spelling of \"mode\": \"demo\"")
    d["mode"] = "play"
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == \
        "board.json: mode: must be one of pump, demo, toy, not 'play'"
    del d["demo"]
    d["mode"] = "pump"
    d["toy"] = {"sips": 100, "sip_every_s": 10}
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == \
        "board.json: toy: is for mode toy only (this is mode pump)"


TOY = {"board": "rpi_pico", "mode": "toy", "toy": {"sips": 150, "sip_every_s": 10},
       "motor": {"driver": "step_dir", "step_pin": 2, "dir_pin": 3, "steps_per_stroke": 200},
       "buzzer_pin": 15, "led_pin": "LED", "button_a_pin": 14, "button_b_pin": 13}


def test_toy_mode_takes_no_drug_keys():
    for key in ("drug", "pump", "basal", "periodic_bolus", "ptm", "limits"):
        d = _copy(TOY)
        d[key] = PICO[key]
        assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == \
            "board.json: %s: mode toy takes no drug keys: remove %s (the toy's numbers are under \"toy\")" % (key, key)
    d = _copy(TOY)
    d["demo_speed"] = 360
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == \
        "board.json: demo_speed: mode toy runs in real time: remove demo_speed"
    d = _copy(TOY)
    del d["button_b_pin"]
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == \
        "board.json: button_b_pin: missing (a pin): the toy's refill and quiet button"
    d = _copy(TOY)
    del d["toy"]
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == "board.json: toy: missing"


def test_the_toy_runs_a_made_up_prescription_within_every_firmware_limit():
    from firmware.limits import volume_mass_ng

    c = load(json.dumps(TOY), "rpi_pico")
    assert c.toy and not c.demo and c.demo_speed == 1 and c.steps_per_stroke == 200  # real time, whole strokes
    # One sip is one 250 nL stroke of a 1000 mcg/mL drug: 250 ng. A sip every 10 s is 8640 a day.
    p, rx = c.pump, c.rx
    assert p.stroke_nl == 250 and rx.concentration == 1000 and rx.drug == "water"
    assert [pr.rates_ng_per_day for pr in rx.profiles] == [(8640 * 250,)] * 7
    # 150 sips above the 0.5 mL empty mark; low at 150 // 5 = 30 sips left (the default).
    assert p.capacity_nl == 20_000_000 and p.empty_nl == 500_000 and c.volume_nl == c.full_nl == 500_000 + 150 * 250
    assert c.low_sips == 30 and p.low_nl == 500_000 + 30 * 250
    # The button bolus: 5 sips over 1 min, 15 min lockout (the firmware's least), 24 a day (its most).
    bolus, lockout, per_day = rx.ptm
    assert (bolus.amount_ng, bolus.minutes, lockout, per_day) == (5 * 250, 1, 15, 24)
    # The daily limit holds the worst 24 h + 1 s window of basal, the margin, and every bolus that
    # can share a window with a new one: 24 in a day plus (1 s + 1 min) // 15 min + 1 more.
    window_ng = -(-8640 * 250 * 86_401_000 // 86_400_000)  # rounded up
    n = 24 + (1000 + 60_000) // (15 * 60_000) + 1
    assert rx.max_daily_ng == window_ng + volume_mass_ng(p.margin_nl, 1000) + n * 5 * 250
    rx.check_pump(p)  # every limit of firmware/prescription.py passes
    d = _copy(TOY)
    d["toy"] = {"sips": 78_000, "sip_every_s": 1, "low_sips": 38_000, "bolus_sips": 6, "bolus_minutes": 1,
                "bolus_lockout_minutes": 1440, "bolus_per_day": 1}
    c = load(json.dumps(d), "rpi_pico")  # the extremes: a full 20 mL, 21.6 mL/day + a bolus at 24 mL/day
    assert c.full_nl == 20_000_000 and c.pump.low_nl == 10_000_000
    d["toy"] = {"sips": 2, "sip_every_s": 450, "low_sips": 1, "bolus_sips": 1, "bolus_minutes": 1440}
    c = load(json.dumps(d), "rpi_pico")  # the least basal, 0.048 mL/day
    assert c.rx.profiles[0].rates_ng_per_day == (48_000,)


def test_toy_values_the_firmware_cannot_run_name_the_key_and_range():
    cases = (
        ({"sips": 1}, "toy.sips: must be an integer 2..78000, not 1"),
        ({"sips": 78_001}, "toy.sips: must be an integer 2..78000, not 78001"),
        ({"sip_every_s": 0}, "toy.sip_every_s: must be an integer 1..450, not 0"),
        ({"sip_every_s": 451}, "toy.sip_every_s: must be an integer 1..450, not 451"),  # below 0.048 mL/day
        ({"sip_every_s": 2.5}, "toy.sip_every_s: must be an integer 1..450, not 2.5"),
        ({"low_sips": 150}, "toy.low_sips: must be an integer 1..149, not 150"),
        ({"bolus_lockout_minutes": 1}, "toy.bolus_lockout_minutes: must be an integer 15..1440, not 1"),
        ({"bolus_per_day": 25}, "toy.bolus_per_day: must be an integer 1..24, not 25"),
        ({"bolus_minutes": 0}, "toy.bolus_minutes: must be an integer 1..1440, not 0"),
        # 24 mL/day less a sip a second (21.6 mL/day) leaves 2.4 mL/day: 6 sips of 250 nL in a minute.
        ({"sip_every_s": 1, "bolus_sips": 7}, "toy.bolus_sips: must be an integer 1..6 (the pump's top rate, "
                                              "24 mL/day, with a sip every 1 s and the bolus over 1 min), not 7"),
        ({"sips": 10, "sip_every_s": 10, "foo": 1}, "toy.foo: unknown key"),
    )
    for change, want in cases:
        d = _copy(TOY)
        d["toy"].update(change)
        assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == "board.json: " + want, (change, want)


def test_a_demos_strokes_fit_between_strokes_at_the_prescriptions_top_rate():
    # PICO's top rate: basal 600 + the patient bolus 20 mcg/10 min (2880 mcg/day) + the periodic
    # 40 mcg/15 min (3840 mcg/day) = 7320 mcg/day of 500 ng strokes: one every 86 400 x 500 000 /
    # 7 320 000 = 5901 virtual ms. The demo clock runs up to 5/4 of its speed; a burst needs its
    # steps' ms plus 2 ms of polls: at 480x, 12 real ms between strokes, 9 ms for the burst: 7 steps
    # at 1000 steps/s (the default, below 16); at 1000x, 5 ms, 2 ms: 2 steps.
    d = _copy(PICO)
    assert load(json.dumps(d), "rpi_pico").steps_per_stroke == 7
    d["demo_speed"] = 1000
    assert load(json.dumps(d), "rpi_pico").steps_per_stroke == 2
    d["motor"]["demo_steps_per_stroke"] = 3
    assert str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))) == (
        "board.json: motor.demo_steps_per_stroke: 3 steps take 3 ms, but at 1000x the prescription's top rate "
        "(basal plus every bolus at once) brings a stroke every 5 ms: at most 2 steps")
    # The fastest demo for one step (1 ms): a stroke every 4 real ms at least, 5901 // 4 = 1475x;
    # above the 1000x the config takes, so a faster prescription: the patient bolus over 1 minute.
    d["ptm"]["minutes"] = 1
    del d["motor"]["demo_steps_per_stroke"]
    text = str(raises(ValueError, lambda: load(json.dumps(d), "rpi_pico")))
    assert text.startswith("board.json: demo_speed: at 1000x the prescription's top rate (basal plus every bolus at "
                           "once) brings a stroke every "), text
    most = int(text.split("at most ")[1].rstrip("x"))
    d["demo_speed"] = most
    assert load(json.dumps(d), "rpi_pico").steps_per_stroke == 1
    d["demo_speed"] = most + 1
    raises(ValueError, lambda: load(json.dumps(d), "rpi_pico"))


def test_the_watchdog_runs_a_pump_and_a_demo_or_toy_only_when_asked():
    # A watchdog cannot be stopped (a student in the REPL is reset): demo and toy boards opt in.
    assert load(_with(["demo"], False), "rpi_pico").watchdog_ms == 8000
    assert load(json.dumps(PICO), "rpi_pico").watchdog_ms == 0
    assert load(_with(["watchdog"], {"timeout_ms": 2000}), "rpi_pico").watchdog_ms == 2000
    d = _copy(PICO)
    d["demo"] = False
    d["watchdog"] = {"timeout_ms": 0}  # a pump may be run without one, by saying so
    assert load(json.dumps(d), "rpi_pico").watchdog_ms == 0
    _refused("board.json: watchdog.timeout_ms: must be an integer 0..1073741823, not -1",
             _with(["watchdog"], {"timeout_ms": -1}))
    _refused("board.json: watchdog.timeout_ms: must be an integer 0..1073741823, not True",
             _with(["watchdog"], {"timeout_ms": True}))
    _refused("board.json: watchdog.seconds: unknown key",
             _with(["watchdog"], {"seconds": 8}))
    _refused("board.json: watchdog: must be an object",
             _with(["watchdog"], 8000))


def test_the_journal_is_an_object_and_never_in_demo_mode():
    d = _copy(PICO)
    d["demo"] = False
    d["journal"] = {"start": 0}
    assert load(json.dumps(d), "rpi_pico").journal == {"start": 0}
    assert load(_with(["demo"], False), "rpi_pico").journal is None
    d["journal"] = {"partition": "journal"}  # an esp32's
    _refused("board.json: journal.partition: unknown key",
             json.dumps(d))
    d["journal"] = [0]
    _refused("board.json: journal: must be an object",
             json.dumps(d))
    _refused("board.json: journal: mode demo keeps no journal: its clock runs 480x the real-time clock's",
             _with(["journal"], {"start": 0}))


def _refused(message, text):
    e = raises(ValueError, lambda: load(text, "rpi_pico"))
    assert str(e).startswith(message), str(e)


def _pump(board="rpi_pico", **top):
    """PICO as a pump with a journal, then top's keys (a board other than the Pico: its own pins)."""
    d = _copy(PICO)
    d["demo"] = False
    d["journal"] = {}
    if board == "pyboard":
        d.update({"board": "pyboard", "buzzer_pin": "X9", "led_pin": "LED_GREEN", "button_a_pin": "Y1",
                  "button_b_pin": "Y2", "battery": {"adc_pin": None}})
        d["motor"].update({"step_pin": "X1", "dir_pin": "X2", "enable_pin": "X3"})
        del d["motor"]["state_machine"]
    elif board == "esp32":
        d.update({"board": "esp32", "buzzer_pin": 23, "led_pin": 2, "button_a_pin": 18, "button_b_pin": 19,
                  "battery": {"adc_pin": None}})
        d["motor"].update({"step_pin": 25, "dir_pin": 26, "enable_pin": 27})
        del d["motor"]["state_machine"]
    d.update(top)
    return json.dumps(d)


def test_the_link_is_the_usb_stream_or_a_uart_and_needs_the_journal():
    c = load(_pump(link={"port": "usb"}), "rpi_pico")
    assert c.link == "usb" and c.link_tx_pin is None
    assert load(_pump(), "rpi_pico").link == ""  # none unless asked
    c = load(_pump(link={"port": "uart", "uart": 1, "tx_pin": 8, "rx_pin": "GP9"}), "rpi_pico")
    assert (c.link, c.link_uart, c.link_baudrate, c.link_tx_pin, c.link_rx_pin) == ("uart", 1, 115_200, 8, 9)
    c = load(_pump("esp32", link={"port": "uart", "uart": 2, "baudrate": 9600, "tx_pin": 17, "rx_pin": 16}), "esp32")
    assert (c.link_uart, c.link_baudrate, c.link_tx_pin, c.link_rx_pin) == (2, 9600, 17, 16)
    # the pyboard's UART pins are its id's (UART3: Y9, Y10), and count as used
    c = load(_pump("pyboard", link={"port": "uart", "uart": 3}), "pyboard")
    assert (c.link_tx_pin, c.link_rx_pin) == ("Y9", "Y10")
    e = raises(ValueError, lambda: load(_pump("pyboard", link={"port": "uart", "uart": 1}), "pyboard"))
    assert str(e) == "board.json: link.tx_pin: pin 'X9' is also buzzer_pin", str(e)
    e = raises(ValueError, lambda: load(_pump("pyboard", link={"port": "uart", "uart": 3, "tx_pin": "Y9"}), "pyboard"))
    assert str(e) == "board.json: link.tx_pin: the pyboard's UART3 has fixed pins (Y9, Y10): remove it", str(e)
    e = raises(ValueError, lambda: load(_pump("esp32", link={"port": "uart", "uart": 0, "tx_pin": 1, "rx_pin": 3}),
                                        "esp32"))
    assert str(e).startswith("board.json: link.uart: must be one of 1, 2 on the esp32, not 0 (UART0 is the REPL's"), str(e)
    e = raises(ValueError, lambda: load(_pump("esp32", link={"port": "uart", "uart": 1, "tx_pin": 34, "rx_pin": 3}),
                                        "esp32"))
    assert str(e) == "board.json: link.tx_pin: GPIO 34 is input-only on the ESP32", str(e)
    _refused("board.json: link.uart: must be one of 0, 1 on the rpi_pico, not 2",
             _pump(link={"port": "uart", "uart": 2, "tx_pin": 8, "rx_pin": 9}))
    _refused("board.json: link.uart: must be one of 0, 1 on the rpi_pico, not True",
             _pump(link={"port": "uart", "uart": True, "tx_pin": 8, "rx_pin": 9}))
    _refused("board.json: link.uart: missing", _pump(link={"port": "uart", "tx_pin": 8, "rx_pin": 9}))
    _refused("board.json: link.baudrate: must be an integer 1200..1000000, not 2000000",
             _pump(link={"port": "uart", "uart": 1, "baudrate": 2_000_000, "tx_pin": 8, "rx_pin": 9}))
    _refused("board.json: link.rx_pin: missing (a pin)", _pump(link={"port": "uart", "uart": 1, "tx_pin": 8}))
    _refused("board.json: link.tx_pin: pin 2 is also motor.step_pin",
             _pump(link={"port": "uart", "uart": 0, "tx_pin": 2, "rx_pin": 1}))
    _refused("board.json: link.port: must be one of usb, uart, not 'bluetooth'", _pump(link={"port": "bluetooth"}))
    _refused("board.json: link.port: missing", _pump(link={}))
    _refused("board.json: link.uart: unknown key", _pump(link={"port": "usb", "uart": 0}))
    _refused("board.json: link: must be an object", _pump(link="usb"))
    # the replay counters must survive a reset: no journal, no link
    d = json.loads(_pump(link={"port": "usb"}))
    del d["journal"]
    _refused("board.json: link: needs a journal (add \"journal\": {}): the link's keys and replay counters live in it",
             json.dumps(d))
    _refused("board.json: link: needs a journal (add \"journal\": {}): the link's keys and replay counters live in "
             "it; mode demo keeps none", _with(["link"], {"port": "usb"}))
