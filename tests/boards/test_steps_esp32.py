# The ESP32 RMT step engine (hal/steps_esp32.py) on the virtual esp32 port (boards/virtual/esp32): on CPython
# (pytest) and on the MicroPython unix port (tools/run_boards.sh). Plain test functions and asserts.
# Each case runs the engine on both RMT APIs (1.26: esp32.reset_fakes(126); 1.27+: 127) and, on 1.27,
# on the original ESP32 (no counted loop; an abort over ~300 ms panics it) and on an S3-like chip.

import esp32
import machine
from steps_support import alloc, raises

from hal import steps_esp32

CASES = ((127, True), (127, False), (126, False))  # (api, finite_loop)
BOUND_US = 250_000  # the engine's longest transmission: well under the ~300 ms an abort survives
PANIC_US = 300_000  # esp32_rmt.c esp32_rmt_deactivate: "TX sequence is long (>300ms)"


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


def _engine(api, finite_loop, rate, **kw):
    machine.reset_fakes()
    esp32.reset_fakes(api, finite_loop)
    return steps_esp32.RmtSteps(5, 6, rate, **kw)


def _run_out(eng, limit=100_000):
    """The hardware finishes every transmission until the burst is done; the transmissions made."""
    seen = []
    for _ in range(limit):
        if not eng.busy():
            return seen
        rmt = eng._rmt
        if rmt not in seen:
            seen.append(rmt)
        if not rmt.ongoing:
            raise AssertionError("busy() with nothing on the wire: the burst can never complete")
        rmt.finish()
    raise AssertionError("the burst never completed")


