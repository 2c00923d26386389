"""IAM in the local stack (local/iam.py): the policy evaluation, checked against the
examples of AWS's IAM User Guide (policy evaluation logic, the Condition element and its
operators, multivalued keys), and how a denial is printed. DynamoDB's check in front of
dynalite, which asks it: test_dynamodb.py."""

from __future__ import annotations

import pytest

from local import iam

ROLE = iam.Principal(arn=f"arn:aws:iam::{iam.ACCOUNT}:role/ExampleRole", name="ExampleFunction")


def allowed(statements, action: str, resource: str = "*", **context) -> bool:
    return iam.evaluate(action, resource, ROLE, context, [iam.Policy.of({"Statement": statements})]).allowed


def statement(effect="Allow", action="*", resource="*", **more) -> dict:
    return {"Effect": effect, "Action": action, "Resource": resource, **more}


# ---- the evaluation logic ---------------------------------------------------------------


def test_a_request_no_statement_allows_is_denied_implicitly():
    decision = iam.evaluate("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:000000000000:table/Books", ROLE)
    assert not decision.allowed
    assert decision.reason == "no identity-based policy allows the dynamodb:GetItem action"


def test_an_explicit_deny_overrides_any_allow():
    # the guide's example: allow everything on DynamoDB, deny one table
    books = "arn:aws:dynamodb:us-east-1:000000000000:table/Books"
    statements = [statement(action="dynamodb:*"), statement("Deny", "dynamodb:*", books)]
    assert allowed(statements, "dynamodb:GetItem", books.replace("Books", "Music"))
    decision = iam.evaluate("dynamodb:GetItem", books, ROLE, {}, [iam.Policy.of({"Statement": statements})])
    assert not decision.allowed and decision.reason == "an explicit deny in an identity-based policy"


def test_actions_match_with_wildcards_and_without_case_resources_with_case():
    table = "arn:aws:dynamodb:us-east-1:000000000000:table/Books"
    statements = [statement(action="DynamoDB:Get*", resource="arn:aws:dynamodb:*:*:table/Boo?s")]
    assert allowed(statements, "dynamodb:GetItem", table)
    assert not allowed(statements, "dynamodb:PutItem", table)
    assert not allowed(statements, "dynamodb:GetItem", table.replace("Books", "books"))  # ARNs are case sensitive
    assert not allowed(statements, "dynamodb:GetItem", table + "/index/byAuthor")  # a table is not its indexes
    assert allowed(
        [statement(action="dynamodb:Query", resource=table + "/index/*")], "dynamodb:Query", table + "/index/x"
    )


def test_not_action_allows_everything_but_the_actions_it_names():
    # the guide's "NotAction with Allow": everything except IAM
    statements = [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]
    assert allowed(statements, "s3:GetObject")
    assert not allowed(statements, "iam:CreateUser")


def test_not_resource_with_deny_denies_everything_but_the_resources_it_names():
    bucket = "arn:aws:s3:::HRBucket/Payroll"
    statements = [
        statement(action="s3:*"),
        {"Effect": "Deny", "Action": "s3:*", "NotResource": [bucket, bucket + "/*"]},
    ]
    assert allowed(statements, "s3:GetObject", bucket + "/2026.csv")
    assert not allowed(statements, "s3:GetObject", "arn:aws:s3:::HRBucket/Other/x")


def test_conditions_hold_together_and_a_keys_values_are_alternatives():
    # the guide: several operators or keys are AND, several values of one key are OR
    condition = {"StringEquals": {"events:source": ["app", "billing"], "events:detail-type": "Paid"}}
    statements = [statement(action="events:PutEvents", Condition=condition)]
    assert allowed(statements, "events:PutEvents", **{"events:source": "billing", "events:detail-type": "Paid"})
    assert not allowed(statements, "events:PutEvents", **{"events:source": "billing", "events:detail-type": "Due"})
    assert not allowed(statements, "events:PutEvents", **{"events:source": "other", "events:detail-type": "Paid"})
    assert allowed(
        statements, "events:PutEvents", **{"EVENTS:Source": "app", "events:detail-type": "Paid"}
    )  # keys: any case


