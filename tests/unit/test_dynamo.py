"""chat/dynamo.py, what the table stores share: a batch read retries the keys DynamoDB
left unprocessed."""

from __future__ import annotations

from harness import send_frame


def test_a_batch_read_whose_last_retry_gets_every_key_is_kept(chat, monkeypatch):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m0", "bob"))
    real, calls = chat.client.batch_get_item, []

    def unprocessed_four_times(**request):
        calls.append(request)
        if len(calls) < 5:  # DynamoDB processed none of them, this time
            return {"Responses": {}, "UnprocessedKeys": request["RequestItems"]}
        return real(**request)

    monkeypatch.setattr(chat.client, "batch_get_item", unprocessed_four_times)
    monkeypatch.setattr("chat.dynamo.time.sleep", lambda s: None)
    assert list(chat.tables.messages.get_many(["m0"])) == ["m0"] and len(calls) == 5
