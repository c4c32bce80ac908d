# The journal's flash regions (hal/machine_storage.py) on each virtual port's own flash object
# (rp2.Flash, esp32.Partition, pyb.Flash, modelled from the port's C sources: boards/virtual), on
# CPython and the MicroPython unix port (tools/run_boards.sh), one port per run.

import machine
from flash_setup import fresh_flash as _fresh
from support import raises

from firmware.journal import EMPTY, RESTORED, Journal
from firmware.persist import SIZES
from hal import machine_storage as ms

PORT = machine.PORT
BOARD = {"rp2": "rpi_pico", "esp32": "esp32", "stm32": "pyboard"}[PORT]


def _raw():
    """The port's own flash object over the journal's state region."""
    cfg = _fresh()
    if PORT == "rp2":
        import rp2

        return rp2.Flash(start=cfg["start"], len=2 * 4096)
    if PORT == "esp32":
        import esp32

        return esp32.Partition("journal")
    import pyb

    return pyb.Flash(start=cfg["start"], len=2 * 4096)


def test_a_write_with_offset_clears_bits_only_and_an_erase_sets_ff_where_the_port_is_nor():
    dev = _raw()
    page = 256
    buf = bytearray(b"\x0f" * page)
    dev.writeblocks(1, buf, 0)
    buf[:] = b"\xf3" * page
    dev.writeblocks(1, buf, 0)
    got = bytearray(page)
    dev.readblocks(1, got, 0)
    if PORT == "stm32":
        assert got == bytearray(b"\xf3" * page)  # a copy into the sector cache: bits go back to 1
        assert dev.ioctl(6, 1) == 0
        dev.readblocks(1, got, 0)
        assert got == bytearray(b"\xf3" * page)  # ioctl 6 erases nothing on the internal flash
    else:
        assert got == bytearray(b"\x03" * page)  # 0x0f & 0xf3
        assert dev.ioctl(6, 1) == 0
        dev.readblocks(1, got, 0)
        assert got == bytearray(b"\xff" * page)


def test_the_ports_argument_errors():
    _fresh()
    if PORT == "rp2":
        import rp2

        raises(ValueError, lambda: rp2.Flash(start=100))  # not a multiple of 4096
        raises(ValueError, lambda: rp2.Flash(start=0, len=1409 * 1024))
        raises(TypeError, lambda: rp2.Flash(0, 4096))  # kw-only
        dev = rp2.Flash(start=0, len=4096)
        raises(AssertionError, lambda: dev.writeblocks(0, bytearray(16), 4))  # not whole pages
        raises(AssertionError, lambda: dev.readblocks(1, bytearray(4)))  # past the object
    elif PORT == "esp32":
        import esp32

        assert raises(OSError, lambda: esp32.Partition("nope")).args[0] == 2  # ENOENT
        raises(ValueError, lambda: esp32.Partition(5))
        raises(TypeError, lambda: esp32.Partition(label="journal"))
        p = esp32.Partition("journal")
        raises(OSError, lambda: p.readblocks(28, bytearray(4)))  # ESP_ERR_INVALID_SIZE
        assert esp32.Partition("journal", 512).ioctl(6, 0) == -22
    else:
        import pyb

        raises(ValueError, lambda: pyb.Flash(start=100))
        raises(ValueError, lambda: pyb.Flash(start=0, len=113 * 1024))
        raises(TypeError, lambda: pyb.Flash(0))
        dev = pyb.Flash(start=0, len=1024)
        assert dev.readblocks(2, bytearray(4), 0) == -14  # EFAULT, returned, not raised
        assert dev.ioctl(5, 0) == 512


def test_the_defaults_fit_each_board_and_the_journals_records_fit_a_block():
    _fresh()
    state, events = ms.open_regions(ms.defaults(BOARD))
    assert state.ioctl(5, 0) == 4096 and events.ioctl(5, 0) == 4096
    cfg = ms.defaults(BOARD)
    assert state.ioctl(4, 0) == cfg["state_blocks"] and events.ioctl(4, 0) == cfg["event_blocks"]
    Journal(state, SIZES, lambda v: 1)  # the snapshot's 825 ints fit a block


def test_a_region_larger_than_the_board_has_is_refused_naming_the_key_and_both_sizes():
    cfg = _fresh()
    cfg["event_blocks"] = 4000
    e = raises(ValueError, lambda: ms.open_regions(cfg))
    asked = (cfg["state_blocks"] + 4000) * 4096
    assert "journal." in str(e) and str(asked) in str(e)
    have = 0x1C000 if PORT == "esp32" else {"rp2": 1408, "stm32": 112}[PORT] * 1024 - cfg["start"]
    assert "journal.state_blocks + event_blocks" in str(e) and str(have) in str(e)
    cfg["event_blocks"] = 1
    assert "journal.event_blocks" in str(raises(ValueError, lambda: ms.open_regions(cfg)))


