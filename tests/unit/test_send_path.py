"""The send path's structure: which DynamoDB requests a warm sendMessage makes before
the recipient's post, and which of them wait for one another. Two rounds: what the
message says and who is online at once, then its row; then the post."""

from __future__ import annotations

import pytest

import chat.actions
from harness import send_frame


class Rounds:
    """Records DynamoDB requests as rounds: the requests _together runs at once are one
    round, any other request a round of its own. Stops recording at the first post to
    the connection being watched."""

    def __init__(self, chat_, monkeypatch, watched: str):
        self.rounds: list[list[tuple[str, str]]] = []
        self.group: list | None = None
        self.posted = False
        tables = {name: label for label, name in chat_.settings.tables.items()}
        chat_.client.meta.events.register(
            "before-parameter-build.dynamodb",
            lambda model, params, **_: self._request(model.name, tables.get(params.get("TableName"), "?")),
        )
        chat_.api.before_post = lambda connection_id: self._post(connection_id, watched)
        together = chat.actions._together

        def grouped(*calls):
            self.group = [] if not self.posted else None
            try:
                return together(*calls)
            finally:
                if self.group is not None:
                    self.rounds.append(sorted(self.group))
                self.group = None

        monkeypatch.setattr(chat.actions, "_together", grouped)

    def _request(self, operation: str, table: str) -> None:
        if self.posted:
            return
        if self.group is not None:
            self.group.append((operation, table))
        else:
            self.rounds.append([(operation, table)])

    def _post(self, connection_id: str, watched: str) -> None:
        self.posted = self.posted or connection_id == watched


@pytest.mark.parametrize("ack", [False, True], ids=["device without ack mode", "device in ack mode"])
def test_a_warm_send_makes_two_round_trips_before_the_recipients_post(chat, monkeypatch, ack):
    alice, bob = chat.online("alice"), chat.online("bob", ack=ack)
    chat.send(alice, send_frame("m0", "bob"))  # warm: alice's connection and the pair are cached
    rounds = Rounds(chat, monkeypatch, watched=bob)
    chat.send(alice, send_frame("m1", "bob"))
    assert rounds.posted
    assert rounds.rounds == [
        [("PutItem", "contents"), ("Query", "connections"), ("Query", "connections")],
        [("PutItem", "messages")],  # leased already, for a device without ack mode
    ]
    assert (chat.message("m1")["status"], bool(chat.frames(bob))) == ("sent" if ack else "delivered", True)


def test_a_lookup_that_fails_beside_the_store_still_leaves_the_message_stored_and_acked(chat, monkeypatch):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m0", "bob"))
    lookup, failed = chat.store.live_connections, []

    def failing_once(user):
        if not failed:
            failed.append(user)
            raise RuntimeError("throttled")
        return lookup(user)

    monkeypatch.setattr(chat.store, "live_connections", failing_once)
    chat.take(alice)
    chat.send(alice, send_frame("m1", "bob"))
    # whichever lookup failed is made again where it is needed: bob gets the message, alice its ack
    assert [f["data"]["messageId"] for f in chat.frames(bob) if f["type"] == "message"][-1] == "m1"
    assert [f["data"]["status"] for f in chat.take(alice) if f["type"] == "ack"] == ["delivered"]
    assert chat.message("m1")["status"] == "delivered" and len(failed) == 1
