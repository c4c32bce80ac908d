# The hardware the firmware needs, as duck-typed interfaces (no abc on MicroPython).
#
# Clock
#   ticks_ms() -> int            wrapping millisecond ticks (period 2**30 on the boards)
#   ticks_add(t, delta) -> int   the only way to move a tick value
#   ticks_diff(a, b) -> int      signed a - b, valid within +-2**29
#
# Motor
#   strokes() -> int             monotonic count of every stroke the motor ever completed, modulo
#                                2**29 (hal.train.COUNT_MASK); the controller reads differences
#   start(train)                 replace any running train by `train` (a hal.train.StrokeTrain);
#                                the motor owns it until the next start() or stop(). Stroke k of
#                                the train is stroke number train.base + k: one already fired
#                                (by the previous train, after the controller read strokes()) is
#                                skipped, never fired twice
#   stop()                       no further strokes
#
# A backend must never fire a stroke of a train before its time, and must count every stroke it
# completed; the controller does all dose arithmetic from strokes().
