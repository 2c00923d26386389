"""The container server: one Python process that has imported boto3 and botocore once
and forks a Lambda container (lambda_runtime.py) for each cold start, so a cold start
no longer starts an interpreter and imports boto3 (about 0.3 s of CPU).

The server starts from the stack's interpreter with -E -P (no PYTHONPATH, PYTHONWARNINGS
or other PYTHON* setting, no script directory on sys.path) and base_environment() only,
so a container inherits nothing of the stack's environment. It ignores SIGCHLD, so the
kernel reaps the containers; the stack waits on each container itself (a pidfd).

Protocol: the stack sends one message per container on a SOCK_SEQPACKET socket, the
JSON {"argv", "env"} with three file descriptors (the container's stdin, stdout and
stderr); the server forks and sends nothing back. The container says {"pid": n} on its
stdout first (main_in_fork), so the stack knows it started. The server ends when the
stack closes its end or dies (its parent-death signal)."""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_REQUEST = 1 << 20  # a function's environment, as JSON, is far smaller
BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); from local.container_server import serve; "
    "del sys.path[0]; serve(int(sys.argv[2]), int(sys.argv[3]))"
)


class ContainerServer:
    """The stack's end: the server starts on the first fork, and again after it died or
    was stopped (the next fork then pays its start, about 0.4 s)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._control: socket.socket | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def fork(self, argv: list[str], env: dict[str, str], fds: list[int]) -> int:
        """Ask for a container with these stdin, stdout and stderr; returns the pid of the
        server that took the request. Raises OSError if the server cannot take it (it will
        be a new server next time)."""
        request = json.dumps({"argv": argv, "env": env}).encode()
        for attempt in (1, 2):  # a server found dead is replaced once, at once
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            try:
                socket.send_fds(self._control, [request], fds)
                return self._proc.pid
            except OSError:  # it died, or it hangs and its queue is full
                self.stop(kill=True)
                if attempt == 2:
                    raise

    def _start(self) -> None:
        from .lambda_pool import base_environment

        self.stop(kill=True)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                [sys.executable, "-E", "-P", "-c", BOOT, str(ROOT), str(theirs.fileno()), str(os.getpid())],
                env=base_environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # (stderr is the stack's: a failed import shows there)
                pass_fds=[theirs.fileno()],
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)  # a request never waits on a server that hangs
        self._control = ours

    def replace(self, pid: int) -> None:
        """The server with this pid hangs: killed, so the next fork starts a new one, unless
        that happened already (cold starts that waited on it together end it once)."""
        if self.pid == pid:
            self.stop(kill=True)

    def stop(self, kill: bool = False) -> None:
        """End the server (kill: at once, as one that hangs must be); the containers it
        forked die with it."""
        proc, control, self._proc, self._control = self._proc, self._control, None, None
        if control is not None:
            control.close()  # (the server ends when it reads the end of the socket)
        if proc is None or proc.poll() is not None:
            return
        if kill:
            proc.kill()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


server = ContainerServer()
atexit.register(server.stop)


def serve(control_fd: int, stack_pid: int) -> None:
    """The server's loop: one container forked per request, until the stack is gone."""
    from .children import die_with_parent, name_process

    die_with_parent()  # and Ctrl-C is the stack's: it stops the containers, then this
    if os.getppid() != stack_pid:  # it died before that took effect
        return
    name_process("lambda-server")
    import boto3  # noqa: F401 (imported once here, for every container)
    import botocore.client  # noqa: F401

    from . import lambda_runtime

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the containers
    control = socket.socket(fileno=control_fd)
    while True:
        try:
            message, fds, _flags, _address = socket.recv_fds(control, MAX_REQUEST, 3)
        except OSError:
            return
        if not message:
            return  # the stack closed its end
        try:
            request = json.loads(message)
            pid = os.fork()
        except (ValueError, OSError):  # the stack sees its container's stdout close
            traceback.print_exc()
            pid = -1
        if pid == 0:
            control.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # (SIG_IGN would carry on to its own children)
            code = 1
            try:
                lambda_runtime.main_in_fork(request["argv"], request["env"], *fds)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        for fd in fds:
            os.close(fd)
