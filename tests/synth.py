"""The synthesized template, built in-process once per context, with cdk.json's flags;
and the real CLI, `npx cdk synth`, as the tests run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cdk_json_context() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def build(**context):
    """A fresh App and stack, not cached, for tests that change the stack."""
    import aws_cdk as cdk

    from stacks.config import StackConfig
    from stacks.messaging_stack import MessagingStack

    # The same feature flags as `cdk synth` (a bare App() would ignore cdk.json).
    app = cdk.App(context={**cdk_json_context(), **context})
    config = StackConfig.from_context(app.node.try_get_context)
    return app, MessagingStack(app, config.stack_name, config=config)


@lru_cache(maxsize=8)
def _synth(context_items: tuple) -> tuple:
    from aws_cdk.assertions import Template

    _, stack = build(**dict(context_items))
    return stack, Template.from_stack(stack)


def synth(**context):
    """(stack, Template) for the given context overrides; cached."""
    return _synth(tuple(sorted(context.items())))


def cli_environment(home: Path) -> dict[str, str]:
    """The environment the tests run `npx cdk` in: no AWS variables and a HOME of its
    own (no ~/.aws), so a synth can neither reach nor use a real account."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "CDK_DEFAULT_ACCOUNT"}
    env.update(
        HOME=str(home),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        AWS_EC2_METADATA_DISABLED="true",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        CDK_DISABLE_VERSION_CHECK="1",
    )
    return env


def cdk_synth(env: dict[str, str], out: Path, *args: str) -> subprocess.CompletedProcess:
    """`npx --no-install cdk synth --no-notices -o <out> <args>` in the checkout."""
    npx = shutil.which("npx", path=env["PATH"]) or "npx"
    return subprocess.run(  # noqa: S603 (the pinned CLI, our arguments)
        [npx, "--no-install", "cdk", "synth", "--no-notices", "-o", str(out), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
