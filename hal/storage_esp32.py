# The journal's regions on the esp32 port: windows over an esp32.Partition (hal/machine_storage.py).

import esp32

from hal.machine_storage import BLOCK, Window, check_apart, check_size


def open_esp32(cfg, state_n, event_n):
    label = cfg.get("partition")
    if not isinstance(label, str) or not label:
        raise ValueError("journal.partition: %r: the label of a data partition" % (label,))
    found = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=label)
    if not found:
        raise ValueError("journal.partition: no data partition %r: flash a partition table with one "
                         "(boards/README.md, \"The journal's flash region\")" % (label,))
    part = found[0]
    info = part.info()  # (type, subtype, address, size, label, encrypted)
    check_size("state_blocks + event_blocks", (state_n + event_n) * BLOCK, info[3], "partition %r" % label)
    for vfs in esp32.Partition.find(esp32.Partition.TYPE_DATA, label="vfs"):
        v = vfs.info()
        check_apart(info[2], info[3], v[2], v[3], "give partition %r its own flash in the table" % label)
    return Window(part, 0, state_n), Window(part, state_n, event_n)
