# make demo, the MicroPython side: runs a board's own main.py on the unix port with simulated
# pins (the virtual board, boards/virtual), and shows on the terminal what the board would do:
# the LED, the buzzer and the stroke count, live. Keys on stdin: a = button A (bolus),
# b = button B (refill), h = hold B for 2 s (toy mode: quiet), q = quit. tools/demo.py starts it
# (cwd: the board's folder).

import select
import sys
import time

import machine
import pumpboard
from hardware import StepHardware

from firmware.loop import STATE_NAMES
from hal.train import COUNT_MASK

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PRESS_MS = 120  # how long a key holds its button down (longer than the 50 ms debounce)
HOLD_MS = 2000  # the h key: a long press of B (pumpboard.LONG_PRESS_MS is 1.5 s)
DRAW_MS = 100


class Screen:
    """A Poller in the board clock's wait(): the world around the board, and the status line."""

    def __init__(self, pump):
        self.pump = pump
        self.hardware = StepHardware(pump.motor_steps, pump.cfg.steps_per_stroke, pump.cfg.steps_per_s)
        self.keys = select.poll()
        self.keys.register(sys.stdin, select.POLLIN)
        self.t0 = time.ticks_ms()
        self.v_last = pump.clock.ticks_ms()
        self.v_ms = pump.cfg.time_of_day_ms  # virtual ms since the start day's midnight
        self.last = -1
        self.release = []  # (real ms, pin) of buttons to let go
        self.next_draw = 0
        self.stdin_open = True

    def poll(self, now):
        t = time.ticks_diff(time.ticks_ms(), self.t0)
        while self.last < t:  # every real ms, even if polls skipped some
            self.last += 1
            self.hardware.tick(self.last)
        while self.release and self.release[0][0] <= t:
            machine.Pin.get(self.release.pop(0)[1]).drive(1)
        if self.stdin_open and self.keys.poll(0):
            self.key(sys.stdin.read(1), t)
        if t >= self.next_draw:
            self.next_draw = t + DRAW_MS
            self.draw()

    def key(self, ch, t):
        cfg = self.pump.cfg
        if ch == "":
            self.stdin_open = False  # end of input (a script piped in): the demo runs on
        elif ch in "aA":
            self.press(cfg.button_a_pin, t, "Button A: bolus")
        elif ch in "bB" and self.pump.button_b is not None:
            self.press(cfg.button_b_pin, t, "Button B: refill")
        elif ch in "hH" and self.pump.button_b is not None:
            self.press(cfg.button_b_pin, t, "Button B held for 2 s: quiet (toy mode)", HOLD_MS)
        elif ch in "qQ":
            self.draw()
            sys.stdout.write("\n")
            raise SystemExit(0)

    def press(self, pin, t, what, hold_ms=PRESS_MS):
        say(what)
        machine.Pin.get(pin).drive(0)
        self.release.append((t + hold_ms, pin))
        self.release.sort(key=lambda r: r[0])

    def draw(self):
        p = self.pump
        ctl = p.loop.ctl
        led = machine.Pin.get(p.cfg.led_pin).value()
        pwm = p.buzzer._pwm
        sound = "%4d Hz" % pwm.freq() if pwm.duty_u16() else "  quiet"
        # The controller's figures are as of its last wake: add what the motor did since.
        strokes = p.motor.strokes()
        volume_nl = ctl.reservoir.volume_nl - ((strokes - ctl.strokes_seen()) & COUNT_MASK) * ctl.pump.stroke_nl
        v = p.clock.ticks_ms()
        self.v_ms += p.clock.ticks_diff(v, self.v_last)  # summed per draw: no ticks_diff over 2**29 ms
        self.v_last = v
        if p.toy:  # real time, no drug: sips left and the time played
            left = (volume_nl - ctl.pump.empty_nl) // ctl.pump.stroke_nl
            s = (self.v_ms - p.cfg.time_of_day_ms) // 1000
            line = ("LED %s  buzzer %s  sips %4d  left %4d  played %d:%02d:%02d  %-13s"
                    "  [a] bolus [b] refill [h] hold B: quiet [q] quit") % (
                "(*)" if led else "( )", sound, strokes, left if left > 0 else 0, s // 3600, s // 60 % 60, s % 60,
                STATE_NAMES[p.loop.state()])
        else:
            minutes = self.v_ms // 60_000
            days = minutes // 1440
            line = ("LED %s  buzzer %s  strokes %5d  %s %02d:%02d (day %d)  reservoir %6.3f mL  %-13s"
                    "  [a] bolus%s [q] quit") % (
                "(*)" if led else "( )", sound, strokes, DAYS[(p.cfg.weekday + days) % 7], minutes // 60 % 24,
                minutes % 60, days, volume_nl / 1_000_000, STATE_NAMES[p.loop.state()],
                " [b] refill" if p.button_b is not None else "")
        sys.stdout.write("\r" + line + "\x1b[K")


def say(line):
    """An event line above the status line."""
    sys.stdout.write("\r\x1b[K" + line + "\n")


def main(board):
    made = []
    base = pumpboard.Pump

    class DemoPump(base):
        def __init__(self, cfg, steps):
            if cfg.link == "usb":  # the USB stream is this terminal: the keys and the screen are on it
                say("make demo: board.json's link is on the USB serial stream, which is this terminal here: "
                    "give the demo a board.json with a UART link or none")
                raise SystemExit(2)
            self.motor_steps = steps
            base.__init__(self, cfg, steps)
            self.clock.add_poller(Screen(self))
            made.append(self)

    pumpboard.Pump = DemoPump
    pumpboard.print = say  # the board's REPL lines, above the status line
    say("make demo: %s's main.py on the MicroPython unix port, with simulated pins" % board)
    try:
        with open("main.py") as f:
            exec(f.read(), {"__name__": "__main__"})
    except SystemExit:
        pass
    if not made:
        return 1  # the config stopped the pump: its line is above
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
