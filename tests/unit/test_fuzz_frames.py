"""Thousands of arbitrary frames at the message function (hypothesis). Whatever a client
sends, the handler answers 200, never raises, and the client gets either a correct result
or a client error frame. A refused frame writes nothing. INTERNAL never answers bad input:
it means the server failed, and nothing here makes it fail."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from harness import Chat

CLIENT_ERRORS = {"BAD_REQUEST", "UNKNOWN_ACTION", "FORBIDDEN", "CONFLICT"}
SEND_FIELDS = ("messageId", "conversationId", "recipientId", "content", "senderName", "timestamp", "senderId",
               "replyToMessageId", "replyToContent", "replyToSenderName")  # fmt: skip

# unicode edge cases: lone surrogates, NUL and controls, astral characters, RTL and joiners
edge_text = st.one_of(
    st.text(),
    st.text(st.characters(codec=None, categories=["Cs", "Cc", "Cf", "Co"]), max_size=8),
    st.sampled_from(["", " ", "\x00", "\ud800", "\udfff", "é" * 10, "👩‍👩‍👧", "\u202e", "null", "{}", "a" * 129]),
)
huge_text = st.sampled_from([17, 8193, 16384, 16385, 70_000]).map(lambda n: "x" * n) | st.just("é" * 8193)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | edge_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
field_value = st.one_of(edge_text, huge_text, json_value, st.sampled_from(["m1", "alice", "bob", "fuzzer"]))
ACTIONS = ["sendMessage", "sync", "markRead", "deleteMessage", "", "SENDMESSAGE", "$default"]
action = st.sampled_from(ACTIONS) | edge_text
frame_dict = st.fixed_dictionaries(
    {},
    optional={
        "action": action | json_value,
        "messageIds": st.lists(field_value, max_size=120) | field_value,
        **{name: field_value for name in SEND_FIELDS},
    },  # fmt: skip
)
# a valid sendMessage with one field changed or dropped, so accepted frames are common too
VALID_SEND = {"action": "sendMessage", "conversationId": "c1", "recipientId": "bob", "content": "hi"}
near_valid = st.builds(
    lambda mid, name, value, drop: json.dumps(
        {k: v for k, v in {**VALID_SEND, "messageId": f"m{mid}", name: value}.items() if k != drop}
    ),
    st.integers(0, 10**9),
    st.sampled_from(SEND_FIELDS),
    st.text(min_size=1, max_size=40) | field_value,
    st.sampled_from([None, *SEND_FIELDS]),
)
body = st.one_of(
    near_valid,
    near_valid,
    frame_dict.map(json.dumps),  # ensure_ascii: lone surrogates travel as \\udXXX escapes
    json_value.map(json.dumps),
    edge_text,
    huge_text,
    frame_dict.map(lambda f: json.dumps(f)[:-1]),  # truncated JSON
)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])  # fmt: skip
@given(body=body)
def test_any_frame_gets_a_result_or_a_client_error_and_a_refusal_writes_nothing(chat: Chat, body: str):
    me = chat.online("fuzzer") if not hasattr(chat, "fuzz_conn") else chat.fuzz_conn
    chat.fuzz_conn = me
    before = (chat.items("connections"), chat.items("messages"))
    chat.take(me)

    response = chat.send(me, body)

    assert response == {"statusCode": 200}
    frames = chat.take(me)
    errors = [f["data"] for f in frames if f["type"] == "error"]
    event(f"refused: {errors[0]['code']}" if errors else "accepted")
    if errors:
        assert len(frames) == 1 and errors[0]["code"] in CLIENT_ERRORS, frames
        assert (chat.items("connections"), chat.items("messages")) == before
        return
    frame = json.loads(body)
    if frame["action"] == "sendMessage":  # accepted: stored as this user's, acknowledged
        [ack] = frames
        assert ack["type"] == "ack" and ack["data"]["messageId"] == frame["messageId"]
        stored = chat.message(frame["messageId"])
        assert stored["senderId"] == "fuzzer" and stored["content"] == frame["content"]
    elif frame["action"] == "deleteMessage":  # one's own message: the caller is told too
        assert [f["type"] for f in frames] == ["messageDeleted"], frames
    else:  # nothing waits for the fuzzer, so a sync answers nothing
        assert frame["action"] == "sync" and frames == [], frames
