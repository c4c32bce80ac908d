# Step engines on the RP2040's PIO (hal/interfaces.py, "Steps"). Python puts a count in the TX
# FIFO; the state machine emits the steps and pushes one completion word into the RX FIFO.
#
# The PIO programs below are the only copy: the board assembles them with MicroPython's
# rp2.asm_pio, the tests with boards/virtual/rp2/rp2.py, whose opcodes tests/host/test_pio.py runs
# cycle by cycle in rp2040-pio-emulator. The DSL names inside a program (pull, mov, x, osr, ...)
# are injected by asm_pio while it assembles, hence the noqa below.
#
# PioSteps: a STEP/DIR driver (A4988, DRV8825, TMC2208 ...). DIR is a plain output set once.
#   The program keeps D, the delay count, in ISR between bursts (loaded once, by a preamble
#   before wrap_target, from the first word put after a (re)start). A burst:
#       pull N-1 -> X, OSR = D; then per step:
#       set STEP 1 [1] (2) + mov y,osr (1) + jmp y-- loop (D+1)  = D+4 cycles high
#       set STEP 0     (1) + mov y,osr (1) + jmp y-- loop (D+1) + jmp x-- (1) = D+4 cycles low
#     so a step takes C = 2 * (D + 4) state-machine cycles, and N steps take N * C cycles; the
#     first rising edge comes 3 cycles after the count is pulled, and the completion word (the
#     value D) is pushed C cycles after the last rising edge, once its low time is over.
#   Timing: D = max(0, PIO_HZ // (2 * steps_per_s) - 4), C = 2 * (D + 4), and the state machine
#     runs at freq = steps_per_s * C (about PIO_HZ = 1 MHz, exact in Hz, never below the divider's
#     floor of sysclk/65536 = 1907 Hz at 125 MHz). So one step is exactly 1/steps_per_s of the
#     state machine's clock; the 16.8 fractional divider makes each cycle within one sysclk cycle
#     (8 ns) of ideal, and averages exact. The delay loop is what reaches slow rates: 1 step/s is
#     D = 499996 at 1 MHz, where the divider alone would stop at about 1907 / 8 steps/s.
#
# PioPhases: a ULN2003 board and a 28BYJ-48, four coil pins in a row from first_pin. The phase
#   pattern (8 nibbles, half-step by default) lives in ISR and is rotated by 4 bits at each step
#   (mov osr, isr; in_ osr, 4 with in_shiftdir right), so the next burst resumes at the next phase
#   and the rotor never jumps. Per step: mov, in, out pins 4 (the coils change here), set y 31,
#   32 x (jmp y-- [31]) = 1024, jmp x-- : C = 1029 cycles, freq = steps_per_s * 1029
#   (2..100000 steps/s). The coils hold the last phase between bursts (holding torque).
#
# busy() and bursts() drain the RX FIFO with sm.get() (a word below 2**30, so no allocation);
# start() is one sm.put() of a small int. stop() may allocate (not a hot path).

# ruff: noqa: F821
# pyright: reportUndefinedVariable=false

import rp2
from machine import Pin

from micropython import const

_MASK = const(0x1FFFFFFF)  # bursts() modulo 2**29
PIO_HZ = const(1_000_000)  # PioSteps' state-machine clock target
PHASE_CYCLES = const(1029)  # PioPhases' cycles per step
_MIN_HZ = const(2000)  # above 125 MHz / 65536
_MAX_HZ = const(125_000_000)
_PULL_NOBLOCK = const(0x8080)  # pull noblock: drops a word left in the TX FIFO
_SET_PINS_0 = const(0xE000)  # set pins, 0

HALF_STEP = (0x1, 0x3, 0x2, 0x6, 0x4, 0xC, 0x8, 0x9)  # coil bits: bit 0 = first_pin (IN1)
FULL_STEP = (0x3, 0x6, 0xC, 0x9, 0x3, 0x6, 0xC, 0x9)


@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def step_train():
    pull(block)  # once after a (re)start: D
    mov(isr, osr)  # ISR keeps D between bursts
    wrap_target()
    pull(block)  # N - 1
    mov(x, osr)
    mov(osr, isr)  # OSR = D for this burst
    label("step")
    set(pins, 1)[1]  # pyright: ignore[reportCallIssue, reportIndexIssue]
    mov(y, osr)
    label("high")
    jmp(y_dec, "high")
    set(pins, 0)  # pyright: ignore[reportCallIssue]
    mov(y, osr)
    label("low")
    jmp(y_dec, "low")
    jmp(x_dec, "step")
    push(block)  # the completion word: D (ISR), which push clears...
    mov(isr, osr)  # ...and OSR still holds
    wrap()


