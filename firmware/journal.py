# The pump's journal: an append-only log of records in a flash region of its own, read back at
# boot to restore the newest state (docs/journal.md).
#
# The region is a block device with MicroPython's extended protocol (readblocks/writeblocks with
# an offset, ioctl 4/5/6; hal/interfaces.py "Storage"), at least two erase blocks. A record is
#
#   type u8 | 0 u8 | n u16 | seq u32 | n x i32 payload | CRC-32 u32 | commit u32
#
# little-endian, 4-byte aligned. The CRC covers the header and payload. The commit word is
# written as 00000000 by a second, separate write once the record is on the flash: a record is
# durable only when its commit is, so whatever a caller does after append() returns may rely on
# it, and a write torn by a power cut is recognised as never made (the record and its commit are
# erased bytes, or a prefix of them, with nothing written after).
#
# Each block starts with a snapshot of the whole state; the records after it in the same block
# are changes. The newest state is the block whose snapshot has the highest sequence number, its
# snapshot, then its changes in sequence. When a record does not fit, the next block (the oldest,
# blocks are used in turn) is erased and a fresh snapshot written there: the old block still holds
# the last good state until the new snapshot is committed, so a cut during compaction loses
# nothing.
#
# What mount() refuses (CORRUPT: the pump raises critical_fault and stays stopped, never running a
# default prescription): a record whose CRC fails while its commit word says it was committed
# (a flipped bit); records out of sequence; a record anywhere in the region newer than the state
# it would restore; any data in an otherwise empty region. A flipped bit in the commit word of a
# record whose CRC holds is tolerated (a tear clears whole bytes; one bit set among zeros is decay).
#
# append() allocates nothing: every record type has a fixed size, given at construction, and its
# buffer is made then. Values are small ints (|v| < 2**30); the CRC is firmware/crc32.py's.

from firmware.crc32 import Crc32
from micropython import const

HEADER = const(8)
TRAILER = const(8)  # CRC-32, then the commit word
SNAPSHOT = const(1)  # the record type of a snapshot; other types are the caller's, 2..254

EMPTY = const(0)  # mount(): the region is erased: the very first boot
RESTORED = const(1)  # the newest state was read back
CORRUPT = const(2)  # no state can be trusted (why: Journal.why)

# Why a mount found the region corrupt (Journal.why; the event log's codes)
WHY_NONE = const(0)
WHY_NO_SNAPSHOT = const(1)  # data in the region, but no valid snapshot
WHY_BAD_RECORD = const(2)  # a committed record whose CRC fails, or an unreadable header
WHY_SEQUENCE = const(3)  # records out of sequence
WHY_NEWER = const(4)  # a valid record newer than the newest valid block: its snapshot decayed
WHY_NAMES = ("", "no_snapshot", "bad_record", "sequence", "newer_record")

_MAX_SEQ = const(0x3FFFFFFF)
# What _record_at() found
_NO_HEADER = const(0)
_VALID = const(1)
_DECAYED = const(2)
_UNCOMMITTED = const(3)
_CHUNK = const(32)  # bytes read back at a time
_WCHUNK = const(16)  # bytes programmed at a time


def _put(buf, at, v):
    buf[at] = v & 0xFF
    buf[at + 1] = (v >> 8) & 0xFF
    buf[at + 2] = (v >> 16) & 0xFF
    buf[at + 3] = (v >> 24) & 0xFF


def _pack(buf, values, n):
    for i in range(n):
        _put_value(buf, values, i)


def _put_value(buf, values, i):
    _put(buf, HEADER + 4 * i, values[i])


def _put16(buf, at, v):
    buf[at] = v & 0xFF
    buf[at + 1] = v >> 8


def _get(buf, at):
    """The signed 32-bit value at buf[at]; only for values known to be small ints (|v| < 2**30)."""
    top = buf[at + 3]
    if top >= 128:
        top -= 256
    return buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (top << 24)


