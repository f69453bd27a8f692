"""The state folder, the keys and the SQLite files are private whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.store.db import Database
from tests.api.conftest import ADMIN_PASSWORD, ClientFactory, login


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Files created by the test are world-writable unless the code sets their mode."""
    previous = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(previous)


def _state(client: TestClient[Any, Any]) -> Path:
    state: Path = client.app[keys.SETTINGS].state_dir
    return state


async def test_a_fresh_start_under_umask_0_makes_everything_private(
    make_client: ClientFactory, open_umask: None
) -> None:
    client = await make_client()
    await login(client, "admin", ADMIN_PASSWORD)  # a write: the -wal file has content
    state = _state(client)
    assert mode(state) == 0o700
    files = {path.name: mode(path) for path in state.iterdir()}
    expected = {
        "jwt.key",
        "secret.key",
        "callcenterd.sqlite3",
        "callcenterd.sqlite3-wal",
        "callcenterd.sqlite3-shm",
    }
    assert expected <= set(files), files
    assert files == dict.fromkeys(files, 0o600)


async def test_files_left_readable_by_an_older_version_are_made_private(
    make_client: ClientFactory, open_umask: None
) -> None:
    first = await make_client()
    state = _state(first)
    await first.close()
    os.chmod(state, 0o755)
    for path in state.iterdir():
        os.chmod(path, 0o644)
    restarted = await make_client()
    assert mode(_state(restarted)) == 0o700
    for path in state.iterdir():
        assert mode(path) == 0o600, path


async def test_a_backup_is_private(tmp_path: Path, open_umask: None) -> None:
    db = Database(tmp_path / "fresh" / "db.sqlite3")
    await db.open()
    try:
        await db.migrate()
        await db.backup(tmp_path / "copies" / "backup.sqlite3")
    finally:
        await db.close()
    assert mode(tmp_path / "fresh") == 0o700  # a folder the database made for itself
    assert mode(tmp_path / "fresh" / "db.sqlite3") == 0o600
    assert mode(tmp_path / "copies" / "backup.sqlite3") == 0o600


def test_the_systemd_unit_sets_a_private_umask() -> None:
    unit = (Path(__file__).parents[2] / "systemd" / "callcenterd.service").read_text()
    lines = {line.strip() for line in unit.splitlines()}
    assert "UMask=0077" in lines
    assert "StateDirectoryMode=0700" in lines
