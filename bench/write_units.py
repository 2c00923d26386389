"""DynamoDB write units per message, counted from the items each write really changes
(and, with ReadMeter, read units from the items each read really reads).

    make units          (python -m bench.write_units, with lambda_src and tests importable)

DynamoDB bills a write by the size of the item it writes (the larger of before and
after, in 1 KB steps), and each global secondary index by the size of its entry, when
the write puts, changes or removes one (a changed index key: a delete and a put). moto,
which runs the handlers here, reports no real consumed capacity, and neither does
dynalite for indexes, so WriteMeter reads each item before and after every write and
applies those rules to the tables' own index definitions:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Writes
A conditional write that fails is billed too: at least 1 unit, by the item's size.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

KB = 1024
WRITES = ("PutItem", "UpdateItem", "DeleteItem")
_own = threading.local()  # set while a meter makes its own requests: no meter counts those


@contextmanager
def _metering():
    _own.active = True
    try:
        yield
    finally:
        _own.active = False


def _counting() -> bool:
    return not getattr(_own, "active", False)


def attribute_size(name: str, value: dict) -> int:
    """Bytes DynamoDB counts for one attribute: its name, and its value (strings by their
    UTF-8 length, numbers by their digits, about two a byte)."""
    ((kind, raw),) = value.items()
    if kind == "S":
        body = len(raw.encode("utf-8"))
    elif kind == "N":
        body = 1 + math.ceil(len(raw.lstrip("-").replace(".", "")) / 2)
    elif kind in ("BOOL", "NULL"):
        body = 1
    else:
        raise TypeError(f"no size rule here for {kind}")
    return len(name.encode("utf-8")) + body


def item_size(item: dict | None) -> int:
    return sum(attribute_size(k, v) for k, v in (item or {}).items())


def units(size: int) -> int:
    return max(1, math.ceil(size / KB))


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]  # the index's key attributes, then the table's
    projected: tuple[str, ...] | None  # None: ALL

    def entry(self, item: dict | None) -> dict | None:
        """The item's entry in this index, or None if it has no index key (sparse)."""
        if not item or any(k not in item for k in self.keys):
            return None
        if self.projected is None:
            return item
        return {k: v for k, v in item.items() if k in self.keys or k in self.projected}


@dataclass
class WriteMeter:
    """Write units per (table, index or "table", operation), for the writes a client makes."""

    client: object
    units: Counter = field(default_factory=Counter)
    _pending: tuple | None = None

    def __post_init__(self):
        self._tables: dict[str, tuple[list[str], list[Index]]] = {}
        for op in WRITES:
            self.client.meta.events.register(f"before-parameter-build.dynamodb.{op}", self._before)
            self.client.meta.events.register(f"after-call.dynamodb.{op}", self._after)
        for op in ("BatchWriteItem", "TransactWriteItems"):  # not metered: say so rather than undercount
            self.client.meta.events.register(f"before-parameter-build.dynamodb.{op}", self._unmetered)

    def _schema(self, table: str):
        if table not in self._tables:
            t = self.client.describe_table(TableName=table)["Table"]
            key = [k["AttributeName"] for k in t["KeySchema"]]
            indexes = [
                Index(
                    i["IndexName"],
                    tuple(k["AttributeName"] for k in i["KeySchema"]) + tuple(key),
                    None
                    if i["Projection"]["ProjectionType"] == "ALL"
                    else tuple(i["Projection"].get("NonKeyAttributes", [])),
                )
                for i in t.get("GlobalSecondaryIndexes", [])
            ]
            self._tables[table] = (key, indexes)
        return self._tables[table]

    @staticmethod
    def _unmetered(model, **_):
        raise NotImplementedError(f"WriteMeter does not meter {model.name}")

    def _read(self, table: str, key: dict) -> dict | None:
        with _metering():
            return self.client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    def _before(self, params, model, **_):
        table = params["TableName"]
        key_names, _indexes = self._schema(table)
        key = {k: v for k, v in (params.get("Item") or params["Key"]).items() if k in key_names}
        self._pending = (model.name, table, key, self._read(table, key), params.get("Item"))

    def _after(self, parsed, **_):
        op, table, key, old, request_item = self._pending
        self._pending = None
        error = parsed.get("Error", {}).get("Code")
        if error == "ConditionalCheckFailedException":  # billed by the item's size, nothing changed
            self.units[(table, "table", op)] += units(max(item_size(old), item_size(request_item)))
            return
        if error:  # refused before writing (validation, throttling): nothing billed
            return
        new = self._read(table, key)
        self.units[(table, "table", op)] += units(max(item_size(old), item_size(new)))
        for index in self._schema(table)[1]:
            before, after = index.entry(old), index.entry(new)
            if before is None and after is None:
                continue
            moved = before is not None and after is not None and any(before[k] != after[k] for k in index.keys)
            if before is not None and (after is None or moved):  # the old entry goes
                self.units[(table, index.name, op)] += units(item_size(before))
            if after is not None and (before is None or moved or before != after):  # a new or changed entry
                self.units[(table, index.name, op)] += units(item_size(after))

    def take(self) -> Counter:
        """The units counted since the last take."""
        counted, self.units = self.units, Counter()
        return counted


