# The world around a board's step engine, for the boot tests and `make demo`: the fake RP2040
# state machine, ESP32 RMT channel or pyboard timer finishes each burst after its real duration,
# as the hardware would; FakeScheduler stands in for micropython.schedule. Not fakes of
# MicroPython modules: test helpers on top of them.


class StepHardware:
    """tick(real_ms): call once per real ms. steps: the engine main.py's make_steps() built."""

    def __init__(self, steps, steps_per_stroke, steps_per_s):
        self.steps = steps
        self.burst_ms = steps_per_stroke * 1000 // steps_per_s + 1
        self.steps_per_s = steps_per_s
        self.periods = 0  # timer periods run so far (the ULN2003's timer): steps_per_s a real second
        self.started_at = -1

    def tick(self, t):
        s = self.steps
        if hasattr(s, "_sm"):  # RP2040 PIO: the state machine took the count; it pushes when done
            if self.started_at < 0 and s.busy():
                self.started_at = t
            if self.started_at >= 0 and t - self.started_at >= self.burst_ms:
                s._sm.complete(0)
                self.started_at = -1
        elif hasattr(s, "_rmt"):  # ESP32 RMT: the pulses have gone out
            if self.started_at < 0 and s._rmt.ongoing:
                self.started_at = t
            if self.started_at >= 0 and t - self.started_at >= self.burst_ms:
                s._rmt.finish()
                self.started_at = -1
        elif hasattr(s, "_tim"):  # ULN2003 on a timer: its periods due by this ms, at its rate
            due = (t + 1) * self.steps_per_s // 1000 - self.periods
            self.periods += due
            tim = s._tim
            for _ in range(due):
                if hasattr(tim, "advance"):  # pyb.Timer (boards/virtual/stm32/pyb.py)
                    tim.advance(1)
                else:  # machine.Timer: a hardware alarm or the soft timer
                    tim.fire()


class FakeScheduler:
    """Stands in for micropython.schedule: a queue of 4 that raises RuntimeError when full."""

    def __init__(self, size=4):
        self.queue = []
        self.size = size

    def schedule(self, fn, arg):
        if len(self.queue) >= self.size:
            raise RuntimeError("schedule queue full")
        self.queue.append((fn, arg))

    def run(self):
        while self.queue:
            fn, arg = self.queue.pop(0)
            fn(arg)
