"""Child processes (dynalite, the Lambda containers) that cannot outlive the local stack."""

from __future__ import annotations

import ctypes
import signal

PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Runs in the child before exec: ignore Ctrl-C (the local stack shuts children down
    in order) and die with the parent if it is killed outright."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the stack's own cleanup still runs
        pass


def name_process(name: str) -> None:
    """The name ps -o comm, top and /proc/<pid>/comm show (15 bytes at most): a forked
    container's command line is its server's, so this says which function it runs."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, name.encode()[:15])
    except (OSError, AttributeError):  # not Linux
        pass
