"""A wall-time bound for the referee's judgement in property tests: a crash or an overrun fails."""

import signal
from contextlib import contextmanager

JUDGE_SECONDS = 60  # a judgement of the property tests' few days or weeks takes well under a second


@contextmanager
def time_bound(seconds, what):
    """Raises TimeoutError in whatever runs inside for longer than `seconds` of wall time."""
    def overrun(_sig, _frame):
        raise TimeoutError(f"{what} took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, overrun)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