def test_a_missing_key_fails_a_condition_but_a_negated_one_or_if_exists_or_null():
    ask = {"StringEquals": {"aws:PrincipalTag/team": "chat"}}
    assert not allowed([statement(Condition=ask)], "s3:GetObject")
    assert allowed([statement(Condition={"StringNotEquals": {"aws:PrincipalTag/team": "ops"}})], "s3:GetObject")
    # the guide's IfExists example: "if the key is present, it must be t1.*"
    if_exists = {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*"]}}
    assert allowed([statement(Condition=if_exists)], "ec2:RunInstances")
    assert allowed([statement(Condition=if_exists)], "ec2:RunInstances", **{"ec2:InstanceType": "t2.micro"})
    assert not allowed([statement(Condition=if_exists)], "ec2:RunInstances", **{"ec2:InstanceType": "m5.large"})
    # Null: true when the key is absent
    assert allowed([statement(Condition={"Null": {"aws:TokenIssueTime": "true"}})], "s3:GetObject")
    assert not allowed([statement(Condition={"Null": {"aws:TokenIssueTime": "false"}})], "s3:GetObject")
    decision = iam.evaluate("s3:GetObject", "*", ROLE, {}, [iam.Policy.of({"Statement": [statement(Condition=ask)]})])
    assert decision.missing_keys == ("aws:principaltag/team",)


def test_the_ssl_only_deny_applies_to_plain_http_alone():
    # the guide's and CDK's enforce_ssl statement
    deny = statement("Deny", "sns:Publish", Condition={"Bool": {"aws:SecureTransport": "false"}})
    statements = [statement(action="sns:Publish"), deny]
    assert allowed(statements, "sns:Publish")  # boto3 on AWS: HTTPS
    assert not allowed(statements, "sns:Publish", **{"aws:SecureTransport": "false"})


def test_numeric_date_ip_and_arn_operators():
    def holds(operator, key, wanted, value) -> bool:
        return allowed([statement(Condition={operator: {key: wanted}})], "s3:GetObject", **{key: value})

    assert holds("NumericLessThanEquals", "s3:max-keys", "10", "10")
    assert not holds("NumericLessThan", "s3:max-keys", "10", "10")
    assert not holds("NumericEquals", "s3:max-keys", "10", "ten")
    assert holds("DateLessThan", "aws:CurrentTime", "2030-01-01T00:00:00Z", "2026-12-08T00:00:00Z")
    assert not holds("DateGreaterThan", "aws:CurrentTime", "2030-01-01T00:00:00Z", "2026-12-08T00:00:00Z")
    assert holds("IpAddress", "aws:SourceIp", "203.0.113.0/24", "203.0.113.7")
    assert not holds("IpAddress", "aws:SourceIp", "203.0.113.0/24", "198.51.100.7")
    assert holds("NotIpAddress", "aws:SourceIp", "203.0.113.0/24", "198.51.100.7")
    # ArnLike compares the six parts one by one: a * does not cross into the account
    pattern = "arn:aws:sqs:*:123456789012:queue*"
    assert holds("ArnLike", "aws:SourceArn", pattern, "arn:aws:sqs:eu-west-1:123456789012:queue1")
    assert not holds("ArnLike", "aws:SourceArn", pattern, "arn:aws:sqs:eu-west-1:999999999999:queue1")
    assert not holds("ArnEquals", "aws:SourceArn", pattern, "not an arn")
    assert holds("StringEqualsIgnoreCase", "aws:username", "Alice", "ALICE")


def test_set_operators_on_multivalued_keys():
    # the guide's examples with aws:TagKeys
    only = {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
    assert allowed([statement(Condition=only)], "ec2:CreateTags", **{"aws:TagKeys": ["environment"]})
    assert not allowed([statement(Condition=only)], "ec2:CreateTags", **{"aws:TagKeys": ["environment", "owner"]})
    assert allowed([statement(Condition=only)], "ec2:CreateTags")  # no key: ForAllValues holds
    some = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["environment"]}}
    assert allowed([statement(Condition=some)], "ec2:CreateTags", **{"aws:TagKeys": ["owner", "environment"]})
    assert not allowed([statement(Condition=some)], "ec2:CreateTags", **{"aws:TagKeys": ["owner"]})
    assert not allowed([statement(Condition=some)], "ec2:CreateTags")


