"""Desktop simulator and command-line tools for the pump firmware (CPython only)."""
