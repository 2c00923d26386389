"""Shared test setup: fake AWS credentials, so tests never reach AWS, and `cdk synth`
outputs made once per test run. Import paths are pytest's `pythonpath` (pyproject.toml)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE"):
    os.environ.pop(key, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
    JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
)


def _synth_once(tmp_path_factory, auth: str) -> Path:
    """`npx cdk synth -c auth=<auth>` into a folder the whole run shares: with
    pytest-xdist (make test) the first worker to ask synthesizes it while the others
    wait, so each configuration is synthesized once per run, not once per worker."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    out, done = root / f"synth-{auth}" / "cdk.out", root / f"synth-{auth}.done"
    with open(root / f"synth-{auth}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
            npx = shutil.which("npx", path=env["PATH"]) or "npx"
            args = [npx, "--no-install", "cdk", "synth", "--quiet", "--no-notices", "-c", f"auth={auth}"]
            args += ["-o", str(out)]
            result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)  # noqa: S603
            assert result.returncode == 0, result.stderr[-3000:]
            done.touch()
    return out


@pytest.fixture(scope="session")
def dev_cdk_out(tmp_path_factory) -> Path:
    """cdk.out of `cdk synth -c auth=dev`, as `make local` runs it."""
    return _synth_once(tmp_path_factory, "dev")


@pytest.fixture(scope="session")
def cognito_cdk_out(tmp_path_factory) -> Path:
    """cdk.out of `cdk synth -c auth=cognito`, as `make local AUTH=token` runs it."""
    return _synth_once(tmp_path_factory, "cognito")
