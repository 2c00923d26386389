from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from harness import Chat
from local.template import load_assembly


@pytest.fixture(scope="session")
def dev_template(dev_cdk_out) -> dict:
    """The template `cdk synth -c auth=dev` makes: the run's shared synth (tests/conftest.py)."""
    return load_assembly(dev_cdk_out)[1]


@pytest.fixture(scope="session")
def cognito_template(cognito_cdk_out) -> dict:
    """The template a plain `cdk synth` makes (cognito auth, the default)."""
    return load_assembly(cognito_cdk_out)[1]


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
