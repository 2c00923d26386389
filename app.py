#!/usr/bin/env python3
"""Reads the context once and builds the stack. Every context key: stacks/config.py."""

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.config import ConfigError, StackConfig
from stacks.messaging_stack import MessagingStack

app = cdk.App()
try:
    config = StackConfig.from_context(app.node.try_get_context)
except ConfigError as exc:
    sys.exit(f"Configuration error: {exc}")
MessagingStack(app, config.stack_name, config=config)
# AWS Solutions checks on every synth (and so on every deploy): an unacknowledged finding
# fails it. Each acknowledgement sits next to its resource in stacks/, with its reason.
cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
app.synth()
