"""The real CLI: `npx cdk synth` with no AWS credentials prints the template."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.api import MESSAGE_ROUTES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    if not (ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail("the pinned CDK CLI is not installed: run `make test` (it runs npm ci)")
    home = tmp_path_factory.mktemp("home")  # no ~/.aws here
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "CDK_DEFAULT_ACCOUNT"}
    env.update(
        HOME=str(home),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        AWS_EC2_METADATA_DISABLED="true",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        CDK_DISABLE_VERSION_CHECK="1",
    )
    return env


def cdk_synth(env, tmp_path, *args):
    return subprocess.run(
        [
            shutil.which("npx", path=env["PATH"]) or "npx",
            "--no-install",
            "cdk",
            "synth",
            "--no-notices",
            "-o",
            str(tmp_path / "cdk.out"),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cdk_synth_without_credentials_prints_the_template(cli_env, tmp_path):
    result = cdk_synth(cli_env, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert out.count("Type: AWS::Lambda::Function\n") == 3
    assert out.count("Type: AWS::DynamoDB::GlobalTable\n") == 4
    assert "Type: AWS::ApiGatewayV2::Stage" in out and "StageName: production" in out
    assert "AttributeName: ttl" in out and "IndexName: connections-by-user" in out
    for route in ("$connect", "$disconnect", "$default", *MESSAGE_ROUTES):
        assert f"RouteKey: {route}" in out or f'RouteKey: "{route}"' in out, route


def test_cdk_synth_in_dev_mode_warns_loudly(cli_env, tmp_path):
    result = cdk_synth(cli_env, tmp_path, "-c", "auth=dev", "-c", "instance=alice")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "auth=dev" in result.stderr
    assert (tmp_path / "cdk.out" / "RealtimeMessaging-alice.template.json").exists()


def test_cdk_synth_with_bad_context_fails_with_the_reason(cli_env, tmp_path):
    result = cdk_synth(cli_env, tmp_path, "-c", "auth=none")
    assert result.returncode != 0
    assert "auth must be 'cognito' (default) or 'dev'" in result.stderr


def test_two_synths_are_byte_identical(cli_env, tmp_path, dev_cdk_out):
    # Given two synths of the same checkout into separate folders: the run's shared one,
    # and this one, with another HOME and no AWS variables at all
    result = cdk_synth(cli_env, tmp_path, "--quiet", "-c", "auth=dev")
    assert result.returncode == 0, result.stderr[-3000:]
    # Then the templates, the asset manifests and the staged asset folders are the same
    first, second = dev_cdk_out, tmp_path / "cdk.out"
    for pattern in ("*.template.json", "*.assets.json"):
        files = sorted(path.name for path in first.glob(pattern))
        assert files and files == sorted(path.name for path in second.glob(pattern))
        for name in files:
            assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assets = sorted(path.name for path in first.glob("asset.*"))
    assert assets and assets == sorted(path.name for path in second.glob("asset.*"))
