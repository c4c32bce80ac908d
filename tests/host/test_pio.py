"""The RP2040 PIO step programs of hal/steps_rp2.py, run cycle by cycle in rp2040-pio-emulator.

The opcodes are those of the real program (hal/steps_rp2.py assembled by the virtual board's rp2,
boards/virtual/rp2/rp2.py, whose encoder is checked against known opcodes here first); the emulator gets
the configuration the program carries (wrap, shift directions, pin counts), decoded as the
hardware reads it. The expected timing is computed here from the program's documented timing
(2 * (D + 4) cycles per STEP, 1029 per phase) and compared with what the emulator measures.
Run with -s to see the figures.
"""

import os
import sys
from collections import deque

import pytest
from pioemu import State, emulate  # rp2040-pio-emulator, a dev dependency: missing, the tests fail

_HERE = os.path.dirname(os.path.abspath(__file__))
_VIRTUAL = os.path.join(_HERE, "..", "..", "boards", "virtual")
for _p in (_VIRTUAL, os.path.join(_VIRTUAL, "rp2")):  # rp2, and the machine hal/steps_rp2.py imports
    if _p not in sys.path:
        sys.path.insert(0, _p)

import rp2  # noqa: E402  (the virtual board's: asm_pio assembles)

from hal import steps_rp2  # noqa: E402

STEP, DIR = 2, 3  # pins
COILS = 6  # PioPhases' first pin


def _assemble_guide_program():
    @rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
    def prog():
        pull(block)  # noqa: F821
        mov(x, osr)  # noqa: F821
        label("loop")  # noqa: F821
        set(pins, 1)[7]  # noqa: F821
        set(pins, 0)[6]  # noqa: F821
        jmp(x_dec, "loop")  # noqa: F821
        mov(isr, osr)  # noqa: F821
        push(block)  # noqa: F821

    return prog


def test_fake_assembler_reproduces_known_opcodes():
    prog = _assemble_guide_program()
    assert ["%04x" % w for w in prog[0]] == "80a0 a027 e701 e600 0042 a0c7 8020".split()
    # a few more from the datasheet's table: irq, wait, in, out, side-set and optional side-set
    assert rp2.asm_pio_encode("irq(block, 2)", 0) == 0xC022
    assert rp2.asm_pio_encode("irq(clear, rel(1))", 0) == 0xC051
    assert rp2.asm_pio_encode("wait(1, gpio, 5)", 0) == 0x2085
    assert rp2.asm_pio_encode("wait(0, pin, 3)", 0) == 0x2023
    assert rp2.asm_pio_encode("in_(pins, 32)", 0) == 0x4000
    assert rp2.asm_pio_encode("out(pindirs, 8)", 0) == 0x6088
    assert rp2.asm_pio_encode("mov(x, invert(y))", 0) == 0xA02A
    assert rp2.asm_pio_encode("mov(isr, reverse(osr))", 0) == 0xA0D7
    assert rp2.asm_pio_encode("pull(ifempty, noblock)", 0) == 0x80C0
    assert rp2.asm_pio_encode("push(iffull)", 0) == 0x8060
    assert rp2.asm_pio_encode("nop()", 0) == 0xA042

    @rp2.asm_pio(sideset_init=rp2.PIO.OUT_LOW)
    def side():
        label("top")  # noqa: F821
        nop().side(1)[3]  # noqa: F821
        jmp("top").side(0)  # noqa: F821

    assert side[0] == [0xB342, 0x0000]

    @rp2.asm_pio(sideset_init=(rp2.PIO.OUT_LOW,))
    def side_opt():
        nop().side(1)  # noqa: F821
        nop()[3]  # noqa: F821

    assert side_opt[0] == [0xB842, 0xA342] and side_opt[3] >> 30 & 1


def _run(prog, tx, *, pins, stop_after, set_base=0, out_base=0, initial_pins=0):
    """Emulate until clock `stop_after`; return the (before, after) trace and whether stop_when was reached."""
    info = rp2.program_info(prog)
    reached = []

    def stop_when(_opcode, state):
        if state.clock >= stop_after:
            reached.append(state.clock)
            return True
        return False

    state = State(transmit_fifo=deque(tx), pin_directions=pins, pin_values=initial_pins)
    trace = list(emulate(info["opcodes"], stop_when=stop_when, initial_state=state,
                         shift_isr_right=info["in_shift_right"], shift_osr_right=info["out_shift_right"],
                         auto_pull=info["autopull"], auto_push=info["autopush"],
                         pull_threshold=info["pull_thresh"], push_threshold=info["push_thresh"],
                         set_base=set_base, set_count=info["set_count"],
                         out_base=out_base, out_count=info["out_count"],
                         side_set_count=info["sideset_count"],
                         wrap_target=info["wrap_target"], wrap_top=info["wrap"]))
    # pioemu ends silently on an instruction it does not support: insist on the stop condition
    assert reached, "emulation ended before its stop condition (unsupported instruction?)"
    return trace


