# MicroPython's `esp32` module as the esp32 port has it (its RMT class), for the virtual board
# (boards/virtual/README.md). Written in the subset of Python MicroPython has.
#
# Two APIs, by release (vport.VERSION at import; reset_fakes(api=126|127) switches in one process):
#   API 127, 1.27+   ports/esp32/esp32_rmt.c v1.27.0/v1.28.0 on ESP-IDF's rmt_tx driver: RMT([id], *,
#                    pin, resolution_hz=None, clock_div=None, idle_level=False, tx_carrier=None,
#                    num_symbols=SOC_RMT_MEM_WORDS_PER_CHANNEL); active([False]); loop_count(n).
#   API 126, <= 1.26 ports/esp32/esp32_rmt.c v1.24.0..v1.26.0 on the legacy rmt driver: RMT(id, *,
#                    pin, clock_div=8, idle_level=False, tx_carrier=None); no active, no loop_count.
# Both: write_pulses(duration, data=True) in its three modes, wait_done(*, timeout=0), loop(bool),
# deinit(), clock_div(), source_freq() (80 MHz), PULSE_MAX. `RMT` is the class of the API modelled.
#
# The chip: FINITE_LOOP False (the default) is the original ESP32, the esp32 board: no counted TX
# loop (ESP-IDF rmt_tx.c rmt_transmit: ESP_ERR_NOT_SUPPORTED unless SOC_RMT_SUPPORT_TX_LOOP_COUNT),
# 64-symbol memory blocks, 8 TX channels, and on 1.27+ an abort of a transmission longer than ~300 ms
# panics it (the FIXME in esp32_rmt_deactivate: rmt_disable, ESP-IDF < 5.5.2; ports/esp32/README.md
# recommends 5.5.1 for 1.28). FINITE_LOOP True: an S3/C3-like chip (loop count, 48-symbol
# blocks, 4 TX channels, no panic).
#
# Test hooks (the hardware's side):
#   rmt.finish()     the transmission on the wire has gone out (its done interrupt)
#   rmt.ongoing      a transmission is on the wire (the hardware, not what the API reports)
#   rmt.writes       every transmission started: (durations, levels, loop count) as written
#   rmt.lengths_us   how long each lasts on the wire: sum(durations) * loops / resolution_hz
#   rmt.stops        transmissions aborted (1.27+ active(False), deinit, loop_count(0))
#   made             every RMT made; aborted_long: aborts that panic an original ESP32 (each raises)
#   expand(write)    the (level, duration) pulses of a recorded write, loops unrolled
#   steps(write)     its rising edges, loops counted
#   A call that would block, crash or misbehave on a board raises AssertionError saying so.

import vport

API = 127 if vport.at_least(1, 27) else 126
FINITE_LOOP = False
SOURCE_HZ = 80_000_000
PANIC_US = 300_000  # "TX sequence is long (>300ms)": esp32_rmt_deactivate's FIXME
_LEGACY_ITEMS = 64  # 1.26: mem_block_num = 1 (esp32_rmt_make_new), 64 items (RMT_MEM_ITEM_NUM)
_BITSTREAM_CHANNEL = 7  # 1.26: RMT_LAST_TX_CHANNEL, taken by machine.bitstream by default

made = []
aborted_long = 0
_installed = {}  # 1.26: channel -> the RMT whose driver is installed there (rmt_driver_install)
_orphans = {}  # 1.26: channel -> transmission still running after deinit (see RMT126.deinit)


def reset_fakes(api=None, finite_loop=False):
    """Start clean; api 126 or 127 (None: the release modelled), finite_loop: an S3/C3-like chip."""
    global API, FINITE_LOOP, RMT
    API = (127 if vport.at_least(1, 27) else 126) if api is None else api
    FINITE_LOOP = finite_loop
    RMT = RMT127 if API >= 127 else RMT126
    board_reset()


