"""The process runtime's watchdog: kills what the runtime started once its host dies.

Run as ``python -I _reaper.py STATE_DIR`` (a plain script, standard library only, so it
starts fast and never imports orchestra). It reads commands on stdin, one per line:

- ``add PGID`` / ``del PGID``: a process group the runtime started / saw end;
- ``quit``: the runtime cleaned up after itself; exit without doing anything.

End of input without ``quit`` means the host process died (the kernel closes its end of
the pipe however it dies, SIGKILL included): the reaper sends SIGKILL to every recorded
process group, removes STATE_DIR and exits. It runs in its own session and ignores
SIGINT and SIGHUP, so the Ctrl-C or hang-up that ends the host does not end it first.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys


def _kill(groups: set[int]) -> None:
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: _reaper.py STATE_DIR", file=sys.stderr)
        return 2
    state_dir = argv[1]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    groups: set[int] = set()
    for raw in sys.stdin.buffer:
        cmd, _, arg = raw.strip().partition(b" ")
        try:
            if cmd == b"add":
                groups.add(int(arg))
            elif cmd == b"del":
                groups.discard(int(arg))
            elif cmd == b"quit":
                return 0
        except ValueError:
            continue
    _kill(groups)
    shutil.rmtree(state_dir, ignore_errors=True)
    # A second pass for groups that were forking while the first one ran.
    _kill(groups)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
