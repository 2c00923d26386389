"""`make bench` itself, tiny: it must keep running and keep counting honestly. The
figures are not asserted (timing belongs in docs/performance.md, not in tests); what is
asserted is what must hold at any speed."""

from __future__ import annotations

import json

from bench import bench


def test_the_bench_runs_and_every_message_arrives_exactly_once(dev_cdk_out, tmp_path, capsys):
    figures = tmp_path / "figures.json"
    code = bench.main(
        [
            "--cdk-out",
            str(dev_cdk_out),
            "--state-dir",
            str(tmp_path / "state"),
            "--clients",
            "3",
            "--messages",
            "30",
            "--floor-rounds",
            "5",
            "--json",
            str(figures),
        ]
    )
    result = json.loads(figures.read_text())
    assert code == 0 and result["lost"] == 0 and result["duplicated"] == 0 and result["errors"] == 0
    assert result["acks"] == {"delivered": 30}  # everyone was online
    # warm sends to an online recipient without ack mode: PutItem, Query x2, UpdateItem x2 (the README's "5 warm")
    assert result["dynamodb_by_operation"] == {"PutItem": 1.0, "Query": 2.0, "UpdateItem": 2.0}
    printed = capsys.readouterr().out
    for label in ("one at a time", "floor", "throughput", "delivery", "ack", "dynamodb", "lost"):
        assert f"\n{label} " in printed or printed.startswith(label)


def test_the_bench_in_ack_mode_counts_the_confirmations_too(dev_cdk_out, tmp_path):
    figures = tmp_path / "figures.json"
    code = bench.main(
        [
            "--cdk-out",
            str(dev_cdk_out),
            "--state-dir",
            str(tmp_path / "state"),
            "--clients",
            "3",
            "--messages",
            "30",
            "--floor-rounds",
            "5",
            "--ack",
            "--json",
            str(figures),
        ]
    )
    result = json.loads(figures.read_text())
    assert code == 0 and result["lost"] == 0 and result["duplicated"] == 0 and result["errors"] == 0
    assert result["acks"] == {"sent": 30}  # confirmed by the devices afterwards, not by the sends
    # a send (PutItem, Query x2) and its confirmation (BatchGetItem, UpdateItem, Query): the README's ack-mode rows
    assert result["dynamodb_by_operation"] == {"BatchGetItem": 1.0, "PutItem": 1.0, "Query": 3.0, "UpdateItem": 1.0}
