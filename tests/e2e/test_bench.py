"""`make bench` itself, tiny: it must keep running and keep counting honestly. The
figures are not asserted (timing belongs in docs/performance.md, not in tests); what is
asserted is what must hold at any speed."""

from __future__ import annotations

import json

import pytest

from bench import bench

pytestmark = pytest.mark.slow


def warm(operations: dict) -> dict:
    """The requests per message, less the caller's connection's GetItem: made when a frame
    lands on a container that has not seen its connection yet, at most once per
    connection and container (a connection's frames run on any free container, as on
    AWS). 3 clients and 2 containers: at most 6 in 30 messages."""
    assert operations.get("GetItem", 0) * 30 <= 3 * 2
    return {op: n for op, n in operations.items() if op != "GetItem"}


def run_bench(cdk_out, tmp_path, *flags: str) -> tuple[int, dict]:
    """A tiny make bench: 3 clients, 30 messages. Its exit code and its figures."""
    figures = tmp_path / "figures.json"
    args = ["--cdk-out", str(cdk_out), "--state-dir", str(tmp_path / "state"), "--json", str(figures)]
    code = bench.main([*args, *"--clients 3 --messages 30 --floor-rounds 5".split(), *flags])
    return code, json.loads(figures.read_text())


def test_the_bench_runs_and_every_message_arrives_exactly_once(dev_cdk_out, tmp_path, capsys):
    code, result = run_bench(dev_cdk_out, tmp_path)
    assert code == 0 and result["lost"] == 0 and result["duplicated"] == 0 and result["errors"] == 0
    assert result["iam_denials"] == 0
    assert result["acks"] == {"delivered": 30}  # everyone was online
    # warm sends to an online recipient without ack mode: PutItem x2, Query x2, UpdateItem x3 (the README's "7 warm")
    assert warm(result["dynamodb_by_operation"]) == {"PutItem": 2.0, "Query": 2.0, "UpdateItem": 3.0}
    # the CPU per message of each part of the stack, the message function's containers among them
    parts = set(result["process_cpu_ms_per_message"])
    assert {"gateway", "dynalite", "function message"} <= parts
    # each function by its whole name (the kernel keeps 15 bytes of "lambda disconnect")
    assert {p for p in parts if p.startswith("function ")} <= {
        f"function {n}" for n in ("message", "connect", "disconnect")
    }
    printed = capsys.readouterr().out
    for label in ("one at a time", "floor", "throughput", "delivery", "ack", "dynamodb", "lost"):
        assert f"\n{label} " in printed or printed.startswith(label)


def test_the_bench_in_ack_mode_counts_the_confirmations_too(dev_cdk_out, tmp_path):
    code, result = run_bench(dev_cdk_out, tmp_path, "--ack")
    assert code == 0 and result["lost"] == 0 and result["duplicated"] == 0 and result["errors"] == 0
    assert result["acks"] == {"sent": 30}  # confirmed by the devices afterwards, not by the sends
    # a send (PutItem x2, Query x2, UpdateItem x2) and its confirmation (BatchGetItem, UpdateItem, Query): the README
    expected = {"BatchGetItem": 1.0, "PutItem": 2.0, "Query": 3.0, "UpdateItem": 3.0}
    assert warm(result["dynamodb_by_operation"]) == expected