# ---- a message's life, as the handlers write it --------------------------------------


# A message of about 1 KB, and one of about 16 KB. Content is at most 12 KB (a reply's
# frame holds its quote too, in API Gateway's 32 KB), so the 16 KB one is a 12 KB reply
# quoting 4 KB: name -> (content bytes, bytes of the message it quotes, or 0).
SIZES = {"1 KB": (1 * KB, 0), "16 KB": (12 * KB, 4 * KB)}


def lives(chat, meter: WriteMeter, content_bytes: int, quote_bytes: int) -> dict[str, dict[str, Counter]]:
    """Write units of each step of one message's life, for each kind of recipient:
    online without ack mode (the post confirms it), online in ack mode (markDelivered),
    offline (sync confirms it). Each conversation exists already (a first message
    costs the pair's rows once), and its first message is the one quoted."""
    from harness import send_frame  # the tests' harness: handlers on moto

    def message(message_id: str, peer: str) -> dict:
        reply = {"replyToMessageId": f"first-{peer}"} if quote_bytes else {}
        return send_frame(message_id, peer, "x" * content_bytes, **reply)

    alice = chat.online("alice")
    phone, ack_phone, dave = chat.online("bob"), chat.online("carol", ack=True), chat.online("dave")
    for peer in ("bob", "carol", "dave"):  # each delivered, so nothing else is pending later
        chat.send(alice, send_frame(f"first-{peer}", peer, "q" * max(quote_bytes, 1)))
    chat.send(ack_phone, {"action": "markDelivered", "messageIds": ["first-carol"]})
    chat.disconnect(dave)
    steps: dict[str, dict[str, Counter]] = {}
    meter.take()

    chat.send(alice, message("live", "bob"))
    send = meter.take()
    chat.send(phone, {"action": "markRead", "messageIds": ["live"]})
    steps["online, without ack mode"] = {"sendMessage": send, "markRead": meter.take()}

    chat.send(alice, message("ack", "carol"))
    send = meter.take()
    chat.send(ack_phone, {"action": "markDelivered", "messageIds": ["ack"]})
    confirm = meter.take()
    chat.send(ack_phone, {"action": "markRead", "messageIds": ["ack"]})
    steps["online, ack mode"] = {"sendMessage": send, "markDelivered": confirm, "markRead": meter.take()}

    chat.send(alice, message("later", "dave"))
    send = meter.take()
    dave = chat.online("dave")
    meter.take()  # (the connection's row)
    chat.send(dave, {"action": "sync"})
    synced = meter.take()
    chat.send(dave, {"action": "markRead", "messageIds": ["later"]})
    steps["offline, then sync"] = {"sendMessage": send, "sync": synced, "markRead": meter.take()}
    return steps


def measure(template: dict | None = None, sizes=SIZES) -> dict[str, dict[str, dict[str, Counter]]]:
    """lives() for each size, each on a fresh moto deployment of the (dev) template."""
    import boto3
    from moto import mock_aws

    from harness import Chat
    from synth import synth

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    template = template or synth(auth="dev")[1].to_json()
    found = {}
    for name, (content_bytes, quote_bytes) in sizes.items():
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            chat = Chat(client, template)
            found[name] = lives(chat, WriteMeter(client), content_bytes, quote_bytes)
            stored = chat.message("live")
            assert stored and len(stored["content"]) == content_bytes, "the message was not stored"
    return found