def test_a_region_overlapping_the_filesystem_is_refused_with_the_fix():
    cfg = _fresh(set_up=False)
    e = raises(ValueError, lambda: ms.open_regions(cfg))
    assert "boards/README.md" in str(e)
    if PORT == "esp32":  # stock: no partition for it; a table whose "vfs" covers it
        import esp32

        assert "journal.partition" in str(e)
        esp32.flash_partition_table(esp32._TABLE_STOCK + (("vfs", 1, 0x81, 0x200000, 0x200000),
                                                          ("journal", 1, 0x81, 0x3E0000, 0x1C000)))
        e = raises(ValueError, lambda: ms.open_regions(cfg))
    assert "overlaps the filesystem" in str(e)
    if PORT == "rp2":  # a student's littlefs that ends one block into the region
        import rp2

        rp2.format_littlefs(cfg["start"] + 4096)
        raises(ValueError, lambda: ms.open_regions(cfg))
        rp2.format_littlefs(cfg["start"])
        ms.open_regions(cfg)


def _journal(dev):
    return Journal(dev, SIZES, lambda v: _snap(v))


def _snap(values):
    for i in range(SIZES[1]):
        values[i] = i - 400
    return SIZES[1]


def test_a_journal_formats_appends_and_mounts_again_after_a_reboot():
    cfg = _fresh()
    state, events = ms.open_regions(cfg)
    j = _journal(state)
    assert j.mount(lambda t, v, n: None) == EMPTY
    j.format()
    for k in range(40):  # past a block: compactions over several blocks
        j.append(2, [k, k + 1, -k])
    if PORT == "stm32":
        import pyb

        pyb.flash_power_cut(True)  # what was appended was synced: a cut loses nothing
    machine.reset_fakes()  # a reboot: the fakes' flash keeps its bytes
    state, events = ms.open_regions(cfg)
    seen = []
    j = _journal(state)
    assert j.mount(lambda t, v, n: seen.append((t, v[0], n))) == RESTORED
    assert seen[-1] == (2, 39, 3)
    assert j.compactions == 0 and seen[0][0] == 1  # a snapshot first, then the changes after it


def test_the_port_keeps_nothing_a_power_cut_loses_unless_synced_stm32():
    if PORT != "stm32":
        return
    import pyb

    dev = _raw()
    dev.writeblocks(0, bytearray(16), 0)
    assert pyb.flash_dirty()
    pyb.flash_power_cut(True)
    got = bytearray(16)
    dev.readblocks(0, got, 0)
    assert got == bytearray(b"\xff" * 16)  # the cached write is gone


def test_file_flash_is_nor_and_keeps_its_bytes_when_opened_again():
    path = "/tmp/test_storage_fileflash.bin"
    try:
        import os

        os.remove(path)
    except OSError:
        pass
    f = ms.FileFlash(path, 4096, 3)
    f.writeblocks(2, bytearray(b"\x0f\xf0"), 10)
    f.writeblocks(2, bytearray(b"\x3c\x3c"), 10)
    f.close()
    f = ms.FileFlash(path, 4096, 3)
    got = bytearray(2)
    f.readblocks(2, got, 10)
    assert got == bytearray(b"\x0c\x30")
    f.ioctl(6, 2)
    f.readblocks(2, got, 10)
    assert got == bytearray(b"\xff\xff")
    raises(OSError, lambda: f.readblocks(3, got, 0))
    j = _journal(f)
    assert j.mount(lambda t, v, n: None) == EMPTY
    j.format()
    j.append(2, [1, 2, 3])
    f.close()
    seen = []
    assert _journal(ms.FileFlash(path, 4096, 3)).mount(lambda t, v, n: seen.append(t)) == RESTORED
    assert seen == [1, 2]


def test_an_append_through_the_ports_adapter_allocates_nothing():
    # The adapter over sim/nor_flash.py (which allocates nothing on MicroPython; the fakes do):
    # what the board's own flash object costs is the port's C, not measured here.
    from support import heap_meter, heap_meter_done

    from sim.nor_flash import NorFlash

    if PORT == "rp2":
        from hal.storage_rp2 import _Pages

        dev = _Pages(NorFlash(4096, 4))
    elif PORT == "esp32":
        dev = ms.Window(NorFlash(4096, 6), 2, 4)
    else:
        from hal.storage_pyb import _Pyb

        dev = _Pyb(NorFlash(512, 32))
    j = _journal(dev)
    j.format()
    vals = [1, 2, 3]
    j.append(2, vals)  # (the first call of each path)
    meter = heap_meter()
    if meter is None:
        return  # CPython: nothing to measure
    before = meter()
    for k in range(40):
        vals[0] = k
        j.append(2, vals)
    used = meter() - before
    heap_meter_done()
    print("Journal.append through %s's adapter: %d B over 40 appends" % (PORT, used))
    assert used == 0, used
