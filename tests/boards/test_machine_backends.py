# The board backends (hal/machine_*.py) on the fake `machine` (tests/boards/fakes/machine.py),
# with a fake step engine and fake ticks: on CPython (pytest) and on the MicroPython unix port
# (tools/run_boards.sh). Plain test functions and asserts, as tests/core.

import sys

import machine
import port_time
from hardware import FakeScheduler
from support import FakeClock, heap_meter, heap_meter_done, skip

from hal import machine_button
from hal.interfaces import LOAD_NORMAL, MOTOR_OVERLOAD, MOTOR_STALL, MOTOR_UNCOMMANDED
from hal.machine_adc import MAX_NUM, MAX_RATIO, MAX_REF_MV, SAMPLES, BatteryAdc
from hal.machine_button import Button
from hal.machine_buzzer import (
    BEEP_LOW_PATTERN,
    CHIRP_PATTERN,
    CRITICAL,
    DUTY_ON,
    NON_CRITICAL,
    Buzzer,
)
from hal.machine_clock import DemoClock, MachineClock
from hal.machine_led import BLINK_MS, FAST_PATTERN, FAULT_PATTERN, SLOW_PATTERN, Led
from hal.machine_motor import CALIBRATION_STROKES, StrokeMotor
from hal.train import COUNT_MASK, StrokeTrain

MICROPYTHON = sys.implementation.name == "micropython"
port_time.install()  # CPython: the port's time.ticks_* (hal/machine_*.py bind them)
SMALL = 1 << 30  # every value a board keeps must stay below this (a small int on 32-bit ports)
if machine.PORT == "stm32":
    # The pyboard's pins have names only: its legacy Pin.dict() (ports/stm32/pin.c pin_find) maps
    # the GPIO numbers these tests use to pyboard pins (26..28 to pins with an ADC channel).
    machine.Pin.dict({n: machine.Pin(name) for n, name in (
        (3, "Y3"), (4, "Y4"), (5, "X9"), (7, "Y7"), (9, "Y9"), (11, "Y11"), (13, "Y2"), (14, "Y1"), (15, "X10"),
        (25, "LED_RED"), (26, "X19"), (27, "X20"), (28, "X21"))})
# The battery's ADC pin: GPIO 28 on the Pico (and 28 -> X21 above); the ESP32's ADC1 starts at 32
# (ports/esp32/machine_adc.c), and its GPIO 28 does not exist.
BATTERY_ADC = 34 if machine.PORT == "esp32" else 28


# -- fakes ------------------------------------------------------------------------------------------


class FakeSteps:
    """The Steps contract (hal/interfaces.py): a burst runs until the test finishes it."""

    def __init__(self):
        self.running = 0  # steps of the burst running, 0 when idle
        self.started = 0  # bursts started
        self.stopped = 0  # bursts aborted
        self.done = 0  # bursts completed (what bursts() reports)
        self.last_n = 0

    def start(self, n):
        assert not self.running, "start() while busy"
        assert 1 <= n <= 65535
        self.running = n
        self.last_n = n
        self.started += 1

    def busy(self):
        return self.running != 0

    def bursts(self):
        return self.done

    def stop(self):
        if self.running:
            self.stopped += 1
        self.running = 0

    # test hook
    def finish(self):
        if self.running:
            self.running = 0
            self.done = (self.done + 1) & COUNT_MASK


def _train(clock, base, count, first_ms, first_rem, period_ms, period_rem, den):
    t = StrokeTrain()
    t.first(first_ms, first_rem)
    t.period(period_ms, period_rem)
    t.set(clock.ticks_ms(), base, count, den)
    return t


