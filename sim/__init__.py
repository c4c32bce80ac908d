"""Desktop simulator and command-line tools for the pump firmware (CPython only; nor_flash.py runs on
MicroPython too, under the core tests)."""
