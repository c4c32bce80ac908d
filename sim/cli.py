"""pumpsim: run and check pump scenarios on the desktop simulator, or serve one to pumpctl.

Exit status: 0 success, 1 internal error, 2 bad input (one line on stderr, nothing written),
3 an invariant was violated (one line per invariant on stderr; the outputs are written).
"""

import argparse
import sys

from sim import report, runner, scenario
from sim.scenario import ScenarioError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"pumpsim: {message}\n")


def _parser():
    p = _Parser(prog="pumpsim", description="Simulate the intrathecal pump firmware on a virtual clock.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run a scenario (the built-in default without SCENARIO)")
    r.add_argument("scenario", nargs="?", help="scenario TOML file")
    r.add_argument("--days", type=int, help="override the scenario's length in days")
    r.add_argument("--out", help="output directory (default runs/<scenario name>)")
    r.add_argument("--strokes", action="store_true", help="also write strokes.csv, one row per stroke")
    r.add_argument("--no-plot", action="store_true", help="do not write plot.png")
    r.add_argument("--wake-jitter-ms", type=int, default=0, metavar="N",
                   help="wake the firmware late by a random 0..N ms at every wake (0..1000)")
    r.add_argument("--seed", type=int, default=0, help="seed for --wake-jitter-ms (default 0)")
    c = sub.add_parser("check", help="validate a scenario without running it")
    c.add_argument("scenario", help="scenario TOML file")
    from sim import serve

    serve.add_arguments(sub.add_parser("serve", help="run the pump against the wall clock, its link on a TCP port "
                                                     "(pumpctl's socket://127.0.0.1:PORT)"))
    # Each tool below owns its arguments and its run: add_arguments(parser) and main(args) -> exit status.
    for name, _module, text in _TOOLS:
        _tool(name).add_arguments(sub.add_parser(name, help=text))
    return p


_TOOLS = (("sweep", "sim.sweep", "run every variant of a base scenario (grid or seeded random ranges)"),
          ("accuracy", "sim.accuracy", "delivery error as IEC 60601-2-24 trumpet curves"),
          ("campaign", "sim.campaign", "power cuts at random instants, each run judged against the uninterrupted one"))


def _tool(name):
    import importlib

    return importlib.import_module(dict((n, m) for n, m, _ in _TOOLS)[name])


def _load(path, days):
    if path is None:
        return scenario.builtin("default", days)
    return scenario.load(path, days)


def _progress(days):
    """A tqdm bar on a terminal, shown only once a run has taken about two seconds."""
    if not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=days, unit="day", delay=2.0, file=sys.stderr, leave=False)
    return bar, bar.update


def _finish(result, out, plot=True, strokes=False):
    """Judges a run, writes its outputs and prints its summary; the exit status."""
    report.judge(result)
    s = report.write(result, out, plot=plot, strokes=strokes)
    print(report.table(s))
    print(f"outputs in {out}/")
    bad = report.violations(result)
    for line in bad:
        print(f"pumpsim: {line}", file=sys.stderr)
    return 3 if bad else 0


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        if args.command in ("sweep", "accuracy", "campaign"):
            return _tool(args.command).main(args)
        if args.command == "check":
            sc = scenario.load(args.scenario)
            print(f"{args.scenario}: ok ({sc.name}, {sc.days} days, {len(sc.events)} events)")
            return 0
        if args.command == "serve":
            from sim import serve

            try:
                return serve.main(args, _load, _finish)
            except ValueError as e:
                raise ScenarioError(str(e)) from None
        if not 0 <= args.wake_jitter_ms <= 1000:
            raise ScenarioError(f"--wake-jitter-ms: {args.wake_jitter_ms} is out of range 0..1000")
        sc = _load(args.scenario, args.days)
        bar, tick = _progress(sc.days)
        try:
            result = runner.simulate(sc, wake_jitter_ms=args.wake_jitter_ms, seed=args.seed, progress=tick)
        finally:
            if bar is not None:
                bar.close()
        return _finish(result, args.out or f"runs/{sc.name}", not args.no_plot, args.strokes)
    except ScenarioError as e:
        print(f"pumpsim: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"pumpsim: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
