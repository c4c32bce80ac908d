# The ESP32 RMT step engine (hal/steps_esp32.py) on the virtual esp32 port (boards/virtual/esp32): on CPython
# (pytest) and on the MicroPython unix port (tools/run_boards.sh). Plain test functions and asserts.

import esp32
import machine
from steps_support import alloc, raises

from hal import steps_esp32


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
    assert raises(ValueError, steps_esp32.step_entries, 1)


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
    assert raises(ValueError, steps_esp32.RmtSteps, 5, 6, 500, 100_000)  # clock_div 800 > 255


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
        used = alloc(stroke)
        assert used in (None, 0), used
        assert eng.bursts() == 401 and stub.writes == 401
