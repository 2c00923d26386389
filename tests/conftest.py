"""Shared test setup: fake AWS credentials, so tests never reach AWS, `cdk synth` outputs
made once per test run and their templates, and moto's DynamoDB for the tests of the
handlers (tests/unit) and of the local stack's parts (tests/local). Import paths are
pytest's `pythonpath` (pyproject.toml)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from local.template import load_assembly
from synth import cdk_synth, cli_environment

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


def pytest_collection_modifyitems(items):
    """Tests marked slow first, the rest in their order: pytest-xdist hands tests out in
    this order, so the long ones start early on every worker and the run ends on short
    ones, not on a soak that started last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(optionalhook=True)  # (a hook of pytest-xdist's: without it, never called)
def pytest_xdist_make_scheduler(config, log):
    """With pytest-xdist (make test), the infrastructure tests, which synthesize
    in-process, go to one worker together: a worker that synthesizes pays for a jsii
    runtime and for each synth itself, about 15 s of CPU. Every other test is handed out
    on its own, in collection order, to the first worker with two or fewer left."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerForTheCdk(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/infra" if nodeid.startswith("tests/infra/") else nodeid

    return OneWorkerForTheCdk(config, log)


def _synth_once(tmp_path_factory, name: str, *args: str) -> Path:
    """`npx cdk synth <args>` into a folder the whole run shares, what it printed kept in
    stdout.txt and stderr.txt beside it: with pytest-xdist (make test) the first worker to ask
    synthesizes it while the others wait, so each is synthesized once per run."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    out, done = root / f"synth-{name}" / "cdk.out", root / f"synth-{name}.done"
    with open(root / f"synth-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            home = root / f"synth-{name}" / "home"
            home.mkdir(parents=True, exist_ok=True)
            result = cdk_synth(cli_environment(home), out, *args)
            assert result.returncode == 0, result.stderr[-3000:]
            (out.parent / "stdout.txt").write_text(result.stdout)
            (out.parent / "stderr.txt").write_text(result.stderr)
            done.touch()
    return out


@pytest.fixture(scope="session")
def dev_cdk_out(tmp_path_factory) -> Path:
    """cdk.out of `cdk synth -c auth=dev`, as `make local` runs it; what it printed is in
    stdout.txt and stderr.txt beside it."""
    return _synth_once(tmp_path_factory, "dev", "--quiet", "-c", "auth=dev")


@pytest.fixture(scope="session")
def cognito_cdk_out(tmp_path_factory) -> Path:
    """cdk.out of a plain `cdk synth` (cognito auth, the default), as `make local
    AUTH=token` runs it; what it printed is in stdout.txt and stderr.txt beside it."""
    return _synth_once(tmp_path_factory, "default")


@pytest.fixture(scope="session")
def dev_template(dev_cdk_out) -> dict:
    """The template `cdk synth -c auth=dev` makes: the run's shared synth."""
    return load_assembly(dev_cdk_out)[1]


@pytest.fixture(scope="session")
def cognito_template(cognito_cdk_out) -> dict:
    """The template a plain `cdk synth` makes (cognito auth, the default)."""
    return load_assembly(cognito_cdk_out)[1]


@pytest.fixture(scope="session")
def dynamodb_client():
    """One boto3 client for every test: moto intercepts any client made after it is
    imported, and a new client per test cost about 45 ms of CPU. (Imported here, not at
    the top: the end-to-end and infrastructure tests have no use for moto.)"""
    import boto3
    import moto  # noqa: F401 (before the client: see above)

    return boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def dynamodb(dynamodb_client):
    """moto's DynamoDB, empty for each test."""
    from moto import mock_aws

    with mock_aws():
        yield dynamodb_client