def _documented_delay(steps_per_s):
    # hal/steps_rp2.py: D = max(0, 1 MHz // (2 * rate) - 4); a step is 2 * (D + 4) cycles
    return max(0, 1_000_000 // (2 * steps_per_s) - 4)


def _step_trace(d, counts):
    cycles = 2 * (d + 4)
    total = 2 + sum(3 + n * cycles for n in counts)  # preamble, then per burst: pull, mov, mov, steps
    trace = _run(steps_rp2.step_train, [d] + [n - 1 for n in counts], pins=(1 << STEP) | (1 << DIR),
                 stop_after=total + 3 * cycles + 40, set_base=STEP, initial_pins=1 << DIR)
    rises, pushes, dir_levels = [], [], set()
    for before, after in trace:
        if (after.pin_values >> STEP) & 1 and not (before.pin_values >> STEP) & 1:
            rises.append(before.clock)
        if len(after.receive_fifo) > len(before.receive_fifo):
            pushes.append((before.clock, after.receive_fifo[-1]))
        dir_levels.add((after.pin_values >> DIR) & 1)
    return rises, pushes, dir_levels, trace[-1][1]


# (steps/s, step counts): the large counts at fast rates keep the emulation short
STEP_CASES = [
    (100_000, (1, 2, 7, 200, 1000)),
    (20_000, (1, 2, 7, 200, 1000)),
    (1000, (1, 2, 7, 200)),
    (300, (1, 2, 7)),
]


@pytest.mark.parametrize("rate,counts", STEP_CASES)
def test_step_train_emits_exactly_n_steps_at_the_documented_spacing(rate, counts):
    d = _documented_delay(rate)
    d_mod, freq = steps_rp2.step_timing(rate)
    assert d_mod == d
    cycles = 2 * (d + 4)
    assert freq == rate * cycles  # so one step is exactly 1/rate s of the state machine's clock
    for n in counts:
        rises, pushes, dirs, last = _step_trace(d, [n])
        assert len(rises) == n
        gaps = {b - a for a, b in zip(rises, rises[1:])}
        assert gaps <= {cycles}
        assert len(pushes) == 1
        push_clock, word = pushes[0]
        assert push_clock == rises[-1] + cycles  # the last step's low time is complete
        assert word == d
        assert dirs == {1}
        assert (last.pin_values >> STEP) & 1 == 0  # idle low
        assert last.program_counter == 2  # back at `pull` N-1, waiting
        taken = push_clock - 2  # from the pull of N-1 (the preamble takes 2 cycles)
        assert taken == 3 + n * cycles
        print("\nPioSteps %6d steps/s: D=%d, freq=%d Hz, %d cycles/step, %d steps, %d cycles from the count to "
              "the completion word (3 + N x %d), first edge after 3" % (rate, d, freq, cycles, n, taken, cycles))


def test_step_train_back_to_back_bursts_and_slow_rate():
    d = _documented_delay(1000)
    rises, pushes, dirs, _ = _step_trace(d, [3, 5])
    assert len(rises) == 8 and len(pushes) == 2 and dirs == {1}
    assert pushes[0][0] == rises[2] + 2 * (d + 4) < rises[3]
    # 200 steps/s: D = 2496, 5000 cycles per step at 1 MHz
    d = _documented_delay(200)
    rises, pushes, _, _ = _step_trace(d, [2])
    assert d == 2496 and [b - a for a, b in zip(rises, rises[1:])] == [5000] and len(pushes) == 1


def test_pio_steps_object_drives_the_program_it_documents():
    # The class computes freq and D, puts D first and N-1 per start: feed the same words to the emulator.
    for rate in (100_000, 1000, 250, 1):
        eng = steps_rp2.PioSteps(0, STEP, DIR, rate)
        sm = eng._sm
        assert sm.prog is steps_rp2.step_train and sm.freq == eng.freq
        assert 1907 < sm.freq <= 1_000_000
        assert sm.puts == [eng.delay]
        eng.start(7)
        assert sm.puts == [eng.delay, 6]
        assert sm.freq == rate * 2 * (eng.delay + 4)


def _phase_trace(words, stop_after):
    trace = _run(steps_rp2.phase_train, words, pins=0xF << COILS, stop_after=stop_after, out_base=COILS)
    changes, pushes = [], []
    for before, after in trace:
        b = (before.pin_values >> COILS) & 0xF
        a = (after.pin_values >> COILS) & 0xF
        if a != b:
            changes.append((before.clock, a))
        if len(after.receive_fifo) > len(before.receive_fifo):
            pushes.append(before.clock)
        assert after.pin_values & ~(0xF << COILS) == 0  # no other pin touched
    return changes, pushes


@pytest.mark.parametrize("half", [True, False])
def test_phase_train_sequence_count_and_continuity(half):
    seq = steps_rp2.HALF_STEP if half else steps_rp2.FULL_STEP
    c = steps_rp2.PHASE_CYCLES
    assert c == 3 + 1 + 32 * 32 + 1  # mov, in, out, set y, 32 x jmp [31], jmp x--
    for counts in ([1], [2], [7], [3, 6], [13]):
        total = 2 + sum(2 + n * c + 3 for n in counts)
        changes, pushes = _phase_trace([steps_rp2.pack(seq)] + [n - 1 for n in counts], total + 2 * c)
        n_all = sum(counts)
        assert [v for _, v in changes] == [seq[i % 8] for i in range(n_all)]  # continues across bursts
        clocks = [t for t, _ in changes]
        first = counts[0]
        gaps = {b - a for a, b in zip(clocks[:first], clocks[1:first])}
        assert gaps <= {c}
        assert len(pushes) == len(counts)
        assert pushes[0] == clocks[first - 1] + c - 2 + 1  # the delay and jmp x--, then mov osr,isr; push
        print("\nPioPhases %s: %d cycles/step, %d steps in %s, completion %d cycles after the last phase"
              % ("half" if half else "full", c, n_all, counts, pushes[0] - clocks[first - 1]))


def test_pio_phases_object():
    eng = steps_rp2.PioPhases(1, COILS, 500)
    sm = eng._sm
    assert sm.freq == 500 * 1029 and sm.prog is steps_rp2.phase_train
    assert sm.puts == [0x98C46231]
    eng.start(4)
    assert sm.puts[-1] == 3
