"""What the three table stores (connections.py, messages.py, conversations.py) share:
items to and from DynamoDB's typed form, conditional writes, batch reads and paged
queries, and the capacity each request consumed, for the invocation's metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator

from .aws import error_code
from .log import count_units

READS = frozenset({"GetItem", "Query", "BatchGetItem", "Scan", "TransactGetItems"})


def _to_attr(value):
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    raise TypeError(f"cannot store {type(value).__name__}")


def _from_attr(attr: dict):
    ((kind, value),) = attr.items()
    if kind == "N":
        return int(value)
    if kind in ("S", "BOOL"):
        return value
    raise TypeError(f"unexpected DynamoDB type {kind}")


def to_item(values: dict) -> dict:
    return {k: _to_attr(v) for k, v in values.items() if v is not None}


def from_item(item: dict) -> dict:
    return {k: _from_attr(v) for k, v in item.items()}


def key(**values: str) -> dict:
    return {name: {"S": value} for name, value in values.items()}


def if_condition_holds(write, **request) -> dict | None:
    """A conditional write: its reply, or None if its condition did not hold (nothing was
    written then). Any other error raises."""
    try:
        return write(**request)
    except Exception as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise


def measure_capacity(client) -> None:
    """Every request asks for the capacity it consumes (no charge), and the invocation's
    metrics line reports the sum as ReadUnits and WriteUnits (docs/operations.md)."""
    client.meta.events.register("provide-client-params.dynamodb", _ask_for_capacity, unique_id="chat-capacity-ask")
    client.meta.events.register("after-call.dynamodb", _count_capacity, unique_id="chat-capacity-count")


def _ask_for_capacity(params: dict, model, **_) -> None:
    if "ReturnConsumedCapacity" in model.input_shape.members:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")


def _count_capacity(parsed: dict, model, **_) -> None:
    consumed = parsed.get("ConsumedCapacity")  # a list for batches; absent from errors
    if consumed:
        units = sum(c.get("CapacityUnits", 0) for c in (consumed if isinstance(consumed, list) else [consumed]))
        count_units("ReadUnits" if model.name in READS else "WriteUnits", units)


def batch_get(db, keys: dict[str, list[dict]], eventual=frozenset()) -> dict[str, list[dict]]:
    """BatchGetItem for up to 100 keys in all, of these tables (strongly consistent but
    for the tables in eventual), retrying unprocessed keys up to 4 times: table -> the
    items found."""
    found: dict[str, list[dict]] = {table: [] for table in keys}
    request = {t: {"Keys": k, "ConsistentRead": t not in eventual} for t, k in keys.items() if k}
    if not request:
        return found
    for attempt in range(5):
        if attempt:
            time.sleep(0.05 * 2 ** (attempt - 1))
        reply = db.batch_get_item(RequestItems=request)
        for table, items in reply.get("Responses", {}).items():
            found[table] += [from_item(item) for item in items]
        request = reply.get("UnprocessedKeys") or {}
        if not request:
            return found
    raise RuntimeError("BatchGetItem left keys unprocessed after retries")


def query(db, start: dict | None = None, **request) -> Iterator[dict]:
    """Every item a Query finds (in DynamoDB's typed form), one request per page (1 MB,
    or Limit), read lazily."""
    while True:
        page = db.query(**request, **({"ExclusiveStartKey": start} if start else {}))
        yield from page.get("Items", [])
        start = page.get("LastEvaluatedKey")
        if not start:
            return


def ordered(db, table: str, index: str, partition: tuple, order: tuple, *, after, page_size: int, forward: bool):
    """The items of one partition of an index in its sort order, from after a position
    (sort value, table key value) if given: one Query per page_size, read lazily.
    partition is (attribute, value); order is (sort attribute, the table's key attribute
    that is not already the partition), which make a position unique."""
    (name, value), (sort_name, tiebreak) = partition, order
    start = None
    if after:
        start = {name: {"S": value}, sort_name: {"S": after[0]}, tiebreak: {"S": after[1]}}
    rows = query(
        db,
        start,
        TableName=table,
        IndexName=index,
        KeyConditionExpression=f"{name} = :v",
        ExpressionAttributeValues={":v": {"S": value}},
        ScanIndexForward=forward,
        Limit=page_size,
    )
    return (from_item(row) for row in rows)
