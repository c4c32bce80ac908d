"""pumpctl: the clinician's programmer and the patient's handset on a desktop (issue 15 §3).

One URL for a board and the simulator (pyserial's serial_for_url): /dev/ttyACM0, or
socket://127.0.0.1:7001 for `pumpsim serve`. Every request is a frame of firmware/frame.py, MAC'd
with the role's key; every reply must carry the request's role and counter and the command | 0x80,
under a right MAC with the same key, or it is not believed (docs/link.md; the command layer is the
contract of issue 15).

Keys come from a key file (--key-file or $PUMPCTL_KEY_FILE; never the command line): JSON with
"clinician" and/or "patient", 32 bytes each in hex, readable by the user only.

Counters: kept in a state file beside the key file (<key file>.state, 0600, locked while a command
runs), the counter reserved and written there before its frame is sent, so no counter is ever sent
twice. A pump whose last accepted counter is ahead (state lost, another host) answers REPLAY with it,
authenticated: pumpctl moves past it and sends the command once more with a fresh counter. A REPLAY
naming the counter just sent means the pump had already accepted that very frame: pumpctl stops
there (the command may have taken effect) rather than send it twice.

Exit status, one per class of failure (one line on stderr; with --json a JSON object on stdout too):
"""

import argparse
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import stat
import struct
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

# -- the contract: the firmware's own names (firmware/frame.py, firmware/link.py) ---------------------
from firmware.frame import (
    CLINICIAN,
    COUNTER_MAX,  # the pump answers COUNTER_EXHAUSTED to it: the last usable is one less
    MAX_INTS,
    PATIENT,
    VERSION,
)
from firmware.hmac_sha256 import MAC_LEN
from firmware.link import (
    ALARM_OPTIONS,
    BAD_MAC,
    BOLUS,
    CANCEL_BOLUS,
    CONFIRM_NEEDED,
    COUNTER_EXHAUSTED,
    LOCKED_OUT,
    LOG,
    NOT_PROVISIONED,
    OK,
    OUT_OF_RANGE,
    OUT_OF_WINDOW,
    PRESCRIPTION,
    PRIME,
    PROGRAM,
    PTM,
    PTM_REFUSED,
    REFILL,
    REPLAY,
    REPLY,
    RESUME,
    ROLE_NOT_ALLOWED,
    SET_CLOCK,
    SILENCE,
    STATUS,
    SUSPEND,
)
from firmware.link import (
    KEY_LEN as KEY_BYTES,
)
from firmware.link import RESULT_NAMES as _NAMES

ROLE_NAMES = {PATIENT: "patient", CLINICIAN: "clinician"}
RESULT_NAMES = {code: name.upper() for code, name in _NAMES.items()}
_HEADER = struct.Struct("<BBIBH")  # version, role, counter, command, n
STATUS_FIELDS = ("state", "volume_nl", "concentration_mcg_ml", "rate_ng_per_day", "alarm_bits", "low_reservoir_min",
                 "empty_min", "eri_days", "eos_days", "battery_mv", "weekday", "ms_of_day", "events_logged_total",
                 "held_bits", "patient_counter", "clinician_counter")
LOG_PAGE = 40  # the most events one LOG reply carries
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MS = 86_400_000

# Exit status: one per class of failure.
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2  # bad arguments or a bad prescription file: nothing sent
EXIT_KEY = 3  # the key file: missing, unreadable, readable by others, malformed, or no key for the role
EXIT_CONNECT = 4  # the URL cannot be opened, or the connection failed
EXIT_NO_REPLY = 5  # no reply in time (a therapy command may have taken effect: check status and log)
EXIT_BAD_REPLY = 6  # a reply not believed: forged, unauthenticated, not bound to the request, malformed
EXIT_REFUSED = 7  # the pump refused the command: out of range, invalid state, PTM refused, ...
EXIT_CONFIRM = 8  # a soft limit: the pump asks for --confirm-increase
EXIT_DENIED = 9  # the link refused the frame: bad MAC, lockout, replay, window, role, not provisioned
EXIT_DECLINED = 10  # the user answered no

_LINK_DENIALS = (BAD_MAC, REPLAY, OUT_OF_WINDOW, COUNTER_EXHAUSTED, ROLE_NOT_ALLOWED, LOCKED_OUT, NOT_PROVISIONED)

__doc__ += "".join(f"  {v:2d} {k[5:].lower()}\n" for k, v in list(globals().items()) if k.startswith("EXIT_"))


