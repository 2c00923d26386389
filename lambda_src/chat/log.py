"""One JSON line per event. Never pass tokens or message content in here."""

from __future__ import annotations

import json
import sys
import time


def log(level: str, event: str, **fields) -> None:
    record = {"level": level, "event": event, "ts": round(time.time(), 3), **fields}
    print(json.dumps(record, default=str, separators=(",", ":")), file=sys.stdout, flush=True)
