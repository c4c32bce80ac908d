# The board watchdog (hal/machine_watchdog.py) over each virtual port's machine.WDT, whose limits
# come from the port's ports/<port>/machine_wdt.c (MicroPython v1.28.0): on CPython and on the
# MicroPython unix port (tools/run_boards.sh), one port per run.

import machine
from support import heap_meter, heap_meter_done, raises

from hal.machine_watchdog import LIMITS_MS, MachineWatchdog, check_timeout, port_name

# The limits as the C sources state them (an oracle independent of LIMITS_MS): the first timeout
# refused below and above the accepted range; None: no upper bound in the port's C.
EDGES = {"rp2": (0, 8389), "esp32": (0, None), "stm32": (0, 32768)}


def test_the_virtual_port_is_the_one_named():
    assert port_name() == machine.PORT


def test_the_ports_own_wdt_refuses_what_its_c_source_refuses():
    machine.reset_fakes()
    low, high = EDGES[machine.PORT]
    raises(ValueError, lambda: machine.WDT(timeout=-1))
    if machine.PORT != "rp2":  # rp2's C starts a dog of 0 ms (it bites at once); the others refuse it
        raises(ValueError, lambda: machine.WDT(timeout=low))
    if high is not None:
        machine.WDT(timeout=high - 1)
        raises(ValueError, lambda: machine.WDT(timeout=high))
    raises(ValueError, lambda: machine.WDT(id=1, timeout=1000))


def test_the_backend_refuses_an_out_of_range_timeout_before_starting_the_dog():
    machine.reset_fakes()
    low, high = EDGES[machine.PORT]
    for bad in (low, -5, high, True, "1000", 1000.0):
        if bad is None:
            continue
        e = raises(ValueError, lambda: MachineWatchdog(bad))
        assert "watchdog.timeout_ms" in str(e) and machine.PORT in str(e)
    assert not machine.WDT.started  # nothing was started
    e = raises(ValueError, lambda: check_timeout("unix", 1000))
    assert "no known timeout limits" in str(e)


def test_the_backend_starts_the_dog_at_its_timeout_and_feeds_it():
    machine.reset_fakes()
    high = EDGES[machine.PORT][1]
    longest = high - 1 if high is not None else LIMITS_MS[machine.PORT][1]
    for timeout_ms in (1, 4000, longest):
        dog = MachineWatchdog(timeout_ms)
        assert dog.timeout_ms == timeout_ms
        wdt = machine.WDT.started[-1]
        assert wdt.timeout_ms == timeout_ms and wdt.feeds == 0
        dog.feed()
        dog.feed()
        assert wdt.feeds == 2


def test_feeding_allocates_nothing():
    machine.reset_fakes()
    dog = MachineWatchdog(4000)
    mem = heap_meter()
    if mem is None:
        return  # measured on MicroPython
    try:
        feed = dog.feed
        before = mem()
        for _ in range(200):
            feed()
        allocated = mem() - before
    finally:
        heap_meter_done()
    assert allocated == 0, "%d B" % allocated
