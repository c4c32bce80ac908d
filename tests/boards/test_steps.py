# The step engines of hal/steps_*.py on fakes of the port modules (tests/boards/fakes: rp2,
# esp32, pyb, machine): on CPython (pytest) and on the MicroPython unix port
# (tools/run_boards.sh). Plain test functions and asserts, as tests/core. The PIO programs
# themselves run cycle by cycle in tests/host/test_pio.py.

import sys

import esp32
import machine
import pyb
import rp2

from hal import steps_esp32, steps_pyb, steps_rp2, steps_timer

MICROPYTHON = sys.implementation.name == "micropython"


def _raises(exc_type, fn, *args):
    try:
        fn(*args)
    except exc_type:
        return True
    return False


def _alloc(fn, reps=200):
    """Bytes allocated by `reps` calls of fn() on MicroPython, heap unlocked (None on CPython).

    Call frames too big for the stack come from the heap; heap_lock would hide that, so this
    counts with the heap unlocked and gc disabled, then runs the same calls once more under
    heap_lock (which raises MemoryError on any heap allocation it does not divert).
    """
    if not MICROPYTHON:
        for _ in range(2 * reps):
            fn()
        return None
    import gc

    import micropython

    gc.collect()
    gc.disable()
    try:
        total = getattr(micropython, "mem_total", None) or gc.mem_alloc
        i = 0
        before = total()
        while i < reps:
            fn()
            i += 1
        used = total() - before
        micropython.heap_lock()
        try:
            i = 0
            while i < reps:
                fn()
                i += 1
        finally:
            micropython.heap_unlock()
    finally:
        gc.enable()
    return used


# ---------------------------------------------------------------- rp2 PIO


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
        assert _raises(ValueError, steps_rp2.step_timing, bad)


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
        assert _raises(ValueError, eng.start, bad)
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
    assert _raises(ValueError, steps_rp2.phase_freq, 1) and _raises(ValueError, steps_rp2.phase_freq, 100_001)
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


# ---------------------------------------------------------------- esp32 RMT


def _edges(pulses, idle=0):
    n, level = 0, idle
    for lv, _ in pulses:
        if lv and not level:
            n += 1
        level = lv
    return n


def _pulses(rmt, since=0):
    out = []
    for w in rmt.writes[since:]:
        out.extend(esp32.expand(w))
    return out


