"""Route selection as API Gateway does it for ``$request.body.<path>``: the value at that
path of a JSON text frame, if it names a route; otherwise ``$default``, and a frame
with neither is refused. Binary frames and unparseable text always go to ``$default``."""

from __future__ import annotations

import json


class RouteSelector:
    def __init__(self, expression: str, route_keys):
        if not expression.startswith("$request.body."):
            raise ValueError(f"unsupported route selection expression {expression!r}")
        self.path = expression.removeprefix("$request.body.").split(".")
        self.route_keys = set(route_keys)

    def select(self, body: str, is_base64: bool) -> str | None:
        value = None
        if not is_base64:
            try:
                value = json.loads(body)
            except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
                value = None
            for key in self.path:
                value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value in self.route_keys and not value.startswith("$"):
            return value
        return "$default" if "$default" in self.route_keys else None
