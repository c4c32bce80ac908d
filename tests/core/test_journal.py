# The journal (firmware/journal.py) on the simulated NOR flash (sim/nor_flash.py), on CPython and
# on MicroPython: records read back in order, blocks used in turn, and what a torn write or a
# flipped bit leaves. The expected state is kept here, by the test's own model of the changes it
# made, never read back from the journal.

from support import heap_meter, heap_meter_done, raises

from firmware.crc32 import Crc32
from firmware.journal import CORRUPT, EMPTY, RESTORED, SNAPSHOT, WHY_NEWER, WHY_NO_SNAPSHOT, Journal
from sim.nor_flash import NorFlash, PowerCut

CELLS = 6  # the test's state: six counters
SET = 2  # a change: (cell, value)
BUMP = 3  # another type of a different size: (cell, value, 0, 0, 0)
SIZES = (0, CELLS, 2, 5)
SNAP_BYTES = 8 + 4 * CELLS + 8
SET_BYTES = 8 + 4 * 2 + 8
BUMP_BYTES = 8 + 4 * 5 + 8


def _programmed(record_bytes):
    """Bytes an append programs: the record (all but its commit) in 16-byte writes, the last one
    padded with erased bytes, then the 4-byte commit."""
    body = record_bytes - 4
    return body + (-body) % 16 + 4


class Model:
    """The state the journal persists, and what a mount rebuilds."""

    def __init__(self):
        self.cells = [0] * CELLS
        self.change = [0] * 5

    def snapshot(self, values):
        for i in range(CELLS):
            values[i] = self.cells[i]
        return CELLS

    def set(self, journal, cell, value, rtype=SET):
        self.cells[cell] = value
        self.change[0] = cell
        self.change[1] = value
        journal.append(rtype, self.change)

    def apply(self, rtype, values, n):
        if rtype == SNAPSHOT:
            assert n == CELLS
            for i in range(CELLS):
                self.cells[i] = values[i]
        else:
            assert rtype in (SET, BUMP) and 2 <= n <= SIZES[rtype]
            self.cells[values[0]] = values[1]


def _fresh(block_size=256, blocks=3):
    flash = NorFlash(block_size, blocks)
    model = Model()
    j = Journal(flash, SIZES, model.snapshot)
    assert j.mount(model.apply) == EMPTY
    j.format()
    return flash, model, j


def _mount(flash):
    model = Model()
    j = Journal(flash, SIZES, model.snapshot)
    return j.mount(model.apply), model, j


