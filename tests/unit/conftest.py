from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from harness import Chat


def template_in(cdk_out: Path) -> dict:
    """The stack's template from a cdk.out (it holds one stack)."""
    [path] = cdk_out.glob("*.template.json")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def dev_template(dev_cdk_out) -> dict:
    """The template `cdk synth -c auth=dev` makes: the run's shared synth (tests/conftest.py)."""
    return template_in(dev_cdk_out)


@pytest.fixture(scope="session")
def cognito_template(cognito_cdk_out) -> dict:
    """The template a plain `cdk synth` makes (cognito auth, the default)."""
    return template_in(cognito_cdk_out)


@pytest.fixture(scope="session")
def dynamodb_client():
    """One boto3 client for every test: moto intercepts any client made after it is
    imported, and a new client per test cost about 45 ms of CPU."""
    return boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def dynamodb(dynamodb_client):
    """moto's DynamoDB, empty for each test."""
    with mock_aws():
        yield dynamodb_client


@pytest.fixture
def chat(dynamodb, dev_template) -> Chat:
    """A fresh deployment in dev auth mode (?userId=)."""
    return Chat(dynamodb, dev_template)
