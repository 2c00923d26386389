"""What a cold start pays to import: the handlers as they are (logs and metrics from the
standard library), boto3 and the clients the first requests create, against Powertools
for AWS Lambda's Logger and Metrics. docs/performance.md ("Cold start") uses them for the
SnapStart decision.

    python -m bench.cold_imports [--powertools-python PATH] [--runs 30]

Each figure is the median wall time of importing in a fresh interpreter, beside the
floor of an interpreter that imports nothing. Powertools is not a dependency of this
project: give an interpreter that has it (for example a venv with
`pip install aws-lambda-powertools`), or its row is skipped. docs/operations.md records
the figures and the decision.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TIMED = """
import time
started = time.perf_counter()
{imports}
print((time.perf_counter() - started) * 1000)
"""

CASES = {
    "nothing (the timer itself)": "pass",
    "the message handler (chat.log: json, traceback)": "import message",
    "boto3 (the first request imports it)": "import boto3",
    # what the message function's first requests set up: boto3 and its three clients
    "boto3 and the message function's three clients": (
        "import os; os.environ.setdefault('AWS_DEFAULT_REGION', 'us-east-1')\n"
        "os.environ.setdefault('AWS_ACCESS_KEY_ID', 'x'); os.environ.setdefault('AWS_SECRET_ACCESS_KEY', 'x')\n"
        "from chat import aws; aws.dynamodb(); aws.events()\n"
        "aws.management_api('https://abc123.execute-api.us-east-1.amazonaws.com/production')"
    ),
    "Powertools Logger and Metrics": "from aws_lambda_powertools import Logger, Metrics",
}


def median_ms(python: str, imports: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        out = subprocess.run(  # noqa: S603 (our own interpreter and code)
            [python, "-c", TIMED.format(imports=imports)],
            cwd=ROOT / "lambda_src",
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--powertools-python", help="an interpreter with aws-lambda-powertools installed")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    print(f"median import time in a fresh interpreter, {args.runs} runs each, Python {sys.version.split()[0]}")
    for name, imports in CASES.items():
        python = sys.executable
        if "Powertools" in name:
            if not args.powertools_python:
                print(f"  {name:50} skipped (no --powertools-python)")
                continue
            python = args.powertools_python
        print(f"  {name:50} {median_ms(python, imports, args.runs):8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