class Failure(Exception):
    def __init__(self, exit_code, message, **details):
        super().__init__(message)
        self.exit_code = exit_code
        self.details = details


# -- frames ---------------------------------------------------------------------------------------------


def mac_of(key, raw):
    return hmac.new(key, raw, hashlib.sha256).digest()[:MAC_LEN]


def cobs_encode(raw):
    out = bytearray([0, 0])  # a leading delimiter: whatever the receiver holds ends there
    code_at = 1
    for b in raw:
        if b:
            out.append(b)
            if len(out) - code_at == 255:
                out[code_at] = 255
                code_at = len(out)
                out.append(0)
        else:
            out[code_at] = len(out) - code_at
            code_at = len(out)
            out.append(0)
    out[code_at] = len(out) - code_at
    out.append(0)
    return bytes(out)


def cobs_decode(data):
    """The bytes COBS-encoded in data (no 0x00 in it), or None if it is not valid COBS."""
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0 or i + code > len(data):
            return None
        out += data[i + 1:i + code]
        i += code
        if code < 255 and i < len(data):
            out.append(0)
    return bytes(out)


def encode_request(key, role, counter, command, ints):
    raw = _HEADER.pack(VERSION, role, counter, command, len(ints)) + struct.pack(f"<{len(ints)}i", *ints)
    return cobs_encode(raw + mac_of(key, raw))


def parse_raw(raw):
    """(role, counter, command, ints, mac) of a decoded frame, or None if it is not one."""
    if raw is None or len(raw) < _HEADER.size + MAC_LEN:
        return None
    version, role, counter, command, n = _HEADER.unpack_from(raw)
    if version != VERSION or len(raw) != _HEADER.size + 4 * n + MAC_LEN:
        return None
    return role, counter, command, list(struct.unpack_from(f"<{n}i", raw, _HEADER.size)), raw[-MAC_LEN:]


class Reply:
    def __init__(self, result, field, data):
        self.result = result
        self.field = field
        self.data = data

    @property
    def name(self):
        return RESULT_NAMES.get(self.result, f"result_{self.result}")


# The link's refusals before the MAC can be checked or trusted (firmware/link.py): answered without
# a MAC, so a client cannot tell them from a forgery, but they say why nothing happened.
_DENIED_PLAIN = (BAD_MAC, LOCKED_OUT, NOT_PROVISIONED)


def check_reply(raw, key, role, counter, command):
    """What a frame read back says about the request (role, counter, command):
    ("ok", Reply) authenticated and bound to it; ("unauthenticated", Reply) the pump's MAC-less
    answer to a frame that failed its framing; ("forged", reason) anything else."""
    f = parse_raw(raw)
    if f is None:
        return "forged", "not a frame"
    r_role, r_counter, r_command, ints, mac = f
    # (command: 0x80 after a framing failure, the request's | 0x80 once its header was read)
    if r_role == 0 and r_counter == 0 and r_command in (REPLY, command | REPLY) and mac == bytes(MAC_LEN) \
            and 2 <= len(ints) <= 3:
        return "unauthenticated", Reply(ints[0], ints[1], ints[2:])  # (LOCKED_OUT: the ms left)
    if r_role != role or r_counter != counter or r_command != command | REPLY:
        return "forged", f"not a reply to this request (role {r_role}, counter {r_counter}, command {r_command})"
    if not hmac.compare_digest(mac, mac_of(key, raw[:-MAC_LEN])):
        return "forged", "its MAC is wrong"
    if len(ints) < 2:
        return "forged", "no result in it"
    return "ok", Reply(ints[0], ints[1], ints[2:])


# -- keys and counters ----------------------------------------------------------------------------------


