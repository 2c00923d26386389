"""Static checks on every synth: cdk-nag's AWS Solutions pack and cfn-lint.

app.py runs the same cdk-nag pack as a validation plugin, so `cdk synth` and
`cdk deploy` fail on an unacknowledged finding too. Acknowledgements live next to
their resources in stacks/, each with its reason.
"""

from __future__ import annotations

import json

import pytest
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import lint

from synth import build, synth

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"
CONTEXTS = {
    "default (cognito, created pool)": {},
    "dev auth": {"auth": "dev"},
    "existing pool, other stage": {"userPoolId": "us-east-1_AbC123", "userPoolClientIds": "a,b", "stage": "beta"},
    "retain data": {"retainData": "true"},
    "access logs": {"accessLogs": "true"},
    "custom domain": {"domainName": "chat.example.com", "certificateArn": CERTIFICATE},
    "push preview": {"pushPreview": "true"},
}


def findings(app) -> list[str]:
    report = AwsSolutionsChecks(app).validate_scope(app)
    return [f"{v.rule_name} ({v.severity}): {v.description}" for v in report.violations]


@pytest.mark.parametrize("context", CONTEXTS.values(), ids=CONTEXTS.keys())
def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(context):
    app, _ = build(**context)
    assert findings(app) == []


def test_cdk_nag_catches_a_broken_rule():
    # Given the stack, with a statement that lets the message function do anything to any table
    app, stack = build()
    message = stack.node.find_child("Functions").message
    message.add_to_role_policy(iam.PolicyStatement(actions=["dynamodb:*"], resources=["*"]))
    # Then the check reports it (so the zero above means something)
    found = findings(app)
    assert any(f.startswith("AwsSolutions-IAM5[Action::dynamodb:*] (error)") for f in found), found
    assert any(f.startswith("AwsSolutions-IAM5[Resource::*] (error)") for f in found), found


@pytest.mark.parametrize("context", CONTEXTS.values(), ids=CONTEXTS.keys())
def test_cfn_lint_finds_no_error_and_no_warning(context):
    template = synth(**context)[1].to_json()
    assert [str(m) for m in lint(json.dumps(template))] == []


def test_cfn_lint_catches_a_redundant_dependency():
    # Given the template with the dependency CDK adds and stacks/functions.py removes
    template = synth()[1].to_json()
    function = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
    function["DependsOn"].append(function["Properties"]["Role"]["Fn::GetAtt"][0])
    assert any("W3005" in str(m) for m in lint(json.dumps(template)))
