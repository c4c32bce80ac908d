# The hardware the firmware needs, as duck-typed interfaces (no abc on MicroPython).
#
# Clock
#   ticks_ms() -> int            wrapping millisecond ticks (period 2**30 on the boards)
#   ticks_add(t, delta) -> int   the only way to move a tick value
#   ticks_diff(a, b) -> int      signed a - b, valid within +-2**29
#
# Motor
#   start(train)                 replace any running train by `train` (a hal.train.StrokeTrain);
#                                the motor owns it until the next start() or stop()
#   stop()                       no further strokes
#   emitted() -> int             strokes of the current train already delivered
#
# A backend must never fire a stroke of a train before its time, and must report every stroke
# it fired; the controller does all dose arithmetic from emitted().
