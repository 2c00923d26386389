"""The real CLI: `npx cdk synth` with no AWS credentials prints the template."""

from __future__ import annotations

import json
from fnmatch import fnmatch
from pathlib import Path

import pytest

from stacks.api import MESSAGE_ROUTES
from stacks.functions import ASSET_EXCLUDE
from synth import cdk_synth, cli_environment, synth

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


def test_cdk_synth_in_dev_mode_warns_loudly(dev_cdk_out):
    # the run's shared `cdk synth -c auth=dev` (tests/conftest.py), as make local runs it
    assert "WARNING auth=dev: $connect trusts ?userId= as given" in (dev_cdk_out.parent / "stderr.txt").read_text()
    assert (dev_cdk_out / "RealtimeMessaging.template.json").exists()


@pytest.mark.slow
def test_cdk_synth_with_bad_context_fails_with_the_reason(cli_env, tmp_path):
    result = cdk_synth(cli_env, tmp_path / "cdk.out", "-c", "auth=none")
    assert result.returncode != 0
    assert "auth must be 'cognito' (default) or 'dev'" in result.stderr


def test_separate_synths_give_the_same_template_and_asset_hashes(dev_cdk_out, cognito_cdk_out):
    """A deploy after no change is a no-op: nothing in a synth depends on when or where it ran."""
    # Given the CLI's synth, made in processes of its own as the run began, and one made in
    # this process now, after the tests have run the handlers' code (Python may have written
    # bytecode beside it)
    cli = json.loads((dev_cdk_out / "RealtimeMessaging.template.json").read_text())
    here = synth(auth="dev")[1].to_json()
    # Then the templates are the same, asset hashes in each function's S3Key included, apart
    # from what the CLI adds to every template: the CDK's version report and path metadata
    assert _without_cli_metadata(cli) == _without_cli_metadata(here)
    # and the dev and the default synth stage one Lambda asset: lambda_src's sources, no bytecode
    assets = sorted(path.name for path in dev_cdk_out.glob("asset.*"))
    assert len(assets) == 1 and assets == sorted(path.name for path in cognito_cdk_out.glob("asset.*"))
    staged, source = dev_cdk_out / assets[0], ROOT / "lambda_src"
    assert _files(staged) == _files(source)
    for name in _files(source):
        assert (staged / name).read_bytes() == (source / name).read_bytes(), name


def _without_cli_metadata(template: dict) -> dict:
    resources = {
        logical_id: {key: value for key, value in resource.items() if key != "Metadata"}
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] != "AWS::CDK::Metadata"
    }
    return {**{k: v for k, v in template.items() if k != "Conditions"}, "Resources": resources}


def _files(folder: Path) -> list[str]:
    """The files under folder that an asset stages: none that ASSET_EXCLUDE matches, or in
    a folder it matches."""

    def excluded(name: str) -> bool:
        parts = name.split("/")
        prefixes = ("/".join(parts[: i + 1]) for i in range(len(parts)))
        return any(fnmatch(p, glob) or fnmatch(p, glob.removeprefix("**/")) for p in prefixes for glob in ASSET_EXCLUDE)

    names = (path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    return sorted(name for name in names if not excluded(name))
