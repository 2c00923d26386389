"""make smoke against the local stack, in both auth modes, as CI runs it: every scenario
passes, and a stack it cannot reach is a failure too."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.smoke import main


def token(stack, user: str) -> str:
    command = [sys.executable, "-m", "local", "token", user, "--port", str(stack.port)]
    command += ["--state-dir", str(stack.state_dir)]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def test_make_smoke_passes_on_the_local_stack_in_dev_mode(stack, capsys):
    assert main(["--url", stack.url]) == 0
    out = capsys.readouterr().out
    assert out.count(" pass\n") == 6 and "FAIL" not in out and "left behind" in out


@pytest.mark.slow
def test_make_smoke_passes_on_the_local_stack_in_token_mode(start_stack, cognito_cdk_out, capsys):
    stack = start_stack(cognito_cdk_out)
    assert main(["--url", stack.url, "--token-a", token(stack, "smoke-a"), "--token-b", token(stack, "smoke-b")]) == 0
    out = capsys.readouterr().out
    assert out.count(" pass\n") == 7 and "FAIL" not in out and "a forged token is refused" in out


def test_make_smoke_fails_on_a_stack_it_cannot_reach(capsys):
    assert main(["--url", "ws://127.0.0.1:9"]) == 2
    assert "cannot reach" in capsys.readouterr().err
