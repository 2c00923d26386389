"""The launcher (local/launcher.py) that make soak, make bench and the end-to-end tests
start the local stack with."""

from __future__ import annotations

from local.launcher import LocalStackProcess


def test_a_launchers_log_text_holds_only_its_own_runs_not_earlier_ones_in_the_same_state_dir(tmp_path):
    # make soak and make bench reuse their state dir, and count log lines of their own run
    (tmp_path / "stack.log").write_text('{"event":"delivered","messageId":"s-000001"}\n')
    launcher = LocalStackProcess(tmp_path / "cdk.out", tmp_path)
    with open(launcher.log, "a") as log:
        log.write('{"event":"delivered","messageId":"s-000002"}\n')
    assert launcher.log_text() == '{"event":"delivered","messageId":"s-000002"}\n'