def load_keys(path):
    if not path:
        raise Failure(EXIT_KEY, "no key file: give --key-file or set PUMPCTL_KEY_FILE")
    try:
        st = os.stat(path)
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise Failure(EXIT_KEY, f"{path}: readable by others (mode {stat.S_IMODE(st.st_mode):o}): chmod 600 it")
        data = json.loads(Path(path).read_text(encoding="ascii"))
    except OSError as e:
        raise Failure(EXIT_KEY, f"{path}: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError):
        raise Failure(EXIT_KEY, f"{path}: not a key file (JSON with clinician and patient keys in hex)") from None
    keys = {}
    if not isinstance(data, dict):
        raise Failure(EXIT_KEY, f"{path}: not a key file (JSON with clinician and patient keys in hex)")
    for role, name in ROLE_NAMES.items():
        if name in data:
            try:
                key = binascii.unhexlify(data[name])
            except (TypeError, ValueError, binascii.Error):
                key = b""
            if len(key) != KEY_BYTES:
                raise Failure(EXIT_KEY, f"{path}: the {name} key must be {KEY_BYTES} bytes in hex")
            keys[role] = key
    if not keys:
        raise Failure(EXIT_KEY, f"{path}: no clinician or patient key in it")
    return keys


class Counters:
    """The last counter sent per role, in <key file>.state (locked while open). A new key file (other
    keys) starts the counters again."""

    def __init__(self, key_path, keys):
        import fcntl

        self.path = Path(str(key_path) + ".state")
        self._key_id = hashlib.sha256(b"".join(keys[r] for r in sorted(keys))).hexdigest()[:16]
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise Failure(EXIT_KEY, f"{self.path}: {e.strerror or e}") from None
        self._f = os.fdopen(fd, "r+")
        fcntl.flock(self._f, fcntl.LOCK_EX)  # one pumpctl at a time per key file
        try:
            data = json.loads(self._f.read() or "{}")
        except ValueError:
            data = {}
        if not isinstance(data, dict) or data.get("key_id") != self._key_id:
            data = {}
        self.data = data

    def last(self, role):
        v = self.data.get(ROLE_NAMES[role], 0)
        return v if isinstance(v, int) and 0 <= v <= COUNTER_MAX else 0

    def set_last(self, role, counter):
        self.data[ROLE_NAMES[role]] = counter
        self.save()

    def save(self):
        self.data["key_id"] = self._key_id
        self._f.seek(0)
        self._f.truncate()
        self._f.write(json.dumps(self.data))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self):
        self._f.close()  # and the lock with it


# -- the link -------------------------------------------------------------------------------------------


_GRACE_S = 1.0  # after an unauthenticated framing refusal, how long the request's own reply may still take


class Link:
    """Request and reply over a pyserial port."""

    def __init__(self, port, keys, counters, timeout_s=3.0):
        self.port = port
        self.keys = keys
        self.counters = counters
        self.timeout_s = timeout_s
        self.exchanges = 0

    def request(self, role, command, ints):
        if role not in self.keys:
            raise Failure(EXIT_KEY, f"the key file has no {ROLE_NAMES[role]} key")
        counter = self._next_counter(role)
        reply = self._exchange(role, counter, command, ints)
        if reply.result == REPLAY and reply.data:
            last = reply.data[0]
            if last == counter:
                raise Failure(EXIT_BAD_REPLY, f"the pump had already accepted counter {counter}: this command may "
                              "have taken effect (a copy of the frame came first): check status and log")
            if counter < last < COUNTER_MAX:  # our counters were behind the pump's: move past and send again
                self.counters.set_last(role, last)
                reply = self._exchange(role, self._next_counter(role), command, ints)
        return reply

    def _next_counter(self, role):
        counter = self.counters.last(role) + 1
        if counter >= COUNTER_MAX:
            raise Failure(EXIT_DENIED, f"the {ROLE_NAMES[role]} counter is exhausted: the pump needs new keys")
        self.counters.set_last(role, counter)  # written before the frame goes: never sent twice
        return counter

    def _exchange(self, role, counter, command, ints):
        key = self.keys[role]
        frame = encode_request(key, role, counter, command, ints)
        self.exchanges += 1
        try:
            self.port.reset_input_buffer()  # whatever came before is no reply to this
            self.port.write(frame)
            self.port.flush()
        except Exception as e:  # serial.SerialException, OSError
            raise Failure(EXIT_CONNECT, f"cannot send: {e}") from None
        forged = None
        garbled = None
        pending = bytearray()
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            try:
                chunk = self.port.read(max(1, self.port.in_waiting))
            except Exception as e:
                raise Failure(EXIT_CONNECT, f"connection lost: {e}") from None
            for b in chunk:
                if b:
                    pending.append(b)
                    continue
                if not pending:
                    continue
                verdict, what = check_reply(cobs_decode(bytes(pending)), key, role, counter, command)
                pending.clear()
                if verdict == "ok":
                    return what
                if verdict == "unauthenticated" and what.result in _DENIED_PLAIN:
                    left = f", {what.data[0] // 1000} s left" if what.data else ""
                    raise Failure(EXIT_DENIED, f"the link refused the request: {what.name}{left} (an "
                                  "unauthenticated reply: the pump could not answer under the key)",
                                  result=what.name)
                if verdict == "unauthenticated":
                    # Perhaps bytes the pump held before this request (a line cut short, a program
                    # that had the port): they end at the request's leading delimiter as a rejected
                    # block, and the request's own reply comes next. Wait a little for it.
                    garbled = what
                    deadline = min(deadline, time.monotonic() + _GRACE_S)
                    continue
                forged = what
        if garbled is not None:
            raise Failure(EXIT_BAD_REPLY, f"the pump did not read the request ({garbled.name}, an unauthenticated "
                          "reply): the link garbles frames", result=garbled.name)
        if forged is not None:
            raise Failure(EXIT_BAD_REPLY, f"forged or garbled reply ({forged}) and no authentic one")
        raise Failure(EXIT_NO_REPLY, f"no reply in {self.timeout_s:g} s (a therapy command may have taken effect: "
                      "check status and log)")


