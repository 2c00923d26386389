"""The local Lambda on its own: containers and pools (local/lambda_pool.py), the container
server that forks them (container_server.py) and the runtime inside each one
(lambda_runtime.py), driven as the gateway drives them, through Container and FunctionPool."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from local import container_server, lambda_pool, lambda_runtime
from local.lambda_pool import Container, FunctionPool, InvocationError, base_environment

HANDLERS = {
    "ok.py": "COUNT = 0\ndef handler(event, context):\n    global COUNT\n    COUNT += 1\n    print('log line')\n"
    "    return {'count': COUNT, 'echo': event, 'left': context.get_remaining_time_in_millis()}\n",
    "boom.py": "def handler(event, context):\n    raise ValueError('nope')\n",
    "slow.py": "import os, time\ndef handler(event, context):\n    time.sleep(event['sleep'])\n"
    "    return os.getpid()\n",
    "broken.py": "import does_not_exist\n",
    "env.py": "import os\ndef handler(event, context):\n    return dict(os.environ)\n",
    "proc.py": "import multiprocessing, os, subprocess, sys, time, warnings\n"
    "def child(conn):\n    conn.send(os.getpid())\n"
    "def handler(event, context):\n"
    "    try:\n        warnings.warn('a handler warns')\n        warned = 'shown'\n"
    "    except UserWarning:\n        warned = 'raised'\n"
    "    ours, theirs = multiprocessing.Pipe()\n"
    "    process = multiprocessing.Process(target=child, args=(theirs,))\n"
    "    process.start()\n    child_pid = ours.recv()\n    process.join()\n"
    "    return {'environ': open('/proc/self/environ', 'rb').read().decode(), 'path': sys.path,\n"
    "            'argv': sys.argv, 'warned': warned, 'utc_offset': time.strftime('%z'),\n"
    "            'subprocess': subprocess.run([sys.executable, '-c', 'pass']).returncode,\n"
    "            'multiprocessing': child_pid != os.getpid() and process.exitcode == 0}\n",
    "aws.py": "import boto3\nfrom botocore.stub import Stubber\n"
    "def handler(event, context):\n"
    "    client = boto3.session.Session().client('dynamodb', region_name='us-east-1')\n"
    "    with Stubber(client) as stub:\n"
    "        for _ in range(event['n']):\n"
    "            stub.add_response('get_item', {})\n"
    "            client.get_item(TableName='t', Key={'k': {'S': '1'}})\n",
}


@pytest.fixture
def code_dir(tmp_path):
    for name, text in HANDLERS.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def invoke_all(container: Container, *events):
    async def go():
        try:
            results = []
            for event in events:
                try:
                    results.append(await container.invoke(event))
                except InvocationError as exc:
                    results.append(exc)
            return results
        finally:
            await container.stop()

    return asyncio.run(go())


def test_a_container_keeps_module_state_between_invocations_like_a_warm_container(code_dir):
    logs = []
    container = Container("ok", "ok.handler", code_dir, base_environment(), 3, logs.append)
    first, second = invoke_all(container, {"n": 1}, {"n": 2})
    assert (first["count"], second["count"]) == (1, 2)
    assert second["echo"] == {"n": 2} and 0 < second["left"] <= 3000
    assert "[ok] log line" in logs  # handler output is logs, not protocol


def test_a_container_finds_its_handler_through_a_relative_code_path(code_dir, monkeypatch):
    # make local passes .local/cdk.out: a relative asset path must survive the container's chdir
    monkeypatch.chdir(code_dir.parent)
    container = Container("ok", "ok.handler", code_dir.relative_to(code_dir.parent), base_environment(), 3, print)
    assert invoke_all(container, {})[0]["count"] == 1


def test_separate_containers_do_not_share_module_state(code_dir):
    one = Container("a", "ok.handler", code_dir, base_environment(), 3, print)
    two = Container("b", "ok.handler", code_dir, base_environment(), 3, print)
    assert invoke_all(one, {})[0]["count"] == 1 and invoke_all(two, {})[0]["count"] == 1


def test_a_handler_exception_is_an_invocation_error_and_the_container_carries_on(code_dir):
    container = Container("boom", "boom.handler", code_dir, base_environment(), 3, lambda line: None)
    first, second = invoke_all(container, {}, {})
    assert isinstance(first, InvocationError) and "ValueError: nope" in str(first)
    assert isinstance(second, InvocationError)


def test_a_timeout_kills_the_container_and_the_next_invocation_gets_a_fresh_one(code_dir):
    container = Container("slow", "slow.handler", code_dir, base_environment(), 0.5, lambda line: None)
    first, second, third = invoke_all(container, {"sleep": 0}, {"sleep": 5}, {"sleep": 0})
    assert isinstance(second, InvocationError) and "timed out" in str(second)
    assert first != third  # each is the pid of the process that ran it: a new container


def test_an_import_error_is_reported_on_invocation(code_dir):
    container = Container("broken", "broken.handler", code_dir, base_environment(), 3, lambda line: None)
    [result] = invoke_all(container, {})
    assert isinstance(result, InvocationError) and "ImportModuleError" in str(result)


def test_containers_get_no_real_aws_credentials(monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "prod")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "secret")
    env = base_environment()
    assert "AWS_PROFILE" not in env and "AWS_SESSION_TOKEN" not in env
    assert env["AWS_ACCESS_KEY_ID"] == "local"
    assert "secret" not in json.dumps(env) and "prod" not in json.dumps(env)


def test_a_container_sees_its_functions_environment_and_nothing_of_the_stacks(code_dir, monkeypatch):
    # containers are forked from a server that started in the stack's environment, where
    # a developer's own AWS settings may be
    monkeypatch.setenv("AWS_PROFILE", "prod")
    env = {**base_environment(), "MESSAGES_TABLE": "Messages"}
    container = Container("env", "env.handler", code_dir, env, 3, lambda line: None)
    assert invoke_all(container, {}) == [env]


def test_a_containers_python_has_nothing_of_the_stacks_settings_and_its_functions_tz(code_dir, monkeypatch):
    # Given a stack process run with settings of its own: its PYTHONPATH, warnings as
    # errors, a real AWS secret (and a container server that starts in that environment)
    monkeypatch.setenv("PYTHONPATH", "/stack/only")
    monkeypatch.setenv("PYTHONWARNINGS", "error")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-secret")
    container_server.server.stop()
    # When a function whose environment sets TZ looks at its process
    container = Container("proc", "proc.handler", code_dir, {**base_environment(), "TZ": "JST-9"}, 10, print)
    [seen] = invoke_all(container, {})
    # Then it sees none of those (not even in /proc), but its own TZ, the runtime's argv,
    # its code first on sys.path and not the project, and it can start processes
    assert "real-secret" not in seen["environ"] and "/stack/only" not in seen["environ"]
    assert seen["path"][0] == str(code_dir) and "/stack/only" not in seen["path"]
    assert str(container_server.ROOT) not in seen["path"]
    assert seen["argv"] == [lambda_runtime.__file__] and seen["warned"] == "shown"
    assert seen["utc_offset"] == "+0900"
    assert seen["subprocess"] == 0 and seen["multiprocessing"]


def _ended(pid: int) -> bool:
    """Gone, or a zombie (ended, not yet reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_container_server_that_hangs_is_replaced_and_costs_a_cold_start_its_wait(code_dir, monkeypatch):
    async def scenario():
        # Given a warm container, and then its container server stopped (SIGSTOP)
        warm = Container("warm", "ok.handler", code_dir, base_environment(), 3, print)
        await warm.invoke({})
        hung = container_server.server.pid
        os.kill(hung, signal.SIGSTOP)
        # When two cold starts ask it for a container together (as a reset's functions do)
        monkeypatch.setattr(lambda_pool, "START_TIMEOUT_S", 1)
        cold = [Container(f"cold{i}", "ok.handler", code_dir, base_environment(), 3, print) for i in (1, 2)]
        results = await asyncio.gather(*(c.invoke({}) for c in cold))
        # Then, once they have waited that long, one new server forks both and their frames run
        assert [r["count"] for r in results] == [1, 1]
        assert container_server.server.pid != hung
        # and the hung server is ended, and the containers it forked with it
        assert _ended(hung) and await warm.proc.wait(5)
        assert (await warm.invoke({}))["count"] == 1
        await asyncio.gather(warm.stop(), *(c.stop() for c in cold))

    asyncio.run(scenario())


def test_a_cold_start_that_two_container_servers_cannot_serve_in_time_is_an_invocation_error(code_dir, monkeypatch):
    async def scenario():
        container_server.server.stop()  # so each try waits for a new server's start, ~0.4 s
        monkeypatch.setattr(lambda_pool, "START_TIMEOUT_S", 0.001)
        cold = Container("cold", "ok.handler", code_dir, base_environment(), 3, print)
        with pytest.raises(InvocationError, match="not within 0.001 s, from two container servers"):
            await cold.invoke({})
        monkeypatch.setattr(lambda_pool, "START_TIMEOUT_S", 20)
        assert (await cold.invoke({}))["count"] == 1
        await cold.stop()

    asyncio.run(scenario())


def test_a_container_server_that_died_is_replaced_at_the_next_cold_start(code_dir):
    async def scenario():
        first = Container("first", "ok.handler", code_dir, base_environment(), 3, print)
        await first.invoke({})
        dead = container_server.server.pid
        os.kill(dead, signal.SIGKILL)  # as the OOM killer would
        while not _ended(dead):
            await asyncio.sleep(0.01)
        container = Container("next", "ok.handler", code_dir, base_environment(), 3, print)
        assert (await container.invoke({}))["count"] == 1 and container_server.server.pid != dead
        await asyncio.gather(first.stop(), container.stop())

    asyncio.run(scenario())


def test_a_container_server_that_cannot_start_is_an_invocation_error(code_dir, monkeypatch):
    container_server.server.stop()
    monkeypatch.setattr("sys.executable", "/nonexistent/python3")
    [result] = invoke_all(Container("ok", "ok.handler", code_dir, base_environment(), 3, print), {})
    assert isinstance(result, InvocationError) and "did not start: FileNotFoundError" in str(result)


def test_a_script_that_runs_a_container_without_a_main_guard_runs_once(code_dir):
    # (multiprocessing's servers import the parent's __main__ again in the server)
    script = code_dir / "script.py"
    script.write_text(
        "import asyncio\nprint('the script ran', flush=True)\n"
        "from local.lambda_pool import Container, base_environment\n"
        f"container = Container('ok', 'ok.handler', {str(code_dir)!r}, base_environment(), 3, print)\n"
        "async def main():\n    print(await container.invoke({}))\n    await container.stop()\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(container_server.ROOT)}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert result.stdout.count("the script ran") == 1 and "'count': 1" in result.stdout, result.stderr


def test_stopping_a_container_whose_process_is_stopped_kills_it(code_dir):
    async def scenario():
        container = Container("slow", "slow.handler", code_dir, base_environment(), 3, print)
        pid = await container.invoke({"sleep": 0})
        os.kill(pid, signal.SIGSTOP)  # it will never read the end of its stdin
        await container.stop()
        return pid

    assert _ended(asyncio.run(scenario()))


def test_a_container_counts_the_aws_calls_of_each_route(code_dir):
    container = Container("aws", "aws.handler", code_dir, base_environment(), 10, lambda line: None)
    route = lambda key, n: {"n": n, "requestContext": {"routeKey": key}}  # noqa: E731
    invoke_all(container, route("sync", 2), route("sync", 1), route("sendMessage", 0))
    calls = {route: {k: v for k, v in s.items() if not k.endswith("_ms")} for route, s in container.stats.items()}
    assert calls == {
        "sync": {"invocations": 2, "dynamodb.GetItem": 3},
        "sendMessage": {"invocations": 1},
    }
    # and the time each route's invocations took, and their CPU time
    assert all(s["wall_ms"] > 0 and s["cpu_ms"] > 0 for s in container.stats.values())


def run_pool(code_dir, size: int, go):
    """go(pool) on a started pool of `size` slow.py containers; stopped afterwards."""
    spec = {"handler": "slow.handler", "timeout": 10}

    async def main():
        pool = FunctionPool("slow", spec, code_dir, base_environment(), size, lambda line: None)
        await pool.start()
        try:
            return await go(pool)
        finally:
            await pool.stop()

    return asyncio.run(main())


def test_a_connections_frames_run_at_the_same_time_on_two_containers_as_on_aws(code_dir):
    async def go(pool):
        # two frames of one connection, the first still running when the second comes
        return await asyncio.gather(pool.invoke({"sleep": 0.5}, "conn-1"), pool.invoke({"sleep": 0.0}, "conn-1"))

    first, second = run_pool(code_dir, 2, go)
    assert first != second  # two containers (processes), not one after the other on the same one


def test_with_every_container_busy_an_invocation_waits_for_the_first_free(code_dir):
    async def go(pool):
        return await asyncio.gather(*(pool.invoke({"sleep": 0.2}, f"conn-{i}") for i in range(5)))

    pids = run_pool(code_dir, 2, go)
    assert len(pids) == 5 and len(set(pids)) == 2


def test_a_second_container_starts_only_when_the_first_is_busy_as_lambda_scales_out(code_dir):
    async def go(pool):
        one_at_a_time = [await pool.invoke({"sleep": 0}, f"conn-{i}") for i in range(4)]
        warm_then = sum(c.warm for c in pool.containers)
        at_once = await asyncio.gather(*(pool.invoke({"sleep": 0.3}, f"conn-{i}") for i in range(2)))
        return one_at_a_time, warm_then, at_once

    one_at_a_time, warm_then, at_once = run_pool(code_dir, 2, go)
    assert len(set(one_at_a_time)) == 1 and warm_then == 1  # four connections, one after another: one container
    assert len(set(at_once)) == 2  # two at the same time: a cold start of the second


def test_a_connection_keeps_its_container_while_it_is_free(code_dir):
    async def go(pool):
        return [await pool.invoke({"sleep": 0}, "conn-1") for _ in range(4)]

    assert len(set(run_pool(code_dir, 2, go))) == 1  # its caches stay warm