def test_a_resource_policy_allows_the_principals_it_names():
    topic = "arn:aws:sns:us-east-1:000000000000:Alarms"
    policy = iam.Policy.of(
        {
            "Statement": [
                statement(action="sns:Publish", resource=topic, Principal={"Service": "cloudwatch.amazonaws.com"})
            ]
        }
    )
    cloudwatch = iam.Principal(service="cloudwatch.amazonaws.com")
    assert iam.evaluate("sns:Publish", topic, cloudwatch, resource_policy=policy).allowed
    assert not iam.evaluate(
        "sns:Publish", topic, iam.Principal(service="events.amazonaws.com"), resource_policy=policy
    ).allowed
    assert not iam.evaluate("sns:Publish", topic, ROLE, resource_policy=policy).allowed
    # a statement naming the role, or its session, allows it on its own
    for name in (ROLE.arn, ROLE.session_arn):
        names = iam.Policy.of({"Statement": [statement(resource=topic, Principal={"AWS": name})]}, resource=True)
        assert iam.evaluate("sns:Publish", topic, ROLE, resource_policy=names).allowed
    # naming the account leaves it to the account's identity policies
    account = iam.Policy.of({"Statement": [statement(resource=topic, Principal={"AWS": iam.ACCOUNT})]}, resource=True)
    assert not iam.evaluate("sns:Publish", topic, ROLE, resource_policy=account).allowed
    identity = [iam.Policy.of({"Statement": [statement(action="sns:Publish", resource=topic)]})]
    assert iam.evaluate("sns:Publish", topic, ROLE, {}, identity, account).allowed
    # and a deny for the account applies to the role
    deny = iam.Policy.of(
        {"Statement": [statement("Deny", resource=topic, Principal={"AWS": iam.ACCOUNT})]}, resource=True
    )
    assert not iam.evaluate("sns:Publish", topic, ROLE, {}, identity, deny).allowed


def test_a_policy_the_local_stack_cannot_evaluate_stops_it_with_the_reason():
    with pytest.raises(iam.PolicyError, match="condition operator 'BinaryEquals'"):
        iam.Policy.of({"Statement": [statement(Condition={"BinaryEquals": {"k": "QmluYXJ5"}})]})
    with pytest.raises(iam.PolicyError, match="policy variables"):
        iam.Policy.of({"Statement": [statement(resource="arn:aws:s3:::bucket/${aws:username}/*")]})
    with pytest.raises(iam.PolicyError, match="Effect must be Allow or Deny"):
        iam.Policy.of({"Statement": [statement(effect="allow")]})
    with pytest.raises(iam.PolicyError, match="'NullIfExists'"):  # not an operator AWS takes
        iam.Policy.of({"Statement": [statement(Condition={"NullIfExists": {"aws:TokenIssueTime": "true"}})]})
    with pytest.raises(iam.PolicyError, match="needs Principal"):
        iam.Policy.of({"Statement": [statement()]}, "a topic's policy", resource=True)


def test_a_denial_is_printed_on_one_line_whatever_the_resource_holds():
    decision = iam.Decision(False, "no identity-based policy allows the x:Y action")
    line = iam.denial_line(ROLE, "x:Y", "arn:aws:x:::a\ndenied by IAM: forged\u2028b", decision)
    assert line.splitlines() == [line] and "\\u000a" in line and "\\u2028" in line