def test_rmt_step_entries_split_long_low_phases():
    for period in (2, 3, 1000, 3333, 65534, 65535, 65536, 100_000, 1_000_000, 10_000_000):
        durs, levels = steps_esp32.step_entries(period)
        assert sum(durs) == period and len(durs) == len(levels) and len(durs) % 2 == 0
        assert levels[0] == 1 and all(lv == 0 for lv in levels[1:])
        assert all(1 <= d <= 32767 for d in durs)
        assert durs[0] == min(period // 2, 32767)
    assert steps_esp32.step_entries(1000) == ((500, 500), (1, 0))
    assert len(steps_esp32.step_entries(1_000_000)[0]) == 32  # 1 step/s at 1 MHz: 31 low entries
    assert _raises(ValueError, steps_esp32.step_entries, 1)


def _check_rmt_bursts(api, finite_loop):
    rates = (1000, 300, 10, 1)
    for rate in rates:
        machine.reset_fakes()
        esp32.reset_fakes(api, finite_loop)
        eng = steps_esp32.RmtSteps(5, 6, rate)
        rmt = esp32.made[-1]
        assert eng.resolution_hz == 1_000_000 and rmt.resolution_hz == 1_000_000
        assert eng.api == api and machine.Pin.get(6).value() == 1
        period = 1_000_000 // rate
        done = 0
        for n in (1, 2, 7, 200, 1000):
            if rate < 10 and n > 7:
                continue
            k = len(rmt.writes)
            eng.start(n)
            assert eng.busy() and eng.bursts() == done
            while eng.busy():  # more than max_steps (512) go out in chunks in buffer mode
                assert eng.bursts() == done
                rmt.finish()
            done += 1
            assert eng.bursts() == done
            pulses = _pulses(rmt, k)
            assert _edges(pulses) == n
            total = sum(d for _, d in pulses)
            assert total == n * period
            # n / steps_per_s, to within the rounding of the period down to a whole tick
            assert 0 <= n * 1_000_000 - total * rate < n * rate
            assert pulses[-1][0] == 0  # ends low
            if api >= 127 and finite_loop:
                assert len(rmt.writes) == k + 1 and rmt.writes[-1][2] == n  # one step, looped n times
            else:
                assert all(w[2] == 0 for w in rmt.writes[k:])
        assert machine.Pin.get(6).history == [1]


def test_rmt_steps_counted_loop_api_1_27():
    _check_rmt_bursts(127, True)


def test_rmt_steps_original_esp32_falls_back_to_a_buffer():
    _check_rmt_bursts(127, False)
    machine.reset_fakes()
    esp32.reset_fakes(127, False)
    eng = steps_esp32.RmtSteps(5, 6, 1000)
    assert eng.looped
    eng.start(3)
    assert not eng.looped and esp32.made[-1].loops == 0  # switched for good


def test_rmt_steps_api_1_26():
    _check_rmt_bursts(126, True)
    machine.reset_fakes()
    esp32.reset_fakes(126)
    eng = steps_esp32.RmtSteps(5, 6, 500, resolution_hz=2_000_000)
    rmt = esp32.made[-1]
    assert rmt.channel == 0 and rmt.resolution_hz == 2_000_000 and eng.period == 4000
    assert not eng.looped
    # the tuples are built once per count and reused: the same stroke size allocates nothing more
    eng.start(200)
    first = eng._part
    rmt.finish()
    eng.busy()
    eng.start(200)
    assert eng._part is first
    assert _raises(ValueError, steps_esp32.RmtSteps, 5, 6, 500, 100_000)  # clock_div 800 > 255


def test_rmt_long_burst_in_chunks():
    for api in (127, 126):
        machine.reset_fakes()
        esp32.reset_fakes(api, False)
        eng = steps_esp32.RmtSteps(5, 6, 2000, max_steps=100)
        rmt = esp32.made[-1]
        eng.start(250)
        chunks = 0
        while eng.busy():
            assert eng.bursts() == 0
            rmt.finish()
            chunks += 1
        assert chunks == 3 and eng.bursts() == 1
        pulses = _pulses(rmt)
        assert _edges(pulses) == 250 and sum(d for _, d in pulses) == 250 * 500
        assert [len(w[0]) // 2 for w in rmt.writes] == [100, 100, 50]


def test_rmt_stop():
    for api in (127, 126):
        machine.reset_fakes()
        esp32.reset_fakes(api)
        eng = steps_esp32.RmtSteps(5, 6, 1000)
        eng.start(40)
        eng.stop()
        assert not eng.busy() and eng.bursts() == 0
        if api >= 127:
            assert len(esp32.made) == 1 and esp32.made[0].stops == 1
        else:
            assert len(esp32.made) == 2 and esp32.made[0].deinited  # no abort before 1.27: made anew
        eng.start(5)
        esp32.made[-1].finish()
        eng.stop()  # it had completed: counted, nothing aborted
        assert eng.bursts() == 1
        assert len(esp32.made) == (1 if api >= 127 else 2)


# ---------------------------------------------------------------- pyboard timer


def _pyb_engine(rate=1000):
    machine.reset_fakes()
    eng = steps_pyb.TimerSteps(2, 1, "X1", "X2", rate)
    return eng, eng._tim, eng._ch


def test_pyb_timer_bookkeeping():
    eng, tim, ch = _pyb_engine(1000)
    assert tim.freq() == 1000 and tim.prescaler() == 1 and tim.period() == 41999
    assert eng.half == 21000 and ch.pin.id == "X1" and ch.mode == pyb.Timer.PWM
    assert ch.pulse_width() == 0 and machine.Pin.get("X2").value() == 1
    tim.advance(5)
    assert ch.pulses == 0 and not eng.busy()  # idle: no pulses


def test_pyb_timer_exactly_n_steps():
    eng, tim, ch = _pyb_engine(500)
    done = 0
    for n in (1, 2, 7, 200, 1000):
        p0 = ch.pulses
        before = pyb.irq_disables
        eng.start(n)
        assert pyb.irq_disables == before + 1 and pyb.irq_enabled
        assert eng.busy() and ch.pulses == p0  # the compare lands at the next update
        tim.advance(n)
        assert ch.pulses - p0 == n and eng.busy()  # pulse n runs; its stop was written at U_n
        assert ch.preload == 0 and ch.compare == eng.half
        tim.advance(1)
        assert ch.pulses - p0 == n and not eng.busy()  # U_n+1: no pulse, burst complete
        done += 1
        assert eng.bursts() == done
        tim.advance(3)
        assert ch.pulses - p0 == n and eng.bursts() == done
        assert set(ch.widths) == {eng.half}


def test_pyb_timer_stop():
    eng, tim, ch = _pyb_engine(1000)
    eng.start(10)
    tim.advance(3)
    eng.stop()
    tim.advance(5)
    assert ch.pulses == 3 and not eng.busy() and eng.bursts() == 0
    eng.start(2)
    tim.advance(3)
    assert ch.pulses == 5 and eng.bursts() == 1


def test_pyb_callback_allocates_nothing():
    eng, tim, ch = _pyb_engine(1000)
    cb = eng._cb
    eng._left = 1 << 20  # a long burst: the counting branch
    eng._tail = 0

    def counting():
        cb(tim)

    used = _alloc(counting)
    assert used in (None, 0), used

    def completing():
        eng._left = 1  # the branch that writes the compare...
        cb(tim)
        cb(tim)  # ...and the one that counts the burst

    used = _alloc(completing)
    assert used in (None, 0), used
    assert eng.bursts() == 400


# ---------------------------------------------------------------- ULN2003 on a machine.Timer


def _coils(pins):
    v = 0
    for i in range(4):
        if machine.Pin.get(pins[i]).value():
            v |= 1 << i
    return v


def test_timer_phases_sequence_count_and_continuity():
    for half in (True, False):
        machine.reset_fakes()
        pins = (12, 13, 14, 15)
        eng = steps_timer.TimerPhases(pins, 400, half=half)
        tim = eng._tim
        assert tim.mode == machine.Timer.PERIODIC and tim.callback == eng._cb and tim.period_ms == 2
        seq = steps_timer.HALF_STEP if half else steps_timer.FULL_STEP
        tim.fire()
        assert _coils(pins) == 0 and not eng.busy()
        seen = []
        done = 0
        for n in (1, 2, 7, 13):
            eng.start(n)
            for _ in range(n):
                assert eng.busy()
                tim.fire()
                seen.append(_coils(pins))
            assert eng.busy() and eng.bursts() == done  # completes one tick later
            tim.fire()
            done += 1
            assert not eng.busy() and eng.bursts() == done
            tim.fire()
            assert eng.bursts() == done
        assert seen == [seq[i % 8] for i in range(len(seen))]
        eng.start(5)
        tim.fire()
        eng.stop()
        held = _coils(pins)
        tim.fire()
        assert _coils(pins) == held and not eng.busy() and eng.bursts() == done
    assert _raises(ValueError, steps_timer.TimerPhases, (1, 2, 3), 100)


def test_timer_phases_callback_allocates_nothing():
    machine.reset_fakes()
    eng = steps_timer.TimerPhases((12, 13, 14, 15), 400)
    tim = eng._tim
    cb = eng._cb
    eng._left = 1 << 20

    def stepping():
        cb(tim)

    # the fake Pin records every write in a list (that allocates): measure with a Pin that does not
    sink = _Sink()
    eng._a = eng._b = eng._c = eng._d = sink.value
    used = _alloc(stepping)
    assert used in (None, 0), used
    assert sink.writes > 0


class _Sink:
    def __init__(self):
        self.writes = 0

    def value(self, v):
        self.writes += 1


# ---------------------------------------------------------------- start/busy/bursts allocate nothing
# The fakes of rp2 and esp32 record into lists (that allocates), so these measure the engines
# against minimal stand-ins for the port objects, which allocate nothing themselves.


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


class _Rmt:
    def __init__(self):
        self.writes = 0

    def loop_count(self, n):
        pass

    def write_pulses(self, durations, levels):
        self.writes += 1

    def wait_done(self, timeout=0):
        return True


def test_pio_start_busy_bursts_allocate_nothing():
    machine.reset_fakes()
    for eng in (steps_rp2.PioSteps(0, 2, 3, 1000), steps_rp2.PioPhases(1, 10, 500)):
        eng._sm = _Sm()

        def stroke():
            eng.start(200)
            eng.busy()
            eng.bursts()

        used = _alloc(stroke)
        assert used in (None, 0), used
        assert eng.bursts() == 400 and not eng.busy()


def test_rmt_start_busy_bursts_allocate_nothing_after_the_first_stroke():
    for looped in (True, False):
        machine.reset_fakes()
        esp32.reset_fakes(127)
        eng = steps_esp32.RmtSteps(5, 6, 1000)
        eng._rmt = stub = _Rmt()
        eng.looped = looped

        def stroke():
            eng.start(200)
            eng.busy()
            eng.bursts()

        stroke()  # the first stroke probes the loop count, or builds the buffer
        used = _alloc(stroke)
        assert used in (None, 0), used
        assert eng.bursts() == 401 and stub.writes == 401


def test_pyb_and_timer_phases_start_busy_allocate_nothing():
    eng, tim, ch = _pyb_engine(1000)

    def stroke():
        eng.start(200)
        eng.busy()
        eng.bursts()
        eng._left = eng._tail = 0

    used = _alloc(stroke)
    assert used in (None, 0), used
    ph = steps_timer.TimerPhases((12, 13, 14, 15), 400)

    def phases():
        ph.start(200)
        ph.busy()
        ph.bursts()

    used = _alloc(phases)
    assert used in (None, 0), used
