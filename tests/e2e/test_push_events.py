"""The push hand-off on the local stack: the template's bus, served locally, gets one
event per message that reached no device, and GET /@local/events shows what a push
would carry."""

from __future__ import annotations

from clients import Client, connection_ids, run
from harness import send_frame
from local.waiting import until


def test_a_message_to_a_user_whose_app_closed_its_socket_is_put_on_the_bus_and_listed(stack):
    async def scenario():
        bob = await Client.connect(stack.url, "bob")
        alice = await Client.connect(stack.url, "alice")
        await alice.send(send_frame("m1", "bob", "are you there?", senderName="Alice"))
        assert (await bob.next("message"))["data"]["messageId"] == "m1"  # live: no push
        assert (await alice.next("ack"))["data"]["status"] == "delivered"

        await bob.close()  # the app goes to the background and closes its socket
        await until(lambda: len(connection_ids(stack)) == 1, what="bob's $disconnect")
        await alice.send(send_frame("m2", "bob", "see you at 6", senderName="Alice"))
        ack = (await alice.next("ack"))["data"]
        assert ack["status"] == "sent"
        await until(lambda: stack.push_events(recipientId="bob"), what="a push event for bob")
        [event] = stack.push_events()
        assert (event["source"], event["detail-type"], event["region"]) == (
            "realtime-messaging",
            "MessageWaiting",
            "us-east-1",
        )
        assert event["detail"] == {
            "recipientId": "bob",
            "messageId": "m2",
            "conversationId": ack["conversationId"],
            "senderId": "alice",
            "senderName": "Alice",
            "sentAt": ack["sentAt"],
        }
        assert stack.push_events(recipientId="carol") == []
        # printed where make local shows it, without the content (no pushPreview)
        printed = [line for line in stack.log_text().splitlines() if "event MessageWaiting on" in line]
        assert len(printed) == 1 and '"m2"' in printed[0] and "see you at 6" not in stack.log_text()
        assert stack.stats()["sendMessage"]["events.PutEvents"] == 1

        # the push is a hint: the message waits for bob's sync, as always
        bob = await Client.connect(stack.url, "bob")
        frames, done = await bob.synced()
        assert [f["data"]["messageId"] for f in frames] == ["m2"] and done["count"] == 1

    run(scenario())