def _exact_times(first_ms, first_rem, period_ms, period_rem, den, count):
    """ceil(tau_k) for k = 1..count, never below 0 (StrokeTrain's definition)."""
    out = []
    for k in range(count):
        num = first_ms * den + first_rem + k * (period_ms * den + period_rem)
        t = -(-num // den)
        out.append(t if t > 0 else 0)
    return out


class Rig:
    """A StrokeMotor on fake ticks and fake steps; run() polls it once a ms, as wait() would."""

    def __init__(self, burst_ms=1, enable_pin=None, stall_pin=None, load_adc=None, steps_per_stroke=200):
        machine.reset_fakes()
        self.clock = FakeClock()
        self.steps = FakeSteps()
        self.motor = StrokeMotor(self.clock, self.steps, steps_per_stroke, enable_pin, stall_pin, load_adc)
        self.burst_ms = burst_ms  # a burst lasts this long
        self.fired = []  # ms (since the rig started) at which bursts started
        self.faults = []
        self.motor.on_fault(self.faults.append)
        self._ends = -1

    def step(self):
        """One ms: the burst engine runs, then the clock polls the motor."""
        if self.steps.running and self.clock.now_ms >= self._ends:
            self.steps.finish()
        started = self.steps.started
        self.motor.poll(self.clock.ticks_ms())
        if self.steps.started != started:
            self.fired.append(self.clock.now_ms)
            self._ends = self.clock.now_ms + self.burst_ms
        self.clock.advance(1)

    def run(self, ms):
        for _ in range(ms):
            self.step()


# -- motor ------------------------------------------------------------------------------------------


def test_motor_fires_each_stroke_at_its_ms_never_early():
    rig = Rig()
    # tau_k = 10 + 1/3 + (k-1) * (7 + 2/3) ms: the cursor's carries land on different ms.
    train = _train(rig.clock, 0, 12, 10, 1, 7, 2, 3)
    rig.motor.start(train)
    rig.run(200)
    expected = _exact_times(10, 1, 7, 2, 3, 12)
    assert rig.fired == expected, (rig.fired, expected)
    assert rig.motor.strokes() == 12
    assert rig.steps.last_n == 200 and rig.steps.started == 12
    assert rig.motor.faults() == 0 and rig.faults == []


def test_motor_overdue_strokes_fire_at_once_one_burst_at_a_time():
    rig = Rig(burst_ms=5)
    train = _train(rig.clock, 0, 4, -30, 0, 2, 0, 1)  # strokes at -30, -28, -26, -24: all overdue
    rig.motor.start(train)
    rig.run(40)
    assert rig.fired == [0, 5, 10, 15]  # each as soon as the previous burst completed
    assert rig.motor.strokes() == 4


def test_motor_is_late_rather_than_early_with_long_bursts():
    rig = Rig(burst_ms=9)
    rig.motor.start(_train(rig.clock, 0, 5, 3, 0, 4, 0, 1))  # due 3, 7, 11, 15, 19
    rig.run(100)
    due = [3, 7, 11, 15, 19]
    assert len(rig.fired) == 5
    for t, d in zip(rig.fired, due):
        assert t >= d
    assert rig.fired == [3, 12, 21, 30, 39]


def test_motor_skips_the_strokes_already_fired_per_base():
    rig = Rig()
    rig.motor.start(_train(rig.clock, 0, 3, 1, 0, 1, 0, 1))
    rig.run(10)
    assert rig.motor.strokes() == 3
    # The controller planned from count 2 (stroke 3 fired after it read strokes()): stroke 1 of
    # the new train is stroke number 3, already fired, so it is skipped.
    rig.fired = []
    origin_ms = rig.clock.now_ms
    rig.motor.start(_train(rig.clock, 2, 4, 5, 0, 10, 0, 1))  # numbers 3, 4, 5, 6 at +5, 15, 25, 35
    rig.run(60)
    assert [t - origin_ms for t in rig.fired] == [15, 25, 35]
    assert rig.motor.strokes() == 6
    # A train entirely fired already: nothing.
    rig.fired = []
    rig.motor.start(_train(rig.clock, 3, 3, 0, 0, 1, 0, 1))
    rig.run(20)
    assert rig.fired == [] and rig.motor.strokes() == 6


def test_motor_counts_the_burst_in_flight_as_fired():
    rig = Rig(burst_ms=20)
    rig.motor.start(_train(rig.clock, 0, 3, 0, 0, 50, 0, 1))
    rig.run(5)  # stroke 1's burst runs: completed count still 0
    assert rig.steps.running and rig.motor.strokes() == 0
    # Replanned from count 0: stroke 1 of the new train is the one in flight.
    origin_ms = rig.clock.now_ms
    rig.motor.start(_train(rig.clock, 0, 2, 0, 0, 30, 0, 1))
    rig.fired = []
    rig.run(100)
    assert rig.motor.strokes() == 2
    assert [t - origin_ms for t in rig.fired] == [30]


def test_motor_stop_lets_the_running_burst_finish_and_fires_no_more():
    rig = Rig(burst_ms=10)
    rig.motor.start(_train(rig.clock, 0, 5, 0, 0, 20, 0, 1))
    rig.run(3)
    rig.motor.stop()
    rig.run(100)
    assert rig.fired == [0] and rig.motor.strokes() == 1 and rig.steps.stopped == 0


def test_motor_walks_a_train_across_the_tick_wrap():
    rig = Rig()
    # FakeClock starts 300 000 ms before the 2**30 wrap: move to 5 ms before it.
    rig.clock.advance(300_000 - 5)
    origin = rig.clock.ticks_ms()
    rig.motor.start(_train(rig.clock, 0, 4, 3, 0, 2, 0, 1))  # the wrap falls between strokes 1 and 2
    rig.run(20)
    assert rig.fired == [300_000 - 5 + 3, 300_000 - 5 + 5, 300_000 - 5 + 7, 300_000 - 5 + 9]
    assert rig.clock.ticks_diff(rig.clock.ticks_ms(), origin) == 20
    assert rig.motor.strokes() == 4


def test_motor_stroke_count_is_masked():
    rig = Rig()
    rig.motor._count = COUNT_MASK
    rig.motor.start(_train(rig.clock, COUNT_MASK, 2, 0, 0, 1, 0, 1))
    rig.run(5)
    assert rig.motor.strokes() == 1  # COUNT_MASK + 2, masked


def test_motor_stall_pin_marks_the_stroke_not_completed():
    stall = machine.Pin(7, machine.Pin.IN)
    rig = Rig(burst_ms=10, stall_pin=stall)
    rig.motor.start(_train(rig.clock, 0, 5, 0, 0, 20, 0, 1))
    rig.run(25)  # stroke 1 completes, stroke 2 starts at 20
    assert rig.motor.strokes() == 1 and rig.steps.running
    stall.drive(1)  # TMC2209 DIAG high during stroke 2
    rig.run(1)
    assert rig.steps.stopped == 1 and not rig.steps.running
    assert rig.faults == [MOTOR_STALL]
    assert rig.motor.faults() == MOTOR_STALL and rig.motor.faults() == 0  # latched, cleared by the read
    stall.drive(0)
    rig.run(200)
    assert rig.motor.strokes() == 1 and rig.fired == [0, 20]  # not completed; the train ended
    # A retry: a new train from count 1 fires stroke 2 again.
    rig.motor.start(_train(rig.clock, 1, 1, 0, 0, 1, 0, 1))
    rig.run(20)
    assert rig.motor.strokes() == 2 and rig.faults == [MOTOR_STALL]


def test_motor_stall_pin_by_id_is_an_input():
    rig = Rig(stall_pin=9, enable_pin=4)
    assert machine.Pin.get(9).mode == machine.Pin.IN
    assert machine.Pin.get(4).mode == machine.Pin.OUT
    assert machine.Pin.get(4).value() == 0  # active-low EN: the driver is on
    assert rig.motor.load() == LOAD_NORMAL


def test_motor_load_calibrates_then_counts_pressed_and_overloads():
    adc = machine.ADC(machine.Pin(26))
    rig = Rig(burst_ms=3, load_adc=adc)
    rig.motor.set_load_limit(200)
    rig.motor.set_pressure_load(110)
    rig.motor.start(_train(rig.clock, 0, 100, 0, 0, 10, 0, 1))
    adc.set_u16(10_000)
    rig.run(10 * CALIBRATION_STROKES)
    assert rig.motor.strokes() == CALIBRATION_STROKES
    assert rig.motor.load() == LOAD_NORMAL and rig.motor.pressed() == 0
    adc.set_u16(10_500)  # 105 %: normal
    rig.run(10)
    assert rig.motor.load() == 105 and rig.motor.pressed() == 0
    adc.set_u16(11_500)  # 115 %: above the pressure load
    rig.run(20)
    assert rig.motor.load() == 115 and rig.motor.pressed() == 2 and rig.motor.pressed() == 0
    assert rig.faults == []
    adc.set_u16(20_000)  # 200 %: the limit
    rig.run(10)
    n = rig.motor.strokes()
    assert rig.motor.load() == 200
    assert rig.faults == [MOTOR_OVERLOAD] and rig.motor.faults() == MOTOR_OVERLOAD
    assert rig.motor.pressed() == 1  # the overloading stroke completed above the pressure load
    rig.run(100)
    assert rig.motor.strokes() == n  # the train ended
    assert n == CALIBRATION_STROKES + 4


def test_motor_load_is_the_mean_over_the_burst():
    adc = machine.ADC(machine.Pin(27))
    rig = Rig(burst_ms=4, load_adc=adc)
    adc.set_u16(8_000)
    rig.motor.start(_train(rig.clock, 0, CALIBRATION_STROKES + 1, 0, 0, 10, 0, 1))
    rig.run(10 * CALIBRATION_STROKES)
    # The last burst starts at ms 80 and completes at 84: it is sampled at 81, 82 and 83.
    rig.run(1)
    for u16 in (9_000, 12_000, 15_000):
        adc.set_u16(u16)
        rig.run(1)
    adc.set_u16(60_000)  # after the burst: not part of its load
    rig.run(5)
    assert rig.motor.strokes() == CALIBRATION_STROKES + 1
    assert rig.motor.load() == 150


def test_motor_enable_false_stops_everything():
    en = machine.Pin(4, machine.Pin.OUT)
    rig = Rig(burst_ms=10, enable_pin=en)
    assert en.value() == 0
    rig.motor.start(_train(rig.clock, 0, 10, 0, 0, 20, 0, 1))
    rig.run(25)
    assert rig.motor.strokes() == 1 and rig.steps.running
    rig.motor.enable(False)
    assert en.value() == 1  # active-low EN high: the driver's outputs are off
    assert rig.steps.stopped == 1 and not rig.steps.running
    rig.run(200)
    assert rig.motor.strokes() == 1 and rig.fired == [0, 20]  # the aborted burst is not a stroke
    rig.motor.start(_train(rig.clock, 1, 5, 0, 0, 1, 0, 1))  # a train while disabled: nothing moves
    rig.run(50)
    assert rig.fired == [0, 20] and rig.motor.strokes() == 1
    rig.motor.enable(True)
    assert en.value() == 0
    rig.run(50)
    assert rig.fired == [0, 20]  # the train started while disabled stays ended
    rig.motor.start(_train(rig.clock, 1, 1, 0, 0, 1, 0, 1))
    rig.run(20)
    assert rig.motor.strokes() == 2


def test_motor_encoder_reports_uncommanded_strokes_and_stalls():
    enc = machine.Pin(11, machine.Pin.IN)
    rig = Rig(burst_ms=5)
    rig.motor.encoder(enc, 4)
    rig.motor.start(_train(rig.clock, 0, 2, 0, 0, 20, 0, 1))
    rig.run(2)
    enc.bounce([1, 0, 1, 0, 1, 0, 1, 0])  # the rotor turns with the burst: 4 pulses
    rig.run(10)
    assert rig.motor.strokes() == 1 and rig.faults == []
    enc.bounce([1, 0] * 4)  # outside a burst: a stroke nobody commanded
    rig.run(1)
    assert rig.motor.strokes() == 2 and rig.faults == [MOTOR_UNCOMMANDED]
    assert rig.motor.faults() == MOTOR_UNCOMMANDED
    rig.run(20)  # stroke 2 of the train: steps go out, the rotor does not turn
    assert rig.fired == [0, 20]
    assert rig.motor.strokes() == 2 and rig.faults == [MOTOR_UNCOMMANDED, MOTOR_STALL]


# -- clocks -----------------------------------------------------------------------------------------


class Probe:
    """A Poller that records the ticks it was polled with."""

    def __init__(self):
        self.polls = []

    def poll(self, now):
        self.polls.append(now)


def _fake_machine_clock(clock_cls=MachineClock):
    fake = FakeClock()
    c = clock_cls()
    c.ticks_ms = fake.ticks_ms
    c.ticks_add = fake.ticks_add
    c.ticks_diff = fake.ticks_diff
    c._sleep_ms = fake.advance
    return c, fake


def test_machine_clock_binds_the_ports_ticks():
    import time

    c = MachineClock()
    assert c.ticks_add is time.ticks_add and c.ticks_diff is time.ticks_diff
    t = c.ticks_ms()
    assert 0 <= t < SMALL


def test_machine_clock_wait_returns_at_the_deadline():
    c, fake = _fake_machine_clock()
    p = Probe()
    c.add_poller(p)
    start = fake.ticks_ms()
    deadline = fake.ticks_add(start, 25)
    assert c.wait(deadline, lambda: False) is True
    assert fake.ticks_diff(fake.ticks_ms(), deadline) == 0
    assert len(p.polls) == 26 and p.polls[0] == start and p.polls[-1] == deadline
    # A deadline already past: polled once, returns at once.
    assert c.wait(fake.ticks_add(deadline, -5), lambda: False) is True
    assert len(p.polls) == 27 and fake.ticks_diff(fake.ticks_ms(), deadline) == 0


def test_machine_clock_wait_returns_on_ready():
    fake = FakeClock()
    p = Probe()
    c = MachineClock((p,))
    c.ticks_ms = fake.ticks_ms
    c.ticks_diff = fake.ticks_diff
    c._sleep_ms = fake.advance
    calls = [0]

    def ready():
        calls[0] += 1
        return calls[0] >= 4

    assert c.wait(fake.ticks_add(fake.ticks_ms(), 1000), ready) is True
    assert fake.now_ms == 3 and len(p.polls) == 4  # polled before each ready() check


def test_machine_clock_wait_on_the_ports_ticks():
    c = MachineClock()
    p = Probe()
    c.add_poller(p)
    t0 = c.ticks_ms()
    c.wait(c.ticks_add(t0, 5), lambda: False)
    assert c.ticks_diff(c.ticks_ms(), t0) >= 5 and len(p.polls) >= 2


def test_demo_clock_runs_speed_times_faster():
    real = FakeClock()
    c = DemoClock(480)
    c._real_ms = real.ticks_ms
    c._real = real.ticks_ms()
    c._virtual = 1000
    c._sleep_ms = real.advance
    p = Probe()
    c.add_poller(p)
    assert c.ticks_ms() == 1000
    c.advance()
    assert c.ticks_ms() == 1000  # no real time passed
    real.advance(1)
    assert c.ticks_ms() == 1000  # virtual time moves in wait() (and advance()) only
    c.advance()
    assert c.ticks_ms() == 1000 + 480
    # wait: a deadline 1 virtual minute on takes 125 real ms (60 000 / 480).
    deadline = c.ticks_add(c.ticks_ms(), 60_000)
    before = real.now_ms
    assert c.wait(deadline, lambda: False) is True
    assert real.now_ms - before == 125
    assert c.ticks_diff(c.ticks_ms(), deadline) == 0
    assert p.polls[-1] == c.ticks_ms() and p.polls[1] == c.ticks_add(p.polls[0], 480)


def _demo_clock(speed):
    real = FakeClock()
    c = DemoClock(speed)
    c.ticks_add = real.ticks_add
    c.ticks_diff = real.ticks_diff
    c._real_ms = real.ticks_ms
    c._real = real.ticks_ms()
    c._virtual = real.ticks_ms()
    c._sleep_ms = real.advance
    return c, real


class _SlowPolls:
    """A host whose polls take `ms` real ms each (the clock's own 1 ms sleep included)."""

    def __init__(self, real, ms):
        self.real = real
        self.ms = ms

    def poll(self, now):
        self.real.advance(self.ms - 1)


def test_demo_clock_never_passes_the_deadline():
    # A wake after its deadline is late; the firmware writes off what a wake over 1 s late owed
    # (firmware/limits.py LATE_WAKE_MS). At 480x one real ms is 480 virtual ms, and a busy host's
    # poll 5 real ms (2400 virtual): the clock stops at each deadline all the same.
    c, real = _demo_clock(480)
    c.add_poller(_SlowPolls(real, 5))
    t = c.ticks_ms()
    for step in (100, 1, 479, 2399, 2401, 60_000, 7):
        deadline = c.ticks_add(t, step)
        assert c.wait(deadline, lambda: False) is True
        assert c.ticks_ms() == deadline, (step, c.ticks_diff(c.ticks_ms(), deadline))
        t = deadline


def test_demo_clock_pays_back_the_time_it_withheld_at_most_a_quarter_faster():
    c, real = _demo_clock(480)
    p = Probe()
    c.add_poller(p)
    start = c.ticks_ms()
    # The deadline 100 virtual ms on is reached at the first real ms: 380 virtual ms are withheld.
    c.wait(c.ticks_add(start, 100), lambda: False)
    assert c.ticks_diff(c.ticks_ms(), start) == 100 and c.owed == 380 and real.now_ms == 1
    # The firmware's service takes 10 real ms: 4800 more owed. Then a far deadline: each poll runs
    # at most 600 virtual ms (480 x 5/4), so virtual time never jumps, until the debt is paid.
    real.advance(10)
    del p.polls[:]
    c.wait(c.ticks_add(start, 3_600_000), lambda: False)
    steps = [c.ticks_diff(p.polls[i + 1], p.polls[i]) for i in range(len(p.polls) - 1)]
    assert c.ticks_diff(p.polls[0], start) == 100 + 600
    assert max(steps) == 600 and steps[0] == 600 and steps[-1] == 480
    assert (5180 - 600) // 120 <= steps.index(480) <= (5180 - 600) // 120 + 1  # then 120 of the rest paid per ms
    # The average speed holds: every real ms has run 480 virtual ms once the debt is paid.
    assert c.owed == 0 and c.ticks_diff(c.ticks_ms(), start) == 480 * real.now_ms


def test_demo_clock_owes_at_most_a_real_second_and_wraps_like_ticks_add():
    c, real = _demo_clock(10_000)
    ref = FakeClock()
    c._virtual = ref.ticks_ms()  # near the tick wrap
    # The host slept 200 real s (2e9 virtual ms at x10 000): a real second is owed, the rest dropped,
    # and a poll runs at most 12 500 of it.
    real.advance(200_000)
    c.advance()
    assert c.owed == 10_000_000 - 12_500 and c.ticks_ms() == ref.ticks_add(ref.ticks_ms(), 12_500)
    n = 0
    while c.owed:
        real.advance(1)
        c.advance()
        n += 1
    # Each real ms runs 10 000 and pays 2 500 of the debt; about 4000 real ms pay it all.
    assert 3990 <= n <= 4000, n
    expect = ref.ticks_ms()
    left = 10_000_000 + n * 10_000
    while left:
        d = left if left < 500_000_000 else 500_000_000
        expect = ref.ticks_add(expect, d)
        left -= d
    assert c.ticks_ms() == expect and 0 <= c.ticks_ms() < SMALL


def test_demo_clock_speed_is_validated():
    for bad in (0, -5, 10_001, 1.5, True, "480", None):
        try:
            DemoClock(bad)
        except ValueError as e:
            assert "demo_speed" in str(e)
        else:
            raise AssertionError("DemoClock(%r) accepted" % (bad,))
    assert DemoClock(1).speed == 1 and DemoClock(10_000).speed == 10_000


# -- buzzer -----------------------------------------------------------------------------------------


# The pyboard's buzzer is a pyb.Timer channel on a pin with one (X9: TIM4 CH1); elsewhere machine.PWM.
BUZZER = "X9" if machine.PORT == "stm32" else 15


def _buzzer(pin=BUZZER):
    machine.reset_fakes()
    fake = FakeClock()
    b = Buzzer(pin)
    b.ticks_ms = fake.ticks_ms
    b._ticks_add = fake.ticks_add
    b._ticks_diff = fake.ticks_diff
    return b, fake


def _out(b):
    """(freq Hz, duty_u16) the buzzer's output is set to. pyboard: from the timer's registers
    (source / (prescaler + 1) / (period + 1), rounded; 50 % to within one timer tick is DUTY_ON)."""
    if machine.PORT != "stm32":
        return b._pwm.freq(), b._pwm.duty_u16()
    tim, ch = b._pwm.tim, b._pwm.ch
    top = tim.period() + 1
    div = (tim.prescaler() + 1) * top
    cmp = ch.pulse_width()
    return (tim.source_freq() + div // 2) // div, DUTY_ON if 2 * cmp in (top - 1, top) else cmp * 65536 // top


def _play(b, fake, ms):
    """Poll every ms; return the (ms, freq, duty) of every change of the output."""
    out = []
    last = _out(b)
    for _ in range(ms):
        b.poll(0)  # the tick passed is ignored: patterns run in real time
        now = _out(b)
        if now != last:
            out.append((fake.now_ms, now[0], now[1]))
            last = now
        fake.advance(1)
    return out


def _sounding(changes):
    """[(start ms, freq, length ms)] of each sounding step, merging freq+duty updates of one step."""
    spans = []
    on = None
    for t, f, d in changes:
        if on is not None and (d == 0 or f != on[1] or t != on[0]):
            if d == 0 or t != on[0]:
                spans.append((on[0], on[1], t - on[0]))
                on = None
        if d:
            on = (t, f)
    return spans


def test_buzzer_critical_is_two_tones_alternating_over_3_s():
    b, fake = _buzzer()
    if machine.PORT == "stm32":  # the pin is the timer channel's output (pyb.Timer.channel(pin=))
        assert machine.Pin.get(BUZZER).mode == machine.Pin.ALT and b._pwm.ch.drives_pin and b._pwm.tim.id != 2
    else:
        assert machine.Pin.get(BUZZER).mode == machine.Pin.OUT
    b.tone(CRITICAL, 3)
    changes = _play(b, fake, 3500)
    spans = _sounding(changes)
    freqs = [f for _, f, _ in spans]
    assert len(set(freqs)) == 2
    for i in range(1, len(freqs)):
        assert freqs[i] != freqs[i - 1]  # alternating
    assert spans[0][0] == 0 and sum(n for _, _, n in spans) == 3000
    assert changes[-1][2] == 0 and changes[-1][0] == 3000  # silent at exactly 3 s
    assert not b.playing()


def test_buzzer_non_critical_is_one_1_s_tone():
    b, fake = _buzzer()
    fake.advance(123)
    b.tone(NON_CRITICAL, 6)
    changes = _play(b, fake, 1500)
    assert _sounding(changes) == [(123, 880, 1000)]
    assert _out(b)[1] == 0


def test_buzzer_chirp_rises_and_beep_low_is_low():
    b, fake = _buzzer()
    b.chirp()
    spans = _sounding(_play(b, fake, 1000))
    assert [f for _, f, _ in spans] == [f for f, _ in CHIRP_PATTERN]
    assert spans[0][1] < spans[1][1] < spans[2][1] and sum(n for _, _, n in spans) <= 400
    b.beep_low()
    spans = _sounding(_play(b, fake, 1000))
    assert len(spans) == 1 and spans[0][1] == BEEP_LOW_PATTERN[0][0] < 400 and spans[0][2] <= 400


def test_buzzer_never_sets_freq_0_and_a_new_sound_replaces_the_old():
    b, fake = _buzzer()
    b.tone(CRITICAL, 3)
    _play(b, fake, 100)
    b.chirp()
    changes = _play(b, fake, 1000)
    assert [f for _, f, _ in _sounding(changes)] == [f for f, _ in CHIRP_PATTERN]
    if machine.PORT == "stm32":
        # pyb's Timer.freq(f) leaves the compare as it was: each tone sets 50 % of its own period
        # (the fake pyb.Timer refuses freq 0 as the port does: "must have positive freq")
        assert all(c == 0 or 2 * c in (top - 1, top) for top, c in b._pwm.ch.history), b._pwm.ch.history
    else:
        assert all(f > 0 for f, _ in b._pwm.history)
        assert all(d in (0, DUTY_ON) for _, d in b._pwm.history)


def test_buzzer_patterns_match_the_firmwares_classes():
    from firmware.alarms import CRITICAL as FW_CRITICAL
    from firmware.alarms import NON_CRITICAL as FW_NON_CRITICAL

    assert CRITICAL == FW_CRITICAL == 2 and NON_CRITICAL == FW_NON_CRITICAL == 1


# -- LED --------------------------------------------------------------------------------------------


def _led(pin=25):
    machine.reset_fakes()
    fake = FakeClock()
    led = Led(pin)
    led.ticks_ms = fake.ticks_ms
    led._ticks_add = fake.ticks_add
    led._ticks_diff = fake.ticks_diff
    return led, machine.Pin.get(pin), fake


def _levels(led, pin, fake, ms):
    """The pin level at each ms."""
    out = []
    for _ in range(ms):
        led.poll(0)
        out.append(pin.value())
        fake.advance(1)
    return out


def _runs(levels):
    """[(level, length)] of the level sequence."""
    out = []
    for v in levels:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return [tuple(r) for r in out]


def test_led_blink_is_one_short_flash():
    led, pin, fake = _led()
    assert pin.value() == 0
    led.blink()
    assert _runs(_levels(led, pin, fake, 200)) == [(1, BLINK_MS), (0, 200 - BLINK_MS)]
    assert led.showing() is None and led.blinks == 1


def test_led_alarm_patterns_slow_fast_and_fault():
    led, pin, fake = _led()
    led.pattern(1)
    slow = _runs(_levels(led, pin, fake, 6000))
    assert slow[:4] == [(1, 200), (0, 1800), (1, 200), (0, 1800)]
    led.pattern(2)
    fast = _runs(_levels(led, pin, fake, 1000))
    assert fast[:4] == [(1, 100), (0, 150), (1, 100), (0, 150)]
    assert sum(1 for v, _ in fast if v) == 4  # 4 flashes a second
    led.fault()
    fault = _runs(_levels(led, pin, fake, 3000))
    assert fault[:7] == [(1, 120), (0, 120), (1, 120), (0, 120), (1, 120), (0, 1000), (1, 120)]
    assert FAULT_PATTERN not in (SLOW_PATTERN, FAST_PATTERN)
    led.off()
    assert _runs(_levels(led, pin, fake, 3000)) == [(0, 3000)]


def test_led_blink_is_ignored_while_an_alarm_shows_and_pattern_keeps_its_phase():
    led, pin, fake = _led()
    led.pattern(1)
    _levels(led, pin, fake, 500)  # in the off part of the slow pattern
    led.blink()
    led.pattern(1)  # the board re-asserting the same class does not restart it
    assert led.showing() is SLOW_PATTERN and led.blinks == 0
    levels = _levels(led, pin, fake, 1500)
    assert levels == [0] * 1500


# -- button -----------------------------------------------------------------------------------------


def _button(pin=14, debounce_ms=50, active_low=True):
    machine.reset_fakes()
    fake = FakeClock()
    sched = FakeScheduler()
    b = Button(pin, debounce_ms, active_low)
    b.ticks_ms = fake.ticks_ms
    b._ticks_diff = fake.ticks_diff
    return b, machine.Pin.get(pin), fake, sched


class _Swap:
    """machine_button's micropython replaced by a FakeScheduler while a test runs."""

    def __init__(self, sched):
        self.sched = sched
        self.real = machine_button.micropython

    def __enter__(self):
        machine_button.micropython = self.sched
        return self.sched

    def __exit__(self, *exc):
        machine_button.micropython = self.real
        return False


def test_button_pin_is_pulled_up_with_an_irq_on_the_falling_edge():
    b, pin, fake, sched = _button()
    assert pin.mode == machine.Pin.IN and pin.pull == machine.Pin.PULL_UP
    assert pin.trigger == machine.Pin.IRQ_FALLING and pin.handler is b._irq_ref
    assert pin.value() == 1 and b.pending() == 0
    b2, pin2, _, _ = _button(13, active_low=False)
    assert pin2.pull == machine.Pin.PULL_DOWN and pin2.trigger == machine.Pin.IRQ_RISING


def test_button_bounces_within_debounce_count_once():
    b, pin, fake, sched = _button()
    with _Swap(sched):
        pin.bounce([0, 1, 0, 1, 0])  # contact bounce within the first ms
        assert len(sched.queue) == 1  # edges of one bounce coalesce into one scheduled call
        sched.run()
        assert b.pending() == 1
        for _ in range(4):  # more bounces up to 40 ms later, each read pressed
            fake.advance(10)
            pin.bounce([1, 0])
            sched.run()
        assert b.pending() == 1
        fake.advance(200)
        pin.drive(1)  # released
        sched.run()
        assert b.presses() == 1 and b.pending() == 0 and b.presses() == 0


def test_button_two_presses_apart_count_twice():
    b, pin, fake, sched = _button()
    with _Swap(sched):
        pin.drive(0)
        sched.run()
        fake.advance(150)
        pin.drive(1)
        fake.advance(150)
        pin.drive(0)
        sched.run()
        assert b.pending() == 2 and b.presses() == 2


def test_button_edge_that_no_longer_reads_pressed_is_a_glitch():
    b, pin, fake, sched = _button()
    with _Swap(sched):
        pin.bounce([0, 1])  # a spike: released again before the scheduled call reads the pin
        sched.run()
        assert b.pending() == 0 and b.edges == 1


def test_button_accepts_a_press_after_a_tick_wrap_of_silence():
    b, pin, fake, sched = _button()
    with _Swap(sched):
        pin.drive(0)
        sched.run()
        pin.drive(1)
        fake.advance(1 << 28)  # over 6.2 days: the difference wraps negative
        fake.advance((1 << 28) + 20)
        pin.drive(0)
        sched.run()
        assert b.pending() == 2


def test_button_full_schedule_queue_drops_the_edge():
    b, pin, fake, sched = _button()
    full = FakeScheduler(0)
    with _Swap(full):
        pin.drive(0)
        assert b.dropped == 1 and b.pending() == 0
        pin.drive(1)
    with _Swap(sched):
        fake.advance(100)
        pin.drive(0)  # not stuck: the next edge is queued
        sched.run()
        assert b.pending() == 1 and b.dropped == 1


def test_button_irq_handler_allocates_nothing_under_heap_lock():
    if not MICROPYTHON:
        skip("heap_lock is MicroPython's")
    import micropython

    b, pin, fake, sched = _button()
    handler = b._irq_ref
    micropython.heap_lock()
    try:
        for _ in range(50):
            handler(pin)  # the real micropython.schedule; the scheduled call runs at the next jump
            b._queued = False
    finally:
        micropython.heap_unlock()
    assert b.edges == 50 and b.dropped <= 50


def test_button_held_ms_says_how_long_since_the_accepted_press_and_minus_1_once_let_go():
    # A long press is told from a short one by polling held_ms() (pumpboard: toy mode's quiet).
    b, pin, fake, sched = _button()
    with _Swap(sched):
        assert b.held_ms() == -1  # never pressed
        pin.drive(0)
        sched.run()
        assert b.held_ms() == 0
        fake.advance(1499)
        assert b.held_ms() == 1499
        fake.advance(1)
        assert b.held_ms() == 1500 and b.pending() == 1  # one press, however long
        pin.drive(1)
        assert b.held_ms() == -1
        fake.advance(30)
        pin.bounce([0, 1])  # a spike on release: not a press, not held
        sched.run()
        assert b.held_ms() == -1 and b.pending() == 1


def test_button_held_ms_allocates_nothing():
    b, pin, fake, sched = _button()
    with _Swap(sched):
        pin.drive(0)
        sched.run()
    held = b.held_ms

    def run(n):
        i = 0
        while i < n:
            held()
            i += 1

    allocated = _measure(run, 500)
    print("Button.held_ms: %d B over 500 reads" % allocated)
    assert allocated == 0


def test_button_debounce_ms_is_validated():
    for bad in (-1, 1.5, True, 20_000):
        try:
            Button(3, bad)
        except ValueError as e:
            assert "debounce_ms" in str(e)
        else:
            raise AssertionError("debounce_ms %r accepted" % (bad,))


# -- battery ADC ------------------------------------------------------------------------------------


def _floor_mv(raw, ref, num, den):
    return raw * ref * num // (65535 * den)  # exact on the host (and the 64-bit unix port)


def test_battery_adc_scales_by_ref_and_divider_exactly():
    machine.reset_fakes()
    a = BatteryAdc(BATTERY_ADC, 3, 1)
    adc = a._adc
    for raw in (0, 1, 100, 19_859, 32_768, 65_534, 65_535):
        adc.set_u16(raw)
        assert a.read_mv() == _floor_mv(raw, 3300, 3, 1)
    adc.set_u16(65_535)
    assert a.read_mv() == 9900
    adc.set_u16(39_718)  # 2.0 V at the pin of a 3:1 divider: a 6.0 V cell
    assert a.read_mv() == 5999  # floor(39 718 * 9900 / 65 535) = floor(5999.97)
    assert adc.reads == SAMPLES * 9


def test_battery_adc_intermediates_stay_small_at_the_max_ranges():
    # The bounds the module documents, over the whole accepted range:
    assert 65535 * MAX_REF_MV < SMALL  # raw * ref_mv
    assert MAX_REF_MV * MAX_NUM < SMALL  # q * num, q <= ref_mv
    assert 65534 * MAX_NUM < SMALL  # r * num, r < 65535
    assert SAMPLES * 65535 < SMALL  # the sample sum
    # And the function at the corners, against the exact floor.
    for num, den in ((4, 1), (1, 1), (MAX_NUM, MAX_NUM // MAX_RATIO), (MAX_NUM, MAX_NUM), (7, 2)):
        for ref in (1, 3300, MAX_REF_MV):
            a = BatteryAdc(BATTERY_ADC, num, den, ref)
            for raw in (0, 1, 32_767, 65_534, 65_535):
                got = a.to_mv(raw)
                assert got == _floor_mv(raw, ref, num, den), (num, den, ref, raw)
                assert 0 <= got < SMALL
    assert BatteryAdc(BATTERY_ADC, 4, 1, MAX_REF_MV).to_mv(65_535) == 4 * MAX_REF_MV


def test_battery_adc_rejects_bad_dividers_and_ref():
    for num, den in ((5, 1), (1, 2), (0, 1), (3, 0), (MAX_NUM + 1, MAX_NUM), (3.0, 1), (True, 1)):
        try:
            BatteryAdc(BATTERY_ADC, num, den)
        except ValueError as e:
            assert "divider" in str(e)
        else:
            raise AssertionError("divider %r/%r accepted" % (num, den))
    for ref in (0, MAX_REF_MV + 1, 3.3):
        try:
            BatteryAdc(BATTERY_ADC, 3, 1, ref)
        except ValueError as e:
            assert "ref_mv" in str(e)
        else:
            raise AssertionError("ref_mv %r accepted" % (ref,))


def test_fake_machine_keeps_the_ports_errors():
    if machine.PORT != "rp2":  # pin names or other pin ids, other timers: each pinned in its own module
        skip("the %s port's errors are pinned in tests/boards/test_virtual_%s.py" % (machine.PORT, machine.PORT))
    for bad in (-1, 48, "Z9", 2.0):
        try:
            machine.Pin(bad)
        except ValueError:
            pass
        else:
            raise AssertionError("Pin(%r) accepted" % (bad,))
    pwm = machine.PWM(machine.Pin(5))
    for bad in (0, 7):
        try:
            pwm.freq(bad)
        except ValueError:
            pass
        else:
            raise AssertionError("freq(%r) accepted" % (bad,))
    t = machine.Timer()
    hits = []
    t.init(mode=machine.Timer.ONE_SHOT, period=10, callback=hits.append)
    assert t.fire() and not t.fire() and hits == [t]
    t.init(mode=machine.Timer.PERIODIC, freq=100, callback=hits.append)
    assert t.period_ms == 10 and t.fire() and t.fire() and len(hits) == 3
    t.deinit()
    assert not t.fire()
    machine.idle()


# -- the firmware's main loop on these backends -------------------------------------------------------


class _Engine:
    """FakeSteps as a poller: a burst completes at the poll after it started (1 real ms)."""

    def __init__(self, steps):
        self.steps = steps

    def poll(self, now):
        self.steps.finish()


class _World:
    """Presses the PTM button at a virtual time and runs the (fake) schedule queue, as a poller."""

    def __init__(self, clock, pin, sched, press_at):
        self.clock = clock
        self.pin = pin
        self.sched = sched
        self.press_at = press_at
        self.t0 = clock.ticks_ms()

    def poll(self, now):
        t = self.clock.ticks_diff(now, self.t0)
        if self.press_at <= t < self.press_at + 60_000:
            self.pin.drive(0)
        elif t >= self.press_at + 60_000:
            self.pin.drive(1)
        self.sched.run()


def test_pump_loop_runs_on_the_board_backends():
    from fakes_hal import BASAL_NG_PER_DAY, CONCENTRATION, standard_rx

    from firmware.alarms import EV_BOLUS, EV_UNDER_DELIVERY, PTM
    from firmware.loop import PumpLoop
    from firmware.prescription import PumpParams
    from hal.channel import Channel

    machine.reset_fakes()
    real = FakeClock()
    clock = DemoClock(1000)  # a wake is at most 1 virtual s late: within the firmware's LATE_WAKE_MS
    clock._real_ms = real.ticks_ms
    clock._real = real.ticks_ms()
    clock._virtual = real.ticks_ms()
    clock.ticks_add = real.ticks_add
    clock.ticks_diff = real.ticks_diff
    clock._sleep_ms = real.advance
    steps = FakeSteps()
    motor = StrokeMotor(clock, steps, 200, 4)
    buzzer = Buzzer(BUZZER)
    button = Button(14)
    button.ticks_ms = real.ticks_ms
    button._ticks_diff = real.ticks_diff
    cell = BatteryAdc(BATTERY_ADC, 3, 1)
    cell._adc.set_u16(19_859)  # 1.0 V at the pin of a 3:1 divider: a 3.0 V cell
    events = []

    def emit(code, a, b, c):
        events.append((code, a, b, c))

    sched = FakeScheduler()
    with _Swap(sched):
        loop = PumpLoop(clock, motor, buzzer, button, Channel(), cell, PumpParams(), standard_rx(), emit)
        for p in (_Engine(steps), motor, buzzer, _World(clock, machine.Pin.get(14), sched, 3_600_000)):
            clock.add_poller(p)
        end = clock.ticks_add(clock.ticks_ms(), 6 * 3_600_000)
        while True:
            deadline = loop.deadline()
            if clock.ticks_diff(deadline, end) >= 0:
                deadline = end
            assert clock.wait(deadline, loop.ready)
            if clock.ticks_diff(clock.ticks_ms(), end) >= 0:
                break
            loop.service()
    basal = 6 * 3_600_000 * BASAL_NG_PER_DAY // (86_400_000 * CONCENTRATION // 4)  # 250 nL strokes: 500 ng each
    granted = [e for e in events if e[0] == EV_BOLUS and e[1] == PTM]
    assert len(granted) == 1 and granted[0][2] == 0, granted  # one press, granted
    ptm_strokes = granted[0][3] // 500
    assert basal == 300 and ptm_strokes == 40
    assert abs(motor.strokes() - basal - ptm_strokes) <= 1, motor.strokes()
    assert [e for e in events if e[0] == EV_UNDER_DELIVERY] == []
    assert steps.started - (1 if steps.running else 0) == motor.strokes()  # one burst may be in flight
    assert steps.stopped == 0 and motor.faults() == 0
    assert machine.Pin.get(4).value() == 0  # the driver stayed enabled


# -- allocation (unix port, heap unlocked) ----------------------------------------------------------


def _measure(fn, n):
    """Bytes allocated by fn(n), heap unlocked and gc disabled (MicroPython only). fn is a closure
    over at most 4 variables, or a bound method: a closure over more allocates an array at its call."""
    mem = heap_meter()
    if mem is None:
        skip("allocation is measured on MicroPython")
    machine.set_record(False)  # the fakes' history lists would grow
    try:
        fn(10)  # warm up: attributes and caches settle
        before = mem()
        fn(n)
        allocated = mem() - before
    finally:
        heap_meter_done()
        machine.set_record(True)
    return allocated


class _Quiet:
    def __init__(self):
        self.n = 0

    def poll(self, now):
        self.n += 1


def test_motor_poll_allocates_nothing():
    stall = machine.Pin(7, machine.Pin.IN)
    adc = machine.ADC(machine.Pin(26))
    adc.set_u16(12_000)
    rig = Rig(burst_ms=2, stall_pin=stall, load_adc=adc)
    rig.motor.encoder(machine.Pin(11, machine.Pin.IN), 1)
    rig.motor.set_load_limit(1000)
    rig.motor.set_pressure_load(50)  # every stroke counts as pressed: that branch runs too
    motor = rig.motor
    steps = rig.steps
    clock = rig.clock
    train = _train(clock, 0, 100_000, 0, 0, 3, 1, 3)
    motor.start(train)
    pin = machine.Pin.get(11)

    def run(n):
        i = 0
        while i < n:
            if steps.running and i & 1:
                steps.finish()
                pin.drive(1)  # one encoder pulse per stroke: the rotor turned
                pin.drive(0)
            motor.poll(clock.tick)
            clock.tick = clock.ticks_add(clock.tick, 1)
            i += 1

    before = motor.strokes()
    allocated = _measure(run, 3000)
    strokes = motor.strokes() - before
    print("StrokeMotor.poll: %d B over 3000 polls, %d strokes" % (allocated, strokes))
    assert strokes > 500 and rig.faults == []
    assert motor.load() == LOAD_NORMAL and motor.pressed() > 500
    assert allocated == 0, "%d B allocated" % allocated


def test_motor_start_allocates_nothing():
    rig = Rig()
    motor = rig.motor
    trains = (_train(rig.clock, 0, 50, 0, 0, 10, 0, 1), _train(rig.clock, 0, 50, 5, 0, 10, 0, 1))

    def run(n):
        i = 0
        while i < n:
            motor.start(trains[i & 1])
            i += 1

    allocated = _measure(run, 500)
    print("StrokeMotor.start: %d B over 500 starts" % allocated)
    assert allocated == 0


def test_buzzer_led_polls_allocate_nothing():
    b, fake = _buzzer()
    led, pin, lfake = _led()
    led.ticks_ms = fake.ticks_ms

    def run(n):
        i = 0
        while i < n:
            if i % 4000 == 0:
                b.tone(CRITICAL, 2)
                led.pattern(2)
            if i % 4000 == 3500:
                b.chirp()
                led.off()
                led.blink()
            b.poll(0)
            led.poll(0)
            fake.tick = fake.ticks_add(fake.tick, 1)
            i += 1

    allocated = _measure(run, 8000)
    print("Buzzer.poll + Led.poll: %d B over 8000 ms" % allocated)
    assert allocated == 0


def test_clock_wait_allocates_nothing():
    c, fake = _fake_machine_clock()
    q = _Quiet()
    c.add_poller(q)
    c.add_poller(_Quiet())
    never = _never

    def run(n):
        i = 0
        while i < n:
            c.wait(fake.ticks_add(fake.tick, 20), never)
            i += 1

    allocated = _measure(run, 100)
    print("MachineClock.wait: %d B over 100 waits of 20 ms" % allocated)
    assert q.n >= 2000 and allocated == 0

    d = DemoClock(480)
    real = FakeClock()
    d._real_ms = real.ticks_ms
    d._real = real.ticks_ms()
    d._sleep_ms = real.advance
    d.add_poller(q)

    def run_demo(n):
        i = 0
        while i < n:
            d.wait(d.ticks_add(d.ticks_ms(), 20_000), never)
            i += 1

    allocated = _measure(run_demo, 100)
    print("DemoClock.wait: %d B over 100 waits of 20 virtual s" % allocated)
    assert allocated == 0


def _never():
    return False


class _ButtonAndCell:
    def __init__(self):
        self.b, self.pin, self.fake, _ = _button()
        self.a = BatteryAdc(BATTERY_ADC, 3, 1)
        self.a._adc.set_u16(40_000)
        self.taken = 0

    def run(self, n):
        b = self.b
        i = 0
        while i < n:
            self.pin.level = i & 1
            b._irq_ref(self.pin)  # the IRQ: the real micropython.schedule, run at the next jump
            self.fake.tick = self.fake.ticks_add(self.fake.tick, 30)
            b.pending()
            self.a.read_mv()
            i += 1
        self.taken += b.presses()


def test_button_and_battery_reads_allocate_nothing():
    rig = _ButtonAndCell()
    allocated = _measure(rig.run, 500)
    assert rig.b.edges == 510 and rig.b.dropped == 0 and not rig.b._queued
    assert rig.taken > 100 and rig.a._adc.reads >= 500 * SAMPLES  # presses debounced and counted
    print("Button IRQ + scheduled debounce + BatteryAdc.read_mv: %d B over 500" % allocated)
    assert allocated == 0
