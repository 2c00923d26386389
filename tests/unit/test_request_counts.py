"""Exact DynamoDB requests per action, counted through botocore's event hooks.
README.md's table quotes these numbers; change both together."""

from __future__ import annotations

from collections import Counter

from harness import send_frame


def counted(chat, action):
    chat.requests.reset()
    action()
    return dict(chat.requests.calls)


def test_connect_costs_one_write_and_disconnect_two(chat):
    assert counted(chat, lambda: chat.connect(user="alice")) == {"PutItem": 1}
    # DeleteItem the connection, PutItem when its user was last seen
    assert counted(chat, lambda: chat.disconnect("conn-1")) == {"DeleteItem": 1, "PutItem": 1}


def test_a_message_to_an_online_recipient_without_ack_mode_costs_7_requests_warm_and_9_cold(chat):
    alice, _bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m0", "bob"))  # the conversation exists
    warm = counted(chat, lambda: chat.send(alice, send_frame("m1", "bob")))
    # PutItem: the message's content, then its row (stored leased for the post); Query:
    # bob's and alice's connections; UpdateItem: the confirmation after the post, and each
    # user's row of the conversation
    assert warm == {"PutItem": 2, "Query": 2, "UpdateItem": 3}
    chat.new_container()  # nothing cached: GetItem alice's connection and the conversation's pair
    cold = counted(chat, lambda: chat.send(alice, send_frame("m2", "bob")))
    assert cold == {"GetItem": 2, "PutItem": 2, "Query": 2, "UpdateItem": 3}


def test_the_first_message_of_a_conversation_costs_three_more_and_a_random_id_one_more(chat):
    alice, _bob = chat.online("alice"), chat.online("bob", ack=True)
    chat.send(alice, send_frame("m0", "carol"))  # warm
    # GetItem: the conversation (none) and the messageId (free); PutItem: its pair, claimed (+ content and row)
    calls = counted(chat, lambda: chat.send(alice, send_frame("m1", "bob")))
    assert calls == {"GetItem": 2, "PutItem": 3, "Query": 2, "UpdateItem": 2}
    # an app's own id: PutItem the pair's canonical conversation too, which presence reads
    calls = counted(chat, lambda: chat.send(alice, send_frame("m2", "bob", conversationId="c-7f3a")))
    assert calls == {"GetItem": 2, "PutItem": 4, "Query": 2, "UpdateItem": 2}


def test_a_message_to_an_online_recipient_in_ack_mode_costs_6_warm_and_its_confirmation_3_more(chat):
    alice, bob = chat.online("alice"), chat.online("bob", ack=True)
    chat.send(alice, send_frame("m0", "bob"))
    chat.send(bob, {"action": "markDelivered", "messageIds": ["m0"]})  # both containers warm
    # the send: PutItem content and row, Query bob's and alice's connections, UpdateItem both users' rows
    send = {"PutItem": 2, "Query": 2, "UpdateItem": 2}
    assert counted(chat, lambda: chat.send(alice, send_frame("m1", "bob"))) == send
    # the confirmation: BatchGetItem, UpdateItem, Query alice's connections for the receipt
    confirm = {"action": "markDelivered", "messageIds": ["m1"]}
    assert counted(chat, lambda: chat.send(bob, confirm)) == {"BatchGetItem": 1, "UpdateItem": 1, "Query": 1}
    assert counted(chat, lambda: chat.send(bob, confirm)) == {"BatchGetItem": 1}  # again: nothing to do


def test_a_message_to_an_offline_recipient_costs_6_warm_and_one_push_event(chat):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m0", "bob"))
    send = {"PutItem": 2, "Query": 2, "UpdateItem": 2}
    assert counted(chat, lambda: chat.send(alice, send_frame("m1", "bob"))) == send
    # and one PutEvents (EventBridge), after the ack: a message to a live device costs none
    assert [d["messageId"] for d in chat.events.details()] == ["m0", "m1"]


def test_a_reply_costs_three_more_reads_the_original_what_it_says_and_the_original_again(chat):
    alice, _bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m0", "bob"))
    reply = send_frame("m1", "bob", replyToMessageId="m0")
    # GetItem: the original's row (can the sender see it?); BatchGetItem: its content, to
    # quote it; GetItem: the original again once the reply is stored (deleted meanwhile?)
    calls = counted(chat, lambda: chat.send(alice, reply))
    assert calls == {"GetItem": 2, "BatchGetItem": 1, "PutItem": 2, "Query": 2, "UpdateItem": 3}


