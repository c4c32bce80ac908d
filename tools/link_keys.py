"""make deploy's link keys: the host's key file, made once per board, and the copy for the board.

    python tools/link_keys.py KEY_FILE BOARD_COPY

KEY_FILE (JSON, mode 0600, as pumpsim serve writes it; pumpctl --key-file reads it) is kept if it
exists, and made with two new random 32-byte keys if not. BOARD_COPY gets both keys as the
64 bytes boards/pumpboard.py journals at its next boot (clinician's, then the patient's), mode 0600.
Prints one line: "made" or "kept", and the key file's path.
"""

import os
import secrets
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from firmware.frame import CLINICIAN, PATIENT  # noqa: E402
from firmware.link import KEY_LEN  # noqa: E402
from sim.pumpctl import Failure, load_keys  # noqa: E402
from sim.serve import write_keys  # noqa: E402


def main(argv):
    if len(argv) != 2:
        print("usage: tools/link_keys.py KEY_FILE BOARD_COPY", file=sys.stderr)
        return 2
    path, copy = argv
    if os.path.exists(path):
        try:
            keys = load_keys(path)
        except Failure as e:
            print(f"deploy: {e}", file=sys.stderr)
            return 1
        if CLINICIAN not in keys or PATIENT not in keys:
            print(f"deploy: {path}: needs both the clinician and the patient key", file=sys.stderr)
            return 1
        clinician, patient = keys[CLINICIAN], keys[PATIENT]
        what = "kept"
    else:
        clinician, patient = secrets.token_bytes(KEY_LEN), secrets.token_bytes(KEY_LEN)
        write_keys(path, clinician, patient)
        what = "made"
    fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, clinician + patient)
    finally:
        os.close(fd)
    print(f"{what} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