class Journal:
    """dev: the region (block device). sizes: a tuple, sizes[t] = the most ints a record of type t
    holds (0 where t is not a type; sizes[SNAPSHOT] is the snapshot's). snapshot(values) -> n:
    fills values[0:n] with the state as it is now (called when a block fills), n <= sizes[SNAPSHOT]."""

    def __init__(self, dev, sizes, snapshot, log=False):
        bs = dev.ioctl(5, 0)
        blocks = dev.ioctl(4, 0)
        if not isinstance(bs, int) or bs < 256 or bs % 4:
            raise ValueError("storage: block size %r: must be a multiple of 4, at least 256" % (bs,))
        if not isinstance(blocks, int) or blocks < 2:
            raise ValueError("storage: %r blocks: the journal needs at least 2" % (blocks,))
        if len(sizes) < 2 or not sizes[SNAPSHOT] or len(sizes) > 255:
            raise ValueError("journal: sizes must give the snapshot's")
        self._dev = dev
        self._log = log  # a log (the events): a record that starts a new block still goes out after its snapshot
        self.block_size = bs
        self.blocks = blocks
        self._sizes = sizes
        self._snapshot = snapshot
        self._bufs = [bytearray(HEADER + 4 * n + 4) if n else None for n in sizes]
        for t in range(len(sizes)):
            if sizes[t] and HEADER + 4 * sizes[t] + TRAILER + _WCHUNK > bs:
                raise ValueError("journal: a record of type %d (%d ints) does not fit a block of %d bytes" % (
                    t, sizes[t], bs))
        self._commit = bytearray(4)  # 00000000
        self._chunk = bytearray(_CHUNK)
        self._wchunk = bytearray(_WCHUNK)
        self._len = 0  # bytes of the record being written (header, payload, CRC)
        self._values = [0] * sizes[SNAPSHOT]  # the snapshot's values when a block fills
        self.values = [0] * max(sizes)  # mount(): the record being applied
        self._crc = Crc32()
        self.block = -1  # the block being written
        self.offset = 0  # where the next record goes in it
        self.seq = 0  # the next record's sequence number
        self.dirty = False  # the rest of the block is not clean: the next append starts a new block
        self.why = WHY_NONE
        self.bytes_written = 0  # bytes programmed, records and commits (not the erased padding)
        self._snap_n = 0
        self._n_check = 0
        self._type = 0
        self._total = 0
        self._n = 0
        self.compactions = 0
        self._chk_block = -1  # check(): the block (and compaction) and offset re-read up to
        self._chk_compactions = 0
        self.checked_to = 0  # (where a failed check stopped: the offset of the record that failed)

    # -- writing ------------------------------------------------------------------------------------

    def format(self):
        """The very first boot (mount() said EMPTY): the first snapshot, in block 0."""
        self.block = -1  # _compact() takes the next one: block 0
        self.seq = 0
        self._compact()

    def append(self, rtype, values, n=-1):
        """Persists a change the caller has already made in RAM: values[0:n] (n: at most, and by
        default, sizes[rtype]). Returns once it is durable. When the block is full the change goes
        out as a fresh snapshot in the next block instead (it includes the change)."""
        if n < 0:
            n = self._sizes[rtype]
        elif not 1 <= n <= self._sizes[rtype]:
            self._refuse(rtype, n)
        if self.dirty or not self._fits(n):
            self._compact()
            if not self._log:
                return
        self._fill(self._bufs[rtype], rtype, values, n)
        if not self._write(self._bufs[rtype]):
            self.dirty = True  # the flash did not take it: a new block, with the state in full
            self._compact()

    def _refuse(self, rtype, n):
        raise ValueError("journal: a record of type %d holds 1..%d ints, not %d" % (rtype, self._sizes[rtype], n))

    def _fits(self, n):
        """A record of n ints, its commit, and the erased padding of its last write, fit the block."""
        end = HEADER + 4 * n + 4
        padded = end + (-end) % _WCHUNK
        return self.offset + (padded if padded > end + 4 else end + 4) <= self.block_size

    # The write path keeps its frames small: a MicroPython function with more than about 11 words
    # of locals and stack takes its frame from the heap on every call (GUIDE.md).

    def _fill(self, buf, rtype, values, n):
        self._len = HEADER + 4 * n + 4
        buf[0] = rtype
        buf[1] = 0
        buf[2] = n & 0xFF
        buf[3] = n >> 8
        _put(buf, 4, self.seq)
        _pack(buf, values, n)
        self._seal(buf, HEADER + 4 * n)

    def _seal(self, buf, at):
        """The CRC-32 of buf[0:at], stored at buf[at:at + 4]."""
        crc = self._crc
        crc.reset()
        crc.update(buf, 0, at)
        _put16(buf, at, crc.final_lo())
        _put16(buf, at + 2, crc.final_hi())

    def _write(self, buf):
        """Programs the record (buf[0:self._len]) then its commit at the write position, the record
        in chunks of _WCHUNK bytes, the last padded with erased bytes (programming 0xFF changes
        nothing on NOR flash); True if both read back right."""
        for pos in range(0, self._len, _WCHUNK):
            self._write_chunk(buf, pos)
        self.bytes_written += self._len
        if not self._same(self.offset, buf, self._len):
            return False
        self._dev.writeblocks(self.block, self._commit, self.offset + self._len)
        self.bytes_written += 4
        if not self._same(self.offset + self._len, self._commit, 4):
            return False
        self.offset += self._len + 4
        self.seq += 1
        if self.seq > _MAX_SEQ:
            raise OverflowError("journal: sequence numbers used up")
        return True

    def _write_chunk(self, buf, pos):
        w = self._wchunk
        for j in range(_WCHUNK):
            w[j] = buf[pos + j] if pos + j < self._len else 0xFF
        self._dev.writeblocks(self.block, w, self.offset + pos)

    def _same(self, at, buf, n):
        """buf[0:n] reads back from the block being written at `at`, in chunks (the last one
        moved back so that it stays inside the block)."""
        self._n_check = n
        i = 0
        while i < n:
            i = self._same_chunk(at + i, buf, i)
            if i < 0:
                return False
        return True

    def _same_chunk(self, pos, buf, i):
        base = pos if pos + _CHUNK <= self.block_size else self.block_size - _CHUNK
        self._dev.readblocks(self.block, self._chunk, base)
        for j in range(pos - base, _CHUNK):
            if i == self._n_check:
                break
            if self._chunk[j] != buf[i]:
                return -1
            i += 1
        return i

    def _compact(self):
        """Erases the next block and writes the whole state there as a snapshot. Blocks are used
        in turn, so the next one is the oldest; the current one keeps the last good state until
        the snapshot in the next one is committed."""
        self._snap_n = self._snapshot(self._values)
        keep = self.block  # holds the last good state: never erased here (-1 when formatting)
        for _ in range(self.blocks):
            if self._snapshot_in_next(keep):
                self.compactions += 1
                return
        raise OSError(5)  # EIO: no block takes a snapshot any more

    def _snapshot_in_next(self, keep):
        block = (self.block + 1) % self.blocks if self.block >= 0 else 0
        if block == keep:
            raise OSError(5)  # every other block refused it
        self._dev.ioctl(6, block)
        self.block = block
        self.offset = 0
        self.dirty = False
        self._fill(self._bufs[SNAPSHOT], SNAPSHOT, self._values, self._snap_n)
        return self._write(self._bufs[SNAPSHOT])

    # -- the self-test (firmware/selftest.py): allocates nothing -------------------------------------

    def check(self):
        """Re-reads every record committed to the block being written since the last check (the
        whole block after a compaction): True if each still reads back with its CRC holding."""
        if self.block != self._chk_block or self.compactions != self._chk_compactions:
            self._chk_block = self.block
            self._chk_compactions = self.compactions
            self.checked_to = 0
        while self.checked_to < self.offset:
            if not self._check_record():
                return False
        return True

    def _check_record(self):
        at = self.checked_to
        j = at - self._read_chunk(at)
        t = self._chunk[j]
        n = self._chunk[j + 2] | (self._chunk[j + 3] << 8)
        if self._chunk[j + 1] != 0 or t >= len(self._sizes) or not 1 <= n <= self._sizes[t]:
            return False
        end = at + HEADER + 4 * n  # the CRC's offset
        self._crc.reset()
        while at < end:
            at = self._crc_chunk(at, end)
        j = end - self._read_chunk(end)
        if self._chunk[j] | (self._chunk[j + 1] << 8) != self._crc.final_lo() \
                or self._chunk[j + 2] | (self._chunk[j + 3] << 8) != self._crc.final_hi():
            return False
        self.checked_to = end + TRAILER
        return True

    def _crc_chunk(self, at, end):
        base = self._read_chunk(at)
        stop = base + _CHUNK if base + _CHUNK < end else end
        self._crc.update(self._chunk, at - base, stop - base)
        return stop

    def _read_chunk(self, at):
        """Reads _CHUNK bytes of the block being written holding offset `at` (moved back to stay
        inside the block); returns the offset of _chunk[0]."""
        base = at if at + _CHUNK <= self.block_size else self.block_size - _CHUNK
        self._dev.readblocks(self.block, self._chunk, base)
        return base

    # -- reading (boot: may allocate) ------------------------------------------------------------

    def mount(self, apply):
        """Finds the newest state and calls apply(rtype, values, n) for its snapshot then each
        change, in order. Returns EMPTY (an erased region: format() next), RESTORED (then
        appends go on where the log ends) or CORRUPT (nothing applied; self.why says why)."""
        self.why = WHY_NONE
        heads = []  # (seq, block) of each block that starts with a valid snapshot
        blank = True
        for b in range(self.blocks):
            if self._last_written(b) >= 0:
                blank = False
            kind, seq = self._record_at(b, 0)
            if kind == _VALID and self._type == SNAPSHOT:  # (a decayed one is caught by _newer_elsewhere)
                heads.append((seq, b))
        if blank:
            return EMPTY
        heads.sort()
        while heads:
            seq, b = heads.pop()
            scan = self._scan(b, seq)
            if scan is None:
                continue  # its changes are unreadable: an older block may still hold the state
            offsets, end, dirty = scan
            if self._newer_elsewhere(b, seq + len(offsets) - 1):
                self.why = WHY_NEWER
                return CORRUPT
            for at in offsets:
                self._record_at(b, at)
                apply(self._type, self.values, self._n)
            self.block = b
            self.offset = end
            self.seq = seq + len(offsets)
            self.dirty = dirty
            return RESTORED
        if self.why == WHY_NONE:
            self.why = WHY_NO_SNAPSHOT
        return CORRUPT

    def replay(self, apply):
        """A log kept for its records, not a state (the event log's region): calls apply(rtype,
        values, n) for every valid committed record of every block, oldest first, and goes on
        appending after the newest. A decayed record and what follows it in its block are skipped
        (the log loses them; no state depends on them). Returns the records replayed; 0 and EMPTY's
        format() next when the region holds none."""
        found = []
        for b in range(self.blocks):
            at = 0
            while at + HEADER + TRAILER <= self.block_size:
                kind, seq = self._record_at(b, at)
                if kind != _VALID:
                    break
                found.append((seq, b, at, self._total))
                at += self._total
        found.sort()
        for _seq, b, at, _ in found:
            self._record_at(b, at)
            apply(self._type, self.values, self._n)
        if found:
            seq, b, at, total = found[-1]
            self.block = b
            self.offset = at + total
            self.seq = seq + 1
            self.dirty = self._last_written(b) >= self.offset
        return len(found)

    def _scan(self, b, seq):
        """The offsets of the records of block b (a snapshot with sequence number seq first), the
        end of the log in it, and whether the rest of the block is dirty; None if the block's
        records cannot be trusted (self.why says why)."""
        offsets = []
        at = 0
        bs = self.block_size
        last = self._last_written(b)
        while at + HEADER + TRAILER <= bs:
            if self._erased_span(b, at, at + HEADER):
                return offsets, at, last >= at  # written bytes after the end: decay
            kind, rseq = self._record_at(b, at)
            if kind == _VALID:
                if rseq != seq + len(offsets):
                    self.why = WHY_SEQUENCE
                    return None
                offsets.append(at)
                at += self._total
                continue
            # Not committed: acceptable only as the write the power cut, the last thing in the
            # block. A tear leaves what it had programmed and erased bytes after it, so nothing
            # may be written beyond the record (its header, where the header itself is torn).
            if kind == _UNCOMMITTED and last < at + self._total or kind == _NO_HEADER and last < at + HEADER:
                return offsets, at, True
            self.why = WHY_BAD_RECORD
            return None
        return offsets, at, last >= at

    def _newer_elsewhere(self, keep, last_seq):
        """True if the block after `keep` in turn, the only one written after it, holds a record
        committed after last_seq, valid or decayed (its commit written, its CRC failing): the state
        to restore would be older than what the pump last relied on. Every aligned offset is tried,
        as a decayed record hides where the next one starts. (A bit decayed in the sequence number
        of one of that block's old records can make it look newer: a false alarm, never a wrong
        state.)"""
        b = (keep + 1) % self.blocks
        last = self._last_written(b)
        for at in range(0, last + 1, 4):
            kind, rseq = self._record_at(b, at)
            if (kind == _VALID or kind == _DECAYED) and rseq > last_seq:
                return True
        return False

    def _record_at(self, b, at):
        """Reads the record at (b, at): _VALID (committed, its CRC holding), _DECAYED (committed,
        its CRC failing), _UNCOMMITTED (a header of a record whose commit word is erased or
        partly written: a write not finished) or _NO_HEADER; and its sequence number. Sets
        self._type, self._total (the record's bytes, commit included) and self.values."""
        self._type = 0
        self._total = 0
        if at + HEADER + TRAILER > self.block_size:
            return _NO_HEADER, 0
        head = bytearray(HEADER)
        self._dev.readblocks(b, head, at)
        t = head[0]
        n = head[2] | (head[3] << 8)
        if head[1] != 0 or t >= len(self._sizes) or not 1 <= n <= self._sizes[t]:
            return _NO_HEADER, 0
        total = HEADER + 4 * n + TRAILER
        if at + total > self.block_size:
            return _NO_HEADER, 0
        self._total = total
        rec = bytearray(total)
        self._dev.readblocks(b, rec, at)
        seq = _get(rec, 4)
        # The commit word: 00000000 written; a tear leaves whole bytes 00 or FF, and an erased
        # byte among them means the write never finished. Any other byte is a decayed bit of a
        # written commit.
        erased = 0
        flipped = 0
        for i in range(total - 4, total):
            if rec[i] == 0xFF:
                erased += 1
            elif rec[i]:
                flipped += 1
        if erased and not flipped:
            return _UNCOMMITTED, seq
        crc = self._crc
        crc.reset()
        c = total - TRAILER
        crc.update(rec, 0, c)
        if rec[c] | (rec[c + 1] << 8) != crc.final_lo() or rec[c + 2] | (rec[c + 3] << 8) != crc.final_hi() or seq < 0:
            return _DECAYED, seq
        self._type = t
        self._n = n
        for i in range(n):
            self.values[i] = _get(rec, HEADER + 4 * i)
        return _VALID, seq

    def _last_written(self, b):
        """The offset of the last byte of block b that is not erased (0xFF), or -1."""
        bs = self.block_size
        buf = bytearray(256)
        end = bs
        while end > 0:
            start = end - 256
            self._dev.readblocks(b, buf, start)
            for i in range(255, -1, -1):
                if buf[i] != 0xFF:
                    return start + i
            end = start
        return -1

    def _erased_span(self, b, start, end):
        buf = bytearray(end - start)
        self._dev.readblocks(b, buf, start)
        for x in buf:
            if x != 0xFF:
                return False
        return True
