# ticks_add/ticks_diff cases as functions of a (ticks_add, ticks_diff) pair; MicroPython-compatible.
#
# upstream() transcribes MicroPython's tests/extmod/ticks_add.py (micropython/micropython, read at
# commit 1c3c201149f37fe8d81246191b3127bb198d6306; the test and the check it covers came with
# 815920c87f9bda6b3fb7ec24686154210c9e8774): 36 lines, as in its ticks_add.py.exp.
# edges() adds what that test leaves out, from extmod/modtime.c at the same commit: tick values
# outside 0..TICKS_MAX are masked, ticks_diff never raises, delta goes through mp_obj_get_int.
# Every case is written relative to TICKS_MAX = ticks_add(0, -1), so the lines do not depend on
# the port's period (2**30 on 32-bit ports, 2**62 on the 64-bit unix port), and every tick value
# is a small int on a 32-bit port (the C code reads it unchecked).
#
# Run as a script, it prints both lists for the port's own time module, split by SEPARATOR:
#     micropython tests/host/ticks_cases.py

SEPARATOR = "--- edges ---"
UPSTREAM_LINES = 36  # lines of tests/extmod/ticks_add.py.exp


def upstream(ticks_add, ticks_diff):
    """The lines tests/extmod/ticks_add.py prints, for this pair."""
    out = []
    # Maximum value returned from ticks_add, ticks_ms, etc.
    TICKS_MAX = ticks_add(0, -1)
    # Maximum value returned from ticks_diff.
    TICKS_INTERVAL_MAX = TICKS_MAX // 2

    # Check actual values of ticks_add.
    out.append(str(ticks_add(20, 12)))
    out.append(str(ticks_add(20, -12)))

    # Check invariant.
    out.append(str(ticks_diff(ticks_add(100, 123), 100)))
    out.append(str(ticks_diff(ticks_add(100, -123), 100)))
    out.append(str(ticks_diff(100, ticks_add(100, 123))))
    out.append(str(ticks_diff(100, ticks_add(100, -123))))

    # Check limits.
    for T in (0, 10, TICKS_MAX):
        for delta in (
            -TICKS_INTERVAL_MAX - 1,
            -TICKS_INTERVAL_MAX,
            0,
            TICKS_INTERVAL_MAX,
            TICKS_INTERVAL_MAX + 1,
        ):
            try:
                out.append(str(ticks_diff(ticks_add(T, delta), T) == delta))
            except OverflowError:
                out.append("OverflowError")
            try:
                out.append(str(ticks_diff(T, ticks_add(T, delta)) == -delta))
            except OverflowError:
                out.append("OverflowError")
    return out


def _add(ticks_add, t, delta, message=False):
    # The exception's class (and message where every port and model agree on it), else the value.
    try:
        return str(ticks_add(t, delta))
    except (OverflowError, TypeError) as e:
        return type(e).__name__ + (": " + str(e) if message else "")


def edges(ticks_add, ticks_diff):
    """Lines for what upstream() does not pin down."""
    M = ticks_add(0, -1)  # TICKS_MAX
    H = M // 2  # TICKS_INTERVAL_MAX; H + 1 is half the period
    MIN = -M - 1  # the least small int on a 32-bit port (-2**30)
    out = []
    # The pair's own period is a power of two (a broken ticks_add(0, -1) would void the rest).
    out.append(str(M > 0 and not M & (M + 1)))
    # Wrap both ways, the extreme valid deltas from the extreme ticks.
    out.append(str(ticks_add(M, 1) == 0))
    out.append(str(ticks_add(0, -1) == M))
    out.append(str(ticks_add(M, H) == H - 1))
    out.append(str(ticks_add(0, -H) == H + 2))
    out.append(str(ticks_add(H + 1, H) == M))
    out.append(str(ticks_add(H, -H) == 0))
    # Tick values outside 0..TICKS_MAX are taken modulo the period.
    out.append(str(ticks_add(-1, 0) == M))
    out.append(str(ticks_add(-5, 3) == M - 1))
    out.append(str(ticks_add(-5, H) == H - 5))
    out.append(str(ticks_add(MIN, 0) == 0))
    out.append(str(ticks_add(MIN, -1) == M))
    out.append(str(ticks_add(MIN, H) == H))
    out.append(str(ticks_add(MIN + 7, -H) == H + 9))
    # bool deltas are ints.
    out.append(_add(ticks_add, 7, True))
    out.append(_add(ticks_add, 7, False))
    # Out of range: the interval check, whatever the tick value.
    for t in (0, M, -1, MIN):
        out.append(_add(ticks_add, t, H + 1, True))
        out.append(_add(ticks_add, t, -H - 1, True))
        out.append(_add(ticks_add, t, M, True))
        out.append(_add(ticks_add, t, MIN, True))
    # Beyond a machine word (the ports' message differs: "overflow converting long int ...").
    out.append(_add(ticks_add, 0, 1 << 100))
    out.append(_add(ticks_add, 0, -(1 << 100)))
    # Not an int: TypeError (the ports' int conversion comes before the interval check).
    out.append(_add(ticks_add, 0, 1.5))
    out.append(_add(ticks_add, 0, -0.5))
    out.append(_add(ticks_add, 0, 1e30))
    out.append(_add(ticks_add, 0, "1"))
    out.append(_add(ticks_add, 0, None))
    # ticks_diff: the signed distance in -(H + 1)..H, never an exception.
    out.append(str(ticks_diff(0, M)))
    out.append(str(ticks_diff(M, 0)))
    out.append(str(ticks_diff(0, M - 1)))
    out.append(str(ticks_diff(H, 0) == H))
    out.append(str(ticks_diff(H + 1, 0) == -H - 1))
    out.append(str(ticks_diff(0, H + 1) == -H - 1))
    out.append(str(ticks_diff(0, H) == -H))
    out.append(str(ticks_diff(M, H) == -H - 1))
    out.append(str(ticks_diff(H, M) == -H - 1))
    out.append(str(ticks_diff(M, M)))
    # ...and takes tick values modulo the period too.
    out.append(str(ticks_diff(-1, 0)))
    out.append(str(ticks_diff(0, -1)))
    out.append(str(ticks_diff(MIN, M)))
    out.append(str(ticks_diff(M, MIN)))
    out.append(str(ticks_diff(MIN, 0)))
    out.append(str(ticks_diff(MIN, H) == -H))
    out.append(str(ticks_diff(-H, H)))
    out.append(str(ticks_diff(H, -H)))
    out.append(str(ticks_diff(-H - 1, H + 1)))
    return out


def main():
    from time import ticks_add, ticks_diff

    for line in upstream(ticks_add, ticks_diff):
        print(line)
    print(SEPARATOR)
    for line in edges(ticks_add, ticks_diff):
        print(line)


if __name__ == "__main__":
    main()
