# A board that reboots restores its state from the journal on its own flash, never board.json's
# (issue 14 §9): each virtual port (rp2.Flash, an esp32 partition, pyb.Flash; machine.RTC;
# machine.WDT), on CPython and the MicroPython unix port (tools/run_boards.sh).
#
# Expected figures come from the prescription's definition (tests/boards/prescription.json): the
# patient bolus is 20 mcg over 10 minutes with a 180-minute lockout, strokes of 250 nL at 2000
# mcg/mL (500 ng each).

import machine
from board_rig import BOARD, MIN, Rig, realistic
from flash_setup import fresh_flash

from firmware.alarms import ALARM_CLOCK_LOST, EV_BOLUS, PTM
from firmware.persist import FIRST_BOOT, RESERVE_STROKES, RESTORED
from hal.machine_rtc import VALID_FROM_S, MachineRtc

STROKE_NL = 250


def _pump_config():
    data = realistic(BOARD, mode="pump")
    data["journal"] = {}  # the board's default region (hal/machine_storage.py DEFAULTS)
    return data


def test_a_board_that_reboots_restores_its_state_not_board_json():
    fresh_flash()
    MachineRtc().set_s(VALID_FROM_S + 86_400)  # a clock set once, then kept to the test's time
    machine.RTC.follow_ticks(False)
    data = _pump_config()
    rig = Rig(BOARD, data, keep_clock=True)
    try:
        assert rig.pump.loop.persist.booted == FIRST_BOOT
        rig.press(rig.cfg.button_a_pin, MIN)
        rig.run(15 * MIN)
    finally:
        rig.close()
    granted = [e for e in rig.events if e[0] == EV_BOLUS and e[1] == PTM and e[2] == 0]
    assert len(granted) == 1
    loop = rig.pump.loop
    volume_nl = loop.ctl.reservoir.volume_nl
    made = rig.strokes()
    assert made >= 40  # the bolus's 20 mcg (40 strokes) and the basal
    assert volume_nl <= rig.cfg.volume_nl - made * STROKE_NL

    # The watchdog or a brown-out resets the board; it is back 5 minutes later.
    machine.RTC.boot("hard")
    machine.RTC.advance_ms(5 * MIN)
    again = Rig(BOARD, data, keep_clock=True)
    try:
        persist = again.pump.loop.persist
        assert persist.booted == RESTORED
        ctl = again.pump.loop.ctl
        # The reservoir as journaled (never board.json's), less at most the strokes reserved.
        assert volume_nl - RESERVE_STROKES * STROKE_NL <= ctl.reservoir.volume_nl <= volume_nl
        assert ctl.reservoir.volume_nl < again.cfg.volume_nl - 40 * STROKE_NL
        restarted = [line for line in again.printed if line.startswith("Restarted from the journal after ")]
        lost = again.pump.loop.alarms.active & ALARM_CLOCK_LOST
        if machine.RTC.LOSES_ON_HARD_RESET:  # rp2: the clock is back at its default date
            assert lost and persist.off_s == 0
        else:  # the clock counted the 5 minutes off (and the time since the last snapshot)
            assert not lost and 5 * 60 <= persist.off_s <= 20 * 60
        # The patient-bolus lockout (180 minutes) survived: a press now is refused.
        again.press(again.cfg.button_a_pin, MIN)
        again.run(3 * MIN)
    finally:
        again.close()
    assert len(restarted) == 1, again.printed
    boluses = [e for e in again.events if e[0] == EV_BOLUS and e[1] == PTM]
    assert len(boluses) == 1 and boluses[0][2] != 0, boluses  # refused: the lockout


def test_a_board_without_the_set_up_region_stops_naming_the_journal():
    fresh_flash(set_up=False)
    data = _pump_config()
    try:
        Rig(BOARD, data)
    except ValueError as e:
        text = str(e)
    else:
        text = ""
    assert "journal" in text, text
