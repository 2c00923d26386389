"""Conversations on the local stack, with real WebSocket clients: who is in them, the
list with unread counts, paged history, typing and presence."""

from __future__ import annotations

import asyncio

from clients import Client, run
from harness import send_frame
from local.waiting import until


async def sent(client: Client, frame: dict) -> dict:
    """Send a message and wait for its ack (or error); returns that frame."""
    await client.send(frame)
    while (answer := await client.next())["type"] not in ("ack", "error"):
        pass
    return answer


async def ask(client: Client, frame: dict) -> dict:
    """A request/response action: its answer (or error) frame."""
    await client.send(frame)
    while (answer := await client.next())["type"] not in (frame["action"], "error"):
        pass
    return answer


def test_a_third_user_cannot_post_into_someone_elses_conversation(stack):
    async def scenario():
        alice, bob, mallory = [await Client.connect(stack.url, u) for u in ("alice", "bob", "mallory")]
        assert (await sent(alice, send_frame("m1", "bob", "hi", conversationId="c-alice-bob")))["type"] == "ack"
        await bob.next("message")
        # When mallory reuses their conversationId, to bob or to alice
        for i, target in enumerate(("bob", "alice")):
            refused = await sent(mallory, send_frame(f"x{i}", target, "it's me", conversationId="c-alice-bob"))
            assert refused["data"]["code"] == "FORBIDDEN" and refused["data"]["messageId"] == f"x{i}"
        # Then nothing reached them and nothing was stored: their history holds alice's message only
        page = await ask(bob, {"action": "history", "conversationId": "c-alice-bob"})
        assert [m["messageId"] for m in page["data"]["messages"]] == ["m1"]
        assert [f["type"] for f in bob.received] == ["message", "history"]
        assert (await ask(mallory, {"action": "history", "conversationId": "c-alice-bob"}))["data"]["code"] == (
            "FORBIDDEN"
        )

    run(scenario())


def test_two_first_messages_racing_for_a_new_conversation_id_one_pair_wins(stack):
    async def scenario():
        users = {u: await Client.connect(stack.url, u) for u in ("alice", "bob", "carol", "dave")}
        for round_ in range(5):
            conversation = f"race-{round_}"
            a = sent(users["alice"], send_frame(f"a{round_}", "bob", conversationId=conversation))
            c = sent(users["carol"], send_frame(f"c{round_}", "dave", conversationId=conversation))
            outcomes = sorted(
                f["type"] if f["type"] == "ack" else f["data"]["code"] for f in await asyncio.gather(a, c)
            )
            assert outcomes == ["FORBIDDEN", "ack"], (round_, outcomes)

    run(scenario())


def test_without_a_conversation_id_the_pair_gets_its_own_and_the_ack_names_it(stack):
    async def scenario():
        alice, bob = await Client.connect(stack.url, "alice"), await Client.connect(stack.url, "bob")
        first = await sent(alice, {k: v for k, v in send_frame("m1", "bob").items() if k != "conversationId"})
        reply = await sent(bob, send_frame("m2", "alice"))
        conversation = first["data"]["conversationId"]
        assert conversation.startswith("dm-") and reply["data"]["conversationId"] == conversation
        assert [f["data"]["conversationId"] for f in bob.received if f["type"] == "message"] == [conversation]
        # and nobody else can take a pair's id for themselves
        carol = await Client.connect(stack.url, "carol")
        taken = await sent(carol, send_frame("m3", "dave", conversationId=conversation))
        assert taken["data"]["code"] == "FORBIDDEN"

    run(scenario())


def test_the_list_comes_latest_first_in_pages_with_unread_counts_that_mark_read_lowers(stack):
    async def scenario():
        me = await Client.connect(stack.url, "me")
        friends = {u: await Client.connect(stack.url, u) for u in ("ann", "ben", "cat")}
        # ann writes twice, ben once, cat once, then ann once more: ann, cat, ben
        for i, who in enumerate(("ann", "ann", "ben", "cat", "ann")):
            assert (await sent(friends[who], send_frame(f"m{i}", "me", f"from {who}")))["type"] == "ack"
        await sent(me, send_frame("mine", "ben", "hello ben"))  # my own message moves ben up, unread stays
        first = (await ask(me, {"action": "conversations", "limit": 2, "requestId": "p1"}))["data"]
        second = (await ask(me, {"action": "conversations", "limit": 2, "cursor": first["next"]}))["data"]
        assert first["requestId"] == "p1" and "next" not in second  # the last page has no cursor
        entries = first["conversations"] + second["conversations"]
        assert [(e["peerId"], e["unreadCount"]) for e in entries] == [("ben", 1), ("ann", 3), ("cat", 1)]
        assert entries[0]["lastMessage"]["messageId"] == "mine" and entries[1]["lastMessage"]["content"] == "from ann"
        # When I open ann's conversation and mark it read, then mark one of ben's read twice
        ann = entries[1]["conversationId"]
        await me.send({"action": "markRead", "conversationId": ann})
        await me.send({"action": "markRead", "messageIds": ["m2"]})
        await me.send({"action": "markRead", "messageIds": ["m2"]})
        receipts = [(await friends["ann"].next("receipt"))["data"] for _ in range(3)]  # delivered on sending
        assert sorted((r["messageId"], r["status"]) for r in receipts) == [
            ("m0", "read"),
            ("m1", "read"),
            ("m4", "read"),
        ]
        # Then the counts drop, and never below zero
        page = (await ask(me, {"action": "conversations"}))["data"]["conversations"]
        assert [(e["peerId"], e["unreadCount"]) for e in page] == [("ben", 0), ("ann", 0), ("cat", 1)]
        # And each user's list holds only their own conversations
        cat_list = (await ask(friends["cat"], {"action": "conversations"}))["data"]["conversations"]
        assert [e["peerId"] for e in cat_list] == ["me"]

    run(scenario())


