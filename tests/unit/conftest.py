from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from harness import Chat
from synth import synth


@pytest.fixture(scope="session")
def dev_template() -> dict:
    return synth(auth="dev")[1].to_json()


@pytest.fixture(scope="session")
def cognito_template() -> dict:
    return synth()[1].to_json()


@pytest.fixture
def dynamodb():
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def chat(dynamodb, dev_template) -> Chat:
    """A fresh deployment in dev auth mode (?userId=)."""
    return Chat(dynamodb, dev_template)
