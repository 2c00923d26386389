"""make smoke: the end-to-end scenarios against any running stack, deployed or local.

    make smoke URL=wss://…/production TOKEN_A=… TOKEN_B=…     (token mode: two users' tokens)
    make smoke URL=ws://127.0.0.1:8080 [USER_A=smoke-a USER_B=smoke-b]   (dev mode)

Talks only as the two smoke-test users, each with two devices, and prints a pass/fail
table. Exits 1 if any scenario fails, 2 if the stack cannot be reached. What it leaves
behind: the messages it sent (ids smoke-<run>-*), one of them deleted (a tombstone, as
for anyone), and the two users' conversation.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import sys
from urllib.parse import quote

import websockets

from local.waiting import until

TIMEOUT_S = 10


class Device:
    def __init__(self, ws):
        self.ws = ws
        self.frames: list[dict] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
        except websockets.exceptions.ConnectionClosed:
            pass

    async def send(self, frame: dict) -> None:
        await self.ws.send(json.dumps(frame))

    async def expect(self, kind: str, **data) -> dict:
        """The first frame of this type whose data has these values, waiting for it."""

        def found():
            for frame in self.frames:
                if frame.get("type") == kind and all(frame["data"].get(k) == v for k, v in data.items()):
                    return frame
            return None

        return await until(found, timeout=TIMEOUT_S, what=f"a {kind} frame with {data}")

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


class Smoke:
    def __init__(self, url: str, credentials: dict[str, str], token_mode: bool):
        self.url, self.credentials, self.token_mode = url.rstrip("/"), credentials, token_mode
        self.run = secrets.token_hex(4)
        self.users = list(credentials)  # [user A, user B]: ids in dev mode, names in token mode
        self.ids: dict[str, str] = {}  # user -> the userId the server knows them by
        self.sent: list[str] = []

    async def connect(self, who: str, **query) -> Device:
        key = "token" if self.token_mode else "userId"
        params = "&".join([f"{key}={quote(self.credentials[who])}", *(f"{k}={v}" for k, v in query.items())])
        ws = await websockets.connect(f"{self.url}?{params}", open_timeout=TIMEOUT_S)
        return Device(ws)

    def message_id(self) -> str:
        message_id = f"smoke-{self.run}-{len(self.sent)}"
        self.sent.append(message_id)
        return message_id

    async def send(self, device: Device, to: str, content: str) -> tuple[str, dict]:
        message_id = self.message_id()
        await device.send({"action": "sendMessage", "messageId": message_id, "recipientId": to, "content": content})
        return message_id, await device.expect("ack", messageId=message_id)

    async def learn_ids_and_check_reach(self) -> None:
        """Each user's id as the server knows it (in token mode the token's sub, which the
        client may read from its own token), and one connection that opens."""
        for who, credential in self.credentials.items():
            if self.token_mode:
                payload = credential.split(".")[1]
                self.ids[who] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
            else:
                self.ids[who] = credential
        await (await self.connect(self.users[0])).close()

    # ---- the scenarios ------------------------------------------------------------------

    async def online_delivery_to_every_device(self) -> None:
        a, b = self.users
        a1, a2, b1, b2 = [await self.connect(u) for u in (a, a, b, b)]
        message_id, ack = await self.send(a1, self.ids[b], "smoke: online")
        assert ack["data"]["status"] == "delivered", ack
        for device in (b1, b2, a2):  # both of the recipient's devices, and the sender's other one
            await device.expect("message", messageId=message_id)
        for device in (a1, a2, b1, b2):
            await device.close()

    async def offline_then_sync(self) -> None:
        a, b = self.users
        a1 = await self.connect(a)
        message_id, _ = await self.send(a1, self.ids[b], "smoke: offline")
        phone = await self.connect(b, ack="1")  # ack mode: a device that was closing cannot have taken it
        await phone.send({"action": "sync"})
        await phone.expect("message", messageId=message_id)
        await phone.expect("syncComplete")
        await phone.send({"action": "markDelivered", "messageIds": [message_id]})
        await a1.expect("receipt", messageId=message_id, status="delivered")
        await a1.close()
        await phone.close()

    async def receipts_and_delete(self) -> None:
        a, b = self.users
        a1, b1 = await self.connect(a), await self.connect(b)
        message_id, _ = await self.send(a1, self.ids[b], "smoke: read me, then I go")
        await b1.expect("message", messageId=message_id)
        await b1.send({"action": "markRead", "messageIds": [message_id]})
        await a1.expect("receipt", messageId=message_id, status="read")
        await a1.send({"action": "deleteMessage", "messageId": message_id})
        await b1.expect("messageDeleted", messageId=message_id)
        await a1.close()
        await b1.close()

    async def ack_mode_confirmation(self) -> None:
        a, b = self.users
        a1, phone = await self.connect(a), await self.connect(b, ack="1")
        message_id, ack = await self.send(a1, self.ids[b], "smoke: confirm me")
        await phone.expect("message", messageId=message_id)
        await phone.send({"action": "markDelivered", "messageIds": [message_id]})
        if ack["data"]["status"] == "sent":  # (a device of B's still closing may have confirmed it)
            await a1.expect("receipt", messageId=message_id, status="delivered")
        await a1.close()
        await phone.close()

    async def conversations_and_history(self) -> None:
        a, b = self.users
        b1 = await self.connect(b)
        await b1.send({"action": "conversations", "requestId": "smoke-list"})
        listed = await b1.expect("conversations", requestId="smoke-list")
        [conversation] = [c for c in listed["data"]["conversations"] if c["peerId"] == self.ids[a]]
        await b1.send({"action": "history", "conversationId": conversation["conversationId"], "requestId": "smoke-h"})
        history = await b1.expect("history", requestId="smoke-h")
        assert {m["messageId"] for m in history["data"]["messages"]} & set(self.sent), "history has none of ours"
        await b1.close()

    async def error_frames(self) -> None:
        a1 = await self.connect(self.users[0])
        await a1.send({"action": "sendMessage", "messageId": self.message_id()})  # no recipient, no content
        await a1.expect("error", code="BAD_REQUEST")
        await a1.send({"action": "noSuchAction"})
        await a1.expect("error", code="UNKNOWN_ACTION")
        await a1.close()

    async def a_forged_token_is_refused(self) -> None:
        token = self.credentials[self.users[0]]
        header, payload, signature = token.split(".")
        forged = f"{header}.{payload}.{signature[::-1]}"
        try:
            ws = await websockets.connect(f"{self.url}?token={quote(forged)}", open_timeout=TIMEOUT_S)
        except websockets.exceptions.InvalidStatus as exc:
            assert exc.response.status_code == 401, exc.response.status_code
            return
        await ws.close()
        raise AssertionError("a token with a broken signature was accepted")


async def run(smoke: Smoke) -> list[tuple[str, str]]:
    scenarios = [
        smoke.online_delivery_to_every_device,
        smoke.offline_then_sync,
        smoke.receipts_and_delete,
        smoke.ack_mode_confirmation,
        smoke.conversations_and_history,
        smoke.error_frames,
    ]
    if smoke.token_mode:
        scenarios.append(smoke.a_forged_token_is_refused)
    results = []
    for scenario in scenarios:
        try:
            await scenario()
            results.append((scenario.__name__, "pass"))
        except Exception as exc:  # a failed scenario is a row of the table, not the end of the run
            results.append((scenario.__name__, f"FAIL: {type(exc).__name__}: {exc}"))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the stack's WebSocket URL (WebSocketUrl, or ws://… locally)")
    parser.add_argument("--token-a", default=os.environ.get("TOKEN_A"), help="token mode: user A's token ($TOKEN_A)")
    parser.add_argument("--token-b", default=os.environ.get("TOKEN_B"), help="token mode: user B's token ($TOKEN_B)")
    parser.add_argument("--user-a", default="smoke-a", help="dev mode: user A's id")
    parser.add_argument("--user-b", default="smoke-b", help="dev mode: user B's id")
    args = parser.parse_args(argv)
    token_mode = bool(args.token_a or args.token_b)
    if token_mode and not (args.token_a and args.token_b):
        parser.error("token mode needs both --token-a and --token-b")
    credentials = (
        {"A": args.token_a, "B": args.token_b} if token_mode else {args.user_a: args.user_a, args.user_b: args.user_b}
    )
    smoke = Smoke(args.url, credentials, token_mode)

    def shown(text: str) -> str:
        """Text to print, with each token replaced by its name: a deployed stack's tokens
        are real Cognito tokens, and terminals and CI logs keep what they show."""
        for name, token in credentials.items():
            if token_mode:
                text = text.replace(token, f"<token {name}>").replace(quote(token), f"<token {name}>")
        return text

    try:
        asyncio.run(smoke.learn_ids_and_check_reach())
    except Exception as exc:
        print(shown(f"cannot reach a working stack at {args.url}: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 2
    results = asyncio.run(run(smoke))
    width = max(len(name) for name, _ in results)
    for name, outcome in results:
        print(shown(f"{name.replace('_', ' '):{width}}  {outcome}"))
    users = " and ".join(smoke.ids.values())
    print(f"left behind: {len(smoke.sent)} messages smoke-{smoke.run}-* (one deleted) between {users}")
    return 0 if all(outcome == "pass" for _, outcome in results) else 1


if __name__ == "__main__":
    sys.exit(main())
