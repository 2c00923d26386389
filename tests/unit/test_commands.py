"""The commands a newcomer types first: what they say when something is missing or wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_make_token_wants_the_user_on_its_command_line():
    # the shell's $USER (maybe empty, maybe not whom you mean) mints nothing
    for refused in (make("-s", "token"), make("-s", "token", "USER=")):
        assert refused.returncode == 2 and refused.stdout == ""
        assert "make token USER=<user id>" in refused.stderr


def test_the_local_stacks_help_needs_only_the_standard_library():
    # the README's `python3 -m local run --help`, outside the venv: here without any site-packages
    shown = subprocess.run(
        [sys.executable, "-S", "-m", "local", "run", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert shown.returncode == 0, shown.stderr
    assert "--workers" in shown.stdout and "--handshake-delay-ms" in shown.stdout
