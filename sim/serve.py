"""pumpsim serve: the simulated pump paced against the wall clock, its link on a TCP port (issue 15 §2).

The run is sim/runner.py's Run with a journal (the link's keys and counters live in it) and a
LinkPort (sim/tcp_port.py) handed to the firmware's PumpLoop. The clock moves at --speed simulated
seconds per wall second; it waits for the wall clock before every move and wakes the firmware early
when a client's bytes arrive. The scenario's events and faults still apply at their times.

Ctrl-C (SIGINT or SIGTERM) stops it cleanly: the simulated day in progress runs to its end unpaced
(the referee judges whole days), then the run's summary and outputs are written as `pumpsim run`
writes them. The scenario's end also stops it.
"""

import binascii
import inspect
import json
import os
import secrets
import select
import signal
import sys
import time
from pathlib import Path

from firmware.loop import PumpLoop
from hal import channel as C
from sim.runner import DAY, Run
from sim.scenario import Event, Fault, copy_prescription
from sim.tcp_port import TcpPort

KEY_BYTES = 32
_SLICE_S = 0.1  # the longest sleep between looks at a stop request


def add_arguments(p):
    p.add_argument("scenario", nargs="?", help="scenario TOML file (the built-in default without it)")
    p.add_argument("--port", type=int, default=7001, help="TCP port on 127.0.0.1 (default 7001; 0: any free one)")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="simulated seconds per wall second (default 1: real time)")
    p.add_argument("--days", type=int, help="override the scenario's length in days")
    p.add_argument("--out", help="output directory (default runs/<scenario name>)")
    p.add_argument("--key-file", help="where to write the link's keys (default <out>/link-keys.json)")
    p.add_argument("--no-plot", action="store_true", help="do not write plot.png")


def has_link():
    """Whether this firmware's PumpLoop takes a link port (firmware/link.py, issue 15)."""
    return "link_port" in inspect.signature(PumpLoop).parameters