def board_reset():
    """The board restarts (machine.reset_fakes calls this): every channel free, the API kept."""
    global aborted_long
    aborted_long = 0
    del made[:]
    _installed.clear()
    _orphans.clear()


def _mem_words():
    return 48 if FINITE_LOOP else 64  # SOC_RMT_MEM_WORDS_PER_CHANNEL: S3/C3 48, ESP32 64


def _route(pin, rmt):
    # The GPIO matrix: the pin now carries the RMT's signal (1.26 rmt_set_gpio; 1.27 rmt_new_tx_channel),
    # or (rmt None) no longer (1.27 rmt_del_channel: gpio_output_disable). machine.Pin.init to an
    # output takes it back (machine.py).
    import machine

    p = pin if isinstance(pin, machine.Pin) else machine.Pin._pins.get(pin)
    if p is not None:
        p.signal = rmt


def _gpio(pin):
    # machine_pin_get_id: a Pin, a GPIO number or a board's pin name, else ValueError("invalid pin")
    import machine

    return machine._gpio(pin)


def _output_gpio(gpio):
    # an input-only GPIO cannot carry TX: GPIO_IS_VALID_OUTPUT_GPIO in rmt_set_gpio (1.26) and
    # rmt_new_tx_channel (1.27+) is ESP_ERR_INVALID_ARG, raised by check_esp_err as OSError
    if gpio >= 34:
        raise OSError(-258, "ESP_ERR_INVALID_ARG")


_REQUIRED = object()


def _parse(args, kw, spec):
    """mp_arg_parse_all (py/argcheck.c): spec is (name, keyword only, default or _REQUIRED), in order."""
    out = []
    used = 0
    for i in range(len(spec)):
        name, kw_only, default = spec[i]
        if i < len(args):
            if kw_only:
                raise TypeError("extra positional arguments given")
            out.append(args[i])
        elif name in kw:
            used += 1
            out.append(kw[name])
        elif default is _REQUIRED:
            raise TypeError("'%s' argument required" % name)
        else:
            out.append(default)
    if len(args) > len(spec):
        raise TypeError("extra positional arguments given")
    if used < len(kw):
        raise TypeError("extra keyword arguments given")
    return out


class _Tx:
    """One transmission on the wire."""

    def __init__(self, rmt, durs, levels, loops):
        self.rmt = rmt
        self.loops = loops
        self.items = (len(durs) + 1) // 2
        self.length_us = sum(durs) * (loops if loops > 0 else 1) * 1_000_000 // rmt.resolution_hz
        self.aborted = False


