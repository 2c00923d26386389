"""make deploy runs this first: what CloudFormation would only find out halfway through.

    python -m stacks.preflight -c accessLogs=true ...   (the same -c arguments as cdk deploy)

- The context is parsed and checked as the app does (a bad value stops here, with why).
- With accessLogs=true, API Gateway's account-level CloudWatch role must be set in this
  account and region; without it the stage fails to create ("CloudWatch Logs role ARN
  must be set in account settings") and the stack rolls back. The stack does not set
  it (docs/security.md, "Access logs" says why, and how to set it once).
Exits 0 when the deploy can go ahead, 2 with the fix otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .config import ConfigError, StackConfig

ROOT = Path(__file__).resolve().parent.parent


def context_of(argv: list[str], cdk_json: Path = ROOT / "cdk.json") -> dict:
    """cdk.json's context with the -c key=value (or --context key=value) arguments over it."""
    context = dict(json.loads(cdk_json.read_text()).get("context", {}))
    args = iter(argv)
    for arg in args:
        if arg in ("-c", "--context"):
            key, _, value = next(args, "").partition("=")
            context[key] = value
        elif arg.startswith("--context="):
            key, _, value = arg.removeprefix("--context=").partition("=")
            context[key] = value
    return context


def account_log_role(apigateway) -> str | None:
    """The account-level CloudWatch role API Gateway logs with, in this region, if set."""
    return apigateway.get_account().get("cloudwatchRoleArn") or None


def problems(config: StackConfig, apigateway_client) -> list[str]:
    if config.access_logs and account_log_role(apigateway_client()) is None:
        return [
            "accessLogs=true needs API Gateway's account-level CloudWatch role, which is not set in this "
            "account and region, so the stage would fail to deploy. Set it once (docs/security.md, "
            "'Access logs', has the three commands), or deploy without accessLogs."
        ]
    return []


def main(argv: list[str] | None = None, apigateway_client=None) -> int:
    try:
        config = StackConfig.from_context(context_of(sys.argv[1:] if argv is None else argv).get)
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    if apigateway_client is None:

        def apigateway_client():
            import boto3

            return boto3.client("apigateway")

    found = problems(config, apigateway_client)
    for problem in found:
        print(f"Not deploying: {problem}", file=sys.stderr)
    return 2 if found else 0


if __name__ == "__main__":
    sys.exit(main())