class ServeRun(Run):
    """A Run whose clock keeps pace with the wall clock, waking early for the link's bytes."""

    def __init__(self, scenario, port, speed):
        if not speed > 0:
            raise ValueError("--speed: must be more than 0")
        self.port = port
        self.speed = speed
        self.stop_requested = False
        self._paced = True
        self._wall0 = time.monotonic()
        self._sim0 = 0
        super().__init__(scenario, journal=True, link_port=port if has_link() else None)

    def _boot(self):
        loop = super()._boot()
        if loop.link is not None:
            self._observe(loop)
        return loop

    def _observe(self, loop):
        """The referee's view of the link (the simulator is the referee, never the firmware's echo):
        each command a link request became, as the firmware's dispatch received it, is a scenario
        input from then on, as if the scenario had held it (a bolus's minutes, a refill that fills
        the simulated reservoir, a program, a clock setting), and the firmware's answer is handled
        as the programmer's (Run.replied)."""
        run = self
        link = loop.link
        serve = link.service
        dispatch = loop._command
        inside = [False]  # the link is serving: a dispatch is one of its commands

        def service(now):
            inside[0] = True
            try:
                return serve(now)
            finally:
                inside[0] = False

        def command(cmd):
            if not inside[0]:
                return dispatch(cmd)  # the scenario's own programmer command
            ev = run._link_event(cmd)
            if ev is not None and getattr(ev, "action", "") == "bolus":
                run._pending["clinician"] = run.clock.now_ms
            try:
                result = dispatch(cmd)
            except ValueError as e:  # refused by the firmware's own checks: noted, then passed on
                if ev is not None:
                    run._as_input(ev, e)
                raise
            if ev is not None:
                run._as_input(ev, result)
            return result

        link.service = service
        loop._command = command

    def _link_event(self, cmd):
        t = self.clock.now_ms
        day, ms = divmod(t, DAY)
        when = dict(t_ms=t, day=day, time="%02d:%02d" % (ms // 3_600_000, ms // 60_000 % 60))
        op = cmd[0]
        if op == C.CMD_BOLUS:
            return Event(action="bolus", amount_ng=cmd[1], minutes=cmd[2], **when)
        if op == C.CMD_REFILL:
            return Event(action="refill", volume_nl=cmd[1], concentration=cmd[2], **when)
        if op == C.CMD_PROGRAM:
            return Event(action="program", rx=copy_prescription(cmd[1]), **when)
        if op == C.CMD_PRIME:
            return Event(action="prime", catheter_cm=cmd[1], **when)
        if op == C.CMD_SET_CLOCK:  # the jump to the nearest such time, as the command means it
            weekday, now_ms = self.shown(t)
            jump = ((cmd[1] - weekday) % 7) * DAY + cmd[2] - now_ms
            if jump > 7 * DAY // 2:
                jump -= 7 * DAY
            return Fault(kind="set_clock", jump_ms=jump, **when)
        names = {C.CMD_SILENCE: "silence", C.CMD_SUSPEND: "suspend", C.CMD_RESUME: "resume",
                 C.CMD_CANCEL_BOLUS: "cancel_bolus"}
        return Event(action=names[op], **when) if op in names else None

    def _as_input(self, ev, result):
        if isinstance(ev, Event):  # in the scenario's inputs, as served: before the next one due
            self.scenario.events.insert(self._ei, ev)
            self._ei += 1
        self.replied(ev, result)

    def _wall_for(self, t_ms):
        return self._wall0 + (t_ms - self._sim0) / 1000 / self.speed

    def _pace(self, t_ms, wake):
        if not self._paced:
            return t_ms
        port = self.port if self.link_port is not None else None
        while True:
            if self.stop_requested:
                self._stop()
                return t_ms
            now = time.monotonic()
            left = self._wall_for(t_ms) - now
            if wake and port is not None and port.any():
                reached = self._sim0 + int((now - self._wall0) * self.speed * 1000)
                return max(self.clock.now_ms, min(reached, t_ms))
            if left <= 0:
                return t_ms
            port_wait(port, min(left, _SLICE_S))

    def _stop(self):
        """Ends the run at the end of the simulated day in progress, reached unpaced."""
        self._paced = False
        days = self.clock.now_ms // DAY + 1
        if days < self.scenario.days:
            sc = self.scenario
            sc.days = days
            sc.events = [e for e in sc.events if e.t_ms < days * DAY]
            sc.faults = [f for f in sc.faults if f.t_ms < days * DAY]
            self.end_ms = days * DAY
            self._next_input()


def port_wait(port, timeout_s):
    """Sleeps up to timeout_s, less once the port's socket is readable (a client's bytes or a client)."""
    socks = []
    if port is not None:
        socks = [port._client] if port._client is not None else [port._server]
    if socks:
        select.select(socks, [], [], timeout_s)
    else:
        time.sleep(timeout_s)


def write_keys(path, clinician_key, patient_key):
    """The key file: JSON, both keys in hex, readable and writable by the user only (0600), replaced
    whole (a reader never sees half of it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a stale tmp file kept its mode: set it
        text = json.dumps({"clinician": binascii.hexlify(clinician_key).decode(),
                           "patient": binascii.hexlify(patient_key).decode()})
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def main(args, load, finish):
    """load(path, days) -> Scenario and finish(result, out, plot) -> exit status are sim/cli.py's."""
    if not args.speed > 0:
        raise ValueError("--speed: must be more than 0")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port: {args.port} is out of range 0..65535")
    sc = load(args.scenario, args.days)
    out = args.out or f"runs/{sc.name}"
    try:
        port = TcpPort(args.port)
    except OSError as e:
        raise ValueError(f"--port {args.port}: {e.strerror or e}") from None
    try:
        run = ServeRun(sc, port, args.speed)
        host, number = port.address
        print(f"pumpsim serve: {sc.name} on {host}:{number} (socket://{host}:{number}), "
              f"{args.speed:g} simulated s per s; Ctrl-C stops", flush=True)
        if run.link_port is None:
            print("pumpsim serve: this firmware has no link (firmware/link.py): nothing will answer",
                  file=sys.stderr, flush=True)
        else:
            clinician_key, patient_key = secrets.token_bytes(KEY_BYTES), secrets.token_bytes(KEY_BYTES)
            run.loop.link.provision(clinician_key, patient_key)
            key_file = write_keys(args.key_file or Path(out) / "link-keys.json", clinician_key, patient_key)
            del clinician_key, patient_key
            print(f"pumpsim serve: keys in {key_file} (mode 0600): pumpctl --key-file {key_file}, "
                  f"or PUMPCTL_KEY_FILE", flush=True)

        def stop(signum, frame):
            run.stop_requested = True
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C ends at once

        old = signal.signal(signal.SIGINT, stop), signal.signal(signal.SIGTERM, stop)
        try:
            run._wall0 = time.monotonic()
            run._sim0 = run.clock.now_ms
            result = run.run()
        finally:
            signal.signal(signal.SIGINT, old[0])
            signal.signal(signal.SIGTERM, old[1])
        print(f"pumpsim serve: stopped after {run.clock.now_ms / 1000:.0f} simulated s "
              f"({port.clients} link clients)", flush=True)
    finally:
        port.close()
    return finish(result, out, not args.no_plot)