@contextlib.contextmanager
def quiet():
    """What the handlers log and the in-process synth says (its notices, cdk-nag's report
    file), held back: shown only if what runs inside fails."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    except BaseException:
        sys.stderr.write(err.getvalue())
        raise


def main() -> None:
    with quiet():  # the handlers' log lines and the synth's notices: not what this command is for
        found = measure()
    sizes = list(found)
    print("DynamoDB write units per message (each step, then the whole life; README, 'What a message costs')")
    print("16 KB: a 12 KB reply (the most content allows) that quotes 4 KB")
    print(f"{'recipient':28} {'step':14} " + " ".join(f"{s:>6}" for s in sizes))
    for kind in found[sizes[0]]:
        for step in found[sizes[0]][kind]:
            row = [sum(found[s][kind][step].values()) for s in sizes]
            print(f"{kind:28} {step:14} " + " ".join(f"{n:>6}" for n in row))
        total = [sum(sum(c.values()) for c in found[s][kind].values()) for s in sizes]
        print(f"{kind:28} {'whole life':14} " + " ".join(f"{n:>6}" for n in total))
    print("\nwhere the units of a 16 KB message go (online, without ack mode):")
    for step, counted in found[sizes[-1]]["online, without ack mode"].items():
        for (table, index, op), n in sorted(counted.items()):
            print(f"  {step:12} {op:10} {table:34} {index:22} {n:>4}")


if __name__ == "__main__":
    main()


# ---- read units ------------------------------------------------------------------------


class ReadMeter:
    """Read units per operation, for the reads a client makes, by DynamoDB's rules: a
    GetItem (and each key of a BatchGetItem) by the item's size in 4 KB steps, at least
    one step even if there is no item; a Query by the total size of the entries it
    reads, in 4 KB steps, at least one; half as much if not strongly consistent (a query
    on a global secondary index never is).
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
    """

    def __init__(self, client):
        self.client = client
        self.units: Counter = Counter()
        self._lock = threading.Lock()  # the handlers make requests on several threads
        for op in ("GetItem", "BatchGetItem", "Query"):
            client.meta.events.register(f"before-parameter-build.dynamodb.{op}", self._before)
            client.meta.events.register(f"after-call.dynamodb.{op}", self._after)
        client.meta.events.register("before-parameter-build.dynamodb.Scan", WriteMeter._unmetered)

    @staticmethod
    def _before(params, context, **_):
        context["read_params"] = dict(params)

    def _after(self, parsed, model, context, **_):
        params = context.get("read_params")
        if params is None or not _counting() or "Error" in parsed:
            return
        if model.name == "GetItem":
            n = self._units([parsed.get("Item")], params.get("ConsistentRead", False))
        elif model.name == "BatchGetItem":
            n = 0.0
            for table, request in params["RequestItems"].items():
                found = parsed.get("Responses", {}).get(table, [])
                missing = len(request["Keys"]) - len(found)  # (moto processes every key)
                consistent = request.get("ConsistentRead", False)
                n += sum(self._units([item], consistent) for item in found) + missing * self._units([], consistent)
        else:
            n = self._units(self._entries_read(params, parsed), params.get("ConsistentRead", False), whole=True)
        with self._lock:
            self.units[model.name] += n

    def _entries_read(self, params: dict, parsed: dict) -> list[dict]:
        """What a Query read: the entries it returned, unless it asked for only some of
        their attributes (it is billed for the whole entries): then the same query again."""
        if "ProjectionExpression" not in params:
            return parsed.get("Items", [])
        again = {k: v for k, v in params.items() if k not in ("ProjectionExpression", "ReturnConsumedCapacity")}
        with _metering():
            return self.client.query(**again).get("Items", [])

    @staticmethod
    def _units(items: list, consistent: bool, whole: bool = False) -> float:
        """One item per call unless whole (a Query: all its entries together)."""
        size = sum(item_size(i) for i in items if i)
        steps = max(1, math.ceil(size / (4 * KB)))
        return steps * (1.0 if consistent else 0.5)

    def take(self) -> Counter:
        with self._lock:
            counted, self.units = self.units, Counter()
        return counted