def open_port(url, timeout_s=0.05):
    import serial

    try:
        return serial.serial_for_url(url, baudrate=115200, timeout=timeout_s, write_timeout=2)
    except (serial.SerialException, ValueError, OSError) as e:
        raise Failure(EXIT_CONNECT, f"{url}: {e}") from None


# -- values ---------------------------------------------------------------------------------------------


def scaled(text, decimals, what):
    """A decimal number as an integer count of 10**-decimals (mcg -> ng, mL -> nL), exactly."""
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise Failure(EXIT_USAGE, f"{what}: {text!r} is not a number") from None
    if not d.is_finite() or d.as_tuple().exponent < -decimals:
        raise Failure(EXIT_USAGE, f"{what}: {text} has more than {decimals} decimals")
    v = int(d.scaleb(decimals))
    if not -2**30 <= v < 2**30:
        raise Failure(EXIT_USAGE, f"{what}: {text} is out of range")
    return v


def pack_prescription(rx):
    """The request ints of a Prescription, as firmware/state.py packs one (pack_rx)."""
    from firmware import state

    values = [0] * MAX_INTS
    return values[:state.pack_rx(rx, values, 0)]


def unpack_prescription(ints):
    """pack_prescription's inverse (a PRESCRIPTION reply's data): the Prescription, read by the
    firmware's own reader (state.parse_rx, without the checks against the pump's parameters, which
    pumpctl does not know), or None if the ints are not one. It has no drug name: the pump holds none."""
    from firmware import state

    rx, at = state.parse_rx(ints, 0, len(ints), None, None)
    return rx if rx is not None and at == len(ints) else None


def time_text(ms):
    """A time of day: HH:MM, with :SS (and .mmm) only where it has them."""
    s, milli = divmod(ms, 1000)
    text = f"{s // 3600:02d}:{s // 60 % 60:02d}"
    if s % 60 or milli:
        text += f":{s % 60:02d}" + (f".{milli:03d}" if milli else "")
    return text


def rx_summary(rx):
    """What a clinician reads and compares: per weekday the basal steps and their mcg/day over 24 h,
    the periodic boluses, the PTM, the limit, and the daily dose (the highest weekday's basal and the
    periodic boluses)."""
    basal, steps = [], []
    for p in rx.profiles:
        starts = list(p.starts_ms) + [DAY_MS]
        ng = sum(p.rates_ng_per_day[j] * (starts[j + 1] - starts[j]) for j in range(len(p.starts_ms)))
        basal.append(ng / DAY_MS / 1000)
        steps.append([{"start": time_text(p.starts_ms[j]), "mcg_per_day": p.rates_ng_per_day[j] / 1000}
                      for j in range(len(p.starts_ms))])
    periodic = sum(b.amount_ng for _, b in rx.periodic) / 1000
    ptm = None if rx.ptm is None else {"mcg": rx.ptm[0].amount_ng / 1000, "minutes": rx.ptm[0].minutes,
                                       "lockout_minutes": rx.ptm[1], "max_per_day": rx.ptm[2]}
    return {"concentration_mcg_ml": rx.concentration, "basal_steps": dict(zip(WEEKDAYS, steps)),
            "basal_mcg_per_day": [round(x, 3) for x in basal], "daily_dose_mcg": round(max(basal) + periodic, 3),
            "periodic_bolus": [{"at": time_text(at), "mcg": b.amount_ng / 1000, "minutes": b.minutes}
                               for at, b in rx.periodic],
            "periodic_mcg_per_day": periodic, "ptm": ptm, "max_daily_mcg": rx.max_daily_ng / 1000}


