# The programmer channel, in process: a bounded FIFO of command tuples and a reply slot.
#
# Commands (firmware.loop dispatches them): (CMD_REFILL, volume_nl, concentration_mcg_ml),
# (CMD_BOLUS, amount_ng, minutes), (CMD_PROGRAM, prescription), (CMD_PRIME, catheter_cm),
# (CMD_SILENCE,), (CMD_SUSPEND,), (CMD_RESUME,), (CMD_CANCEL_BOLUS,),
# (CMD_SET_CLOCK, weekday, ms_of_day). The link issue puts
# authentication in front of it.

from micropython import const

CMD_REFILL = const(0)
CMD_BOLUS = const(1)
CMD_PROGRAM = const(2)
CMD_PRIME = const(3)
CMD_SILENCE = const(4)
CMD_SUSPEND = const(5)
CMD_RESUME = const(6)
CMD_CANCEL_BOLUS = const(7)
CMD_SET_CLOCK = const(8)


class Channel:
    def __init__(self, size=8):
        self._q = [None] * size
        self._head = 0
        self._n = 0
        self.last_reply = None  # (command, result): OK (0), a reason code, or the ValueError

    def send(self, command):
        """Queue a command; False (nothing queued) when the channel is full."""
        if self._n == len(self._q):
            return False
        self._q[(self._head + self._n) % len(self._q)] = command
        self._n += 1
        return True

    def pending(self):
        return self._n

    def receive(self):
        if not self._n:
            return None
        command = self._q[self._head]
        self._q[self._head] = None
        self._head = (self._head + 1) % len(self._q)
        self._n -= 1
        return command

    def reply(self, command, result):
        self.last_reply = (command, result)
