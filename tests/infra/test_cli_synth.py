"""The real CLI: `npx cdk synth` with no AWS credentials prints the template."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks.api import MESSAGE_ROUTES
from synth import cdk_synth, cli_environment

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    if not (ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail("the pinned CDK CLI is not installed: run `make test` (it runs npm ci)")
    return cli_environment(tmp_path_factory.mktemp("home"))  # no ~/.aws there


def test_cdk_synth_without_credentials_prints_the_template(cognito_cdk_out):
    # the run's shared plain `cdk synth` (tests/conftest.py), made in cli_environment()
    out = (cognito_cdk_out.parent / "stdout.txt").read_text()
    assert out.count("Type: AWS::Lambda::Function\n") == 3
    assert out.count("Type: AWS::DynamoDB::GlobalTable\n") == 4
    assert "Type: AWS::ApiGatewayV2::Stage" in out and "StageName: production" in out
    assert "AttributeName: ttl" in out and "IndexName: connections-by-user" in out
    for route in ("$connect", "$disconnect", "$default", *MESSAGE_ROUTES):
        assert f"RouteKey: {route}" in out or f'RouteKey: "{route}"' in out, route


@pytest.fixture(scope="module")
def dev_synth(cli_env, tmp_path_factory):
    """`cdk synth -c auth=dev` once more, into a folder of its own: (its result, cdk.out)."""
    out = tmp_path_factory.mktemp("dev-again") / "cdk.out"
    result = cdk_synth(cli_env, out, "--quiet", "-c", "auth=dev")
    assert result.returncode == 0, result.stderr[-3000:]
    return result, out


def test_cdk_synth_in_dev_mode_warns_loudly(dev_synth):
    result, out = dev_synth
    assert "WARNING auth=dev: $connect trusts ?userId= as given" in result.stderr
    assert (out / "RealtimeMessaging.template.json").exists()


def test_cdk_synth_with_bad_context_fails_with_the_reason(cli_env, tmp_path):
    result = cdk_synth(cli_env, tmp_path / "cdk.out", "-c", "auth=none")
    assert result.returncode != 0
    assert "auth must be 'cognito' (default) or 'dev'" in result.stderr


def test_two_synths_are_byte_identical(dev_synth, dev_cdk_out):
    # Given two synths of the same checkout into separate folders: the run's shared one and
    # this module's, each with a HOME of its own
    # Then the templates, the asset manifests and the staged asset folders are the same
    first, second = dev_cdk_out, dev_synth[1]
    for pattern in ("*.template.json", "*.assets.json"):
        files = sorted(path.name for path in first.glob(pattern))
        assert files and files == sorted(path.name for path in second.glob(pattern))
        for name in files:
            assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assets = sorted(path.name for path in first.glob("asset.*"))
    assert assets and assets == sorted(path.name for path in second.glob("asset.*"))
