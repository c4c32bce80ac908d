# Helpers shared by the step engines' tests (tests/boards/test_steps_*.py), on CPython and on
# the MicroPython unix port.

import sys

MICROPYTHON = sys.implementation.name == "micropython"


def raises(exc_type, fn, *args):
    try:
        fn(*args)
    except exc_type:
        return True
    return False


def alloc(fn, reps=200):
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