def test_a_page_of_history_or_conversations_costs_a_query_and_a_batch_get_of_what_the_messages_say(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    for i in range(3):
        chat.send(alice, send_frame(f"m{i}", "bob", conversationId="c-1"))
    chat.send(bob, {"action": "history", "conversationId": "c-1"})  # warm: the pair is cached
    assert counted(chat, lambda: chat.send(bob, {"action": "history", "conversationId": "c-1"})) == {
        "Query": 1,
        "BatchGetItem": 1,
    }
    # Query the caller's conversations; BatchGetItem their last messages and what they say;
    # Query unread-index for the unread counts
    calls = counted(chat, lambda: chat.send(bob, {"action": "conversations"}))
    assert calls == {"Query": 2, "BatchGetItem": 2}


def test_a_retry_costs_two_conditional_puts_that_write_nothing_and_the_lookups_made_beside_them(chat):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob"))
    # the connections are looked up as the content is stored, before the send knows it is a retry
    assert counted(chat, lambda: chat.send(alice, send_frame("m1", "bob"))) == {"PutItem": 2, "Query": 2}


def test_sync_without_ack_mode_costs_a_query_per_page_two_updates_per_message_and_a_query_per_sender(chat):
    alice, carol = chat.online("alice"), chat.online("carol")
    for i in range(3):
        chat.send(alice, send_frame(f"a{i}", "bob"))
    chat.send(carol, send_frame("c0", "bob"))
    bob = chat.online("bob")
    calls = counted(chat, lambda: chat.send(bob, {"action": "sync"}))
    # GetItem: bob's connection (cold); Query: 1 page + 2 senders; BatchGetItem: the page's
    # contents; UpdateItem: lease and confirm, 4 messages
    assert calls == {"GetItem": 1, "Query": 3, "BatchGetItem": 1, "UpdateItem": 8}


def test_sync_in_ack_mode_costs_a_query_and_a_batch_get_per_page_and_changes_nothing(chat):
    alice = chat.online("alice")
    for i in range(3):
        chat.send(alice, send_frame(f"a{i}", "bob"))
    bob = chat.online("bob", ack=True)
    calls = {"GetItem": 1, "Query": 1, "BatchGetItem": 1}
    assert counted(chat, lambda: chat.send(bob, {"action": "sync"})) == calls
    chat.send(bob, {"action": "markDelivered", "messageIds": ["a0", "a1", "a2"]})
    assert counted(chat, lambda: chat.send(bob, {"action": "sync"})) == {"Query": 1}  # nothing pending


def test_mark_read_costs_a_batch_get_plus_one_update_per_message_and_one_query_per_sender(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m1", "bob"))
    chat.send(alice, send_frame("m2", "bob"))
    calls = counted(chat, lambda: chat.send(bob, {"action": "markRead", "messageIds": ["m1", "m2"]}))
    # GetItem: bob's connection (cold); Query: alice's connections for the receipts, bob's other devices
    assert calls == {"GetItem": 1, "BatchGetItem": 1, "UpdateItem": 2, "Query": 2}


def test_delete_costs_an_update_two_deletes_and_three_queries_plus_an_update_per_reply(chat):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob"))
    # UpdateItem: the row (conditional on the sender); DeleteItem: its content, before and
    # after the row (a racing retry of the send may store it again); Query: its replies,
    # both users' connections
    assert counted(chat, lambda: chat.send(alice, {"action": "deleteMessage", "messageId": "m1"})) == {
        "UpdateItem": 1,
        "DeleteItem": 2,
        "Query": 3,
    }
    chat.send(alice, send_frame("m2", "bob"))
    chat.send(alice, send_frame("r1", "bob", replyToMessageId="m2"))
    chat.send(alice, send_frame("r2", "bob", replyToMessageId="m2"))
    assert counted(chat, lambda: chat.send(alice, {"action": "deleteMessage", "messageId": "m2"})) == {
        "UpdateItem": 3,  # the row, and each reply's quote
        "DeleteItem": 2,
        "Query": 3,
    }


def test_bad_input_costs_nothing(chat):
    alice = chat.online("alice")
    assert counted(chat, lambda: chat.send(alice, "not json")) == {}
    assert counted(chat, lambda: chat.send(alice, {"action": "sendMessage"})) == {}


def test_no_action_ever_scans(chat):
    seen = Counter()
    chat.client.meta.events.register("before-call.dynamodb.Scan", lambda **kw: seen.update(["Scan"]))
    alice, bob, phone = chat.online("alice"), chat.online("bob"), chat.online("bob", ack=True)
    chat.send(alice, send_frame("m1", "bob"))
    chat.send(alice, send_frame("m2", "bob", replyToMessageId="m1"))
    chat.send(bob, {"action": "sync"})
    chat.send(phone, {"action": "sync"})
    chat.send(phone, {"action": "markDelivered", "messageIds": ["m1", "m2"]})
    chat.send(bob, {"action": "markRead", "messageIds": ["m1"]})
    chat.send(alice, {"action": "deleteMessage", "messageId": "m1"})
    chat.disconnect(bob)
    assert seen == Counter()


def test_a_send_whose_every_post_fails_costs_two_more_and_retries_only_a_connection_in_its_handshake(chat):
    alice, old = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m0", "bob"))  # warm
    chat.api.gone.add(old)
    chat.later(60)  # bob's connection died a minute ago
    # release the lease, one more look at bob's connections (the dead one is not tried again), its row deleted
    calls = counted(chat, lambda: chat.send(alice, send_frame("m1", "bob")))
    assert calls == {"PutItem": 2, "Query": 3, "UpdateItem": 3, "DeleteItem": 1}  # (2 of them: the rows)
    # a connection that answers 410 in its first seconds may be in its handshake: it is tried once more
    young = chat.online("bob")
    chat.api.gone.add(young)
    calls = counted(chat, lambda: chat.send(alice, send_frame("m2", "bob")))
    assert calls == {"PutItem": 2, "Query": 3, "UpdateItem": 5, "DeleteItem": 1}  # (the delete keeps a young row)
    assert [f["type"] for f in chat.frames(young)] == []  # (the fake drops what a gone connection is sent)


def test_another_senders_message_id_costs_the_content_put_and_the_lookups_beside_it(chat):
    alice, mallory = chat.online("alice"), chat.online("mallory")
    chat.send(alice, send_frame("m1", "bob"))
    chat.send(mallory, send_frame("m0", "bob"))  # mallory and bob's conversation exists
    calls = counted(chat, lambda: chat.send(mallory, send_frame("m1", "bob")))
    assert calls == {"PutItem": 1, "Query": 2}
    assert chat.frames(mallory)[-1]["data"]["code"] == "CONFLICT"
