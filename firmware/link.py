# The link's command layer (issue 15 §1, docs/link.md "Commands"): frames from a byte port
# (hal/interfaces.py LinkPort) authenticated, checked against replay, dispatched through the loop's
# own programmer commands, and answered with an authenticated reply bound to the request's counter.
#
# Order of checks for a well-formed frame: keys provisioned -> role known (the reader) -> the
# link's lockout -> MAC (a failure counts toward the lockout) -> counter (replay, window,
# exhausted) -> the counter journaled BEFORE anything takes effect -> command known -> role allowed
# -> length -> fields -> confirm -> dispatch. A rejected command changes nothing but the counter and
# the log; every frame that ends is logged (EV_COMMAND_ACCEPTED / EV_COMMAND_REFUSED).
#
# Resources: the reader's buffers, one input chunk, one reply list and one encoded reply buffer,
# all made here. A frame refused before its MAC (framing, no keys, lockout) allocates nothing; one
# refused by its MAC allocates that check's hashlib objects. Replies to frames the pump could not
# authenticate are unauthenticated (role 0, counter 0, a MAC of zeros): no MAC is computed for them.

from firmware import state
from firmware.alarms import EV_COMMAND_ACCEPTED, EV_COMMAND_REFUSED, EV_LINK_LOCKED, EV_LINK_UNLOCKED
from firmware.frame import (
    CLINICIAN,
    COUNTER_MAX,
    FRAME_OK,
    MAX_ENCODED,
    MAX_INTS,
    PATIENT,
    FrameReader,
    encode_into,
)
from firmware.hmac_sha256 import HmacSha256
from firmware.prescription import MAX_BOLUS_MINUTES, MAX_BOLUS_NG
from firmware.units import MS_PER_DAY
from hal.channel import (
    CMD_BOLUS,
    CMD_CANCEL_BOLUS,
    CMD_PRIME,
    CMD_PROGRAM,
    CMD_REFILL,
    CMD_RESUME,
    CMD_SET_CLOCK,
    CMD_SILENCE,
    CMD_SUSPEND,
)
from micropython import const

# Commands (a request's command byte; the reply's is command | REPLY)
STATUS = const(1)
PTM = const(2)
LOG = const(3)
PROGRAM = const(4)
BOLUS = const(5)
CANCEL_BOLUS = const(6)
REFILL = const(7)
PRIME = const(8)
SET_CLOCK = const(9)
SILENCE = const(10)
SUSPEND = const(11)
RESUME = const(12)
ALARM_OPTIONS = const(13)
PRESCRIPTION = const(14)
REPLY = const(0x80)
COMMAND_NAMES = ("", "status", "ptm", "log", "program", "bolus", "cancel_bolus", "refill", "prime", "set_clock",
                 "silence", "suspend", "resume", "alarm_options", "prescription")

# Results (a reply's ints[0]); 2..8 are firmware/frame.py's codes
OK = const(0)
BAD_MAC = const(9)
REPLAY = const(20)
OUT_OF_WINDOW = const(21)
COUNTER_EXHAUSTED = const(22)
ROLE_NOT_ALLOWED = const(23)
OUT_OF_RANGE = const(24)
INVALID_STATE = const(25)
LOCKED_OUT = const(26)
CONFIRM_NEEDED = const(27)
UNKNOWN_COMMAND = const(28)
BAD_LENGTH = const(29)
PTM_REFUSED = const(30)
NOT_PROVISIONED = const(31)
RESULT_NAMES = {0: "ok", 2: "bad_frame", 3: "too_long", 4: "truncated", 5: "bad_version", 6: "bad_role",
                7: "bad_counter", 8: "bad_int", 9: "bad_mac", 20: "replay", 21: "out_of_window",
                22: "counter_exhausted", 23: "role_not_allowed", 24: "out_of_range", 25: "invalid_state",
                26: "locked_out", 27: "confirm_needed", 28: "unknown_command", 29: "bad_length", 30: "ptm_refused",
                31: "not_provisioned"}

