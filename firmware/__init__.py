# Dosing core of the intrathecal pump controller: integer-only, runs on CPython and MicroPython.
