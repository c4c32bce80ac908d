# Toy mode (board.json "mode": "toy"): each board's shipped board.json, its main.py and
# pumpboard.Pump on the virtual port, in real time on a fake real clock (tests/boards/board_rig.py).
# Expected values come from the toy's definition (boards/README.md): one sip is one stroke, a sip
# every sip_every_s, the low tone at low_sips left, the critical tone when empty and again every
# alarms.critical_repeat_minutes; a button bolus is bolus_sips more over bolus_minutes.

from board_rig import BOARD, MIN, Rig, is_sentence, shipped

from firmware.alarms import CRITICAL, EV_BOLUS, EV_REFILL, EV_TONE, NON_CRITICAL, PTM


def test_the_shipped_toy_runs_30_real_minutes_without_a_run_of_critical_tones():
    # make demo BOARD=... with no input for 30 minutes: 150 sips, one every 10 s, empty at 25:00.
    data = shipped(BOARD)
    assert data["mode"] == "toy" and "drug" not in data  # no prescription shipped: a parent might copy it
    rig = Rig(BOARD, data)
    try:
        rig.run(30 * MIN)
    finally:
        rig.close()
    toy = data["toy"]
    sips, every_s, low = toy["sips"], toy["sip_every_s"], toy["low_sips"]
    repeat_ms = data["alarms"]["critical_repeat_minutes"] * MIN
    assert (sips, every_s, low) == (150, 10, 30) and sips * every_s * 1000 <= 30 * MIN
    assert rig.strokes() == sips  # every sip, then empty
    critical = [s[2] for s in rig.sounds if s[0] == "tone" and s[1] == CRITICAL]
    non_critical = [s[2] for s in rig.sounds if s[0] == "tone" and s[1] == NON_CRITICAL]
    # The low tone when 30 sips are left (after 120 sips), the critical one when the last has gone.
    assert len(non_critical) == 1 and abs(non_critical[0] - (sips - low) * every_s * 1000) <= 1000, non_critical
    assert len(critical) == 1 and abs(critical[0] - sips * every_s * 1000) <= 1000, critical
    # No run of critical tones: none closer to another than the repeat interval.
    assert all(critical[i + 1] - critical[i] >= repeat_ms for i in range(len(critical) - 1))
    assert rig.pump.led.blinks == sips - low  # a blink per sip until the alarm's pattern owns the LED
    lines = rig.printed
    assert lines and all(is_sentence(x) for x in lines), [x for x in lines if not is_sentence(x)]
    for want in ("Low water: 30 sips left, refill soon (a short press of B)",
                 "Empty: the toy stopped pumping; a short press of B refills it",
                 "Alarm sound: the critical two-tone for empty reservoir, again every 10 min while it lasts"):
        assert want in lines, (want, lines)
    print("%s toy, 30 real minutes: %d sips, tones at %s s" % (
        BOARD, rig.strokes(), [t // 1000 for t in non_critical + critical]))


def test_toy_button_a_chirps_for_a_bolus_and_says_not_yet_in_lockout():
    data = shipped(BOARD)
    rig = Rig(BOARD, data)
    try:
        a = rig.cfg.button_a_pin
        rig.press(a, MIN)  # granted: 5 sips more over a minute
        rig.press(a, 5 * MIN)  # within the 15 min lockout: "not yet"
        rig.run(10 * MIN + 5000)
    finally:
        rig.close()
    toy = data["toy"]
    boluses = [e for e in rig.events if e[0] == EV_BOLUS and e[1] == PTM]
    assert [e[2] for e in boluses] == [0, 1], boluses  # granted, then lockout
    assert [s[0] for s in rig.sounds if s[0] != "tone"] == ["chirp", "beep_low"]
    # 10 min 5 s of a sip every 10 s, plus the bolus's 5.
    assert rig.strokes() == 10 * 60 // toy["sip_every_s"] + toy["bolus_sips"]
    assert "Button bolus: yes, 5 sips more over 1 min" in rig.printed
    assert "Button bolus: not yet (too soon after the last one)" in rig.printed


def test_toy_long_press_of_b_quietens_even_the_critical_alarm_and_a_short_press_refills():
    data = shipped(BOARD)
    data["toy"] = {"sips": 10, "sip_every_s": 1, "low_sips": 3}
    data["alarms"] = {"critical_repeat_minutes": 1}
    rig = Rig(BOARD, data)
    try:
        b = rig.cfg.button_b_pin
        rig.press(b, 15_000, 2000)  # empty since 10 s, its tone played: held 2 s, quiet from 16.5 s
        rig.press(b, 80_000)  # a short press: refilled, and the quiet ends with the alarm
        rig.run(100_000)
    finally:
        rig.close()
    pump = rig.pump
    critical_played = [s[2] for s in rig.sounds if s[0] == "tone" and s[1] == CRITICAL]
    critical_due = [e[4] for e in rig.events if e[0] == EV_TONE and e[2] == CRITICAL]
    # Due (the firmware's repeats) at 10 s, 70 s and, after the refill's 10 sips, about 90 s;
    # played at 10 s and 90 s only: the repeat at 70 s was quietened.
    assert len(critical_due) == 3 and abs(critical_due[1] - critical_due[0] - MIN) <= 1, critical_due
    assert len(critical_played) == 2 and critical_played[0] == critical_due[0] and critical_played[1] == critical_due[2]
    assert pump.quietened == 1 and pump.refills == 1
    refill = [e for e in rig.events if e[0] == EV_REFILL]
    assert len(refill) == 1 and 80_000 <= refill[0][4] <= 80_200  # the short press, at its release
    assert rig.strokes() == 20  # the toy's 10 sips, twice
    quiet = [x for x in rig.printed if x.startswith("Quietened")]
    assert len(quiet) == 1 and "Alarm sound for empty reservoir not played: quietened (the light still shows it)" \
        in rig.printed
    assert pump.led.showing() is not None  # the LED still shows the critical alarm
