"""A real DynamoDB-compatible server for the local stack: dynalite (npm, installed by
`npm ci`), persisting to a folder so data survives restarts."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from .children import die_with_parent
from .ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
DYNALITE = ROOT / "node_modules" / "dynalite" / "cli.js"


class Dynalite:
    def __init__(self, data_dir: Path | None, port: int | None = None, log=print):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        node = shutil.which("node")
        if node is None or not DYNALITE.exists():
            raise RuntimeError("dynalite is not installed: run `npm ci` (make local does it for you)")
        # Tables become ACTIVE at once: dynalite's default 500 ms in CREATING per table
        # would only slow every start (no client can connect before they exist anyway).
        args = [node, str(DYNALITE), "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            args += ["--path", str(self.data_dir)]
        # Its own session: a terminal's Ctrl-C goes to the whole foreground process group,
        # and Node resets an inherited SIG_IGN, so without this dynalite would die before
        # the gateway's shutdown runs $disconnect for the open connections.
        self.proc = await asyncio.create_subprocess_exec(
            *args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        try:
            await wait_for_port(self.port, 30, self.proc)
        except RuntimeError as exc:
            err = (await self.proc.stderr.read()).decode(errors="replace")[-2000:]
            await self.stop()
            raise RuntimeError(f"dynalite did not start: {exc}\n{err}") from None
        self._stderr_task = asyncio.create_task(self._forward_stderr(self.proc))

    async def _forward_stderr(self, proc) -> None:
        async for line in proc.stderr:
            self.log(f"[dynalite] {line.decode(errors='replace').rstrip()}")

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
