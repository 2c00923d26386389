"""conversations and history pages: each answer is one frame API Gateway accepts (32 KB),
so a page of large messages is shorter than its limit, and its cursor continues where it
stopped, with no gap and no repeat."""

from __future__ import annotations

from chat.protocol import FRAME_LIMIT_BYTES, encode
from harness import send_frame


def pages(chat, conn, request: dict) -> list[dict]:
    """Every page of a request, following next; each page's data."""
    found, cursor = [], None
    chat.take(conn)  # what came before
    while True:
        chat.send(conn, {**request, **({"cursor": cursor} if cursor else {})})
        [frame] = chat.take(conn)
        assert frame["type"] == request["action"], frame
        assert len(encode(frame)) <= FRAME_LIMIT_BYTES
        found.append(frame["data"])
        if "next" not in frame["data"]:
            return found
        cursor = frame["data"]["next"]


def test_a_history_of_large_messages_comes_in_frame_sized_pages_without_gaps(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    big = chat.settings.max_content_bytes
    for i in range(5):
        chat.send(alice, send_frame(f"m{i}", "bob", f"{i}" * big, conversationId="c1"))
    chat.take(bob)
    found = pages(chat, bob, {"action": "history", "conversationId": "c1", "limit": 50})
    assert len(found) > 1 and all(len(p["messages"]) < 50 for p in found)  # cut by size, not by limit
    assert [m["messageId"] for p in found for m in p["messages"]] == ["m4", "m3", "m2", "m1", "m0"]


def test_a_list_of_conversations_with_large_last_messages_comes_in_frame_sized_pages(chat):
    me = chat.online("me")
    big = chat.settings.max_content_bytes
    for i in range(4):
        chat.send(chat.online(f"friend{i}"), send_frame(f"m{i}", "me", "é" * (big // 2)))  # 2 bytes each
    found = pages(chat, me, {"action": "conversations", "limit": 100})
    assert len(found) > 1
    assert [c["peerId"] for p in found for c in p["conversations"]] == [f"friend{i}" for i in (3, 2, 1, 0)]


def test_a_page_of_exactly_limit_entries_says_whether_there_is_more(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    for i in range(4):
        chat.send(alice, send_frame(f"m{i}", "bob", conversationId="c1"))
    found = pages(chat, bob, {"action": "history", "conversationId": "c1", "limit": 2})
    assert [len(p["messages"]) for p in found] == [2, 2]  # and no empty third page
