# The hardware the firmware needs, as duck-typed interfaces (no abc on MicroPython), and the
# constants they share. Backends: sim/ (the desktop simulator) and hal/machine_*.py (boards).
#
# Clock
#   ticks_ms() -> int            wrapping millisecond ticks (period 2**30 on the boards)
#   ticks_add(t, delta) -> int   the only way to move a tick value (OverflowError beyond +-2**29)
#   ticks_diff(a, b) -> int      signed a - b, valid within +-2**29
#   wait(deadline, ready) -> bool
#                                return once ticks_ms() reaches the tick `deadline`, or earlier
#                                as soon as ready() is true (an input or a motor fault is
#                                pending). False means the backend is shutting down (the end of
#                                a simulation); a board never returns False.
#
# Motor
#   strokes() -> int             monotonic count of every stroke the motor ever completed,
#                                commanded or not, modulo 2**29 (hal.train.COUNT_MASK)
#   start(train)                 replace any running train by `train` (a hal.train.StrokeTrain);
#                                the motor owns it until the next start() or stop(). Stroke k of
#                                the train is stroke number train.base + k: one already fired
#                                (by the previous train, after the controller read strokes()) is
#                                skipped, never fired twice
#   stop()                       no further strokes
#   faults() -> int              MOTOR_* bits latched since the last call (the call clears them)
#   load() -> int                the last completed stroke's load (motor current or back-EMF)
#                                as a percentage of the free-running load: LOAD_NORMAL = 100;
#                                at rest, the load the line pressure puts on the rotor
#   set_load_limit(percent)      a completed stroke at or above this load latches
#                                MOTOR_OVERLOAD and ends the train (the firmware owns the limit)
#   set_pressure_load(percent)   strokes completed above this load are counted ...
#   pressed() -> int             ... and taken here: the count since the last call
#   enable(on)                   motor power (the driver's enable output). Off: nothing moves
#   on_fault(handler)            handler(bits) is called as a fault happens, in interrupt context
#                                on a board: it must not allocate
#
# A backend must never fire a stroke of a train before its time, must count every stroke it
# completed, and reports each uncommanded stroke as it happens; the controller does all dose
# arithmetic from strokes().
#
# Annunciator
#   tone(cls, alarm)             start the pattern of alarm class cls (for alarm id `alarm`)
#                                without blocking:
#                                CRITICAL (firmware.alarms) two tones over 3 s, NON_CRITICAL one
#                                1 s tone
#
# Button (the patient's PTM button)
#   pending() -> int             presses not yet taken (debounced by the backend)
#   presses() -> int             take them: presses since the last call
#
# Programmer (clinician commands; hal.channel.Channel in process for now)
#   pending() -> int, receive() -> command tuple or None, reply(command, result)
#
# LinkPort (the programmer and handset link's bytes: a UART, the USB serial stream, the simulator's
# TCP socket; firmware/link.py frames and authenticates them, docs/link.md)
#   any() -> int                 bytes waiting, 0 if none; never blocks, must not allocate
#                                (PumpLoop's wait returns early while it is non-zero)
#   readinto(buf, n) -> int      reads at most n bytes into buf[0:n]; returns how many; never blocks
#   write(buf, n)                buf[0:n] out
#
# Battery ADC
#   read_mv() -> int             the cell voltage in mV
#
# Watchdog
#   constructed with its timeout (ms); once made it runs and cannot be stopped (machine.WDT)
#   timeout_ms                   the timeout: the loop wakes at least every timeout_ms // 2
#   feed()                       restart the countdown; PumpLoop calls it at the end of a
#                                service() whose health checks passed, and nowhere else. Must not
#                                allocate. Unfed for timeout_ms: the board resets
#   Backends: hal/machine_watchdog.py (machine.WDT), sim/watchdog.py (the simulator's)
#
# RTC (the real-time clock: it keeps running while the firmware is off)
#   now_s() -> int               whole seconds of the clock (a small int), or -1 when it is not
#                                valid (it lost its time); persist.py and selftest.py read it
#   Backends: hal/machine_rtc.py MachineRtc (machine.RTC: seconds since 2024-01-01, -1 before
#   2025; set_s(s) sets it), sim/clock.py SimRTC (the simulator's)
#
# ---- Board backends (hal/machine_*.py, hal/steps_*.py; boards/README.md) --------------------
#
# Steps: a driver's pulse engine. Python sets a count and lets the port's hardware emit the
# steps (RP2040 PIO, ESP32 RMT, pyboard timer); it never runs per step.
#   start(n)                     emit n steps (1..65535) at the configured rate, from now, without
#                                blocking or allocating; only called while not busy()
#   busy() -> bool               a burst is running
#   bursts() -> int              monotonic count of bursts completed (modulo 2**29)
#   stop()                       abort a running burst (it is not counted as completed)
#   DIR (STEP/DIR drivers) is set once at construction and stays stable.
#   Constructors: steps_rp2.PioSteps(sm_id, step_pin, dir_pin, steps_per_s)
#                 steps_rp2.PioPhases(sm_id, first_pin, steps_per_s)      ULN2003, 4 pins in a row
#                 steps_esp32.RmtSteps(step_pin, dir_pin, steps_per_s)    both RMT APIs
#                 steps_pyb.TimerSteps(timer_id, channel, step_pin, dir_pin, steps_per_s)
#                 steps_timer.TimerPhases(pins, steps_per_s, timer=None)  ULN2003 off the RP2040
#                   (timer: a pyb.Timer on the pyboard; else machine.Timer, whole-ms rates only)
#
# Poller: poll(now) -> None      called by the board clock's wait() at least once a ms with the
#                                tick now: a motor fires due strokes, a buzzer or LED advances
#                                its pattern. Must not allocate.

from micropython import const

MOTOR_STALL = const(1)  # a commanded stroke did not complete (no rotor feedback, or a stall flag)
MOTOR_UNCOMMANDED = const(2)  # the rotor made a stroke nobody commanded (it is in strokes())
MOTOR_OVERLOAD = const(4)  # a completed stroke's load reached the load limit
LOAD_NORMAL = const(100)
