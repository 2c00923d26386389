"""End-to-end: the real local stack (`python -m local run`, as `make local` starts it)
on free ports, driven by real WebSocket clients. Every process is stopped at teardown,
even when a test fails, and a leftover process fails the test run.

`stack` is one process per pytest worker, reset before each test (POST /@local/reset:
no connection, empty tables, every function cold, no figures), as fresh as a new start
for about a third of its CPU. A test that stops, kills or restarts the stack, or needs
flags, starts its own with `start_stack(cdk_out, *flags)`."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients import descendants, processes_mentioning, still_running
from local.launcher import LocalStackProcess
from local.waiting import wait_until


class RunningStack(LocalStackProcess):
    """One `python -m local run` process; stopping or killing it also checks that
    everything it started is gone."""

    def stop(self) -> None:
        family = descendants(self.proc.pid) if self.proc else set()
        super().stop()
        self._reap(family)

    def kill(self) -> None:
        family = descendants(self.proc.pid) if self.proc else set()
        super().kill()
        self._reap(family)

    def _reap(self, family: set[tuple[int, str]]) -> None:
        def left() -> list[int]:
            named = processes_mentioning(str(self.state_dir)) + processes_mentioning(f"--port {self.dynamodb_port}")
            return named + [pid for pid, _ in still_running(family)]

        try:
            wait_until(lambda: not left(), timeout=10, what="every process of the local stack ended")
        except TimeoutError:
            for pid in left():
                os.kill(pid, signal.SIGKILL)
            raise AssertionError("the local stack left processes behind") from None


@pytest.fixture
def start_stack(request, tmp_path, dev_cdk_out):
    """Factory: start_stack(cdk_out=None, *flags) -> RunningStack; all stopped at teardown.
    A test during which IAM denied a call fails, unless it is marked iam_denials (it makes
    them on purpose)."""
    stacks: list[RunningStack] = []

    def start(cdk_out: Path | None = None, *flags: str) -> RunningStack:
        stack = RunningStack(cdk_out or dev_cdk_out, tmp_path / f"state{len(stacks)}", *flags)
        stacks.append(stack)
        return stack.start()

    yield start
    for stack in stacks:
        stack.stop()
    if request.node.get_closest_marker("iam_denials") is None:
        denied = [line for stack in stacks for line in stack.iam_denials()]
        assert not denied, "\n".join(denied)


@pytest.fixture(scope="session")
def _shared_stack(tmp_path_factory, dev_cdk_out):
    stacks = [RunningStack(dev_cdk_out, tmp_path_factory.mktemp("shared-stack")).start()]
    yield stacks
    stacks[-1].stop()


@pytest.fixture
def stack(_shared_stack) -> Iterator[RunningStack]:
    """This worker's dev-mode stack, reset; started again if a test left it dead. A test
    during which IAM denied any call (local/iam.py) fails, with the denied calls."""
    shared = _shared_stack[-1]
    if shared.proc.poll() is not None:
        shared.stop()
        shared = RunningStack(shared.cdk_out, shared.state_dir.parent / f"{shared.state_dir.name}-again").start()
        _shared_stack.append(shared)
    shared.reset()
    shared.log_from_here()
    yield shared
    # every call of every function was allowed by its role, as AWS would have to allow it:
    # a missing grant fails the test that made the call, even where the handler carries on
    denied = shared.iam_denials()
    assert not denied, "\n".join(denied)


@pytest.fixture
def browser():
    """Headless Chromium (Debian's `chromium`, or $CHROMIUM), driven by Playwright. On a
    machine without it, the browser tests are skipped, saying how to run them."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip(
            "browser tests skipped: no Chromium here. Install Debian's package (sudo apt-get install chromium; "
            "bash .ci/run does it) or set CHROMIUM=/path/to/chrome, then run make test again"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # as root (CI) Chromium needs --no-sandbox; the rest keeps it off the (closed) network
        flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync"]
        flags += ["--disable-background-networking", "--disable-component-update"]
        browser = playwright.chromium.launch(executable_path=path, args=flags)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def artifacts() -> Path:
    """Where tests leave files for people to look at (screenshots): $TEST_ARTIFACTS, or
    test-artifacts/ in the checkout."""
    folder = Path(os.environ.get("TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
