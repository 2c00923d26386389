"""The server's time, as stored and sent."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    """Server time, sortable: 2025-10-21T10:30:00.123456Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
