"""The simulator's and the core tests' clocks do what a MicroPython port's ticks_add/ticks_diff do.

Oracle: the same case script (tests/host/ticks_cases.py) run on the MicroPython unix port, and on
the 32-bit WebAssembly port where node has it, against the port's own `time` module. Its first
part transcribes MicroPython's tests/extmod/ticks_add.py (micropython/micropython at commit
1c3c201149f37fe8d81246191b3127bb198d6306; 36 lines in its ticks_add.py.exp); the rule it checks is
extmod/modtime.c's: ticks_add(t, delta) raises OverflowError("ticks interval overflow") unless
-2**29 < delta < 2**29 (so -2**29 itself raises), ticks are taken modulo the period, and
ticks_diff never raises.
"""

import os
import shutil
import subprocess

import pytest
import ticks_cases
from hypothesis import given
from hypothesis import strategies as st
from support import FakeClock

from sim.clock import SimClock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = os.path.join(ROOT, "tests", "host", "ticks_cases.py")
SUPPORT = os.path.join(ROOT, "tests", "core", "support.py")
WASM_PACKAGE = os.path.join(ROOT, "node_modules", "@micropython", "micropython-webassembly-pyscript")
PERIOD = 1 << 30  # the boards' (and the models') ticks period


def _models():
    sim = SimClock()  # bound the way the firmware binds them: clock.ticks_add, clock.ticks_diff
    fake = FakeClock()
    return {"SimClock": (sim.ticks_add, sim.ticks_diff), "FakeClock": (fake.ticks_add, fake.ticks_diff)}


MODELS = _models()


def _split(lines):
    assert ticks_cases.SEPARATOR in lines, "no separator in the port's output:\n" + "\n".join(lines)
    i = lines.index(ticks_cases.SEPARATOR)
    return lines[:i], lines[i + 1:]


