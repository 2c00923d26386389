"""conversations: the caller's conversations, newest first, in pages that each fit one
frame. (Named for the action; test_conversations.py is the end-to-end tests' file, and
pytest wants test file names unique across the suite.)"""

from __future__ import annotations

from harness import pages, send_frame


def test_a_list_of_conversations_with_large_last_messages_comes_in_frame_sized_pages(chat):
    me = chat.online("me")
    big = chat.settings.max_content_bytes
    for i in range(4):
        chat.send(chat.online(f"friend{i}"), send_frame(f"m{i}", "me", "é" * (big // 2)))  # 2 bytes each
    found = pages(chat, me, {"action": "conversations", "limit": 100})
    assert len(found) > 1
    assert [c["peerId"] for p in found for c in p["conversations"]] == [f"friend{i}" for i in (3, 2, 1, 0)]
