"""docs/cost.md: its tables are what bench/cost.py makes of this code's counts, so the
page cannot drift from the code (make cost rewrites them)."""

from __future__ import annotations

import pytest

from bench import cost


@pytest.fixture(scope="module")
def counted(dev_template):
    return cost.measure(dev_template)


@pytest.mark.slow
def test_docs_cost_md_holds_the_tables_the_code_counts_today(counted):
    found, session = counted
    assert cost.documented(cost.DOC.read_text()) == cost.tables(found, session), "run make cost"


def test_only_a_message_that_reached_no_device_is_handed_to_eventbridge(counted):
    found, _ = counted
    assert {kind: t.events for kind, t in found.items()} == {
        "live, without ack mode": 0,
        "live, ack mode": 0,
        "offline, without ack mode": 1,
        "offline, ack mode": 1,
    }


def test_ack_mode_costs_its_confirmation_frame_and_receipt(counted):
    found, _ = counted
    live, ack = found["live, without ack mode"], found["live, ack mode"]
    # send, message, ack, markRead, read receipt; ack mode adds markDelivered and its receipt
    assert (live.frames, ack.frames) == (5, 7)
    assert (live.invocations, ack.invocations) == (2, 3)


def test_the_scan_design_costs_grow_with_every_open_connection_and_ours_do_not(counted):
    web = cost.PROFILES[0]
    small, large = (sum(cost.scan_design(n, web).values()) for n in (10, 1000))
    ours = sum(cost.per_message(web, *counted).values())
    assert large > 50 * small and small < ours < large


def test_an_offline_message_carries_a_tenth_of_its_syncs_lambda_time(counted):
    found, _ = counted
    live, offline = found["live, without ack mode"], found["offline, without ack mode"]
    # the same send and markRead; the offline one also carries its share of a sync of SYNC_BATCH,
    # whose measured time is the whole sync's: ten messages posted and confirmed take longer than a send
    assert cost.duration_ms("sync") > 2 * cost.duration_ms("sendMessage")
    share = cost.duration_ms("sync") / cost.SYNC_BATCH / 1000 * cost.MEMORY_MB / 1024
    assert offline.gb_seconds - live.gb_seconds == pytest.approx(share)
    assert offline.invocations - live.invocations == pytest.approx(1 / cost.SYNC_BATCH)