class RMT126:
    """esp32.RMT up to 1.26 (legacy driver): one driver per channel id."""

    PULSE_MAX = 32767

    def __init__(self, *args, **kw):
        id, pin, clock_div, idle_level, _ = _parse(args, kw, (
            ("id", False, _REQUIRED), ("pin", True, _REQUIRED), ("clock_div", True, 8), ("idle_level", True, False),
            ("tx_carrier", True, None)))
        gpio = _gpio(pin)
        if id == _BITSTREAM_CHANNEL:
            raise ValueError("channel used by bitstream")
        if not 1 <= clock_div <= 255:
            raise ValueError("clock_div must be between 1 and 255")
        if not 0 <= id < _BITSTREAM_CHANNEL + 1:
            raise OSError(-258, "ESP_ERR_INVALID_ARG")  # rmt_config: RMT CHANNEL ERR
        _output_gpio(gpio)
        if id in _installed:
            raise OSError(-259, "ESP_ERR_INVALID_STATE")  # rmt_driver_install: already installed
        if id in _orphans:
            raise AssertionError("RMT(%d): that channel still transmits what a deinit()ed RMT started "
                                 "(1.26's deinit does not stop the hardware): its pulses would reach the "
                                 "new pin" % id)
        self._setup(gpio, SOURCE_HZ // clock_div, idle_level)
        self.channel = id
        _installed[id] = self
        _route(pin, self)

    def _setup(self, gpio, resolution_hz, idle_level):
        self.pin_id = gpio
        self.resolution_hz = resolution_hz
        self.idle_level = bool(idle_level)
        self.loops = 0  # 0: once, -1: for ever, n: n times
        self.deinited = False
        self.ongoing = False
        self._tx = None
        self.writes = []
        self.lengths_us = []
        self.stops = 0
        made.append(self)

    @staticmethod
    def source_freq():
        return SOURCE_HZ

    def clock_div(self):
        return SOURCE_HZ // self.resolution_hz

    def loop(self, enable):
        # 1.26: loop(False) turns the hardware's loop mode off: a looping sequence ends after this pass
        self.loops = -1 if enable else 0
        if not enable and self._tx is not None:
            self._tx.loops = 0

    def wait_done(self, *, timeout=0):
        # rmt_wait_tx_done(channel): the driver installed on this channel id NOW (after deinit: none,
        # ESP_FAIL, False; or another RMT made on the same id since)
        owner = _installed.get(self.channel)
        if owner is None:
            return False
        if owner._tx is None:
            return True
        if timeout != 0:
            raise AssertionError("wait_done(timeout=%d) while transmitting: a real board blocks here" % timeout)
        return False

    def write_pulses(self, duration, data=True):
        if self.deinited:
            raise AssertionError("write_pulses after deinit(): 1.26 writes into the freed item buffer")
        durs, levels = _expand_modes(duration, data)
        if self.loops and len(durs) > 126:
            raise ValueError("Too many pulses for loop")
        if self._tx is not None:  # rmt_write_items takes the channel's tx semaphore
            raise AssertionError("write_pulses while a transmission is on the wire: a real board blocks "
                                 "here until it ends")
        self._transmit(durs, levels)

    def _transmit(self, durs, levels):
        tx = _Tx(self, durs, levels, self.loops)
        self._tx = tx
        self.ongoing = True
        self.writes.append((durs, levels, self.loops))
        self.lengths_us.append(tx.length_us)

    def deinit(self):
        # rmt_driver_uninstall disables the channel's interrupts and frees the driver, but never stops
        # the transmitter (ESP-IDF rmt_legacy.c), which has "tx ping-pong" always on
        # (rmt_internal_config): a sequence that fit the memory block with its end marker runs to its
        # end; a longer one, no longer refilled, cycles through the block for ever.
        if self.deinited:
            return
        self.deinited = True
        if _installed.get(self.channel) is self:
            del _installed[self.channel]
        tx = self._tx
        if tx is not None:
            tx.runaway = tx.loops != 0 or tx.items >= _LEGACY_ITEMS
            _orphans[self.channel] = tx

    # -- test hooks ----------------------------------------------------------------------------

    def finish(self):
        """The transmission on the wire has gone out completely."""
        tx = self._tx
        if tx is None:
            raise AssertionError("finish(): nothing is transmitting")
        if tx.loops == -1 or getattr(tx, "runaway", False):
            raise AssertionError("finish(): this transmission never ends (an endless loop, or a deinit()ed "
                                 "1.26 channel cycling through its memory block)")
        self._tx = None
        self.ongoing = False
        if _orphans.get(getattr(self, "channel", -1)) is tx:
            del _orphans[self.channel]
        self._done(tx)

    def _done(self, tx):
        pass


class RMT127(RMT126):
    """esp32.RMT from 1.27 (rmt_tx driver): `enabled` and a counter `tx_ongoing`, as esp32_rmt.c."""

    def __init__(self, *args, **kw):
        id, pin, resolution_hz, clock_div, idle_level, _, num_symbols = _parse(args, kw, (
            ("id", False, -1), ("pin", True, _REQUIRED), ("resolution_hz", True, None), ("clock_div", True, None),
            ("idle_level", True, False), ("tx_carrier", True, None), ("num_symbols", True, None)))
        gpio = _gpio(pin)
        if resolution_hz is not None and clock_div is not None:
            raise ValueError("resolution_hz and clock_div are mutually exclusive")
        if resolution_hz is not None:
            if resolution_hz <= 0:
                raise ValueError("resolution_hz must be positive")
            res = resolution_hz
        elif clock_div is not None:
            if not 1 <= clock_div <= 255:
                raise ValueError("clock_div must be between 1 and 255")
            res = SOURCE_HZ // clock_div
        else:
            res = 10_000_000
        words = _mem_words()
        if num_symbols is None:
            num_symbols = words
        if num_symbols < words or num_symbols % 2:
            raise ValueError("num_symbols must be even and at least %d" % words)
        _output_gpio(gpio)
        blocks = (num_symbols + words - 1) // words
        used = 0
        for r in made:
            if isinstance(r, RMT127) and not r.deinited:
                used += r.blocks
        if used + blocks > (4 if FINITE_LOOP else 8):  # rmt_tx_register_to_group: "no free tx channels"
            raise OSError(-261, "ESP_ERR_NOT_FOUND")
        self._setup(gpio, res, idle_level)
        self.num_symbols = num_symbols
        self.blocks = blocks
        self.channel = id  # a dummy in the rmt_tx API
        self.enabled = False
        self.tx_ongoing = 0
        _route(pin, self)

    def _check(self):
        if self.deinited:
            raise OSError("already deinitialized")

    def clock_div(self):
        self._check()
        return SOURCE_HZ // self.resolution_hz

    def _deactivate(self):
        # esp32_rmt_deactivate: rmt_disable aborts the transmission; its done callback never comes,
        # so tx_ongoing keeps counting it (ESP-IDF rmt_tx.c rmt_tx_disable recycles it silently)
        if not self.enabled:
            return
        tx = self._tx
        if tx is not None:
            if not FINITE_LOOP and (tx.loops == -1 or tx.length_us > PANIC_US):
                global aborted_long
                aborted_long += 1
                raise AssertionError("aborting a %d ms transmission: a real original ESP32 panics here "
                                     "(rmt_disable, esp32_rmt_deactivate's FIXME: never stop RMT sequences "
                                     "longer than 300 ms)" % (tx.length_us // 1000))
            tx.aborted = True
            self._tx = None
            self.ongoing = False
            self.stops += 1
        self.enabled = False

    def active(self, value=None):
        if value is None:
            return self.enabled and self.tx_ongoing > 0
        if value:
            raise ValueError("activate by calling write_pulses()")
        self._deactivate()
        return False

    def _loop_in(self, n):
        if self.enabled and self.tx_ongoing > 0 and self.loops != 0 and n == 0:
            self._deactivate()  # breaks an ongoing loop
        self.loops = n

    def loop(self, enable):
        self._check()
        self._loop_in(-1 if enable else 0)

    def loop_count(self, n):
        self._check()
        if n < -1:
            raise ValueError("arg must be -1, 0 or positive")
        self._loop_in(n)

    def wait_done(self, *, timeout=0):
        self._check()
        if not self.enabled:
            return True
        if timeout == 0 and self.tx_ongoing > 0:
            return False  # even when the counter is stale: nothing is on the wire
        if self._tx is None:
            return True  # rmt_tx_wait_all_done: nothing in flight
        if timeout == 0:
            return False
        raise AssertionError("wait_done(timeout=%d) while transmitting: a real board blocks here" % timeout)

    def write_pulses(self, duration, data=True):
        self._check()
        if self.enabled:
            if self._tx is not None:  # rmt_tx_wait_all_done(-1)
                raise AssertionError("write_pulses while a transmission is on the wire: a real board blocks "
                                     "here until it ends" + (" (for ever: an endless loop)" if self._tx.loops == -1
                                                             else ""))
        else:
            self.enabled = True  # rmt_enable
        durs, levels = _expand_modes(duration, data)
        if self.loops > 0 and not FINITE_LOOP:
            raise OSError(95, "ESP_ERR_NOT_SUPPORTED")  # rmt_transmit: no loop count on this chip
        if self.loops != 0 and (len(durs) + 1) // 2 + 1 > self.blocks * _mem_words():
            raise AssertionError("a looped sequence must fit the channel's memory with its end marker: the port "
                                 "only logs an error and sends it wrong (rmt_encode_check_result)")
        self._transmit(durs, levels)
        self.tx_ongoing += 1

    def deinit(self):
        # esp32_rmt_deinit: deactivate (an abort, as active(False)), delete the channel (its GPIO is
        # released: rmt_tx_destroy), tx_ongoing = 0
        if self.deinited:
            return
        self._deactivate()
        self.deinited = True
        self.tx_ongoing = 0
        _route(self.pin_id, None)

    def _done(self, tx):
        if not tx.aborted:
            self.tx_ongoing -= 1  # esp32_rmt_tx_trans_done


RMT = RMT127 if API >= 127 else RMT126


def _expand_modes(duration, data):
    """(durations, levels) of write_pulses' three modes, as esp32_rmt_write_pulses reads them. The
    caller's tuples are kept, not copied (a long burst would fill the host's memory)."""
    if isinstance(data, (tuple, list)):
        if isinstance(duration, int):
            durs = (duration,) * len(data)  # mode 2: one duration, levels given
        else:
            if len(duration) != len(data):  # mode 3: both given
                raise ValueError("duration and data must have same length")
            durs = duration if isinstance(duration, tuple) else tuple(duration)
        levels = data if isinstance(data, tuple) else tuple(data)
    else:
        durs = duration if isinstance(duration, tuple) else tuple(duration)  # mode 1: levels toggle
        first = 1 if data else 0
        levels = tuple((first + i) & 1 for i in range(len(durs)))
    if not durs:
        raise ValueError("No pulses")
    for d in durs:
        # the port stores each into a 15-bit field unchecked: 0 ends the sequence there, more wraps
        if not 1 <= d <= 32767:
            raise AssertionError("duration %r: the port keeps 15 bits of it (1..32767) and sends something else"
                                 % (d,))
    return durs, levels


def expand(write):
    """The (level, duration) pulses a recorded write puts on the pin, loops unrolled."""
    durs, levels, loops = write
    times = loops if loops > 0 else 1
    out = []
    for _ in range(times):
        for i in range(len(durs)):
            out.append((1 if levels[i] else 0, durs[i]))
    return out


def steps(write):
    """The rising edges (steps) a recorded write makes from a low line, loops counted, without
    unrolling them (the last level must be low, as every step engine ends)."""
    durs, levels, loops = write
    if levels[-1]:
        raise AssertionError("steps(): the write ends high")
    n, before = 0, 0
    for lv in levels:
        if lv and not before:
            n += 1
        before = lv
    return n * (loops if loops > 0 else 1)


# -- Partition: ports/esp32/esp32_partition.c ------------------------------------------------------
#
# The 4 MB flash of an ESP32_GENERIC and its partition table. Stock tables (boards/sdkconfig.base):
# up to 1.25 partitions-4MiB.csv (nvs, phy_init, factory, vfs 0x200000+0x200000); from 1.26
# partitions-4MiBplus.csv (no vfs): main.c then registers a "vfs" data partition from the end of the
# last partition to the end of flash, if the table has no "vfs" or "ffat". Partition(label or BOOT/
# RUNNING, block_size=4096): positional only (mp_arg_check_num 1..2), an app then a data partition
# of that label, else OSError(ENOENT); find(type=TYPE_APP, subtype=0xff, label=None,
# block_size=4096) a list. readblocks/writeblocks (esp_partition_read/write, NOR: a write only clears
# bits; out of the partition ESP_ERR_INVALID_SIZE), writeblocks without offset erases first;
# ioctl 6 erases a block, or returns -EINVAL unless block_size is 4096. The bytes live in vflash's
# chip "esp32", kept across machine.reset_fakes (a reboot). Test hook: flash_partition_table(rows)
# (rows (label, type, subtype, offset, size), as esptool writes a table at 0x8000; None: stock).

FLASH_BYTES = 4 * 1024 * 1024
_NATIVE = 4096
_TABLE_STOCK = (("nvs", 1, 2, 0x9000, 0x6000), ("phy_init", 1, 1, 0xF000, 0x1000),
                ("factory", 0, 0, 0x10000, 0x1F0000))
_table = None  # flashed rows, or None: the release's stock table


def flash_partition_table(rows=None):
    global _table
    _table = None if rows is None else tuple(rows)


def _partitions():
    rows = list(_TABLE_STOCK if _table is None else _table)
    labels = [r[0] for r in rows]
    if _table is None and not vport.at_least(1, 26):
        rows.append(("vfs", 1, 0x81, 0x200000, 0x200000))
    elif vport.at_least(1, 26) and "vfs" not in labels and "ffat" not in labels:
        end = max(r[3] + r[4] for r in rows)
        if end < FLASH_BYTES:
            rows.append(("vfs", 1, 0x81, end, FLASH_BYTES - end))
    return rows


def _chip():
    import vflash

    return vflash.chip("esp32", FLASH_BYTES, _NATIVE)


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, *args, **kw):
        if kw:
            raise TypeError("function doesn't take keyword arguments")
        if not 1 <= len(args) <= 2:
            raise TypeError("function takes %d positional arguments but %d were given" % (1, len(args)))
        id = args[0]
        row = None
        if isinstance(id, int):
            if id not in (0, 1):
                raise ValueError()
            row = _partitions()[2]  # factory: the boot and the running app
        else:
            for t in (0, 1):
                for r in _partitions():
                    if row is None and r[1] == t and r[0] == id:
                        row = r
        if row is None:
            raise OSError(2)  # MP_ENOENT
        self._setup(row, args[1] if len(args) == 2 else _NATIVE)

    def _setup(self, row, block_size):
        self.label, self.type, self.subtype, self.address, self.size = row
        self.block_size = block_size

    @staticmethod
    def find(type=0, subtype=0xFF, label=None, block_size=_NATIVE):
        out = []
        for r in _partitions():
            if r[1] == type and subtype in (0xFF, r[2]) and label in (None, r[0]):
                p = Partition(0)  # (any partition object, then made this one)
                p._setup(r, block_size)
                out.append(p)
        return out

    def info(self):
        return (self.type, self.subtype, self.address, self.size, self.label, False)

    def _span(self, at, nbytes):
        if at < 0 or at + nbytes > self.size:
            raise OSError(-260, "ESP_ERR_INVALID_SIZE")
        return self.address + at

    def readblocks(self, n, buf, offset=0):
        _chip().read(self._span(n * self.block_size + offset, len(buf)), buf)

    def writeblocks(self, n, buf, offset=None):
        at = n * self.block_size
        if offset is None:
            if self.block_size < _NATIVE:
                raise AssertionError("esp32.Partition: block_size < 4096 is not modelled")
            if len(buf) % _NATIVE:
                raise OSError(-260, "ESP_ERR_INVALID_SIZE")
            _chip().erase(self._span(at, len(buf)), len(buf))
        else:
            at += offset
        _chip().program(self._span(at, len(buf)), buf)

    def ioctl(self, op, arg):
        if op in (1, 2, 3):
            return 0
        if op == 4:
            return self.size // self.block_size
        if op == 5:
            return self.block_size
        if op == 6:
            if self.block_size != _NATIVE:
                return -22  # -MP_EINVAL
            _chip().erase(self._span(arg * _NATIVE, _NATIVE), _NATIVE)
            return 0
        return None