def rx_text(r):
    """The prescription in force, for status: weekdays with the same basal together."""
    days = {}
    for d, name in enumerate(WEEKDAYS):
        days.setdefault(json.dumps(r["basal_steps"][name]), []).append(d)
    lines = [("prescription", "in force (the pump holds no drug name)"),
             ("concentration", f"{r['concentration_mcg_ml']} mcg/mL")]
    for group in days.values():
        steps = r["basal_steps"][WEEKDAYS[group[0]]]
        when = "every day" if len(group) == 7 else _days_text(group)
        rates = ", ".join(f"{s['start']} {s['mcg_per_day']:g}" for s in steps)
        lines.append(("basal", f"{when}: {rates} mcg/day ({r['basal_mcg_per_day'][group[0]]:g} mcg a day)"))
    periodic = "; ".join(f"{b['at']} {b['mcg']:g} mcg over {b['minutes']} min" for b in r["periodic_bolus"])
    lines += [("periodic bolus", f"{periodic} ({r['periodic_mcg_per_day']:g} mcg a day)" if periodic else "none"),
              ("PTM", _ptm_text(r["ptm"])),
              ("limit", f"{r['max_daily_mcg']:g} mcg in 24 h"),
              ("daily dose", f"{r['daily_dose_mcg']:g} mcg (the highest weekday's basal and the periodic boluses)")]
    return "\n".join(f"{k:<15} {x}" for k, x in lines)


def _days_text(group):
    # consecutive weekdays as a range (mon-fri), others listed
    if len(group) > 2 and group[-1] - group[0] == len(group) - 1:
        return f"{WEEKDAYS[group[0]]}-{WEEKDAYS[group[-1]]}"
    return ",".join(WEEKDAYS[d] for d in group)