@rp2.asm_pio(out_init=[rp2.PIO.OUT_LOW] * 4, out_shiftdir=rp2.PIO.SHIFT_RIGHT, in_shiftdir=rp2.PIO.SHIFT_RIGHT)
def phase_train():
    pull(block)  # once after a (re)start: the pattern, the next phase in the low nibble
    mov(isr, osr)
    wrap_target()
    pull(block)  # N - 1
    mov(x, osr)
    label("step")
    mov(osr, isr)
    in_(osr, 4)  # ISR = pattern rotated right by 4: the following phase comes low
    out(pins, 4)  # the coils take this phase
    set(y, 31)  # pyright: ignore[reportCallIssue]
    label("wait")
    jmp(y_dec, "wait")[31]
    jmp(x_dec, "step")
    mov(osr, isr)
    push(block)  # the completion word: the pattern (ISR), which push clears...
    mov(isr, osr)  # ...and OSR still holds
    wrap()


def step_timing(steps_per_s):
    """(D, freq) of PioSteps for a rate: see the formula at the top of this file."""
    if isinstance(steps_per_s, bool) or not isinstance(steps_per_s, int) or not 1 <= steps_per_s <= 1_000_000:
        raise ValueError("steps_per_s: must be an integer 1..1000000")
    d = PIO_HZ // (2 * steps_per_s) - 4
    if d < 0:
        d = 0
    return d, steps_per_s * 2 * (d + 4)


def phase_freq(steps_per_s):
    if isinstance(steps_per_s, bool) or not isinstance(steps_per_s, int) or not 2 <= steps_per_s <= 100_000:
        raise ValueError("steps_per_s: must be an integer 2..100000")
    return steps_per_s * PHASE_CYCLES


def pack(nibbles):
    """The 32-bit pattern whose low nibble is nibbles[0] (output first)."""
    word = 0
    for i in range(8):
        word |= nibbles[i] << (4 * i)
    return word


def _check_n(n):
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 65535:
        raise ValueError("n: must be an integer 1..65535")


class _PioEngine:
    # Shared by both engines: the state machine runs `prog`; `first` is the preamble's word.

    def __init__(self, sm_id, prog, freq, first, pin_kw, pin):
        self.freq = freq
        self._busy = False
        self._bursts = 0
        self._preamble = first
        if pin_kw == "set_base":
            self._sm = rp2.StateMachine(sm_id, prog, freq=freq, set_base=pin)
        else:
            self._sm = rp2.StateMachine(sm_id, prog, freq=freq, out_base=pin)
        self._sm.put(first)
        self._sm.active(1)

    def start(self, n):
        _check_n(n)
        self._busy = True
        self._sm.put(n - 1)

    def busy(self):
        if self._busy and self._sm.rx_fifo():
            self._drain()
        return self._busy

    def bursts(self):
        if self._sm.rx_fifo():
            self._drain()
        return self._bursts

    def _drain(self):
        sm = self._sm
        while sm.rx_fifo():
            sm.get(None, 4)  # the word >> 4: always a small int
            self._bursts = (self._bursts + 1) & _MASK
            self._busy = False

    def stop(self):
        sm = self._sm
        sm.active(0)
        self._drain()  # a burst that completed before the stop counts
        first = self._first()  # the preamble word, read while the pins are still
        self._idle_pins()
        while sm.tx_fifo():  # a count the state machine never took
            sm.exec(_PULL_NOBLOCK)
        sm.restart()  # clears ISR, shift counters and delay; PC back to the preamble
        sm.put(first)
        sm.active(1)
        self._busy = False

    def _first(self):
        return self._preamble

    def _idle_pins(self):
        pass


class PioSteps(_PioEngine):
    def __init__(self, sm_id, step_pin, dir_pin, steps_per_s, dir_level=1):
        self.delay, freq = step_timing(steps_per_s)
        self.steps_per_s = steps_per_s
        self._dir = Pin(dir_pin, Pin.OUT, value=1 if dir_level else 0)
        _PioEngine.__init__(self, sm_id, step_train, freq, self.delay, "set_base", Pin(step_pin))

    def _idle_pins(self):
        self._sm.exec(_SET_PINS_0)  # STEP low if stopped inside a pulse


class PioPhases(_PioEngine):
    def __init__(self, sm_id, first_pin, steps_per_s, half=True):
        freq = phase_freq(steps_per_s)
        self.steps_per_s = steps_per_s
        self.sequence = HALF_STEP if half else FULL_STEP
        self._coils = [Pin(first_pin + i) for i in range(4)]
        _PioEngine.__init__(self, sm_id, phase_train, freq, pack(self.sequence), "out_base", Pin(first_pin))

    def phase(self):
        """The coil bits now on the pins."""
        v = 0
        for i in range(4):
            if self._coils[i].value():
                v |= 1 << i
        return v

    def _first(self):
        # Resume the sequence after the phase the coils hold (from its start if they hold none).
        seq = self.sequence
        now = self.phase()
        k = 0
        for i in range(8):
            if seq[i] == now:
                k = i + 1
                break
        return pack([seq[(k + i) % 8] for i in range(8)])
    # the coils keep holding their phase between bursts (_idle_pins does nothing)
