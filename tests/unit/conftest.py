"""The handlers' tests drive them through harness.Chat; the templates and moto's DynamoDB
are the whole suite's (tests/conftest.py)."""

from __future__ import annotations

import pytest

from harness import Chat


@pytest.fixture
def chat(dynamodb, dev_template) -> Chat:
    """A fresh deployment in dev auth mode (?userId=)."""
    return Chat(dynamodb, dev_template)
