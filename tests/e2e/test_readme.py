"""The README's walkthrough, run as written (its wscat commands, through bash), against
the local stack: a newcomer who follows it twice in a row, without FRESH=1, gets the
message both times."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
from pathlib import Path

from local.launcher import ROOT
from local.waiting import wait_until

README = Path(ROOT, "README.md").read_text()


def walkthrough_commands() -> tuple[str, str]:
    """The section's two wscat commands: test-user-2's, which listens, and test-user-1's, which sends."""
    section = README.split("## Run it locally", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(npx wscat -c [^\n]+)\n", section)
    listen, send = commands[:2]
    assert "userId=test-user-2" in listen and "userId=test-user-1" in send and '"action":"sendMessage"' in send
    return listen, send


def start(command: str) -> subprocess.Popen:
    """The command, in bash, its input left open as a terminal's is (wscat ends at the end
    of its input)."""
    return subprocess.Popen(["bash", "-c", command], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def run_lines(command: str) -> tuple[subprocess.Popen, queue.Queue]:
    """Start the command; its output lines arrive on the queue."""
    process, lines = start(command), queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    return process, lines


def frames_printed(command: str) -> list[dict]:
    """Run the command to its end: the frames it printed."""
    process = start(command)
    try:
        return [json.loads(line.lstrip("< ")) for line in process.stdout.read().splitlines() if line.strip()]
    finally:
        process.stdin.close()
        process.wait(10)


def drain(lines: queue.Queue) -> list[dict]:
    found = []
    while not lines.empty():
        found.append(json.loads(lines.get().lstrip("< ")))
    return found


def test_the_readme_walkthrough_delivers_each_time_it_is_followed(stack):
    listen, send = (c.replace("127.0.0.1:8080", f"127.0.0.1:{stack.port}") for c in walkthrough_commands())
    listener, heard = run_lines(listen)
    try:
        wait_until(lambda: stack.invocations("$connect") == 1, what="test-user-2 connected")
        received: list[dict] = []
        for attempt in (1, 2):  # the second time, as a newcomer who follows it again
            [ack] = frames_printed(send)  # it sends, prints what comes back for 2 s, and ends
            assert ack["type"] == "ack" and ack["data"]["status"] == "delivered", ack
            assert "duplicate" not in ack["data"]  # a new messageId each time

            def delivered(count=attempt) -> bool:
                received.extend(drain(heard))
                return len(received) >= count

            wait_until(delivered, what=f"test-user-2 got message {attempt}")
        messages = [frame["data"] for frame in received]
        assert [m["content"] for m in messages] == ["Hello from wscat!"] * 2
        assert len({m["messageId"] for m in messages}) == 2
    finally:
        listener.stdin.close()
        listener.terminate()
        listener.wait(10)