def _crc_of(data, tables=False):
    c = Crc32(tables)
    c.update(data, 0, len(data) // 3)  # in two pieces, as the journal feeds it
    c.update(data, len(data) // 3, len(data))
    return (c.final_hi() << 16) | c.final_lo()


def test_crc32_is_binascii_crc32():
    import binascii

    if not hasattr(binascii, "crc32"):
        from support import skip

        skip("this port's binascii has no crc32")
    data = bytearray(300)
    x = 12345
    for n in range(0, 300, 7):
        for i in range(n):
            x = (x * 1103515245 + 12345) & 0x3FFFFFFF
            data[i] = x >> 22
        for tables in (False, True):  # CPython takes binascii's by default: the tables are checked too
            assert _crc_of(data[:n], tables) == binascii.crc32(data[:n]) & 0xFFFFFFFF, (n, tables)
    assert _crc_of(b"123456789", True) == 0xCBF43926  # the CRC-32 check value


def test_records_read_back_in_order_across_blocks():
    flash, model, j = _fresh()
    expect = [0] * CELLS
    for k in range(200):  # several blocks' worth: blocks are reused in turn
        cell = k % CELLS
        value = (k * 7919) % 1_000_003 - 500_000
        expect[cell] = value
        model.set(j, cell, value, SET if k % 3 else BUMP)
        if k % 17 == 0:
            rc, got, _ = _mount(flash)
            assert rc == RESTORED and got.cells == expect, (k, got.cells, expect)
    rc, got, j2 = _mount(flash)
    assert rc == RESTORED and got.cells == expect
    assert j2.seq == j.seq and j2.block == j.block and j2.offset == j.offset
    assert j.compactions >= 10
    # blocks in turn: erase counts differ by at most one
    assert max(flash.erases) - min(flash.erases) <= 1, flash.erases
    # appends go on after a mount
    got.set(j2, 0, 42)
    rc, again, _ = _mount(flash)
    assert rc == RESTORED and again.cells[0] == 42


def test_values_at_the_small_int_bounds_round_trip():
    flash, model, j = _fresh()
    top = (1 << 30) - 1
    for cell, value in ((0, top), (1, -top - 1), (2, -1), (3, 0), (4, 1 << 24), (5, -(1 << 24))):
        model.set(j, cell, value)
    rc, got, _ = _mount(flash)
    assert rc == RESTORED and got.cells == [top, -top - 1, -1, 0, 1 << 24, -(1 << 24)]


def test_an_erased_region_is_empty_and_anything_else_without_a_snapshot_is_corrupt():
    flash = NorFlash(256, 3)
    rc, _, _ = _mount(flash)
    assert rc == EMPTY
    flash.flip(8 * 300 + 3)  # one decayed bit in an erased region: not a first boot
    rc, _, j = _mount(flash)
    assert rc == CORRUPT and j.why == WHY_NO_SNAPSHOT


def _states_through(rtype, cell, value):
    """A journal with some history, and the model's state before and after one more change."""
    flash, model, j = _fresh()
    for k in range(4):
        model.set(j, k, 100 + k)
    before = list(model.cells)
    after = list(before)
    after[cell] = value
    return flash, model, j, before, after


def test_a_change_torn_at_every_byte_restores_the_state_before_or_after_it():
    for rtype, size in ((SET, _programmed(SET_BYTES)), (BUMP, _programmed(BUMP_BYTES))):
        for k in range(size + 1):
            flash, model, j, before, after = _states_through(rtype, 5, 77)
            flash.tear_after(k)
            try:
                model.set(j, 5, 77, rtype)
                cut = False
            except PowerCut:
                cut = True
            flash.tear_after(-1)
            rc, got, j2 = _mount(flash)
            assert rc == RESTORED, (rtype, k)
            # durable only once its commit is whole: append() returned
            assert got.cells == (before if cut else after), (rtype, k, got.cells)
            assert cut == (k < size), (rtype, k)
            # and the journal goes on: a later change is kept
            got.set(j2, 0, 5)
            rc, again, _ = _mount(flash)
            assert rc == RESTORED and again.cells[0] == 5 and again.cells[5] == got.cells[5], (rtype, k)


def test_a_compaction_torn_at_every_byte_of_its_erase_and_snapshot_loses_nothing():
    flash, model, j = _fresh()
    for _ in range(256):  # fill the block (bounded: a wrong journal fails, never hangs)
        if j.offset + _programmed(SET_BYTES) > j.block_size:
            break
        model.set(j, 1, j.offset)
    else:
        raise AssertionError("the block never filled")
    base = NorFlash(256, 3)
    base.data[:] = flash.data
    before = list(model.cells)
    erase_and_snapshot = 256 + _programmed(SNAP_BYTES)
    for k in range(0, erase_and_snapshot + 1, 1):
        flash.data[:] = base.data
        rc, model, j = _mount(flash)
        assert rc == RESTORED and model.cells == before
        flash.tear_after(k)
        try:
            model.set(j, 2, 99)  # does not fit: a snapshot in the next block
            cut = False
        except PowerCut:
            cut = True
        flash.tear_after(-1)
        rc, got, _ = _mount(flash)
        assert rc == RESTORED, k
        after = list(before)
        after[2] = 99
        assert got.cells == (before if cut else after), (k, got.cells)
        assert cut == (k < erase_and_snapshot)


def _committed(flash):
    """A journal whose newest block holds a snapshot and three changes; their offsets."""
    flash2, model, j = _fresh()
    flash.data[:] = flash2.data
    j._dev = flash
    model.set(j, 0, 11)
    model.set(j, 1, 12, BUMP)
    model.set(j, 2, 13)
    return model, j


def test_a_flipped_bit_in_any_field_of_the_newest_records_is_refused_or_harmless():
    flash = NorFlash(256, 3)
    model, j = _committed(flash)
    good = list(model.cells)
    end = j.offset
    base = bytearray(flash.data)
    outcomes = {}
    for byte in range(end):  # every byte of the block's records: header, payload, CRC, commit
        for bit in (0, 5):
            flash.data[:] = base
            flash.flip(8 * (j.block * 256 + byte) + bit)
            rc, got, _ = _mount(flash)
            # never a state other than the true one
            assert rc == CORRUPT or got.cells == good, (byte, bit, got.cells)
            outcomes[rc] = outcomes.get(rc, 0) + 1
    assert outcomes.get(CORRUPT, 0) > 0 and outcomes.get(RESTORED, 0) > 0
    # a flip in a commit word of a record whose CRC holds is decay, tolerated
    commit_of_first_change = SNAP_BYTES - 4
    flash.data[:] = base
    flash.flip(8 * (j.block * 256 + commit_of_first_change) + 3)
    rc, got, _ = _mount(flash)
    assert rc == RESTORED and got.cells == good


def test_a_flipped_bit_in_free_space_is_harmless_and_the_next_change_starts_a_new_block():
    flash = NorFlash(256, 3)
    model, j = _committed(flash)
    good = list(model.cells)
    flash.flip(8 * (j.block * 256 + 250) + 1)
    rc, got, j2 = _mount(flash)
    assert rc == RESTORED and got.cells == good and j2.dirty
    block = j2.block
    got.set(j2, 3, 33)
    assert j2.block != block and j2.offset == SNAP_BYTES  # the change went out as a snapshot
    rc, again, _ = _mount(flash)
    assert rc == RESTORED and again.cells[3] == 33


def test_a_decayed_newest_snapshot_is_never_replaced_by_the_older_block():
    flash, model, j = _fresh()
    for _ in range(1000):
        if j.compactions >= 2:
            break
        model.set(j, 4, j.seq)
    assert j.offset == SNAP_BYTES  # the newest block holds its snapshot only
    flash.flip(8 * (j.block * 256 + 12) + 0)  # in the snapshot's payload
    rc, _, j2 = _mount(flash)
    assert rc == CORRUPT and j2.why == WHY_NEWER


def test_flips_in_the_block_before_the_newest_do_not_matter():
    # (The block after the newest in turn is where a newer state would be: a decayed sequence
    # number there may raise a false alarm, test_a_decayed_newest_snapshot_...)
    flash, model, j = _fresh()
    for _ in range(1000):
        if j.compactions >= 3:
            break
        model.set(j, 4, j.seq)
    model.set(j, 5, 1)
    good = list(model.cells)
    older = (j.block - 1) % 3
    for byte in range(0, 256, 9):
        flash.flip(8 * (older * 256 + byte) + (byte & 7))
    rc, got, _ = _mount(flash)
    assert rc == RESTORED and got.cells == good


def test_out_of_sequence_records_are_corrupt():
    flash = NorFlash(256, 3)
    model, j = _committed(flash)
    # rewrite the newest block with its changes' sequence numbers 1 apart from the truth
    j2 = Journal(flash, SIZES, model.snapshot)
    assert j2.mount(Model().apply) == RESTORED
    j2.seq += 1  # a gap
    model.set(j2, 0, 1)
    rc, _, j3 = _mount(flash)
    assert rc == CORRUPT


def test_records_of_fewer_ints_than_their_type_holds_read_back_as_written():
    flash, model, j = _fresh()
    j.append(BUMP, [3, 9, 7, 7, 7], 2)  # a BUMP record holds up to 5 ints: these 2 are cell 3 = 9
    model.cells[3] = 9
    rc, got, _ = _mount(flash)
    assert rc == RESTORED and got.cells == model.cells
    e = raises(ValueError, lambda: j.append(BUMP, [0] * 6, 6))
    assert "holds 1..5 ints, not 6" in str(e)


def test_a_region_too_small_or_odd_is_refused():
    e = raises(ValueError, lambda: Journal(NorFlash(256, 1), SIZES, Model().snapshot))
    assert "at least 2" in str(e)
    e = raises(ValueError, lambda: Journal(NorFlash(256, 2), (0, 60), Model().snapshot))
    assert "does not fit a block of 256 bytes" in str(e)


def test_append_allocates_nothing_even_when_it_compacts():
    flash, model, j = _fresh(256, 3)
    model.set(j, 0, 1)  # warm
    meter = heap_meter()
    if meter is None:
        from support import skip

        skip("allocation is measured on MicroPython")
    try:
        start = meter()
        for k in range(40):  # several compactions
            model.set(j, k % CELLS, k)
        used = meter() - start
    finally:
        heap_meter_done()
    assert j.compactions > 3
    print("Journal.append: %d B over 40 appends, %d compactions" % (used, j.compactions))
    assert used == 0, used
