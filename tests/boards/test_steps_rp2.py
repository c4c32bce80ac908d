# The RP2040 PIO step engines (hal/steps_rp2.py) on the virtual rp2 port (boards/virtual/rp2): on CPython
# (pytest) and on the MicroPython unix port (tools/run_boards.sh). Plain test functions and asserts.
# The PIO programs themselves run cycle by cycle in tests/host/test_pio.py.

import machine
import rp2
from steps_support import alloc, raises

from hal import steps_rp2


def test_pio_steps_rate_formula():
    for rate in (1, 2, 7, 200, 300, 1000, 20_000, 100_000, 125_000, 1_000_000):
        d, freq = steps_rp2.step_timing(rate)
        assert d == max(0, 1_000_000 // (2 * rate) - 4)
        assert freq == rate * 2 * (d + 4)  # one step = 2 * (D + 4) cycles = exactly 1 / rate s
        assert 125_000_000 // 65536 < freq <= 125_000_000
        assert freq < (1 << 30) and d < (1 << 30)
    assert steps_rp2.step_timing(1) == (499_996, 1_000_000)
    assert steps_rp2.step_timing(1000) == (496, 1_000_000)
    for bad in (0, -1, 1_000_001, 1.5, True):
        assert raises(ValueError, steps_rp2.step_timing, bad)


def test_pio_steps_start_busy_bursts():
    machine.reset_fakes()
    eng = steps_rp2.PioSteps(0, 2, 3, 1000)
    sm = eng._sm
    assert isinstance(sm, rp2.StateMachine) and sm.prog is steps_rp2.step_train
    assert sm.freq == 1_000_000 and sm.config["set_base"].id == 2
    assert sm.puts == [496] and sm.running  # D first: the preamble keeps it in ISR
    assert machine.Pin.get(3).value() == 1 and machine.Pin.get(3).history == [1]  # DIR set once
    assert not eng.busy() and eng.bursts() == 0
    eng.start(200)
    assert sm.puts == [496, 199] and eng.busy()
    assert eng.busy() and eng.bursts() == 0  # nothing pushed yet
    sm.complete(496)
    assert not eng.busy() and eng.bursts() == 1 and sm.rx_fifo() == 0
    eng.start(1)
    assert sm.puts[-1] == 0 and eng.busy()
    sm.complete(496)
    assert eng.bursts() == 2 and not eng.busy()  # bursts() drains too
    for bad in (0, 65536, -3, True):
        assert raises(ValueError, eng.start, bad)
    assert machine.Pin.get(3).history == [1]


def test_pio_steps_stop_aborts_without_counting():
    machine.reset_fakes()
    eng = steps_rp2.PioSteps(4, 6, 7, 250)
    sm = eng._sm
    d = eng.delay
    assert d == 1996
    eng.start(50)
    eng.stop()
    assert not eng.busy() and eng.bursts() == 0
    assert sm.restarts == 1 and sm.running
    assert sm.execs == [0xE000]  # STEP low; the count was already taken, nothing to drop
    assert sm.puts[-1] == d  # the preamble gets D again
    # a count the state machine never took is dropped with pull noblock
    sm.auto_take = False
    eng.start(9)
    assert sm.tx_fifo() == 1
    eng.stop()
    assert sm.tx_fifo() == 1 and sm.taken[-1] == 8  # 8 dropped, D waiting for the preamble
    assert sm.execs[-2:] == [0xE000, 0x8080]
    sm.auto_take = True
    sm.active(1)
    # a burst that completed before the stop counts
    eng.start(3)
    sm.complete(d)
    eng.stop()
    assert eng.bursts() == 1 and not eng.busy()


def test_pio_phases_sequence_word_and_stop_resumes_next_phase():
    machine.reset_fakes()
    assert steps_rp2.pack(steps_rp2.HALF_STEP) == 0x98C46231
    assert steps_rp2.pack(steps_rp2.FULL_STEP) == 0x9C639C63
    assert steps_rp2.phase_freq(500) == 500 * 1029
    assert raises(ValueError, steps_rp2.phase_freq, 1) and raises(ValueError, steps_rp2.phase_freq, 100_001)
    eng = steps_rp2.PioPhases(1, 10, 500)
    sm = eng._sm
    assert sm.prog is steps_rp2.phase_train and sm.config["out_base"].id == 10
    assert sm.puts == [0x98C46231]
    eng.start(64)
    assert sm.puts[-1] == 63 and eng.busy()
    # stopped while the coils hold B+C (0x6, index 3): the next phase must be C (index 4)
    for i in range(4):
        machine.Pin.get(10 + i).drive(0x6 >> i & 1)
    eng.stop()
    seq = steps_rp2.HALF_STEP
    assert sm.puts[-1] == steps_rp2.pack([seq[(4 + i) % 8] for i in range(8)])
    assert not eng.busy() and eng.bursts() == 0 and sm.restarts == 1
    eng.start(2)
    sm.complete(0x12345678)
    assert eng.bursts() == 1
    full = steps_rp2.PioPhases(2, 20, 100, half=False)
    assert full._sm.puts == [0x9C639C63]


class _Sm:
    def __init__(self):
        self.words = 0

    def put(self, value):
        self.words = 1

    def rx_fifo(self):
        return self.words

    def get(self, buf=None, shift=0):
        self.words = 0
        return 7


def test_pio_start_busy_bursts_allocate_nothing():
    machine.reset_fakes()
    for eng in (steps_rp2.PioSteps(0, 2, 3, 1000), steps_rp2.PioPhases(1, 10, 500)):
        eng._sm = _Sm()

        def stroke():
            eng.start(200)
            eng.busy()
            eng.bursts()

        used = alloc(stroke)
        assert used in (None, 0), used
        assert eng.bursts() == 400 and not eng.busy()
