"""The simulator's clock has the boards' tick semantics, and a deadline across its wrap fires on time."""

from sim.clock import TICKS_PERIOD, SimClock


def test_ticks_wrap_at_2_pow_30_like_the_boards():
    c = SimClock()
    assert c.ticks_ms() == TICKS_PERIOD - 300_000  # 5 minutes before a wrap
    deadline = c.ticks_add(c.ticks_ms(), 400_000)
    assert deadline == 100_000
    assert c.ticks_diff(deadline, c.ticks_ms()) == 400_000
    c.advance_to(399_999)
    assert c.ticks_diff(deadline, c.ticks_ms()) == 1
    c.advance_to(400_000)
    assert c.ticks_ms() == deadline and c.ticks_diff(deadline, c.ticks_ms()) == 0
    assert c.ticks_diff(c.ticks_add(0, -1), 0) == -1
    assert c.ticks_diff(c.ticks_add(0, (1 << 29) - 1), 0) == (1 << 29) - 1


def test_controller_deadline_across_the_wrap_fires_on_time():
    from sim import runner, scenario

    text = '[drug]\nconcentration_mcg_ml = 2000\n[basal]\nsteps = [{start = "00:00", mcg_per_day = 600}]\n'
    text += "[limits]\nmax_daily_mcg = 700\n"
    r = runner.simulate(scenario.parse("days = 1\n" + text, "wrap.toml"))
    # The 5th stroke (360 s) is the first after the wrap at 300 s: still exactly on its 72 s grid.
    assert list(r.stroke_times[:6]) == [72_000 * k for k in range(1, 7)]
