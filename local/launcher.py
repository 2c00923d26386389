"""The local stack as a child process, started as `make local` starts it: for make bench,
make soak and the end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from .ports import free_port

ROOT = Path(__file__).resolve().parent.parent


class LocalStackProcess:
    """One `python -m local run` on free ports; its stderr goes to <state_dir>/stack.log,
    after what earlier runs in that directory left there (log_text() reads only its own)."""

    def __init__(self, cdk_out: Path, state_dir: Path, *flags: str):
        self.cdk_out, self.state_dir, self.flags = cdk_out, state_dir, flags
        self.port, self.dynamodb_port, self.functions_dynamodb_port = free_port(), free_port(), free_port()
        self.proc: subprocess.Popen | None = None
        self._dynamodb = None  # dynamodb(): one client, made when first asked for
        self.log = state_dir / "stack.log"
        self._log_start = self.log.stat().st_size if self.log.exists() else 0

    def log_text(self) -> str:
        """What this process object's runs have logged: not earlier runs' in the same state dir."""
        with open(self.log, "rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, *more: str):
        """Start it and wait for the banner, which comes once the gateway listens. Can be
        called again after stop() or kill(): same ports, same data."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "local",
            "run",
            "--cdk-out",
            str(self.cdk_out),
            "--state-dir",
            str(self.state_dir),
            "--port",
            str(self.port),
            "--dynamodb-port",
            str(self.dynamodb_port),
            "--functions-dynamodb-port",
            str(self.functions_dynamodb_port),
            *self.flags,
            *more,
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                args, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, start_new_session=True
            )
        line = self.proc.stdout.readline().decode()
        if not line.startswith("Local stack"):
            self.kill()
            raise RuntimeError(f"the local stack did not start: {line}\n{self.log_text()[-3000:]}")
        return self

    def stop(self) -> None:
        """Ctrl-C in a terminal: SIGINT to the whole process group. The clean shutdown path."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def kill(self) -> None:
        """SIGKILL the whole process group: no $disconnect, no cleanup, like a crash."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._close()

    def _close(self) -> None:
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def _get(self, path: str, **query):
        """The JSON answer of one of the gateway's /@local/ endpoints."""
        url = f"http://127.0.0.1:{self.port}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 (a local http URL)
            return json.load(reply)

    def reset(self) -> None:
        """POST /@local/reset: as fresh as a new start, on the same process (local/stack.py)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/@local/reset", method="POST")
        with urllib.request.urlopen(request, timeout=60) as reply:  # noqa: S310 (a local http URL)
            reply.read()

    def iam_denials(self) -> list[str]:
        """The calls IAM denied (local/iam.py), each a line of log_text()."""
        return [line for line in self.log_text().splitlines() if line.startswith("denied by IAM")]

    def log_from_here(self) -> None:
        """log_text() reads what is logged from now on only."""
        self._log_start = self.log.stat().st_size

    def stats(self) -> dict:
        """Per route: invocations, AWS calls, DynamoDB's capacity units and CPU time
        (the gateway's /@local/stats)."""
        return self._get("/@local/stats")

    def calls(self, route: str) -> dict:
        """A route's invocations and the AWS calls they made so far."""
        stats = self.stats().get(route, {})
        return {k: v for k, v in stats.items() if not k.startswith("units.") and not k.endswith("_ms")}

    def invocations(self, route: str) -> int:
        """How many invocations of a route have returned so far."""
        return self.stats().get(route, {}).get("invocations", 0)

    def in_flight(self) -> dict:
        """Client frames queued and invocations running right now (/@local/in-flight)."""
        return self._get("/@local/in-flight")

    def push_events(self, **detail) -> list[dict]:
        """The push events put on the template's bus so far, oldest first (/@local/events),
        those whose detail has these fields' values."""
        return self._get("/@local/events", **detail)

    def _function_key(self, handler: str) -> str:
        """The access key the function with this handler signs with (local/iam.py)."""
        from .iam import access_key
        from .template import functions, load_assembly

        specs = functions(load_assembly(self.cdk_out)[1])
        [function_id] = [logical_id for logical_id, spec in specs.items() if spec["handler"] == handler]
        return access_key(function_id)

    def management_api(self, handler: str = "message.handler"):
        """A boto3 client of the stack's @connections API, signed as the function with this
        handler signs, so IAM lets it do what that function may."""
        return self._client("apigatewaymanagementapi", f"http://127.0.0.1:{self.port}/production", handler)

    def functions_dynamodb(self, handler: str = "message.handler"):
        """A boto3 client of DynamoDB as that function reaches it: through IAM, as its role."""
        return self._client("dynamodb", f"http://127.0.0.1:{self.functions_dynamodb_port}", handler)

    def _client(self, service: str, endpoint: str, handler: str):
        import boto3

        return boto3.session.Session().client(
            service,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=self._function_key(handler),
            aws_secret_access_key="local",  # noqa: S106 (never reaches AWS)
        )

    def dynamodb(self):
        """A boto3 client of this stack's DynamoDB server: one per stack object, as tests
        poll with it (a new client costs tens of milliseconds of CPU)."""
        if self._dynamodb is None:
            self._dynamodb = self._new_dynamodb_client()
        return self._dynamodb

    def _new_dynamodb_client(self):
        import boto3

        return boto3.session.Session().client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{self.dynamodb_port}",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 (never reaches AWS)
        )
