# A board with its link on a UART (board.json "link", issue 15): boards/pumpboard.py builds the
# port's machine.UART (hal/machine_link.py), journals make deploy's keys at boot and removes their
# file, and the firmware's link answers a STATUS frame sent into the UART with an authenticated
# reply. On each virtual port, on CPython and the MicroPython unix port (tools/run_boards.sh).
#
# Expected values come from the prescription (tests/boards/prescription.json): the reservoir as the
# config fills it, 2000 mcg/mL.

import machine
import vport
from board_rig import BOARD, Rig, pumpboard, realistic
from flash_setup import fresh_flash

from firmware import frame as F
from firmware.hmac_sha256 import HmacSha256

CK = bytes(range(1, 33))  # 32 bytes each
PK = bytes(range(101, 133))
# a UART whose pins the shipped board leaves free: Pico UART1 on GP8/GP9, esp32 UART2 on 17/16,
# the pyboard's UART3 (Y9/Y10, fixed)
LINK = {"rpi_pico": {"port": "uart", "uart": 1, "tx_pin": 8, "rx_pin": 9},
        "esp32": {"port": "uart", "uart": 2, "tx_pin": 17, "rx_pin": 16},
        "pyboard": {"port": "uart", "uart": 3}}
STATUS = 1
REPLY = 0x80
NL_PER_ML = 1_000_000


def _key_file():
    # a path of this port's and release's own: tools/run_boards.sh may run pairs side by side
    return "/tmp/pumpfw-test-link-keys-%s-%d.%d.bin" % ((machine.PORT,) + vport.VERSION)


def _exists(path):
    try:
        open(path, "rb").close()
        return True
    except OSError:
        return False


def _boot(keys, wipe=True):
    """The board in pump mode with a journal and LINK, booted with `keys` in make deploy's file
    (None: no file); wipe False: on the flash the last boot left."""
    if wipe:
        fresh_flash()
    data = realistic(BOARD, mode="pump")
    data["journal"] = {}
    data["link"] = LINK[BOARD]
    path = _key_file()
    if keys is not None:
        with open(path, "wb") as f:
            f.write(keys)
    elif _exists(path):
        import os

        os.remove(path)
    pumpboard().KEY_FILE = path
    return Rig(BOARD, data), data, path


def _replies(data):
    """(role, counter, command, ints) of every frame in data whose MAC is the clinician key's."""
    reader = F.FrameReader()
    mac = HmacSha256(CK)
    out = []
    for b in data:
        code = reader.feed(b)
        if code == F.FRAME_OK and reader.mac_ok(mac):
            out.append((reader.role, reader.counter, reader.command, list(reader.values[:reader.n])))
    return out


def test_a_uart_link_board_journals_its_keys_and_answers_status():
    rig, data, path = _boot(CK + PK)
    try:
        assert "Link: keys provisioned into the journal" in rig.printed, rig.printed
        assert not _exists(path)  # journaled, then removed
        link = rig.pump.loop.link
        assert link.provisioned and bytes(link.keys) == CK + PK
        uart = rig.pump.loop._link_port._uart
        assert isinstance(uart, machine.UART)
        uart.sent()
        uart.receive(b"\x13garbage" + F.encode(HmacSha256(CK), 2, 7, STATUS, []))
        rig.run(50)
        got = _replies(uart.sent())
        assert len(got) == 1, got
        role, counter, command, ints = got[0]
        assert (role, counter, command) == (2, 7, STATUS | REPLY) and ints[:2] == [0, 0], got
        volume_nl = int(data["pump"]["volume_ml"] * NL_PER_ML)
        assert ints[3] <= volume_nl and volume_nl - ints[3] < 10 * 250  # the reservoir, less a few strokes
        assert ints[4] == data["drug"]["concentration_mcg_ml"]
        assert link.last[2] == 7
    finally:
        rig.close()


def test_keys_are_provisioned_once_and_a_board_without_them_refuses_every_command():
    rig, data, path = _boot(None)
    try:
        assert "Link: no keys in the journal: every command is refused (make deploy provisions them)" in rig.printed
        uart = rig.pump.loop._link_port._uart
        uart.sent()
        uart.receive(F.encode(HmacSha256(CK), 2, 1, STATUS, []))
        rig.run(50)
        assert _replies(uart.sent()) == []  # refused unauthenticated (not provisioned)
        assert not rig.pump.loop.link.provisioned
    finally:
        rig.close()
    # a file of the wrong size is ignored and removed; keys already journaled are kept
    rig, data, path = _boot(CK)
    try:
        assert "Link: link_keys.bin holds 32 bytes, not 64: ignored" in [
            line.replace(path, "link_keys.bin") for line in rig.printed], rig.printed
        assert not _exists(path) and not rig.pump.loop.link.provisioned
    finally:
        rig.close()


def test_a_second_key_file_never_replaces_the_journaled_keys():
    rig, data, path = _boot(CK + PK)
    rig.close()
    rig, data, path = _boot(PK + CK, wipe=False)  # the reboot: the same flash
    try:
        lines = [line.replace(path, "link_keys.bin") for line in rig.printed]
        assert ("Link: keys in the journal already; link_keys.bin holds others, ignored (keys are provisioned "
                "once: a new pair needs the journal erased)") in lines, lines
        assert bytes(rig.pump.loop.link.keys) == CK + PK and not _exists(path)
    finally:
        rig.close()
