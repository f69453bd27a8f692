"""The `callcenterd` command, run in-process (and twice as a real subprocess)."""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import __version__, cli
from callcenterd.app import create_app
from callcenterd.store.db import bundled_migrations
from tests.api.conftest import ADMIN_PASSWORD, ClientFactory, bearer, login
from tests.conftest import FakeClock, make_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean CALLCENTERD_* environment pointing at a temporary state folder."""
    for name in list(os.environ):
        if name.startswith("CALLCENTERD_") or name == "STATE_DIRECTORY":
            monkeypatch.delenv(name)
    # Never pick up a real /etc/callcenterd/callcenterd.toml of the machine running the tests.
    monkeypatch.setattr(cli, "DEFAULT_CONFIG", tmp_path / "absent.toml")
    # The CLI configures global logging; keep that out of the other tests.
    monkeypatch.setattr(cli, "configure_logging", lambda fmt, level: None)
    state_dir = tmp_path / "state"
    monkeypatch.setenv("CALLCENTERD_STATE_DIR", str(state_dir))
    monkeypatch.setenv("CALLCENTERD_AUTH_BCRYPT_ROUNDS", "4")
    return state_dir


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path: Path, clock: FakeClock) -> ClientFactory:
    """The daemon's app on the same state folder as the `state` fixture (as in tests/api)."""

    async def build(**overrides: Any) -> TestClient[Any, Any]:
        settings = make_settings(tmp_path / "state", **overrides)
        client: TestClient[Any, Any] = await aiohttp_client(create_app(settings, clock=clock))
        return client

    return build


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def _users(state_dir: Path) -> dict[str, tuple[str, str, int]]:
    conn = sqlite3.connect(state_dir / "callcenterd.sqlite3")
    try:
        rows = conn.execute(
            "SELECT username, role, email, token_generation FROM users WHERE deleted_at IS NULL"
        ).fetchall()
    finally:
        conn.close()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def _create(monkeypatch: pytest.MonkeyPatch, password: str, *args: str) -> int:
    _stdin(monkeypatch, password + "\n")
    return cli.main(["user", "create", *args, "--password-stdin"])


# --- migrate -------------------------------------------------------------------------------
def test_migrate_creates_the_database(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["migrate"]) == 0
    latest = bundled_migrations()[-1].version
    out = capsys.readouterr().out
    assert f"at schema version {latest}" in out
    assert str(state / "callcenterd.sqlite3") in out
    conn = sqlite3.connect(state / "callcenterd.sqlite3")
    try:
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone() == (latest,)
    finally:
        conn.close()
    # Idempotent.
    assert cli.main(["migrate"]) == 0
    assert f"at schema version {latest}" in capsys.readouterr().out