KEY_LEN = const(32)
KEY_INTS = const(32)  # both keys as 16-bit halves: clinician's 16, then the patient's 16 (journal, snapshot)
WINDOW = const(65_536)  # a counter may skip at most this many past the last accepted
LOCK_FAILURES = const(5)  # MAC failures ...
LOCK_WINDOW_MS = const(600_000)  # ... within 10 minutes ...
LOCK_MS = const(600_000)  # ... lock the link for 10 minutes (delivery is untouched)
# Refusals the pump cannot authenticate (framing, bad MAC, locked out, not provisioned) are logged
# at most once a minute, with the number of them since the one logged before: a flood of garbage
# must not wear out the event log's flash (each event is a journal record).
PLAIN_LOG_MS = const(60_000)
# Soft limits (docs/link.md "Commands"): beyond them a command needs its confirm flag set.
SOFT_RAISE_PERCENT = const(20)  # PROGRAM raising the max basal mcg/day by more than 20 % over the one in force
SOFT_BOLUS_NG = const(50_000)  # BOLUS above 50 mcg
LOG_MAX = const(40)  # events a LOG reply carries at most (2 + 6 x 40 ints)
_CHUNK = const(128)  # bytes read from the port at a time
_READS = const(16)  # reads per wake at most (2 KB: a flood of bytes never keeps the loop from its work)
_N = const(15)  # request lengths by command (-1: PROGRAM's is the prescription's)
_LENGTHS = (-1, 0, 0, 2, -1, 3, 0, 2, 1, 2, 0, 0, 0, 1, 0)
_CMD = (-1, -1, -1, -1, CMD_PROGRAM, CMD_BOLUS, CMD_CANCEL_BOLUS, CMD_REFILL, CMD_PRIME, CMD_SET_CLOCK, CMD_SILENCE,
        CMD_SUSPEND, CMD_RESUME, -1, -1)


