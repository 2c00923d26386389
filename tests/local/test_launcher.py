"""The launcher (local/launcher.py) that make soak, make bench and the end-to-end tests
start the local stack with."""

from __future__ import annotations

import re
from pathlib import Path

from local.launcher import LocalStackProcess


def test_a_launchers_log_text_holds_only_its_own_runs_not_earlier_ones_in_the_same_state_dir(tmp_path):
    # make soak and make bench reuse their state dir, and count log lines of their own run
    (tmp_path / "stack.log").write_text('{"event":"delivered","messageId":"s-000001"}\n')
    launcher = LocalStackProcess(tmp_path / "cdk.out", tmp_path)
    with open(launcher.log, "a") as log:
        log.write('{"event":"delivered","messageId":"s-000002"}\n')
    assert launcher.log_text() == '{"event":"delivered","messageId":"s-000002"}\n'


def test_the_local_packages_map_names_every_module_of_it():
    # local/__init__.py is where a newcomer looks first: it must not fall behind the files
    import local

    folder = Path(local.__file__).parent
    mapped = set(re.findall(r"^(\w+\.py)\s", local.__doc__, re.M))
    assert mapped == {p.name for p in folder.glob("*.py") if p.name != "__init__.py"}