def test_migrate_honours_callcenterd_database(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "data" / "cc.sqlite3"
    monkeypatch.setenv("CALLCENTERD_DATABASE", str(elsewhere))
    assert cli.main(["migrate"]) == 0
    assert elsewhere.is_file()
    assert not (state / "callcenterd.sqlite3").exists()


def test_migrate_on_an_unusable_database_fails_with_a_message(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state.mkdir(parents=True)
    (state / "callcenterd.sqlite3").write_bytes(b"not a database " * 100)
    assert cli.main(["migrate"]) == 1
    assert "not a database" in capsys.readouterr().err


# --- user create / list --------------------------------------------------------------------
def test_user_create_reads_the_password_from_stdin(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _create(
        monkeypatch, "op-secret-1", "op1", "--email", "op1@example.com", "--role", "operator",
        "--extension", "1001", "--name", "Operator One",
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "created operator op1" in capsys.readouterr().out
    assert _users(state)["op1"][:2] == ("operator", "op1@example.com")
    conn = sqlite3.connect(state / "callcenterd.sqlite3")
    try:
        stored_hash, name = conn.execute(
            "SELECT password_hash, name FROM users WHERE username = 'op1'"
        ).fetchone()
        extension = conn.execute(
            "SELECT o.extension FROM operators o JOIN users u ON u.id = o.user_id"
            " WHERE u.username = 'op1'"
        ).fetchone()
    finally:
        conn.close()
    assert name == "Operator One"
    assert extension == ("1001",)
    assert stored_hash.startswith("$2b$04$")  # hashed with the configured rounds
    assert "op-secret-1" not in stored_hash


async def test_a_user_created_by_the_cli_can_log_in(
    state: Path, monkeypatch: pytest.MonkeyPatch, make_client: ClientFactory, tmp_path: Path
) -> None:
    assert state == tmp_path / "state"  # the same folder make_client uses
    client = await make_client()
    _stdin(monkeypatch, "mgr-secret-1\n")
    argv = ["user", "create", "boss", "--email", "boss@example.com", "--role", "manager"]
    assert await asyncio.to_thread(cli.main, [*argv, "--password-stdin"]) == 0
    token = await login(client, "boss", "mgr-secret-1")
    me = await (await client.get("/api/auth/me", headers=bearer(token))).json()
    assert (me["username"], me["role"], me["name"]) == ("boss", "manager", "boss")


def test_user_create_refuses_invalid_input(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _create(monkeypatch, "short", "bob", "--email", "bob@example.com") == 2
    assert "password" in capsys.readouterr().err
    assert _create(monkeypatch, "long-enough", "bob", "--email", "not-an-email") == 2
    assert "email" in capsys.readouterr().err
    # An operator needs an extension.
    assert _create(monkeypatch, "long-enough", "bob", "--email", "bob@example.com") == 2
    assert "extension" in capsys.readouterr().err
    assert not (state / "callcenterd.sqlite3").exists() or "bob" not in _users(state)


def test_user_create_refuses_a_duplicate(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["ann", "--email", "ann@example.com", "--role", "admin"]
    assert _create(monkeypatch, "ann-secret", *args) == 0
    capsys.readouterr()
    assert _create(monkeypatch, "ann-secret", "ANN", "--email", "x@example.com", "--role",
                   "admin") == 1  # fmt: skip
    assert "Username already exists" in capsys.readouterr().err
    assert list(_users(state)) == ["ann"]


def test_user_list_shows_every_user(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _create(monkeypatch, "ann-secret", "ann", "--email", "ann@example.com", "--role",
                   "admin") == 0  # fmt: skip
    assert _create(monkeypatch, "sue-secret", "sue", "--email", "sue@example.com", "--role",
                   "supervisor") == 0  # fmt: skip
    capsys.readouterr()
    assert cli.main(["user", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].split() == ["ann", "admin", "active", "ann@example.com"]
    assert lines[1].split() == ["sue", "supervisor", "active", "sue@example.com"]


# --- user set-password ---------------------------------------------------------------------
async def test_set_password_revokes_the_users_tokens(
    state: Path, monkeypatch: pytest.MonkeyPatch, make_client: ClientFactory
) -> None:
    client: TestClient[Any, Any] = await make_client()
    old_token = await login(client, "admin", ADMIN_PASSWORD)
    assert (await client.get("/api/auth/me", headers=bearer(old_token))).status == 200

    _stdin(monkeypatch, "brand-new-pw\n")
    argv = ["user", "set-password", "admin", "--password-stdin"]
    assert await asyncio.to_thread(cli.main, argv) == 0

    refused = await client.get("/api/auth/me", headers=bearer(old_token))
    assert refused.status == 401
    assert (await refused.json())["code"] == "AUTH_002"
    old_login = await client.post(
        "/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert old_login.status == 401
    new_token = await login(client, "admin", "brand-new-pw")
    assert (await client.get("/api/auth/me", headers=bearer(new_token))).status == 200


def test_set_password_for_an_unknown_user_fails(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, "whatever-pw\n")
    assert cli.main(["user", "set-password", "ghost", "--password-stdin"]) == 1
    assert "ghost" in capsys.readouterr().err


@pytest.mark.parametrize("password", ["short", "x" * 73, "я" * 37])
def test_set_password_applies_the_password_rule(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    # Too short, or longer than bcrypt's 72 bytes: a clear error, never a traceback.
    assert _create(monkeypatch, "ann-secret", "ann", "--email", "ann@example.com", "--role",
                   "admin") == 0  # fmt: skip
    generation = _users(state)["ann"][2]
    _stdin(monkeypatch, password + "\n")
    assert cli.main(["user", "set-password", "ann", "--password-stdin"]) == 2
    assert "error: password" in capsys.readouterr().err
    assert _users(state)["ann"][2] == generation  # nothing changed


# --- check-config --------------------------------------------------------------------------
def test_check_config_good(state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "good.toml"
    config.write_text('[http]\nport = 9100\n[ari]\nurl = "http://pbx:8088"\n')
    assert cli.main(["--config", str(config), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "configuration is valid" in out
    assert "127.0.0.1:9100" in out
    assert "http://pbx:8088" in out
    assert str(state) in out


def test_check_config_reads_callcenterd_config(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "env.toml"
    config.write_text("[http]\nport = 9200\n")
    monkeypatch.setenv("CALLCENTERD_CONFIG", str(config))
    assert cli.main(["check-config"]) == 0
    assert "127.0.0.1:9200" in capsys.readouterr().out


def test_check_config_bad_names_the_key(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[http]\nport = 70000\n")
    assert cli.main(["--config", str(config), "check-config"]) == 2
    captured = capsys.readouterr()
    assert "http.port" in captured.err
    assert "CALLCENTERD_HTTP_PORT" in captured.err
    assert "configuration is valid" not in captured.out


def test_check_config_bad_environment(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALLCENTERD_TIMEZONE", "Nowhere/Special")
    assert cli.main(["check-config"]) == 2
    assert "timezone" in capsys.readouterr().err


def test_check_config_warns_about_unknown_variables(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALLCENTERD_HTTP_PROT", "8080")  # a typo of _PORT
    assert cli.main(["check-config"]) == 0
    assert "warning: CALLCENTERD_HTTP_PROT is not a known setting" in capsys.readouterr().out


def test_check_config_env_lists_every_variable(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check-config", "--env"]) == 0
    out = capsys.readouterr().out
    for name in ("CALLCENTERD_HTTP_PORT", "CALLCENTERD_ARI_PASSWORD", "CALLCENTERD_TIMEZONE"):
        assert name in out


def test_check_config_never_prints_secrets(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALLCENTERD_ARI_PASSWORD", "ari-very-secret")
    monkeypatch.setenv("CALLCENTERD_AMI_SECRET", "ami-very-secret")
    assert cli.main(["check-config", "--env"]) == 0
    captured = capsys.readouterr()
    assert "very-secret" not in captured.out + captured.err


def test_missing_config_file_is_reported(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--config", str(tmp_path / "nope.toml"), "migrate"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_subcommand_is_required(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main([])
    assert caught.value.code == 2


# --- real subprocesses ---------------------------------------------------------------------
def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CALLCENTERD_") and key != "STATE_DIRECTORY"
    }
    env["CALLCENTERD_STATE_DIR"] = str(tmp_path / "state")
    env["PYTHONPATH"] = str(REPO)
    return env


def test_version_in_a_subprocess(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "callcenterd", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"callcenterd {__version__}"


def test_check_config_with_a_bad_file_in_a_subprocess(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('timezone = "UTC"\n[ari]\nurl = "pbx.example.com"\n[http]\nport = 0\n')
    result = subprocess.run(
        [sys.executable, "-m", "callcenterd", "--config", str(config), "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "ari.url" in result.stderr
    assert "http.port" in result.stderr
    assert "Traceback" not in result.stderr
    assert "configuration is valid" not in result.stdout


# --- user unlock ---------------------------------------------------------------------------
async def test_unlock_lets_a_locked_out_admin_back_in(
    state: Path, make_client: ClientFactory
) -> None:
    client: TestClient[Any, Any] = await make_client(
        auth={"bcrypt_rounds": 4, "lockout_attempts": 3, "lockout_minutes": 15}
    )
    wrong = {"username": "admin", "password": "not-the-password"}
    for _ in range(3):
        assert (await client.post("/api/auth/login", json=wrong)).status == 401
    right = {"username": "admin", "password": ADMIN_PASSWORD}
    locked = await client.post("/api/auth/login", json=right)
    assert (locked.status, (await locked.json())["code"]) == (403, "AUTH_005")

    assert await asyncio.to_thread(cli.main, ["user", "unlock", "admin"]) == 0
    assert (await client.post("/api/auth/login", json=right)).status == 200


def test_unlock_of_an_unknown_user_fails(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["user", "unlock", "ghost"]) == 1
    assert "ghost" in capsys.readouterr().err
