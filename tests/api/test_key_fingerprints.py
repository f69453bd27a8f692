"""A daemon started with other keys than its database was written with refuses to start,
naming the key; the database keeps fingerprints, never the keys."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from aiohttp import web

from callcenterd.app import create_app
from callcenterd.errors import KeysMismatch
from callcenterd.security import key_fingerprint
from tests.conftest import FakeClock, make_settings

SIGNING = "jwt-signing-key-of-the-first-daemon-0123456789"
SECRET = "f" * 43 + "="  # a Fernet key: 32 bytes, urlsafe base64


async def start(state: Path, clock: FakeClock, **auth: str) -> None:
    runner = web.AppRunner(create_app(make_settings(state, auth=auth), clock=clock))
    try:
        await runner.setup()
    finally:
        await runner.cleanup()


def fingerprints(state: Path) -> dict[str, str]:
    with sqlite3.connect(state / "callcenterd.sqlite3") as conn:
        return dict(conn.execute("SELECT name, fingerprint FROM key_fingerprints").fetchall())


async def test_the_first_start_records_the_keys_fingerprints(
    tmp_path: Path, clock: FakeClock
) -> None:
    await start(tmp_path / "state", clock, jwt_secret=SIGNING, secret_key=SECRET)
    recorded = fingerprints(tmp_path / "state")
    assert recorded == {
        "jwt_signing": key_fingerprint(SIGNING.encode()),
        "secret_encryption": key_fingerprint(SECRET.encode()),
    }
    raw = (tmp_path / "state" / "callcenterd.sqlite3").read_bytes()
    assert SIGNING.encode() not in raw and SECRET.encode() not in raw
    # The same keys again: it starts.
    await start(tmp_path / "state", clock, jwt_secret=SIGNING, secret_key=SECRET)


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        ({"jwt_secret": "another-signing-key-entirely-9876543210"}, "JWT signing key"),
        ({"secret_key": "e" * 43 + "="}, "key of stored secrets"),
    ],
)
async def test_another_key_stops_the_start_naming_it(
    tmp_path: Path, clock: FakeClock, changed: dict[str, str], named: str
) -> None:
    state = tmp_path / "state"
    await start(state, clock, jwt_secret=SIGNING, secret_key=SECRET)
    with pytest.raises(KeysMismatch, match=named) as refused:
        await start(state, clock, **{"jwt_secret": SIGNING, "secret_key": SECRET, **changed})
    assert SIGNING not in refused.value.detail and SECRET not in refused.value.detail
    for key in changed.values():
        assert key not in refused.value.detail


async def test_key_files_in_the_state_folder_are_checked_too(
    tmp_path: Path, clock: FakeClock
) -> None:
    state = tmp_path / "state"
    await start(state, clock)  # keys generated into state/jwt.key and state/secret.key
    (state / "jwt.key").unlink()  # a new one is generated at the next start: not the same
    with pytest.raises(KeysMismatch, match=r"jwt\.key"):
        await start(state, clock)