def at_date(now, minutes):
    return None if minutes < 0 else (now + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M")


def status_dict(data, now):
    from firmware import alarms as A
    from firmware.loop import STATE_NAMES

    s = dict(zip(STATUS_FIELDS, data))
    st = s.get("state", -1)
    s["state_name"] = STATE_NAMES[st] if 0 <= st < len(STATE_NAMES) else str(st)
    bits = s.get("alarm_bits", 0)
    s["alarms"] = [A.ALARM_NAMES[i] for i in range(A.N_ALARMS) if bits > 0 and bits >> i & 1]
    for k in ("low_reservoir", "empty"):
        s[k + "_at"] = at_date(now, s.get(k + "_min", -1))
    for k in ("eri", "eos"):
        d = s.get(k + "_days", -1)
        s[k + "_at"] = None if d < 0 else (now + dt.timedelta(days=d)).strftime("%Y-%m-%d")
    return s


def _clock_text(weekday, ms):
    if weekday < 0 or ms < 0:
        return "unknown"
    s = ms // 1000
    return f"{WEEKDAYS[weekday % 7]} {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def status_text(s):
    def v(x, scale=1, unit="", fmt="{:g}"):
        return "unknown" if x is None or x < 0 else fmt.format(x / scale) + unit

    lines = [
        ("state", s["state_name"]),
        ("alarms", ", ".join(s["alarms"]) or "none"),
        ("reservoir", v(s.get("volume_nl"), 1e6, " mL", "{:.3f}")),
        ("concentration", v(s.get("concentration_mcg_ml"), 1, " mcg/mL")),
        ("rate now", v(s.get("rate_ng_per_day"), 1000, " mcg/day", "{:.3f}")),
        ("low reservoir", f"{s['low_reservoir_at']} (in {v(s.get('low_reservoir_min'), 1, ' min')})"
         if s["low_reservoir_at"] else "not due"),
        ("empty", f"{s['empty_at']} (in {v(s.get('empty_min'), 1, ' min')})" if s["empty_at"] else "not due"),
        ("ERI", f"{s['eri_at']} (in {s['eri_days']} days)" if s["eri_at"] else "unknown"),
        ("end of service", f"{s['eos_at']} (in {s['eos_days']} days)" if s["eos_at"] else "unknown"),
        ("battery", v(s.get("battery_mv"), 1000, " V", "{:.3f}")),
        ("pump clock", _clock_text(s.get("weekday", -1), s.get("ms_of_day", -1))),
        ("events logged", v(s.get("events_logged_total"))),
        ("held", f"0x{s.get('held_bits', 0):x}"),
        ("counters", f"patient {s.get('patient_counter')}, clinician {s.get('clinician_counter')}"),
    ]
    return "\n".join(f"{k:<15} {x}" for k, x in lines)


# -- commands -------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise Failure(EXIT_USAGE, message)


def parser():
    # allow_abbrev=False: no "--key" taken for --key-file (and echoed in an error line)
    p = _Parser(prog="pumpctl", allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Talk to the pump over its authenticated link (a board's serial port or pumpsim serve).",
                epilog=__doc__[__doc__.index("Exit status"):])
    p.add_argument("--url", default=os.environ.get("PUMPCTL_URL", "socket://127.0.0.1:7001"),
                   help="the pump: /dev/ttyACM0 or socket://127.0.0.1:7001 (default; or $PUMPCTL_URL)")
    p.add_argument("--key-file", help="the link's keys (default $PUMPCTL_KEY_FILE); never a key on the command line")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for each reply (default 3)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    s = sub.add_parser("status", help="state, reservoir, dates, battery, alarms; the prescription (clinician key)")
    s.add_argument("--patient", action="store_true", help="ask with the patient key")
    g = sub.add_parser("log", help="the pump's event log")
    g.add_argument("--since", type=int, default=0, help="from this event number (0: the oldest kept)")
    g = sub.add_parser("program", help="program a prescription ([drug] [basal] [ptm] [limits] periodic_bolus)")
    g.add_argument("prescription", help="TOML file (a scenario's tables)")
    g.add_argument("--yes", action="store_true", help="do not ask")
    g.add_argument("--confirm-increase", action="store_true", help="confirm a dose increase over the soft limit")
    g = sub.add_parser("bolus", help="a clinician bolus")
    g.add_argument("--mcg", required=True)
    g.add_argument("--minutes", type=int, required=True)
    g.add_argument("--confirm-increase", action="store_true", help="confirm a bolus over the soft limit")
    sub.add_parser("cancel", help="cancel the clinician bolus")
    g = sub.add_parser("refill", help="refill the reservoir")
    g.add_argument("--volume-ml", required=True)
    g.add_argument("--concentration", type=int, help="mcg/mL (default: the pump's)")
    g = sub.add_parser("prime", help="prime the path")
    g.add_argument("--catheter-cm", type=int, default=0, help="a new catheter piece (default 0: the whole path)")
    g = sub.add_parser("set-clock", help="set the pump clock")
    g.add_argument("--from-host", action="store_true", help="this computer's local time")
    g.add_argument("when", nargs="*", help="WEEKDAY HH:MM[:SS] (mon..sun)")
    g = sub.add_parser("alarm-options", help="alarm options")
    g.add_argument("--critical-repeat-minutes", type=int, required=True)
    for name, text in (("silence", "silence the non-critical alarms"), ("suspend", "suspend delivery"),
                       ("resume", "resume delivery"), ("ptm", "a patient bolus request (patient key)")):
        sub.add_parser(name, help=text)
    return p


_SIMPLE = {"cancel": CANCEL_BOLUS, "silence": SILENCE, "suspend": SUSPEND, "resume": RESUME}


def _checked(reply, what):
    """The reply's data if OK; else the failure its result names."""
    if reply.result == OK:
        return reply.data
    detail = {"result": reply.name, "field": reply.field, "data": reply.data}
    if reply.result == CONFIRM_NEEDED:
        raise Failure(EXIT_CONFIRM, f"{what}: over the soft limit: the pump asks for confirmation "
                      "(run again with --confirm-increase)", **detail)
    text = f"{what}: refused: {reply.name}"
    if reply.result == OUT_OF_RANGE:
        text += f" (field {reply.field})"
    elif reply.result == LOCKED_OUT and reply.data:
        text += f" ({reply.data[0] // 1000} s left)"
    elif reply.result == PTM_REFUSED and reply.data:
        from firmware.alarms import REASON_NAMES

        code = reply.data[0]
        text += f" ({REASON_NAMES[code] if 0 <= code < len(REASON_NAMES) else code})"
    raise Failure(EXIT_DENIED if reply.result in _LINK_DENIALS else EXIT_REFUSED, text, **detail)


def _status(link, role=CLINICIAN):
    return status_dict(_checked(link.request(role, STATUS, []), "status"), dt.datetime.now())


def _prescription(link):
    """The pump's prescription in force (rx_summary), from its own PRESCRIPTION reply."""
    rx = unpack_prescription(_checked(link.request(CLINICIAN, PRESCRIPTION, []), "prescription"))
    if rx is None:
        raise Failure(EXIT_BAD_REPLY, "prescription: the pump's reply is not a prescription")
    return rx_summary(rx)


def run_command(args, link, out, ask):
    """Runs one command; returns (human text, JSON-able dict)."""
    c = args.command
    if c == "status":
        role = PATIENT if args.patient or CLINICIAN not in link.keys else CLINICIAN
        s = _status(link, role)
        rx = _prescription(link) if role == CLINICIAN else None  # the patient's key cannot read it
        return status_text(s) + ("\n" + rx_text(rx) if rx else ""), {"status": s, "prescription": rx}
    if c == "ptm":
        data = _checked(link.request(PATIENT, PTM, []), "ptm")
        return f"patient bolus granted: {data[0] / 1000:g} mcg", {"granted_ng": data[0]}
    if c == "log":
        return _log(link, args.since)
    if c == "program":
        return _program(args, link, out, ask)
    if c == "bolus":
        ng = scaled(args.mcg, 3, "--mcg")
        data = _checked(link.request(CLINICIAN, BOLUS, [int(args.confirm_increase), ng, args.minutes]), "bolus")
        return f"bolus granted: {data[0] / 1000:g} mcg over {args.minutes} min", {"granted_ng": data[0]}
    if c == "refill":
        nl = scaled(args.volume_ml, 6, "--volume-ml")
        conc = args.concentration
        if conc is None:
            conc = _status(link)["concentration_mcg_ml"]
        data = _checked(link.request(CLINICIAN, REFILL, [nl, conc]), "refill")
        now = dt.datetime.now()
        low, empty = at_date(now, data[0]), at_date(now, data[1])
        return (f"refilled: {nl / 1e6:g} mL at {conc} mcg/mL\nlow reservoir  {low or 'not due'}\n"
                f"empty          {empty or 'not due'}"), {"low_reservoir_min": data[0], "empty_min": data[1],
                                                          "low_reservoir_at": low, "empty_at": empty}
    if c == "prime":
        _checked(link.request(CLINICIAN, PRIME, [args.catheter_cm]), "prime")
        return "priming", {}
    if c == "set-clock":
        weekday, ms = _when(args)
        _checked(link.request(CLINICIAN, SET_CLOCK, [weekday, ms]), "set-clock")
        return f"pump clock set to {_clock_text(weekday, ms)}", {"weekday": weekday, "ms_of_day": ms}
    if c == "alarm-options":
        _checked(link.request(CLINICIAN, ALARM_OPTIONS, [args.critical_repeat_minutes]), "alarm-options")
        return f"critical alarms repeat every {args.critical_repeat_minutes} min", {}
    _checked(link.request(CLINICIAN, _SIMPLE[c], []), c)
    return {"cancel": "bolus cancelled", "silence": "silenced", "suspend": "suspended", "resume": "resumed"}[c], {}


def _when(args):
    if args.from_host:
        if args.when:
            raise Failure(EXIT_USAGE, "set-clock: --from-host or WEEKDAY HH:MM[:SS], not both")
        now = dt.datetime.now()
        return now.weekday(), ((now.hour * 60 + now.minute) * 60 + now.second) * 1000 + now.microsecond // 1000
    if len(args.when) != 2 or args.when[0].lower() not in WEEKDAYS:
        raise Failure(EXIT_USAGE, "set-clock: give --from-host, or WEEKDAY HH:MM[:SS] (mon..sun)")
    parts = args.when[1].split(":")
    try:
        h, m, s = (int(x) for x in parts + ["0"] * (3 - len(parts)))
    except ValueError:
        h = -1
    if len(parts) not in (2, 3) or not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 60):
        raise Failure(EXIT_USAGE, f"set-clock: {args.when[1]!r} is not a time HH:MM[:SS]")
    return WEEKDAYS.index(args.when[0].lower()), ((h * 60 + m) * 60 + s) * 1000


def _log(link, since):
    from firmware.alarms import EVENT_NAMES

    events = []
    while True:
        data = _checked(link.request(CLINICIAN, LOG, [since, LOG_PAGE]), "log")
        nxt, count = data[0], data[1]
        if len(data) != 2 + 6 * count:
            raise Failure(EXIT_BAD_REPLY, "log: the reply's length does not match its count")
        for i in range(count):
            seq, t_s, code, a, b, c = data[2 + 6 * i:8 + 6 * i]
            name = EVENT_NAMES[code] if 0 <= code < len(EVENT_NAMES) else f"event_{code}"
            events.append({"seq": seq, "t_s": t_s, "code": code, "event": name, "a": a, "b": b, "c": c})
        if count < LOG_PAGE or nxt <= since:
            break
        since = nxt
    lines = [f"{e['seq']:>7} day {e['t_s'] // 86400:<4} {e['t_s'] // 3600 % 24:02d}:{e['t_s'] // 60 % 60:02d}:"
             f"{e['t_s'] % 60:02d}  {e['event']:<24} {e['a']} {e['b']} {e['c']}" for e in events]
    return "\n".join(lines) or "no events", {"events": events, "next_since": nxt}


def _program(args, link, out, ask):
    from sim.scenario import ScenarioError, load_prescription

    try:
        rx = load_prescription(args.prescription)
    except ScenarioError as e:
        raise Failure(EXIT_USAGE, str(e)) from None
    ints = pack_prescription(rx)
    new = rx_summary(rx)
    old = _prescription(link)  # the pump's own: whoever programmed it
    table = _side_by_side(old, new)
    if not args.yes:
        out(table)
        if not ask("program this prescription? [y/N] "):
            raise Failure(EXIT_DECLINED, "program: not sent")
    reply = link.request(CLINICIAN, PROGRAM, [int(args.confirm_increase)] + ints)
    if reply.result == OUT_OF_RANGE and 1 <= reply.field <= len(ints):
        _checked(Reply(reply.result, reply.field, reply.data), f"program (prescription int {reply.field - 1})")
    _checked(reply, "program")
    return (table + "\n" if args.yes else "") + "programmed", {"old": old, "new": new, "ints": len(ints) + 1,
                                                             "daily_dose_change_percent": _change_percent(old, new)}


def _side_by_side(old, new):
    """The pump's prescription in force and the new one (rx_summary's), and the daily dose change."""
    rows = [("concentration mcg/mL", old["concentration_mcg_ml"], new["concentration_mcg_ml"])]
    for d in range(7):
        rows.append((f"basal {WEEKDAYS[d]} mcg/day", old["basal_mcg_per_day"][d], new["basal_mcg_per_day"][d]))
    rows += [("periodic mcg/day", old["periodic_mcg_per_day"], new["periodic_mcg_per_day"]),
             ("PTM", _ptm_text(old["ptm"]), _ptm_text(new["ptm"])),
             ("limit mcg/24 h", old["max_daily_mcg"], new["max_daily_mcg"]),
             ("daily dose mcg", old["daily_dose_mcg"], new["daily_dose_mcg"])]
    rows = [(k, a if isinstance(a, str) else f"{a:g}", b if isinstance(b, str) else f"{b:g}") for k, a, b in rows]
    w = max(len("in force"), *(len(a) for _, a, _ in rows)) + 2
    lines = [f"{'':<22} {'in force':<{w}} new"]
    lines += [f"{k:<22} {a:<{w}} {b}" for k, a, b in rows]
    lines.append(f"daily dose change      {_change_percent(old, new):+.1f} %")
    return "\n".join(lines)


def _change_percent(old, new):
    return (new["daily_dose_mcg"] - old["daily_dose_mcg"]) / old["daily_dose_mcg"] * 100  # never / 0: basal > 0


def _ptm_text(p):
    return "none" if not p else (f"{p['mcg']:g} mcg/{p['minutes']} min, lockout {p['lockout_minutes']} min, "
                                 f"{p['max_per_day']}/day")


def _ask(prompt):
    if not sys.stdin.isatty():
        raise Failure(EXIT_USAGE, "program: no terminal to ask on: give --yes")
    try:
        return input(prompt).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def main(argv=None, ask=_ask):
    args = None
    try:
        args = parser().parse_args(argv)
        key_file = args.key_file or os.environ.get("PUMPCTL_KEY_FILE")
        keys = load_keys(key_file)
        counters = Counters(key_file, keys)
        try:
            port = open_port(args.url)
            try:
                link = Link(port, keys, counters, args.timeout)
                text, data = run_command(args, link, print, ask)
            finally:
                port.close()
        finally:
            counters.close()
        if args.json:
            print(json.dumps({"ok": True, "command": args.command, **data}))
        else:
            print(text)
        return EXIT_OK
    except Failure as e:
        print(f"pumpctl: {e}", file=sys.stderr)
        if args is not None and args.json:
            print(json.dumps({"ok": False, "error": str(e), "exit": e.exit_code, **e.details}))
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
