"""One JSON line per event, and one line of metrics per invocation, in CloudWatch's
Embedded Metric Format (CloudWatch turns it into metrics; no API call, no library).
Never pass tokens or message content in here.

Every line carries what bind() was given for the invocation: the Lambda request id, the
route and the caller's connectionId. A Lambda container runs one invocation at a time.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from collections import Counter

from . import contract
from .aws import error_code

NAMESPACE = contract.METRICS_NAMESPACE
# What flush() reports, each a count per invocation (docs/operations.md says what each means)
COUNTS = (
    "MessagesStored",  # a sendMessage stored a new message
    "DeliveredLive",  # ... and reached a live device of the recipient (or a racing sync delivered it)
    "LeftWaiting",  # ... and reached none: it waits for a sync, and (but a note to oneself) is pushed
    "PushEvents",  # push events EventBridge took
    "FailedPushEvents",  # push events that failed (the message still waits for a sync)
    "DeliveredBySync",  # messages a sync posted
    "ErrorFrames",  # error frames sent, also per error code
    "GoneCleanups",  # connection rows removed after a 410
    "FailedPosts",  # posts that failed otherwise (timeouts, 5xx)
)

_bound: dict = {}
_counts: Counter = Counter()
_error_codes: Counter = Counter()
# DynamoDB capacity units the invocation's requests consumed, as DynamoDB reported them
# (chat.store asks for them): on the metrics line as ReadUnits and WriteUnits, plain
# fields rather than metrics (a metric per action would cost more than it tells).
_units: Counter = Counter()
_lock = threading.Lock()  # an invocation counts from the threads its requests run on


def bind(**fields) -> None:
    """Start an invocation: these fields go on every line until the next bind()."""
    _bound.clear()
    _bound.update({k: v for k, v in fields.items() if v is not None})
    _counts.clear()
    _error_codes.clear()
    _units.clear()


def log(level: str, event: str, **fields) -> None:
    record = {"level": level, "event": event, "ts": round(time.time(), 3), **_bound, **fields}
    _write(json.dumps(record, default=str, separators=(",", ":")))


def log_failure(event: str, exc: BaseException, **fields) -> None:
    """An unexpected exception: its type, the AWS error code if it came from AWS, and the
    traceback (code locations and exception messages; handlers never put content in those)."""
    code = error_code(exc) or None
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=30))
    log("error", event, error=type(exc).__name__, awsErrorCode=code, traceback=trace, **fields)


def count(name: str, n: int = 1) -> None:
    with _lock:
        _counts[name] += n


def count_error(code: str) -> None:
    with _lock:
        _counts["ErrorFrames"] += 1
        _error_codes[code] += 1


def count_units(kind: str, units: float) -> None:
    """kind: "ReadUnits" or "WriteUnits"."""
    with _lock:
        _units[kind] += units


def flush(action: str, duration_ms: float) -> None:
    """The invocation's last line: its duration, its DynamoDB units and each count, by
    function and action; and error frames by function and code. Only the counts that are
    not zero are metrics (docs/design.md: each metric seen is billed monthly)."""
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
    record = {"Function": function, "Action": action, "Duration": round(duration_ms, 3)}
    record |= {name: _counts.get(name, 0) for name in COUNTS}
    record |= {kind: round(_units.get(kind, 0), 1) for kind in ("ReadUnits", "WriteUnits")}
    for code, n in _error_codes.items():  # one more line per code, so each has its own dimension value
        error_frames = [{"Name": "ErrorFrames", "Unit": "Count"}]
        by_code = {"Namespace": NAMESPACE, "Dimensions": [["Function", "Code"]], "Metrics": error_frames}
        emit({"Function": function, "Code": code, "ErrorFrames": n}, [by_code])
    metrics = [{"Name": n, "Unit": "Count"} for n in COUNTS if _counts.get(n)]
    by_action = {"Namespace": NAMESPACE, "Dimensions": [["Function", "Action"]], "Metrics": metrics}
    emit(record, [by_action] if metrics else [])


def emit(values: dict, directives: list[dict]) -> None:
    """One line; an EMF line if there are metric directives, else a plain JSON line."""
    envelope = {"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directives}} if directives else {}
    _write(json.dumps({**envelope, **_bound, **values}, separators=(",", ":")))


def _write(line: str) -> None:
    """One write per line, so lines from two threads of an invocation never interleave."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
