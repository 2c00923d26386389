"""make local / make token, i.e.:

python -m local run   [--cdk-out .local/cdk.out] [--port 8080] [--fresh] ...
python -m local token USER [--port 8080] [--use id|access]
python -m local check-state [--state-dir .local]   (make local, before it synthesizes)

Only the standard library is imported until a command needs more, so --help and
check-state work with any Python 3.11+, before make has installed anything.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from .defaults import HANDSHAKE_DELAY_S, IDLE_TIMEOUT_S, WORKERS
from .state_lock import StateInUse, StateLock


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def run(args) -> int:
    from .eventbridge import LIST_PATH
    from .stack import LocalStack
    from .template import TemplateError

    lock = StateLock(args.state_dir)
    try:
        lock.acquire(args.port)
    except StateInUse as exc:
        log(f"error: {exc}")
        return 1
    stack = LocalStack(
        args.cdk_out,
        host=args.host,
        port=args.port,
        state_dir=args.state_dir,
        fresh=args.fresh,
        workers=args.workers,
        idle_timeout_s=args.idle_timeout,
        handshake_delay_s=args.handshake_delay_ms / 1000,
        ordered=args.ordered,
        dynamodb_port=args.dynamodb_port,
        functions_dynamodb_port=args.functions_dynamodb_port,
        stack=args.stack,
        log=log,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stack.start()
    except (TemplateError, RuntimeError, OSError) as exc:
        log(f"error: {exc}")
        return 1
    if stack.auth_mode == "dev":
        try_line = f"npx wscat -c '{stack.url}?userId=test-user-1'"
    else:  # double quotes, so the shell runs the $(...); the token's issuer names the port
        port = f" PORT={args.port}" if args.port != 8080 else ""
        try_line = f'npx wscat -c "{stack.url}?token=$(make -s token USER=test-user-1{port})"'
    print(
        f"Local stack {stack.stack_name} ({stack.auth_mode} auth) on {stack.url}\n"
        f"  DynamoDB (dynalite): {stack.db.endpoint}, data in {args.state_dir / 'dynamodb'}\n"
        f"                       (the functions reach it through IAM on {stack.guard.endpoint})\n"
        f"  @connections API:    http://{args.host}:{args.port}/{stack.gateway.api.stage}/@connections/{{id}}\n"
        f"  Push events:         http://{args.host}:{args.port}{LIST_PATH} (each is printed here too)\n"
        f"  Web client:          http://{args.host}:{args.port}/ (open it in two tabs)\n"
        f"Try:  {try_line}\n"
        f"Ctrl-C stops everything.",
        flush=True,
    )
    await stop.wait()
    log("stopping…")
    await stack.stop()
    return 0


def check_state(args) -> int:
    try:
        StateLock(args.state_dir).check()
    except StateInUse as exc:
        log(f"error: {exc}")
        return 1
    return 0


def token(args) -> int:
    from .issuer import LocalIssuer

    issuer = LocalIssuer(args.state_dir, args.port)
    print(issuer.token(args.user, use=args.use))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description="Run the backend on this machine.")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="start the local stack from a synthesized cdk.out")
    r.add_argument("--cdk-out", type=Path, default=Path(".local/cdk.out"))
    r.add_argument("--stack", help="stack name, if cdk.out holds several")
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--port", type=int, default=8080)
    r.add_argument("--state-dir", type=Path, default=Path(".local"), help="data and keys (default .local)")
    r.add_argument("--fresh", action="store_true", help="wipe stored data before starting")
    r.add_argument(
        "--workers",
        type=int,
        default=WORKERS,
        help=f"worker processes (Lambda containers) per function, at most: the first starts with the stack, "
        f"the others when every started one is busy (default {WORKERS})",
    )
    r.add_argument(
        "--idle-timeout",
        type=float,
        default=IDLE_TIMEOUT_S,
        help=f"seconds (default {IDLE_TIMEOUT_S:g}, as API Gateway)",
    )
    r.add_argument(
        "--handshake-delay-ms",
        type=float,
        default=HANDSHAKE_DELAY_S * 1000,
        help="after $connect, the handshake takes this long and posts to the connection answer 410, as on AWS "
        f"(default {HANDSHAKE_DELAY_S * 1000:g}; 0 turns it off)",
    )
    r.add_argument(
        "--ordered",
        action="store_true",
        help="handle one connection's frames one after another, in arrival order (API Gateway runs them at "
        "the same time, so by default so does this)",
    )
    r.add_argument("--dynamodb-port", type=int, help="dynalite's port, unguarded (default: a free port)")
    r.add_argument(
        "--functions-dynamodb-port",
        type=int,
        help="the port the functions reach DynamoDB on, through IAM (default: a free port)",
    )
    k = sub.add_parser("token", help="print a token from the local issuer (AUTH=token mode)")
    k.add_argument("user")
    k.add_argument("--port", type=int, default=8080)
    k.add_argument("--state-dir", type=Path, default=Path(".local"))
    k.add_argument("--use", choices=("id", "access"), default="id")
    c = sub.add_parser("check-state", help="fail, saying why, if a local stack is using the state directory")
    c.add_argument("--state-dir", type=Path, default=Path(".local"))
    args = parser.parse_args(argv)
    if args.command == "token":
        return token(args)
    if args.command == "check-state":
        return check_state(args)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
