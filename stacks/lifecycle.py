"""What the stack keeps when it is deleted: every stateful resource (tables, log groups,
the created user pool) follows context retainData."""

from __future__ import annotations

from aws_cdk import RemovalPolicy


def removal_policy(retain_data: bool) -> RemovalPolicy:
    """Delete with the stack, or with retainData keep it. Kept only once created: a first
    deploy that rolls back leaves nothing behind (CloudFormation's RetainExceptOnCreate)."""
    return RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if retain_data else RemovalPolicy.DESTROY
