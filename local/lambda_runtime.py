"""The child side of the local Lambda, one process per container (container_server.py
forks it): imports one handler from its asset directory and runs invocations one at a time,
like a warm Lambda execution environment.

Protocol: one JSON request per line on stdin ({"id", "event", "deadline_ms"}), one
JSON reply per line on the original stdout ({"id", "result"} or {"id", "error"}, with
"calls": the AWS API calls the invocation made, e.g. {"dynamodb.PutItem": 1}, the
capacity units DynamoDB reported for them, e.g. {"units.dynamodb.PutItem": 2.0} (when
the handler asked for them), "cpu_ms": the CPU time the invocation used, on all its
threads, and "wall_ms": how long it took).
The handler's own prints and logs go to stderr, which the local stack shows.
Forked by container_server.py, which has imported boto3 (main_in_fork).
With LOCAL_PROFILE=<dir> in its environment it runs every invocation under cProfile and
writes the stats to <dir>/<function>-<pid>.pstats when it stops (docs/performance.md).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections import Counter


class Context:
    """The parts of the Lambda context object handlers use."""

    def __init__(self, function_name: str, deadline_ms: float, request_id: str):
        self.function_name = function_name
        self.aws_request_id = request_id
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def count_aws_calls() -> Counter:
    """Count every AWS API call the handler makes, as "service.Operation", and the
    ConsumedCapacity DynamoDB's replies report, as "units.dynamodb.Operation". This wraps
    botocore in this process (the local Lambda runtime), not the handler: the handler's
    code is the same as on AWS, and the local stack can report requests per route."""
    calls: Counter = Counter()
    try:
        from botocore.client import BaseClient
    except ImportError:  # a handler that does not use boto3
        return calls
    make_api_call = BaseClient._make_api_call
    lock = threading.Lock()  # handlers may make calls on several threads at once

    def counted(client, operation_name, api_params):
        name = f"{client.meta.service_model.service_name}.{operation_name}"
        with lock:
            calls[name] += 1
        reply = make_api_call(client, operation_name, api_params)
        consumed = reply.get("ConsumedCapacity") if isinstance(reply, dict) else None
        if consumed:
            units = sum(c.get("CapacityUnits", 0) for c in (consumed if isinstance(consumed, list) else [consumed]))
            with lock:
                calls[f"units.{name}"] += units
        return reply

    BaseClient._make_api_call = counted
    return calls


def main(argv: list[str]) -> None:
    handler_spec, code_dir, function_name = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the local stack decides when we stop
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # print() in handlers goes to stderr, not into the protocol
    calls = count_aws_calls()
    sys.path.insert(0, code_dir)  # as Lambda's bootstrap puts the task root first
    profile_dir = os.path.abspath(os.environ["LOCAL_PROFILE"]) if os.environ.get("LOCAL_PROFILE") else None
    os.chdir(code_dir)
    handler, init_error = None, None
    try:
        module_name, function = handler_spec.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), function)
    except Exception as exc:  # Lambda reports this on every invocation
        init_error = {"errorType": "Runtime.ImportModuleError", "errorMessage": f"{type(exc).__name__}: {exc}"}
        traceback.print_exc()
    profiler = None
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not time spent waiting
    for line in sys.stdin:
        request = json.loads(line)
        reply = {"id": request["id"]}
        if init_error:
            reply["error"] = init_error
        else:
            context = Context(function_name, request["deadline_ms"], request.get("request_id") or str(uuid.uuid4()))
            cpu_started, started = time.process_time(), time.perf_counter()
            try:
                if profiler:
                    profiler.enable()
                reply["result"] = handler(request["event"], context)
            except Exception as exc:
                traceback.print_exc()
                reply["error"] = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            finally:
                if profiler:
                    profiler.disable()
            reply["cpu_ms"] = (time.process_time() - cpu_started) * 1000
            reply["wall_ms"] = (time.perf_counter() - started) * 1000
        reply["calls"] = dict(calls)
        calls.clear()
        replies.write(json.dumps(reply, default=str) + "\n")
    if profiler:
        profiler.dump_stats(os.path.join(profile_dir, f"{function_name}-{os.getpid()}.pstats"))


def main_in_fork(argv: list[str], env: dict[str, str], stdin: int, stdout: int, stderr: int) -> None:
    """main(), in a process forked from the container server: with the function's
    environment (not the server's: TZ applies too), the runtime's own command line, and
    these file descriptors as stdin, stdout and stderr. Says {"pid": n} on stdout first."""
    from .children import die_with_parent, name_process

    die_with_parent()  # the server's end (so the stack's) is this container's end
    name_process(f"lambda {argv[0].rsplit('.', 1)[0]}")  # "lambda message" for message.handler
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(env)
    time.tzset()
    sys.argv = [os.path.abspath(__file__)]  # as Lambda's is its bootstrap's
    sys.dont_write_bytecode = True  # keep cdk.out's asset copy byte-identical
    os.write(1, json.dumps({"pid": os.getpid()}).encode() + b"\n")
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 (the process's own)
    sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)  # noqa: SIM115
    main(argv)
