"""make smoke against the local stack, in both auth modes, as CI runs it: every scenario
passes, and a stack it cannot reach is a failure too."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.smoke import main
from local.launcher import ROOT


def token(stack, user: str) -> str:
    command = [sys.executable, "-m", "local", "token", user, "--port", str(stack.port)]
    command += ["--state-dir", str(stack.state_dir)]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def test_make_smoke_passes_on_the_local_stack_in_dev_mode(stack, capsys):
    assert main(["--url", stack.url]) == 0
    out = capsys.readouterr().out
    assert out.count(" pass\n") == 6 and "FAIL" not in out and "left behind" in out


@pytest.mark.slow
def test_make_smoke_passes_on_the_local_stack_in_token_mode_and_never_prints_a_token(start_stack, cognito_cdk_out):
    stack = start_stack(cognito_cdk_out)
    tokens = [token(stack, "smoke-a"), token(stack, "smoke-b")]
    # When make smoke runs, as the README says to, with two users' tokens
    smoke = make_smoke(f"URL={stack.url}", f"TOKEN_A={tokens[0]}", f"TOKEN_B={tokens[1]}")
    # Then every scenario passes, and neither token shows (on a deployed stack they are real)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert (
        smoke.stdout.count(" pass\n") == 7
        and "FAIL" not in smoke.stdout
        and "a forged token is refused" in smoke.stdout
    )
    assert not any(t in smoke.stdout + smoke.stderr for t in tokens)
    # nor when it fails (a stack it cannot reach)
    unreachable = make_smoke("URL=ws://127.0.0.1:9", f"TOKEN_A={tokens[0]}", f"TOKEN_B={tokens[1]}")
    assert unreachable.returncode != 0 and "cannot reach" in unreachable.stderr
    assert not any(t in unreachable.stdout + unreachable.stderr for t in tokens)


def make_smoke(*variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "smoke", *variables], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_make_smoke_fails_on_a_stack_it_cannot_reach(capsys):
    assert main(["--url", "ws://127.0.0.1:9"]) == 2
    assert "cannot reach" in capsys.readouterr().err
