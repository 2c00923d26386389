"""Each fact in one place: the context defaults live in stacks/config.py (DEFAULTS) and
the client actions in lambda_src/chat/actions.py (ACTIONS). Everything that repeats
them is checked here against the source."""

from __future__ import annotations

import re
from pathlib import Path

from chat.actions import by_name
from chat.config import MissingSetting, Settings
from chat.contract import ACTIONS
from local.template import aws_refs, functions, resolve
from stacks.api import MESSAGE_ROUTES
from stacks.config import DEFAULTS, MAX_CONTENT_BYTES_LIMIT, StackConfig
from synth import cdk_json_context, synth

ROOT = Path(__file__).resolve().parents[2]


def readme_configuration_table() -> dict[str, str]:
    """key -> default, as the README's Configuration table shows it."""
    section = (ROOT / "README.md").read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    table = {}
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        keys_cell, default_cell = [cell.strip() for cell in row.strip("|").split("|")][:2]
        keys = re.findall(r"`([^`]+)`", keys_cell)
        defaults = re.findall(r"`([^`]*)`", default_cell) or [default_cell]
        assert len(keys) == len(defaults), row
        table.update(zip(keys, defaults, strict=True))
    return table


def shown(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "(none)" if value == "" else str(value)


def test_the_readme_configuration_table_lists_every_key_with_its_real_default():
    assert readme_configuration_table() == {key: shown(value) for key, value in DEFAULTS.items()}
    assert f"at most {MAX_CONTENT_BYTES_LIMIT}," in (ROOT / "README.md").read_text()


def test_the_defaults_are_valid_and_cdk_json_does_not_repeat_them():
    StackConfig.from_context(lambda key: None)  # every default passes its own checks
    assert set(cdk_json_context()) & set(DEFAULTS) == set()


def test_every_function_gets_every_setting_it_needs_from_the_stack():
    template = synth(auth="dev")[1].to_json()
    tables = {k: k for k, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::GlobalTable"}
    refs = {**tables, **aws_refs(template, "eu-west-1", "api123")}
    for spec in functions(template).values():
        env = {key: resolve(value, refs) for key, value in spec["environment"].items()}
        settings = Settings.from_env(env)
        assert settings.max_content_bytes == DEFAULTS["maxContentBytes"]
        assert settings.connection_ttl_seconds == DEFAULTS["connectionTtlHours"] * 3600
        # the stage's own @connections URL, for the one function that posts (never a request's domain)
        posts = spec["handler"] == "message.handler"
        assert settings.callback_url == (
            "https://api123.execute-api.eu-west-1.amazonaws.com/production" if posts else ""
        )
    without_table = {k: v for k, v in env.items() if k != "MESSAGES_TABLE"}
    try:
        Settings.from_env(without_table)
    except MissingSetting as exc:
        assert "MESSAGES_TABLE is not set" in str(exc)
    else:
        raise AssertionError("a missing setting was not reported")


def test_every_client_action_has_a_route_and_every_route_an_action():
    template = synth()[1].to_json()
    routes = [r["Properties"]["RouteKey"] for r in template["Resources"].values() if r["Type"].endswith("::Route")]
    assert tuple(by_name(settings=None)) == MESSAGE_ROUTES  # the message function handles every route
    assert sorted(routes) == sorted(["$connect", "$disconnect", "$default", *ACTIONS])
