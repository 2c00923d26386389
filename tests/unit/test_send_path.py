"""The send path's structure: which DynamoDB requests a warm sendMessage makes before
the recipient's post, and which of them wait for one another. Two rounds: what the
message says and who is online at once, then its row; then the post."""

from __future__ import annotations

import threading
import time

import pytest

import chat.actions
from harness import messages, send_frame, sync_complete


class Rounds:
    """Records DynamoDB requests as rounds: the requests _together runs at once are one
    round, any other request a round of its own. Stops recording at the first post to
    the connection being watched."""

    def __init__(self, chat_, monkeypatch, watched: str):
        self.rounds: list[list[tuple[str, str]]] = []
        self.threads: list[set[str]] = []  # per round: the threads its requests ran on
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
                    self.rounds.append(sorted(request for request, _ in self.group))
                    self.threads.append({thread for _, thread in self.group})
                self.group = None

        monkeypatch.setattr(chat.actions, "_together", grouped)

    def _request(self, operation: str, table: str) -> None:
        if self.posted:
            return
        thread = threading.current_thread().name
        if self.group is not None:
            self.group.append(((operation, table), thread))
        else:
            self.rounds.append([(operation, table)])
            self.threads.append({thread})

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
    assert len(rounds.threads[0]) == 3  # the first round's requests ran at once, each on its own thread
    assert (chat.message("m1")["status"], bool(chat.frames(bob))) == ("sent" if ack else "delivered", True)


def test_a_lookup_that_fails_beside_the_store_still_leaves_the_message_stored_and_acked(chat, monkeypatch):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m0", "bob"))
    lookup, failed = chat.tables.connections.of_user, []

    def failing_once(user):
        if not failed:
            failed.append(user)
            raise RuntimeError("throttled")
        return lookup(user)

    monkeypatch.setattr(chat.tables.connections, "of_user", failing_once)
    chat.take(alice)
    chat.send(alice, send_frame("m1", "bob"))
    # whichever lookup failed is made again where it is needed: bob gets the message, alice its ack
    assert [f["data"]["messageId"] for f in chat.frames(bob) if f["type"] == "message"][-1] == "m1"
    assert [f["data"]["status"] for f in chat.take(alice) if f["type"] == "ack"] == ["delivered"]
    assert chat.message("m1")["status"] == "delivered" and len(failed) == 1


class Crash(BaseException):
    """The function dies here: nothing after it runs."""


def test_a_retry_that_completes_an_earlier_attempt_to_another_recipient_leases_nothing(chat, monkeypatch):
    # Given alice's send of m1 to carol, which died after storing what it says
    alice, _bob = chat.online("alice"), chat.online("bob")
    put_row = chat.tables.messages.put_new_row

    def die(row):
        raise Crash

    monkeypatch.setattr(chat.tables.messages, "put_new_row", die)
    with pytest.raises(Crash):
        chat.send(alice, send_frame("m1", "carol"))
    monkeypatch.setattr(chat.tables.messages, "put_new_row", put_row)
    # When her retry names bob (online without ack mode), the message as first sent stands
    chat.send(alice, send_frame("m1", "bob"))
    assert chat.message("m1")["recipientId"] == "carol" and "leaseUntil" not in chat.message("m1")
    # Then carol, connecting, gets it on her first sync: nothing holds it
    carol = chat.online("carol")
    chat.send(carol, {"action": "sync"})
    assert messages(chat.frames(carol)) == ["m1"] and sync_complete(chat.frames(carol))["more"] is False


def test_a_send_that_fails_after_storing_its_leased_row_gives_the_lease_back(chat, monkeypatch):
    # Given bob online without ack mode, and a reply whose check of its original fails once stored
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m0", "bob"))
    get_message, reads = chat.tables.messages.get, []

    def failing_second_read(message_id, **kwargs):
        reads.append(message_id)
        if len(reads) == 2:  # the check after storing the reply
            raise RuntimeError("throttled")
        return get_message(message_id, **kwargs)

    monkeypatch.setattr(chat.tables.messages, "get", failing_second_read)
    chat.send(alice, send_frame("m1", "bob", replyToMessageId="m0"))
    assert chat.take(alice)[-1]["data"]["code"] == "INTERNAL"
    monkeypatch.setattr(chat.tables.messages, "get", get_message)
    # Then bob's sync gets the stored reply at once, not after the invocation's deadline
    chat.take(bob)
    chat.send(bob, {"action": "sync"})
    assert messages(chat.frames(bob)) == ["m1"]


def test_together_returns_or_raises_only_when_every_call_is_done():
    finished = []

    def slow():
        time.sleep(0.05)
        finished.append("slow")

    def failing():
        raise RuntimeError("first failed")

    with pytest.raises(RuntimeError):
        chat.actions._together(failing, slow)
    assert finished == ["slow"]  # nothing is left running into the next invocation
