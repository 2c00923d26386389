"""`make soak`, small: about 20 clients and 500 messages while clients drop (abruptly or
cleanly) right after sending and reconnect. Every message must reach its recipient
exactly once, live or on sync, and every send must be acknowledged."""

from __future__ import annotations

import json

from bench import soak


def test_a_small_soak_with_drops_loses_and_duplicates_nothing(dev_cdk_out, tmp_path):
    figures = tmp_path / "figures.json"
    code = soak.main(
        [
            "--cdk-out",
            str(dev_cdk_out),
            "--state-dir",
            str(tmp_path / "state"),
            "--clients",
            "20",
            "--messages",
            "500",
            "--drop-rate",
            "0.05",
            "--json",
            str(figures),
        ]
    )
    result = json.loads(figures.read_text())
    events = result["stats"]
    # Given the run really dropped connections both ways and had to resend
    assert events["drops: abrupt"] > 0 and events["drops: clean"] > 0 and events["resends"] > 0
    # Then nothing was lost, duplicated or misdelivered, and every send was acknowledged
    assert (result["lost"], result["duplicated"], result["unexpected"]) == (0, 0, 0)
    assert events["frames: ack"] >= 500 and code == 0