def _run_unix():
    mp = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")  # as tools/run_unix.sh
    if not os.access(mp, os.X_OK):
        pytest.skip(f"MicroPython unix port not found at {mp} (run 'make .venv'): no oracle for the ticks cases")
    r = subprocess.run([mp, CASES], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


# The WebAssembly port runs in node: write the file into its in-memory FS, run it, print its stdout.
_WASM_JS = """
import fs from "node:fs";
const pkg = await import("@micropython/micropython-webassembly-pyscript");
const lines = [];
const mp = await pkg.loadMicroPython({ stdout: (l) => lines.push(l), stderr: (l) => process.stderr.write(l + "\\n") });
mp.FS.writeFile("/" + process.env.TICKS_MODULE + ".py", fs.readFileSync(process.env.TICKS_FILE));
mp.runPython(process.env.TICKS_CODE);
process.stdout.write(lines.join("\\n") + "\\n");
"""


def _run_wasm(path, code):
    node = shutil.which("node")
    if node is None or not os.path.isdir(WASM_PACKAGE):
        pytest.skip("node or @micropython/micropython-webassembly-pyscript missing (run 'npm install')")
    module = os.path.basename(path)[:-3]
    env = dict(os.environ, TICKS_FILE=path, TICKS_MODULE=module, TICKS_CODE='import sys\nsys.path.insert(0, "/")\n' + code)
    r = subprocess.run([node, "--input-type=module", "-e", _WASM_JS], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


@pytest.fixture(scope="module")
def unix_port():
    return _split(_run_unix())


@pytest.fixture(scope="module")
def wasm_port():
    lines = _run_wasm(CASES, "import ticks_cases\nticks_cases.main()")
    assert "2147483647" == _run_wasm(CASES, "print(sys.maxsize)")[0]  # 32-bit: the boards' period 2**30
    return _split(lines)


@pytest.fixture(params=["unix", "wasm"])
def port(request):
    return request.getfixturevalue(request.param + "_port")


def _mismatches(got, want):
    assert len(got) == len(want), f"{len(got)} lines, the port printed {len(want)}"
    return [f"line {k + 1}: model {g!r}, port {w!r}" for k, (g, w) in enumerate(zip(got, want)) if g != w]


def _assert_same(got, want):
    bad = _mismatches(got, want)
    assert not bad, f"{len(bad)} of {len(want)} lines differ from the port:\n" + "\n".join(bad)


def test_the_port_prints_the_upstream_tests_36_lines(port):
    upstream, _ = port
    assert len(upstream) == ticks_cases.UPSTREAM_LINES == 36
    assert upstream.count("OverflowError") == 12  # delta = -2**29 and 2**29, twice, from 3 tick values
    assert set(upstream[6:]) == {"True", "OverflowError"}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_upstream_ticks_add_test_matches_the_port(model, port):
    got = ticks_cases.upstream(*MODELS[model])
    assert len(got) == ticks_cases.UPSTREAM_LINES
    _assert_same(got, port[0])


@pytest.mark.parametrize("model", sorted(MODELS))
def test_edge_cases_match_the_port(model, port):
    _assert_same(ticks_cases.edges(*MODELS[model]), port[1])


@pytest.mark.parametrize("model", sorted(MODELS))
def test_models_wrap_at_the_boards_period(model):
    # The cases derive the period from the pair itself (the unix port's is 2**62): pin the models' here.
    ticks_add, ticks_diff = MODELS[model]
    assert ticks_add(0, -1) == PERIOD - 1
    assert ticks_add(PERIOD - 1, 1) == 0
    assert ticks_diff(0, PERIOD - 1) == 1
    with pytest.raises(OverflowError, match="ticks interval overflow"):
        ticks_add(0, -(1 << 29))
    assert SimClock.ticks_add(5, (1 << 29) - 1) == (1 << 29) + 4  # still a staticmethod


def test_the_harness_catches_ticks_that_never_raise(unix_port):
    # The formulas sim/clock.py had before: right values, no OverflowError.
    old_add = lambda t, d: (t + d) % PERIOD
    old_diff = lambda a, b: (a - b + PERIOD // 2) % PERIOD - PERIOD // 2
    assert len(_mismatches(ticks_cases.upstream(old_add, old_diff), unix_port[0])) == 12


# The C code on a 32-bit port, in unsigned 32-bit arithmetic (extmod/modtime.c, period 2**30).
def _c_ticks_add(t, delta):
    if (delta + PERIOD // 2 - 1) % (1 << 32) >= PERIOD - 1:
        raise OverflowError("ticks interval overflow")
    return ((t + delta) % (1 << 32)) & (PERIOD - 1)


def _c_ticks_diff(end, start):
    return (((end - start + PERIOD // 2) % (1 << 32)) & (PERIOD - 1)) - PERIOD // 2


_small = st.integers(-PERIOD, PERIOD - 1)  # a 32-bit port's small ints: every value a tick argument can be
_near = st.sampled_from([0, 1, -1, (1 << 29) - 1, 1 << 29, -(1 << 29), -(1 << 29) + 1, PERIOD - 1, -PERIOD])


@pytest.mark.parametrize("model", sorted(MODELS))
@given(t=_small | _near, delta=_small | _near)
def test_ticks_add_is_the_ports_over_all_small_ints(model, t, delta):
    try:
        want = _c_ticks_add(t, delta)
    except OverflowError:
        with pytest.raises(OverflowError, match="ticks interval overflow"):
            MODELS[model][0](t, delta)
    else:
        assert MODELS[model][0](t, delta) == want


@pytest.mark.parametrize("model", sorted(MODELS))
@given(a=_small | _near, b=_small | _near)
def test_ticks_diff_is_the_ports_over_all_small_ints(model, a, b):
    assert MODELS[model][1](a, b) == _c_ticks_diff(a, b)


# FakeClock runs on the ports too: on the 32-bit WebAssembly port an intermediate leaving the small
# ints would be a heap object, so 0 bytes over the extreme arguments proves none does.
_ALLOC = """
import gc
from support import FakeClock
M = 0x3FFFFFFF
H = 1 << 29
TICKS = (0, 1, H - 1, H, H + 1, M - 1, M, -1, -H, -M, -M - 1)
DELTAS = (0, 1, -1, 12345, -12345, H - 1, -H + 1)

def run(add, diff):
    for t in TICKS:
        for d in DELTAS:
            add(t, d)
        for u in TICKS:
            diff(t, u)

def nop(a, b):
    return 0

def measure(add, diff):
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    run(add, diff)
    after = gc.mem_alloc()
    gc.enable()
    return after - before

c = FakeClock()
measure(nop, nop)
print(measure(nop, nop), measure(c.ticks_add, c.ticks_diff))
"""


def test_fake_clock_stays_in_small_ints_on_the_32_bit_port():
    out = _run_wasm(SUPPORT, _ALLOC)
    assert out[-1] == "0 0", out  # bytes for the bare loop, then with FakeClock's calls
