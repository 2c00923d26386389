"""End-to-end: the real local stack (`python -m local run`, as `make local` starts it)
on free ports, driven by real WebSocket clients. Every process is stopped at teardown,
even when a test fails, and a leftover process fails the test run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

from clients import processes_mentioning
from local.dynamodb import free_port

ROOT = Path(__file__).resolve().parents[2]


def _synth(out: Path, auth: str) -> Path:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    npx = shutil.which("npx", path=env["PATH"]) or "npx"
    args = [npx, "--no-install", "cdk", "synth", "--quiet", "--no-notices", "-c", f"auth={auth}", "-o", str(out)]
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def dev_cdk_out(tmp_path_factory) -> Path:
    return _synth(tmp_path_factory.mktemp("dev") / "cdk.out", "dev")


@pytest.fixture(scope="session")
def cognito_cdk_out(tmp_path_factory) -> Path:
    return _synth(tmp_path_factory.mktemp("cognito") / "cdk.out", "cognito")


class RunningStack:
    """One `python -m local run` process and everything it started."""

    def __init__(self, cdk_out: Path, state_dir: Path, *extra: str):
        self.cdk_out, self.state_dir, self.extra = cdk_out, state_dir, extra
        self.port = free_port()
        self.dynamodb_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = state_dir / "stack.log"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, *more: str) -> RunningStack:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "local", "run", "--cdk-out", str(self.cdk_out), "--state-dir",
                str(self.state_dir), "--port", str(self.port), "--dynamodb-port", str(self.dynamodb_port),
                *self.extra, *more]  # fmt: skip
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        line = self.proc.stdout.readline().decode()  # the banner comes once the gateway listens
        if not line.startswith("Local stack"):
            self.kill()
            raise AssertionError(f"local stack did not start: {line}\n{self.log.read_text()[-3000:]}")
        return self

    def stop(self) -> None:
        """Ctrl-C in a terminal: SIGINT to the whole process group. The clean shutdown path."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL the whole process group: no $disconnect, no cleanup, like a crash."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._reap()

    def _reap(self) -> None:
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        deadline = time.monotonic() + 10
        while processes_mentioning(str(self.state_dir)) or processes_mentioning(f"--port {self.dynamodb_port}"):
            if time.monotonic() > deadline:
                for pid in processes_mentioning(str(self.state_dir)):
                    os.kill(pid, signal.SIGKILL)
                raise AssertionError("the local stack left processes behind")
            time.sleep(0.1)

    def stats(self) -> dict:
        """Per route: invocations and AWS calls (the gateway's /@local/stats)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/@local/stats", timeout=5) as reply:
            return json.load(reply)

    def dynamodb(self):
        return boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{self.dynamodb_port}", region_name="us-east-1")


@pytest.fixture
def start_stack(tmp_path, dev_cdk_out):
    """Factory: start_stack(cdk_out=None, *flags) -> RunningStack; all stopped at teardown."""
    stacks: list[RunningStack] = []

    def start(cdk_out: Path | None = None, *flags: str) -> RunningStack:
        stack = RunningStack(cdk_out or dev_cdk_out, tmp_path / f"state{len(stacks)}", *flags)
        stacks.append(stack)
        return stack.start()

    yield start
    for stack in stacks:
        stack.stop()


@pytest.fixture
def stack(start_stack) -> RunningStack:
    return start_stack()
