"""One local stack per state directory: its data (dynalite's files), its synthesized
template and its token keys are that stack's alone. A second `make local` in the same
checkout would re-synthesize under the running stack and then crash on its data, so it
stops at once, saying which stack holds the directory and how to run another.

The lock is a file lock (flock) on <state dir>/stack.lock, held while the stack runs and
released by the kernel however it ends; the file says the holder's PID and port. Only
the standard library: `make local` checks it before it synthesizes anything."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

LOCK_FILE = "stack.lock"


class StateInUse(Exception):
    """Another local stack holds the state directory; the message says which and what to do."""


class StateLock:
    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, port: int) -> None:
        """Hold the directory for this process, or raise StateInUse."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateInUse(self._refusal()) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "port": port}).encode())
        self._fd = fd  # held until release() or the process ends

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def check(self) -> None:
        """Raise StateInUse if another stack holds the directory; hold nothing."""
        if not self.path.exists():
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateInUse(self._refusal()) from None
        finally:
            os.close(fd)

    def _refusal(self) -> str:
        try:
            holder = json.loads(self.path.read_text())
            who = f"another local stack (PID {holder['pid']}, port {holder['port']})"
        except (OSError, ValueError, KeyError, TypeError):
            who = "another local stack"
        directory = self.path.parent
        return (
            f"{who} is using {directory}: stop it (Ctrl-C in its terminal), or run this one with a state "
            f"directory of its own: make local LOCAL_DIR={directory}-2 PORT=<another port>"
        )
