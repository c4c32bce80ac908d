"""Minimal test runner for the core suite on MicroPython (unix and WebAssembly ports).

CPython runs tests/core with pytest; MicroPython has neither pytest nor unittest, so
this runner imports each ``test_*`` module, calls every module-level callable whose
name starts with ``test_`` and counts the results. Only the subset of Python that
MicroPython implements is used here.

Usage (unix port; the repo root and tests/core are put on sys.path automatically):

    micropython tests/core/mprunner.py                  # every tests/core/test_*.py
    micropython tests/core/mprunner.py test_a test_b    # just these modules
    micropython tests/core/mprunner.py -v ...           # also print one line per passed test

From another host (e.g. the WebAssembly port, where sys.argv is empty):

    import mprunner
    rc = mprunner.main(["test_a", "test_b"], root="/repo")

A test that raises an exception whose class is named ``SkipTest`` (each test module
defines its own) is counted as skipped; raising it at import time skips the whole
module. The last line printed is always ``N passed, M failed`` (``, K skipped`` is
appended only when K > 0). The exit status (or ``main``'s return value) is 1 when
M > 0 or N == 0, else 0.
"""

import sys

try:
    import gc
except ImportError:  # pragma: no cover
    gc = None

try:
    import micropython as _mp
except ImportError:  # pragma: no cover
    _mp = None

_SUMMARY_SEP = ", "


def _normpath(path):
    # MicroPython has no os.path: resolve "." and ".." by hand ("/" separators only).
    absolute = path.startswith("/")
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not absolute:
                parts.append(part)
            continue
        parts.append(part)
    out = "/".join(parts)
    if absolute:
        return "/" + out
    return out or "."


def _dirname(path):
    if "/" not in path:
        return "."
    head = path.rsplit("/", 1)[0]
    return head or "/"


def _here():
    try:
        f = __file__
    except NameError:  # pragma: no cover
        f = ""
    if not f and sys.argv:
        f = sys.argv[0]
    return _normpath(_dirname(f)) if f else "."


def _setup_path(core_dir, root):
    for p in (root, core_dir):
        while p in sys.path:
            sys.path.remove(p)
    # tests/core first, then the repo root (firmware/, hal/); both ahead of the defaults.
    sys.path.insert(0, root)
    sys.path.insert(0, core_dir)


def _discover(core_dir):
    try:
        import os
    except ImportError:  # pragma: no cover
        return []
    names = []
    for name in os.listdir(core_dir):
        if name.startswith("test_") and name.endswith(".py"):
            names.append(name[:-3])
    names.sort()
    return names


def _source_order(mod):
    """Names of ``def test_*`` in the order they appear in the module's source.

    MicroPython's module dicts are unordered, so read the file when possible.
    """
    order = []
    try:
        path = mod.__file__
    except AttributeError:
        return order
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith("def test_"):
                    name = line[4:].split("(", 1)[0].strip()
                    if name not in order:
                        order.append(name)
    except OSError:
        pass
    return order


def _tests_of(mod):
    found = []
    for name in dir(mod):
        if name.startswith("test_") and callable(getattr(mod, name)):
            found.append(name)
    found.sort()
    ordered = [n for n in _source_order(mod) if n in found]
    for n in found:
        if n not in ordered:
            ordered.append(n)
    return ordered


def _lock_depth():
    """Current micropython.heap_lock() nesting depth, found without allocating.

    heap_lock() returns None but heap_unlock() returns the depth left after it, so a
    lock/unlock pair reads the depth. (micropython.heap_locked() is missing on some ports.)
    """
    lock = getattr(_mp, "heap_lock", None)
    unlock = getattr(_mp, "heap_unlock", None)
    if lock is None or unlock is None:
        return 0
    lock()
    depth = unlock()
    return depth if isinstance(depth, int) else 0


def _unlock_heap():
    # A failing test may leave the heap locked; printing would then fail too.
    depth = _lock_depth()
    for _ in range(depth):
        _mp.heap_unlock()
    return depth


def _print_exc(exc):
    pe = getattr(sys, "print_exception", None)
    if pe is not None:
        pe(exc)
        return
    import traceback  # CPython, only if someone runs this runner there

    traceback.print_exception(type(exc), exc, exc.__traceback__)


def _is_skip(exc):
    return type(exc).__name__ == "SkipTest"


def _reason(exc):
    args = getattr(exc, "args", ())
    return str(args[0]) if args else ""


def _collect():
    if gc is not None:
        gc.collect()


class _Result:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []


def _report(res, name, exc, where):
    """Count an exception from importing or running `name` as a skip or a failure."""
    unlocked = _unlock_heap()
    if _is_skip(exc):
        res.skipped += 1
        print(f"SKIP {name}: {_reason(exc)}")
        return
    res.failed += 1
    res.failures.append(name)
    print(f"FAIL {name}{where}")
    _print_exc(exc)
    if unlocked:
        print(f"  (heap was left locked; unlocked {unlocked}x)")


def _run_module(modname, res, verbose):
    _collect()
    try:
        mod = __import__(modname)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: B036 - any import error is a failure
        _report(res, modname, exc, " (import)")
        return

    p0, f0, s0 = res.passed, res.failed, res.skipped
    for name in _tests_of(mod):
        full = f"{modname}.{name}"
        _collect()
        try:
            getattr(mod, name)()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: B036 - SystemExit in a test is a failure too
            _report(res, full, exc, "")
            continue
        if _unlock_heap():
            res.failed += 1
            res.failures.append(full)
            print(f"FAIL {full}: returned with the heap still locked")
            continue
        res.passed += 1
        if verbose:
            print(f"PASS {full}")
    line = f"{modname} .. {res.passed - p0} ok"
    if res.failed - f0:
        line += f", {res.failed - f0} FAILED"
    if res.skipped - s0:
        line += f", {res.skipped - s0} skipped"
    print(line)


def summary_line(res):
    line = f"{res.passed} passed{_SUMMARY_SEP}{res.failed} failed"
    if res.skipped:
        line += f"{_SUMMARY_SEP}{res.skipped} skipped"
    return line


def main(modules=None, root=None, verbose=False):
    """Run the given test modules (default: every tests/core/test_*.py); return 0 or 1."""
    core_dir = _here()
    if root is None:
        root = _normpath(core_dir + "/../..")
    _setup_path(core_dir, root)
    if not modules:
        modules = _discover(core_dir)
    res = _Result()
    for modname in modules:
        if modname.endswith(".py"):
            modname = modname[:-3]
        modname = modname.rsplit("/", 1)[-1]
        _run_module(modname, res, verbose)
    if res.failures:
        print("failed:")
        for name in res.failures:
            print(f"  {name}")
    print(summary_line(res))
    return 1 if (res.failed or not res.passed) else 0


def _cli(argv):
    verbose = False
    modules = []
    for arg in argv:
        if arg in ("-v", "--verbose"):
            verbose = True
        else:
            modules.append(arg)
    return main(modules, verbose=verbose)


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
