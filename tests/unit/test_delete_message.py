"""deleteMessage: only the sender deletes; every live connection of both users is told,
and the words leave every table, the quotes of them in replies too."""

from __future__ import annotations

import json

from harness import send_frame


def test_the_sender_deletes_and_every_live_connection_of_both_users_is_told(chat):
    alice, alice_laptop, bob = chat.online("alice"), chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m1", "bob", "secret", replyToContent="quoted", conversationId="conv-1"))
    for conn in (alice, alice_laptop, bob):
        chat.take(conn)
    chat.send(alice, {"action": "deleteMessage", "messageId": "m1"})
    notice = {"type": "messageDeleted", "data": {"messageId": "m1", "conversationId": "conv-1"}}
    assert chat.frames(bob) == [notice]
    assert chat.frames(alice_laptop) == [notice]
    assert chat.frames(alice) == [notice]  # the caller's confirmation
    stored = chat.message("m1")
    assert stored["isDeleted"] is True and "content" not in stored and "replyToContent" not in stored
    # and the words are gone from every table, not only hidden
    assert "secret" not in json.dumps(chat.items("messages") + chat.items("contents"))


def test_a_deleted_reply_quote_leaves_the_stored_reply_too(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(bob, send_frame("m0", "alice", "regrettable"))
    chat.send(alice, send_frame("m1", "bob", "what?", replyToMessageId="m0"))
    chat.send(bob, {"action": "deleteMessage", "messageId": "m0"})
    assert "regrettable" not in json.dumps(chat.items("messages") + chat.items("contents"))
    assert chat.message("m1")["content"] == "what?" and chat.message("m1")["replyToMessageId"] == "m0"


def test_only_the_sender_can_delete(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m1", "bob", "keep me"))
    chat.take(bob)
    chat.send(bob, {"action": "deleteMessage", "messageId": "m1"})
    assert chat.frames(bob)[0]["data"] == {
        "code": "FORBIDDEN",
        "message": "only the sender can delete a message",
        "messageId": "m1",
    }
    assert chat.message("m1")["content"] == "keep me" and chat.message("m1")["isDeleted"] is False


def test_deleting_a_message_that_does_not_exist_creates_nothing(chat):
    alice = chat.online("alice")
    chat.send(alice, {"action": "deleteMessage", "messageId": "ghost"})
    assert chat.frames(alice)[0]["data"]["code"] == "FORBIDDEN"
    assert chat.items("messages") == []


def test_deleting_a_message_removes_its_text_from_the_replies_that_quote_it(chat):
    # Given bob offline, and alice's message m0 quoted in her own reply m1 and in carol's reply
    alice, carol = chat.online("alice"), chat.online("carol")
    chat.send(alice, send_frame("m0", "bob", "my password is hunter2", senderName="Alice"))
    chat.send(alice, send_frame("m1", "bob", "oops", replyToMessageId="m0"))
    chat.send(carol, send_frame("c0", "carol", "hm"))
    # When alice deletes m0
    chat.send(alice, {"action": "deleteMessage", "messageId": "m0"})
    # Then bob's sync brings the reply without the deleted text, and nothing stored keeps it
    bob = chat.online("bob")
    chat.send(bob, {"action": "sync"})
    [reply] = [f["data"] for f in chat.frames(bob) if f["type"] == "message"]
    assert reply["messageId"] == "m1" and reply["replyToMessageId"] == "m0"
    assert "replyToContent" not in reply and "replyToSenderName" not in reply
    assert not [item for item in chat.items("messages") if "hunter2" in json.dumps(item)]


def test_a_retry_of_the_send_racing_its_delete_leaves_no_words_behind(chat, monkeypatch):
    # Given m1 stored, and its sender's retry of the send storing its words again just
    # after the delete took them away (the retry then finds the row not yet deleted)
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m1", "bob", "take this back"))
    [words] = chat.client.scan(TableName=chat.settings.contents_table)["Items"]  # tests only; the app never scans
    drop, calls = chat.tables.messages.drop_content, []

    def then_the_retry_stores_them_again(message_id, sender_id):
        drop(message_id, sender_id)
        calls.append(message_id)
        if len(calls) == 1:
            chat.client.put_item(TableName=chat.settings.contents_table, Item=words)

    monkeypatch.setattr(chat.tables.messages, "drop_content", then_the_retry_stores_them_again)
    # When alice deletes it
    chat.send(alice, {"action": "deleteMessage", "messageId": "m1"})
    # Then its words are gone from the table, and nobody reads them
    assert chat.items("contents") == []
    chat.take(bob)
    chat.send(bob, {"action": "history", "conversationId": chat.message("m1")["conversationId"]})
    [page] = [f["data"] for f in chat.take(bob) if f["type"] == "history"]
    assert [(m["messageId"], m.get("isDeleted"), m.get("content")) for m in page["messages"]] == [("m1", True, None)]
