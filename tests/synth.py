"""The synthesized template, built in-process once per context, with cdk.json's flags."""

from __future__ import annotations

import json
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