def test_history_pages_newest_first_without_gaps_or_repeats_while_messages_arrive(stack):
    async def scenario():
        alice, bob = await Client.connect(stack.url, "alice"), await Client.connect(stack.url, "bob")
        for i in range(7):
            await sent(alice if i % 2 == 0 else bob, send_frame(f"h{i}", "bob" if i % 2 == 0 else "alice", f"#{i}"))
        conversation = (await sent(alice, send_frame("h7", "bob", "#7")))["data"]["conversationId"]
        await alice.send({"action": "deleteMessage", "messageId": "h3"})  # bob's? no: alice may only delete hers
        await alice.send({"action": "deleteMessage", "messageId": "h4"})
        await alice.next("messageDeleted")
        await bob.send({"action": "markRead", "messageIds": ["h0"]})
        await alice.next("receipt")
        seen, cursor, pages = [], None, 0
        while True:
            request = {"action": "history", "conversationId": conversation, "limit": 3}
            page = (await ask(bob, {**request, **({"cursor": cursor} if cursor else {})}))["data"]
            seen += page["messages"]
            pages += 1
            if pages == 1:  # new messages while paging do not shift the pages
                await sent(alice, send_frame("late", "bob", "late"))
            if "next" not in page:
                break
            cursor = page["next"]
        assert pages == 3
        assert [m["messageId"] for m in seen] == [f"h{i}" for i in range(7, -1, -1)]
        by_id = {m["messageId"]: m for m in seen}
        # a deleted message is a tombstone, a refused delete changed nothing, statuses are current
        assert by_id["h4"]["isDeleted"] is True and "content" not in by_id["h4"]
        assert by_id["h3"]["content"] == "#3" and by_id["h0"]["status"] == "read"
        assert by_id["h1"]["status"] == "delivered"
        # And reading history changed no delivery state: nothing is waiting, nothing new came
        frames, done = await bob.synced()
        assert done["count"] == 0 and frames == []
        assert [f["data"]["messageId"] for f in bob.received if f["type"] == "message"][-1] == "late"  # live
        # a conversation that does not exist answers like one that is not yours
        missing = await ask(bob, {"action": "history", "conversationId": "no-such-thing", "requestId": "q"})
        assert missing["data"]["code"] == "FORBIDDEN" and missing["data"]["requestId"] == "q"

    run(scenario())


def test_typing_reaches_the_peer_inside_a_conversation_and_nobody_outside(stack):
    async def scenario():
        alice, bob, eve = [await Client.connect(stack.url, u) for u in ("alice", "bob", "eve")]
        conversation = (await sent(alice, send_frame("m1", "bob")))["data"]["conversationId"]
        await bob.next("message")
        await alice.send({"action": "typing", "conversationId": conversation})
        assert (await bob.next("typing"))["data"] == {
            "conversationId": conversation,
            "userId": "alice",
            "state": "start",
        }
        await eve.send({"action": "typing", "conversationId": conversation, "state": "stop"})
        assert (await eve.next("error"))["data"]["code"] == "FORBIDDEN"
        await alice.send({"action": "typing", "conversationId": conversation, "state": "stop"})
        assert (await bob.next("typing"))["data"]["state"] == "stop"  # eve's frame never came before it

    run(scenario())


def test_presence_shows_partners_online_and_last_seen_and_strangers_as_unknown(stack):
    async def scenario():
        alice, bob = await Client.connect(stack.url, "alice"), await Client.connect(stack.url, "bob")
        carol = await Client.connect(stack.url, "carol")  # online, but shares nothing with alice
        await sent(alice, send_frame("m1", "bob"))
        ask_all = {"action": "presence", "userIds": ["bob", "carol", "nobody"], "requestId": "p"}
        users = (await ask(alice, ask_all))["data"]["users"]
        assert users == [
            {"userId": "bob", "online": True},
            {"userId": "carol", "online": False},
            {"userId": "nobody", "online": False},
        ]
        await bob.close()
        await until(lambda: stack.invocations("$disconnect") == 1, timeout=10, what="bob's $disconnect")
        bob_now = (await ask(alice, ask_all))["data"]["users"][0]
        later = (await sent(alice, send_frame("m2", "bob")))["data"]["sentAt"]
        assert bob_now["online"] is False and bob_now["lastSeen"] <= later
        await carol.close()
        await until(lambda: stack.invocations("$disconnect") == 2, timeout=10, what="carol's $disconnect")
        users = (await ask(alice, ask_all))["data"]["users"]
        assert users[1] == {"userId": "carol", "online": False}  # carol's lastSeen is not alice's to know

    run(scenario())
