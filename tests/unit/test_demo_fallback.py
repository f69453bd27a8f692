"""`make demo` on a machine that cannot host the sandbox: one line says why, then the daemon
runs alone (a real process) with the demo's call center created through its API."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import NoReturn

import pytest

from demo.run import main
from tests.conftest import free_port
from tests.sandbox import AsteriskSandbox, ProvisioningError

REASON = "needs root (chroot and a private mount namespace)"


@pytest.mark.timeout(90)
def test_without_the_sandbox_it_says_why_in_one_line_and_runs_the_daemon_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def cannot(*args: object) -> NoReturn:
        raise ProvisioningError(REASON)

    monkeypatch.setattr(AsteriskSandbox, "provision", cannot)
    port = free_port()
    state = tmp_path / "demo-state"
    code = main(["--minutes", "0.02", "--port", str(port), "--state", str(state), "--seed", "1"])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    why = [line for line in lines if REASON in line]
    assert why == [
        f"demo: no sandbox Asterisk here ({REASON}); running the daemon alone, as `make run`"
    ]
    assert f"  wallboard    http://127.0.0.1:{port}/" in lines
    assert f"  API docs     http://127.0.0.1:{port}/docs" in lines
    assert "  log in as    admin / callcenter-demo" in lines
    assert lines[-1] == "demo: daemon stopped (exit code 0)"
    # The daemon created the call center: what its database holds after it stopped.
    with sqlite3.connect(state / "callcenterd.sqlite3") as db:
        users = {row[0]: row[1] for row in db.execute("SELECT username, role FROM users")}
        queues = {row[0] for row in db.execute("SELECT asterisk_name FROM queues")}
    assert users["olga"] == "supervisor" and users["anna"] == "operator" and len(users) == 8
    assert queues == {"support", "sales"}