class Link:
    """The link of `loop` (a PumpLoop) on `port` (hal/interfaces.py LinkPort). Replay counters,
    lockout and keys are persisted by firmware/state.py (snapshots) and firmware/persist.py (a
    COUNTER record before a command takes effect, a KEYS record at provisioning)."""

    def __init__(self, loop, port):
        self._loop = loop
        self._port = port
        self.reader = FrameReader()
        self._in = bytearray(_CHUNK)
        self._in_n = 0
        self._in_at = 0
        self._out = bytearray(MAX_ENCODED)
        self._reply = [0] * MAX_INTS
        self._ev = [0] * 5
        self.keys = bytearray(2 * KEY_LEN)  # clinician's, then the patient's
        self.provisioned = False
        self._macs: list = [None, None, None]  # by role: HmacSha256 once keyed
        self.last = [-1, -1, -1]  # by role: the last counter accepted (-1: none yet)
        self.fail_t = [0] * LOCK_FAILURES  # ticks of the last MAC failures, a ring
        self.fail_n = 0  # failures in the ring (the newest at fail_i - 1)
        self.fail_i = 0
        self.locked = False
        self.plain_logged = False  # an unauthenticated refusal was logged at plain_t ...
        self.plain_t = 0
        self.plain_n = 0  # ... and this many more came since (logged when the minute is over)
        self.plain_last = 0  # the last of them
        self.lock_t = 0  # tick the lockout started
        # the request being served (attributes keep call frames small: GUIDE.md §2)
        self._role = 0
        self._cmd = 0
        self._counter = 0
        self._field = 0
        self._n = 2  # reply ints
        self._now = 0
        self._served = False
        self._reads = 0
        self._o_role = 0  # the reply being sent
        self._o_counter = 0
        self._o_n = 0
        self._o_mac = None
        self.write_failures = 0  # replies the port refused to send

    # -- keys --------------------------------------------------------------------------------------

    def provision(self, clinician_key, patient_key):
        """Sets the device keys once (32 bytes each) and journals them; never a link command."""
        if self.provisioned:
            raise ValueError("link: keys already provisioned")
        if len(clinician_key) != KEY_LEN or len(patient_key) != KEY_LEN:
            raise ValueError("link: keys must be 32 bytes each")
        if clinician_key == patient_key:
            raise ValueError("link: the clinician and patient keys must differ")
        self.keys[0:KEY_LEN] = clinician_key
        self.keys[KEY_LEN:] = patient_key
        self._keyed()
        persist = self._loop.persist
        if persist is not None:
            persist.link_keys(self)
            persist.changed = True  # and in every snapshot from now on

    def _keyed(self):
        self.provisioned = True
        self._macs[CLINICIAN] = HmacSha256(bytes(self.keys[0:KEY_LEN]))
        self._macs[PATIENT] = HmacSha256(bytes(self.keys[KEY_LEN:]))

    def key_ints(self, out, at):
        """Both keys as KEY_INTS 16-bit ints into out[at:] (all 0 without keys)."""
        k = self.keys
        for i in range(KEY_INTS):
            out[at + i] = k[2 * i] | (k[2 * i + 1] << 8)

    def set_key_ints(self, values, at):
        """The keys from key_ints' layout (a snapshot or a KEYS record at boot)."""
        k = self.keys
        for i in range(KEY_INTS):
            k[2 * i] = values[at + i] & 0xFF
            k[2 * i + 1] = values[at + i] >> 8
        self._keyed()

    # -- the loop's side ---------------------------------------------------------------------------

    def service(self, now):
        """Reads what the port holds (at most _READS chunks) and answers every frame that ends;
        returns True if a frame was served."""
        # Small call frames on the whole receive path (state in attributes): a MicroPython frame of
        # more than about 11 words comes from the heap at every call (GUIDE.md §2).
        if self.locked or self.fail_n:
            self._expire(now)
        if self.plain_logged and self._loop._clock.ticks_diff(now, self.plain_t) >= PLAIN_LOG_MS:
            self._plain_summary()
        self._now = now
        self._served = False
        self._reads = 0
        while self._more():
            code = self.reader.feed_buffer(self._in, self._in_n, self._in_at)
            self._in_at = self.reader.next
            if code:
                self._served = True
                self._frame(code)
        return self._served

    def _more(self):
        if self._in_at < self._in_n:
            return True
        if self._reads >= _READS or not self._port.any():
            return False
        self._reads += 1
        n = self._port.readinto(self._in, _CHUNK)
        self._in_n = n if n > 0 else 0
        self._in_at = 0
        return self._in_n > 0

    def pending(self):
        return self._in_at < self._in_n

    def _expire(self, now):
        # At every wake (at least every 6 h), so no tick here is older than ticks_diff can tell.
        clock = self._loop._clock
        if self.locked and clock.ticks_diff(now, self.lock_t) >= LOCK_MS:
            self.locked = False
            self._loop.emit_event(EV_LINK_UNLOCKED, 0, 0, 0)
        if self.fail_n and clock.ticks_diff(now, self.fail_t[(self.fail_i - 1) % LOCK_FAILURES]) >= LOCK_WINDOW_MS:
            self.fail_n = 0

    def ms_to_next(self, now):
        """ms to the lockout's end or the held-back refusals' summary, whichever is first; -1: none."""
        t = self.lock_left_ms(now) if self.locked else -1
        if self.plain_n:
            a = PLAIN_LOG_MS - self._loop._clock.ticks_diff(now, self.plain_t)
            a = a if a > 0 else 0
            if t < 0 or a < t:
                t = a
        return t

    def lock_left_ms(self, now):
        if not self.locked:
            return 0
        t = LOCK_MS - self._loop._clock.ticks_diff(now, self.lock_t)
        return t if t > 0 else 0

    # -- a frame -----------------------------------------------------------------------------------

    def _frame(self, code):
        self._role = 0
        self._cmd = 0
        self._field = 0
        if code != FRAME_OK:
            self._refuse_plain(code, -1)
            return
        r = self.reader
        self._role = r.role
        self._cmd = r.command
        if not self.provisioned:
            self._refuse_plain(NOT_PROVISIONED, -1)
        elif self.locked:
            self._refuse_plain(LOCKED_OUT, self.lock_left_ms(self._now))
        elif not r.mac_ok(self._macs[r.role]):
            self._mac_failed(self._now)
            self._refuse_plain(BAD_MAC, -1)
        else:
            self._authentic()

    def _authentic(self):
        r = self.reader
        self._counter = r.counter
        last = self.last[r.role]
        if r.counter <= last:
            self._put(0, last)
            self._answer(REPLAY)
            return
        if r.counter > last + WINDOW:
            self._answer(OUT_OF_WINDOW)
            return
        if r.counter >= COUNTER_MAX:
            self._answer(COUNTER_EXHAUSTED)
            return
        self.last[r.role] = r.counter
        persist = self._loop.persist
        if persist is not None:
            persist.link_counter(r.role, r.counter)  # durable before anything takes effect
        result = self._command()
        if result == OK:
            self._loop.gauge.command()  # its charge (a refused command changes nothing but the counter)
        self._answer(result)

    def _mac_failed(self, now):
        self.fail_t[self.fail_i] = now
        self.fail_i = (self.fail_i + 1) % LOCK_FAILURES
        if self.fail_n < LOCK_FAILURES:
            self.fail_n += 1
        # the oldest of the last five is the one about to be overwritten
        if self.fail_n == LOCK_FAILURES and self._loop._clock.ticks_diff(now, self.fail_t[self.fail_i]) < LOCK_WINDOW_MS:
            self.locked = True
            self.lock_t = now
            self.fail_n = 0
            self._loop.emit_event(EV_LINK_LOCKED, LOCK_FAILURES, LOCK_MS // 60_000, 0)

    def _put(self, i, x):
        """Reply data int i (after result and field)."""
        self._reply[2 + i] = x
        if self._n < 3 + i:
            self._n = 3 + i

    def _refuse_plain(self, result, data):
        """The unauthenticated reply: role 0, counter 0, a MAC of zeros; data -1 for none."""
        rep = self._reply
        rep[0] = result
        rep[1] = 0
        self._o_n = 2
        if data >= 0:
            rep[2] = data
            self._o_n = 3
        self._o_role = 0
        self._o_counter = 0
        self._o_mac = None
        self._log_plain(result)
        self._send()

    def _plain_summary(self):
        # the minute is over: the refusals it held back, counted in one event (a: 0, b: the last)
        self.plain_logged = False
        if self.plain_n:
            self._loop.emit_event(EV_COMMAND_REFUSED, 0, self.plain_last, self.plain_n)
            self.plain_n = 0

    def _log_plain(self, result):
        if self.plain_logged and self._loop._clock.ticks_diff(self._now, self.plain_t) < PLAIN_LOG_MS:
            self.plain_n += 1
            self.plain_last = result
            return
        self.plain_logged = True
        self.plain_t = self._now
        self._logged(EV_COMMAND_REFUSED, result, 0)

    def _answer(self, result):
        """The authenticated reply to the request being served (its role, counter and key)."""
        rep = self._reply
        rep[0] = result
        rep[1] = self._field if result else 0
        if result == OK:
            self._logged(EV_COMMAND_ACCEPTED, OK, self._counter)
        else:
            self._logged(EV_COMMAND_REFUSED, result, self._field)
        self._o_n = self._n if self._n > 2 else 2
        self._n = 2
        self._o_role = self._role
        self._o_counter = self._counter
        self._o_mac = self._macs[self._role]
        self._send()

    def _logged(self, code, b, c):
        self._loop.emit_event(code, self._role * 256 + self._cmd, b, c)

    def _send(self):
        n = encode_into(self._out, self._o_role, self._o_counter, REPLY | self._cmd, self._reply, self._o_n,
                        self._o_mac)
        self._o_mac = None
        if self._port is not None:
            self._write(n)

    def _write(self, n):
        # its own small frame: a try block in _send would push that frame past the words MicroPython
        # keeps on the C stack, and every reply would allocate one
        try:
            self._port.write(self._out, n)
        except OSError:  # a port that takes no bytes (hal/machine_link.py UartLink): the reply is lost, delivery goes on
            self.write_failures += 1

    # -- commands ----------------------------------------------------------------------------------

    def _command(self):
        r = self.reader
        cmd = r.command
        self._n = 2
        if not 1 <= cmd < _N:
            return UNKNOWN_COMMAND
        if r.role == PATIENT and cmd != STATUS and cmd != PTM:
            return ROLE_NOT_ALLOWED
        if r.role == CLINICIAN and cmd == PTM:
            return ROLE_NOT_ALLOWED
        if _LENGTHS[cmd] >= 0 and r.n != _LENGTHS[cmd]:
            return BAD_LENGTH
        if cmd == STATUS:
            return self._status()
        if cmd == PTM:
            return self._ptm()
        if cmd == LOG:
            return self._log()
        if cmd == PRESCRIPTION:
            # the prescription in force as PROGRAM takes it (after its confirm flag): at most
            # state._RX_INTS (220) ints, so result, field and data fit MAX_INTS
            self._n = state.pack_rx(self._loop.ctl.rx, self._reply, 2)
            return OK
        if cmd == PROGRAM:
            return self._program()
        if cmd == ALARM_OPTIONS:
            return self._alarm_options()
        return self._programmer(cmd)

    def _range(self, i, lo, hi):
        """Whether request int i is in lo..hi; if not, it becomes the field at fault."""
        x = self.reader.values[i]
        if lo <= x <= hi:
            return True
        self._field = i
        return False

    def _programmer(self, cmd):
        # Fields against the limits scenarios use (firmware/config.py), then the loop's dispatch.
        v = self.reader.values
        ctl = self._loop.ctl
        if cmd == BOLUS:
            if not (self._range(0, 0, 1) and self._range(1, 1, MAX_BOLUS_NG) and self._range(2, 1, MAX_BOLUS_MINUTES)):
                return OUT_OF_RANGE
            if v[1] > SOFT_BOLUS_NG and not v[0]:
                self._field = 0
                return CONFIRM_NEEDED
            return self._dispatch((CMD_BOLUS, v[1], v[2]))
        if cmd == REFILL:
            if not (self._range(0, 1, ctl.pump.capacity_nl) and self._range(1, 10, 5000)):
                return OUT_OF_RANGE
            result = self._dispatch((CMD_REFILL, v[0], v[1]))
            if result == OK:
                self._put(0, self._loop.low_reservoir_min)
                self._put(1, self._loop.empty_min)
            return result
        if cmd == PRIME:
            if not self._range(0, 0, ctl.pump.catheter_cm):
                return OUT_OF_RANGE
            return self._dispatch((CMD_PRIME, v[0]))
        if cmd == SET_CLOCK:
            if not (self._range(0, 0, 6) and self._range(1, 0, MS_PER_DAY - 1)):
                return OUT_OF_RANGE
            return self._dispatch((CMD_SET_CLOCK, v[0], v[1]))
        return self._dispatch((_CMD[cmd],))

    def _dispatch(self, command):
        """Through PumpLoop._command (the programmer's own path): OK, or INVALID_STATE with the
        firmware's reason as data."""
        try:
            reason = self._loop._command(command)
        except ValueError:  # a field the checks above let through: the firmware refused it unchanged
            self._field = 0
            return OUT_OF_RANGE
        if reason == OK:
            if command[0] == CMD_BOLUS:
                self._put(0, self._loop.ctl._granted_ng)
            return OK
        self._put(0, reason)
        return INVALID_STATE

    def _ptm(self):
        # What the patient's button does (PumpLoop._inputs).
        reason = self._loop.ctl.request_ptm()
        if reason == OK:
            self._put(0, self._loop.ctl._granted_ng)
            loop = self._loop
            if loop.ctl.started != loop._started:  # the low-reservoir date moved
                loop._started = loop.ctl.started
                loop._project()
            return OK
        self._put(0, reason)
        return PTM_REFUSED

    def _alarm_options(self):
        if not self._range(0, 1, 60):
            return OUT_OF_RANGE
        self._loop.set_critical_repeat(self.reader.values[0])
        return OK

    def _status(self):
        loop = self._loop
        ctl = loop.ctl
        self._put(0, loop.state())
        self._put(1, ctl.reservoir.volume_nl)
        self._put(2, ctl.conc)
        self._put(3, ctl.rate)
        self._put(4, loop.alarms.active)
        self._put(5, loop.low_reservoir_min)
        self._put(6, loop.empty_min)
        self._put(7, loop.eri_days)
        self._put(8, loop.eos_days)
        self._put(9, loop.gauge.mv if loop.gauge.mv else -1)
        self._put(10, ctl.weekday())
        self._put(11, ctl.ms)
        self._put(12, loop.log.count)
        self._put(13, ctl.held)
        self._put(14, self.last[PATIENT])
        self._put(15, self.last[CLINICIAN])
        return OK

    def _log(self):
        """Events from sequence number `since` (0: the first ever logged; older than the oldest
        kept: from the oldest kept), at most `max`: [next_since, count, count x (seq, t_s, code, a, b, c)]."""
        if not (self._range(0, 0, COUNTER_MAX) and self._range(1, 1, LOG_MAX)):
            return OUT_OF_RANGE
        log = self._loop.log
        total = log.count
        seq = total - len(log)  # the oldest kept
        since = self.reader.values[0]
        if since > seq:
            seq = since if since < total else total
        k = 0
        most = self.reader.values[1]
        ev = self._ev
        while k < most and seq < total:
            log.get(total - 1 - seq, ev)
            at = 2 + 6 * k
            self._put(at, seq)
            for j in range(5):
                self._put(at + 1 + j, ev[j])
            seq += 1
            k += 1
        self._put(0, seq)
        self._put(1, k)
        return OK

    def _program(self):
        # Decoded and validated by firmware/state.py's own restore code (the layout _pack_rx writes),
        # applied through the loop's CMD_PROGRAM: whole or not at all.
        r = self.reader
        if r.n < 2:
            return BAD_LENGTH
        if not self._range(0, 0, 1):
            return OUT_OF_RANGE
        ctl = self._loop.ctl
        rx, at = state.parse_rx(r.values, 1, r.n, ctl.pump, ctl.rx.drug)
        if rx is None or at != r.n:
            self._field = at
            return BAD_LENGTH if at >= r.n or rx is not None else OUT_OF_RANGE
        if rx.concentration != ctl.conc:
            self._field = 1  # the drug in the reservoir decides it (a refill changes it)
            return OUT_OF_RANGE
        old = ctl.rx.max_basal_ng_per_day
        # more than 20 %: for an integer raise, d > old / 5 exactly when d > old // 5 (no product leaves the small ints)
        if rx.max_basal_ng_per_day - old > old // (100 // SOFT_RAISE_PERCENT) and not r.values[0]:
            self._field = 0
            return CONFIRM_NEEDED
        return self._dispatch((CMD_PROGRAM, rx))