def test_rmt_step_entries_split_long_low_phases():
    for period in (2, 3, 1000, 3333, 65534, 65535, 65536, 100_000, 1_000_000, 10_000_000):
        durs, levels = steps_esp32.step_entries(period)
        assert sum(durs) == period and len(durs) == len(levels) and len(durs) % 2 == 0
        assert levels[0] == 1 and all(lv == 0 for lv in levels[1:])
        assert all(1 <= d <= 32767 for d in durs)
        assert durs[0] == min(period // 2, 32767)
    assert steps_esp32.step_entries(1000) == ((500, 500), (1, 0))
    assert len(steps_esp32.step_entries(1_000_000)[0]) == 32  # 1 step/s at 1 MHz: 31 low entries
    assert raises(ValueError, steps_esp32.step_entries, 1)


def test_rmt_bursts_are_exact_in_chunks_of_at_most_250_ms():
    for api, finite_loop in CASES:
        for rate in (1000, 300, 10, 4):
            eng = _engine(api, finite_loop, rate)
            rmt = esp32.made[-1]
            assert eng.resolution_hz == 1_000_000 and rmt.resolution_hz == 1_000_000
            assert eng.api == api and machine.Pin.get(6).value() == 1
            period = 1_000_000 // rate
            chunk = BOUND_US // period  # whole steps in 250 ms (1 MHz: a tick is 1 us)
            done = 0
            for n in (1, 2, 7, 200, 1000):
                if rate < 300 and n > 7:
                    continue
                k = len(rmt.writes)
                eng.start(n)
                assert eng.busy() and eng.bursts() == done
                while eng.busy():
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
                per_write = [esp32.steps(w) for w in rmt.writes[k:]]
                assert sum(per_write) == n and max(per_write) <= chunk
                assert len(per_write) == (n + chunk - 1) // chunk  # full chunks, then the rest
                assert max(rmt.lengths_us[k:]) <= BOUND_US
                if api >= 127 and finite_loop:  # one step each, looped
                    assert all(len(w[0]) == len(steps_esp32.step_entries(period)[0]) for w in rmt.writes[k:])
                else:
                    assert all(w[2] == 0 for w in rmt.writes[k:])
            assert machine.Pin.get(6).history == [1]
    assert raises(ValueError, _engine, 127, False, 3)  # a step of 333 ms cannot fit 250 ms
    _engine(127, False, 4)


def test_rmt_original_esp32_falls_back_to_a_buffer():
    eng = _engine(127, False, 1000)
    assert eng.looped
    eng.start(3)
    assert not eng.looped and esp32.made[-1].loops == 0  # switched for good
    assert esp32.made[-1].writes[-1][2] == 0 and _edges(_pulses(esp32.made[-1])) == 3


def test_rmt_api_1_26():
    eng = _engine(126, False, 500, resolution_hz=2_000_000)
    rmt = esp32.made[-1]
    assert rmt.channel == 0 and rmt.resolution_hz == 2_000_000 and eng.period == 4000
    assert not eng.looped
    # the tuples are built once per count and reused: the same stroke size allocates nothing more
    eng.start(100)
    first = eng._part
    rmt.finish()
    eng.busy()
    eng.start(100)
    assert eng._part is first
    assert raises(ValueError, steps_esp32.RmtSteps, 5, 6, 500, 100_000)  # clock_div 800 > 255


def test_rmt_memory_cap_makes_smaller_chunks():
    for api, finite_loop in ((127, False), (126, False)):
        eng = _engine(api, finite_loop, 2000, max_steps=100)
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


def test_rmt_no_transmission_reaches_300_ms_at_any_rate_or_burst():
    # board.json allows steps_per_s 10..20000 and bursts of 1..65535 steps
    for api, finite_loop in CASES:
        for rate, n in ((10, 600), (11, 7), (37, 1000), (999, 65535), (1000, 65535), (4001, 65535),
                        (20_000, 65535)):
            eng = _engine(api, finite_loop, rate)
            eng.start(n)
            rmts = _run_out(eng)
            assert eng.bursts() == 1
            assert sum(esp32.steps(w) for r in rmts for w in r.writes) == n
            longest = max(max(r.lengths_us) for r in rmts)
            assert longest <= BOUND_US < PANIC_US, (api, finite_loop, rate, longest)


def test_rmt_512_steps_at_1000_per_s_go_out_as_two_chunks():
    # 512 ms in one transmission, as one chunk of max_steps (512) was, is no longer written
    for api, finite_loop in CASES:
        eng = _engine(api, finite_loop, 1000)
        eng.start(512)
        rmt = esp32.made[-1]
        _run_out(eng)
        assert [esp32.steps(w) for w in rmt.writes] == [250, 250, 12]
        assert max(rmt.lengths_us) == 250_000


def test_rmt_stop_mid_burst_then_the_next_burst_completes():
    for api, finite_loop in CASES:
        eng = _engine(api, finite_loop, 1000)
        eng.start(200)
        first = esp32.made[-1]
        assert first.ongoing
        eng.stop()  # a stall, mid-way through the chunk
        assert not eng.busy() and eng.bursts() == 0 and esp32.aborted_long == 0
        step = machine.Pin.get(5)
        cut_off = step.signal is not first and step.history[-1] == 0  # the STEP pin taken off the RMT, low
        eng.start(5)
        if api < 127:
            assert eng.busy() and first.ongoing
            first.finish()  # the old chunk ends; then the channel is made anew
        rmts = _run_out(eng)
        assert eng.bursts() == 1, (api, finite_loop)
        assert sum(_edges(_pulses(r)) for r in rmts if r is not first) == 5
        last = esp32.made[-1]
        eng.start(7)  # and the one after
        _run_out(eng)
        assert eng.bursts() == 2 and _edges(_pulses(last)) == 12
        # never active(False) and reuse: a deinit()ed channel and a new one on the pin
        assert first.deinited and last is not first and step.signal is last
        assert cut_off
        assert first.stops == (1 if api >= 127 else 0)


def test_rmt_stop_of_a_long_burst_on_an_original_esp32_does_not_panic():
    # 1.27 on the original ESP32: aborting a transmission over ~300 ms panics the chip
    for rate in (1000, 10, 20_000):
        eng = _engine(127, False, rate)
        eng.start(65535)
        for _ in range(3):
            eng._rmt.finish()
            eng.busy()
        eng.stop()
        assert esp32.aborted_long == 0 and not eng.busy()
        eng.start(3)
        _run_out(eng)
        assert eng.bursts() == 1


def test_rmt_stop_after_completion_counts_and_aborts_nothing():
    for api, finite_loop in CASES:
        eng = _engine(api, finite_loop, 1000)
        eng.start(5)
        esp32.made[-1].finish()
        eng.stop()  # it had completed: counted, nothing aborted
        assert eng.bursts() == 1 and len(esp32.made) == 1 and esp32.made[0].stops == 0
        eng.start(600)
        eng._rmt.finish()  # the first chunk went out; the second is handed over by busy()
        assert eng.busy()
        eng._rmt.finish()
        eng.stop()  # between chunks: nothing on the wire, the channel is kept
        assert eng.bursts() == 1 and len(esp32.made) == 1 and machine.Pin.get(5).signal is esp32.made[0]
        eng.start(2)
        _run_out(eng)
        assert eng.bursts() == 2


class _Rmt:
    def __init__(self):
        self.writes = 0

    def loop_count(self, n):
        pass

    def write_pulses(self, durations, levels):
        self.writes += 1

    def wait_done(self, timeout=0):
        return True


def test_rmt_start_busy_bursts_allocate_nothing_after_the_first_stroke():
    for looped in (True, False):
        for n, per in ((200, 1), (600, 3)):  # one chunk; chunks of 250, 250, 100
            eng = _engine(127, looped, 1000)
            eng._rmt = stub = _Rmt()
            eng.looped = looped

            def stroke():
                eng.start(n)
                while eng.busy():
                    pass
                eng.bursts()

            stroke()  # the first stroke probes the loop count, or builds the buffers
            used = alloc(stroke)
            assert used in (None, 0), used
            assert eng.bursts() == 401 and stub.writes == 401 * per
