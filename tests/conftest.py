import os
import sys

# Core tests import their helpers as top-level `support`, as on MicroPython.
_here = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(_here, "core"))
sys.path.insert(0, os.path.dirname(_here))

# Hypothesis profiles: `make test` runs the small default; `make soak` (HYPOTHESIS_PROFILE=soak)
# runs at least 500 examples of long programs.
try:
    from hypothesis import HealthCheck, settings

    settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("soak", max_examples=500, stateful_step_count=60, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
except ImportError:  # MicroPython never loads this file; CPython without hypothesis skips nothing here
    pass
