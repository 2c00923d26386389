"""`make soak`, small: 20 clients, half of them in ack mode, 500 messages, while clients
drop right after sending and ack-mode devices vanish before confirming. Nothing may be
lost, a device without ack mode gets each message once, each message is delivered once
(counted on the server), and a sender whose connection stayed up hears it once."""

from __future__ import annotations

import json

import pytest

from bench import soak

pytestmark = pytest.mark.slow


def test_a_small_soak_with_drops_and_vanishing_devices_loses_nothing_and_tells_each_sender_once(dev_cdk_out, tmp_path):
    figures = tmp_path / "figures.json"
    args = ["--cdk-out", str(dev_cdk_out), "--state-dir", str(tmp_path / "state"), "--json", str(figures)]
    code = soak.main([*args, *"--clients 20 --messages 500 --drop-rate 0.1 --ack-share 0.5".split()])
    result = json.loads(figures.read_text())
    events = result["stats"]
    # Given the run really dropped connections both ways, had devices vanish before confirming, and resent
    assert events["drops after a send: abrupt"] > 0 and events["drops after a send: clean"] > 0
    assert events["vanished before confirming"] > 0 and events["resends"] > 0 and result["ack_clients"] == 10
    # Then nothing was lost or misdelivered, and everything ended confirmed
    assert (result["lost"], result["unexpected"], result["left_unconfirmed"]) == (0, 0, 0)
    assert result["iam_denials"] == 0  # every call was one the template grants
    # and a device without ack mode got each message once; ack-mode devices saw repeats, which they dedupe
    assert result["repeats_without_ack"] == 0
    # and the server moved each message to delivered exactly once
    assert result["transitions_not_one"] == 0 and result["transitions_max"] == 1
    # and every sender that stayed connected heard "delivered" exactly once per message
    assert result["senders_watched"] > 100 and result["senders_not_told_once"] == 0
    assert result["senders_asked_again_never_told"] == 0
    assert events["frames: ack"] >= 500 and code == 0
