"""Passwords (bcrypt), access tokens (JWT), the secret box and key files."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt
import jwt
import pytest
from cryptography.fernet import Fernet

from callcenterd.errors import NotAuthenticated, TokenExpired
from callcenterd.security import (
    PasswordHasher,
    SecretBox,
    TokenService,
    load_or_create_key,
    new_secret_key,
    new_signing_key,
    random_password,
)
from tests.conftest import FakeClock

KEY = b"k" * 64
TTL = timedelta(minutes=30)


# --- passwords -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(rounds=4)


async def test_hash_verifies_and_is_bcrypt(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("correct horse")
    assert hashed.startswith("$2b$04$")
    assert "correct horse" not in hashed
    assert await hasher.verify("correct horse", hashed) is True
    assert await hasher.verify("wrong horse", hashed) is False
    assert await hasher.verify("", hashed) is False


async def test_hashes_are_salted(hasher: PasswordHasher) -> None:
    first, second = await hasher.hash("same-password"), await hasher.hash("same-password")
    assert first != second
    assert first[:7] == second[:7]  # same algorithm and cost, different salt
    assert await hasher.verify("same-password", first)
    assert await hasher.verify("same-password", second)


async def test_rounds_follow_the_setting() -> None:
    hashed = await PasswordHasher(rounds=5).hash("pw-123456")
    assert hashed.startswith("$2b$05$")


async def test_unknown_user_never_verifies(hasher: PasswordHasher) -> None:
    # The dummy hash is compared against (same timing), yet the answer is always False,
    # even for the dummy's own password.
    assert await hasher.verify("anything", None) is False
    assert await hasher.verify("callcenterd-dummy", None) is False


async def test_hashes_interoperate_with_plain_bcrypt(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("interop-pw")
    assert bcrypt.checkpw(b"interop-pw", hashed.encode())
    foreign = bcrypt.hashpw(b"made-elsewhere", bcrypt.gensalt(4)).decode()
    assert await hasher.verify("made-elsewhere", foreign)


async def test_non_ascii_passwords(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("пароль-Ω-密码")
    assert await hasher.verify("пароль-Ω-密码", hashed)
    assert not await hasher.verify("пароль-Ω-密", hashed)


# --- tokens --------------------------------------------------------------------------------
def _tokens(clock: FakeClock, key: bytes = KEY) -> TokenService:
    return TokenService(key, TTL, clock)


def test_issue_then_verify_round_trip(clock: FakeClock) -> None:
    service = _tokens(clock)
    issued = service.issue("user-1", generation=3)
    claims = service.verify(issued.token)
    assert claims == issued.claims
    assert claims.user_id == "user-1"
    assert claims.generation == 3
    assert claims.expires_at - claims.issued_at == TTL
    assert service.ttl_minutes == 30


def test_token_carries_the_standard_claims(clock: FakeClock) -> None:
    issued = _tokens(clock).issue("user-1", generation=2)
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"
    payload = jwt.decode(issued.token, KEY, algorithms=["HS256"])
    assert set(payload) == {"sub", "jti", "iat", "exp", "gen"}
    assert payload["sub"] == "user-1"
    assert payload["gen"] == 2
    assert payload["jti"] == issued.claims.jti
    assert payload["iat"] == int(clock.now.timestamp())
    assert payload["exp"] - payload["iat"] == 30 * 60


def test_every_token_has_its_own_jti(clock: FakeClock) -> None:
    service = _tokens(clock)
    jtis = {service.issue("user-1", 0).claims.jti for _ in range(20)}
    assert len(jtis) == 20


def test_expiry_is_judged_by_the_service_clock(clock: FakeClock) -> None:
    service = _tokens(clock)
    issued = service.issue("user-1", 0)
    clock.advance(minutes=29, seconds=59)
    assert service.verify(issued.token).user_id == "user-1"
    clock.advance(seconds=1)
    with pytest.raises(TokenExpired) as caught:
        service.verify(issued.token)
    assert caught.value.code == "AUTH_002"


def test_token_issued_long_ago_is_expired(clock: FakeClock) -> None:
    clock.advance(days=-2)
    service = _tokens(clock)
    issued = service.issue("user-1", 0)
    clock.advance(days=2)
    with pytest.raises(TokenExpired):
        service.verify(issued.token)


def test_wrong_key_is_not_authenticated(clock: FakeClock) -> None:
    token = _tokens(clock, b"a" * 48).issue("user-1", 0).token
    with pytest.raises(NotAuthenticated) as caught:
        _tokens(clock, b"b" * 48).verify(token)
    assert caught.value.code == "AUTH_001"


def test_expired_token_with_a_wrong_key_is_not_authenticated(clock: FakeClock) -> None:
    # The signature is checked before the expiry: a forged token learns nothing.
    token = _tokens(clock, b"a" * 48).issue("user-1", 0).token
    clock.advance(days=1)
    with pytest.raises(NotAuthenticated):
        _tokens(clock, b"b" * 48).verify(token)


def _signed(payload: dict[str, object], key: bytes = KEY, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def _payload(clock: FakeClock, **changes: object) -> dict[str, object]:
    now = int(clock.now.timestamp())
    payload: dict[str, object] = {
        "sub": "user-1",
        "jti": "j1",
        "iat": now,
        "exp": now + 600,
        "gen": 0,
    }
    payload.update(changes)
    return {key: value for key, value in payload.items() if value is not None}


@pytest.mark.parametrize("missing", ["sub", "jti", "iat", "exp"])
def test_a_token_missing_a_required_claim_is_refused(clock: FakeClock, missing: str) -> None:
    token = _signed(_payload(clock, **{missing: None}))
    with pytest.raises(NotAuthenticated):
        _tokens(clock).verify(token)


def test_a_token_without_generation_counts_as_generation_zero(clock: FakeClock) -> None:
    token = _signed(_payload(clock, gen=None))
    assert _tokens(clock).verify(token).generation == 0


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b.c",
        # alg "none": no signature at all
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1c2VyLTEiLCJqdGkiOiJqIn0.",
    ],
)
def test_garbage_tokens_are_refused(clock: FakeClock, token: str) -> None:
    with pytest.raises(NotAuthenticated):
        _tokens(clock).verify(token)


def test_other_algorithms_are_refused(clock: FakeClock) -> None:
    token = _signed(_payload(clock), algorithm="HS512")
    with pytest.raises(NotAuthenticated):
        _tokens(clock).verify(token)


def test_tampered_payload_is_refused(clock: FakeClock) -> None:
    header, _, signature = _tokens(clock).issue("user-1", 0).token.split(".")
    forged_payload = _signed(_payload(clock, sub="admin")).split(".")[1]
    with pytest.raises(NotAuthenticated):
        _tokens(clock).verify(f"{header}.{forged_payload}.{signature}")


def test_non_numeric_times_are_refused_not_crashing(clock: FakeClock) -> None:
    with pytest.raises(NotAuthenticated):
        _tokens(clock).verify(_signed(_payload(clock, exp="tomorrow")))
    with pytest.raises(NotAuthenticated):
        _tokens(clock).verify(_signed(_payload(clock, iat=10**30)))


def test_generated_keys_are_strong_and_distinct() -> None:
    assert len(new_signing_key()) >= 48
    assert new_signing_key() != new_signing_key()
    Fernet(new_secret_key())  # a valid Fernet key
    assert len(random_password()) >= 12
    assert random_password() != random_password()


# --- secret box ----------------------------------------------------------------------------
def test_secret_box_round_trip() -> None:
    box = SecretBox(new_secret_key())
    sealed = box.encrypt("ari-password")
    assert "ari-password" not in sealed
    assert box.decrypt(sealed) == "ari-password"
    assert box.encrypt("ari-password") != sealed  # fresh IV each time
    assert box.decrypt(box.encrypt("")) == ""
    assert box.decrypt(box.encrypt("пароль")) == "пароль"


def test_secret_box_with_the_wrong_key_fails_clearly() -> None:
    sealed = SecretBox(new_secret_key()).encrypt("ari-password")
    with pytest.raises(ValueError, match="cannot be decrypted"):
        SecretBox(new_secret_key()).decrypt(sealed)
    with pytest.raises(ValueError, match="cannot be decrypted"):
        SecretBox(new_secret_key()).decrypt("not-a-fernet-token")


# --- key files -----------------------------------------------------------------------------
def test_key_file_is_created_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "jwt.key"
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        key = load_or_create_key(path, lambda: b"generated-key")
    finally:
        os.umask(old_umask)
    assert key == b"generated-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().strip() == b"generated-key"


def test_key_file_is_reused(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    first = load_or_create_key(path, new_secret_key)
    calls: list[int] = []

    def make() -> bytes:
        calls.append(1)
        return new_secret_key()

    assert load_or_create_key(path, make) == first
    assert calls == []
    box = SecretBox(first)
    assert SecretBox(load_or_create_key(path, make)).decrypt(box.encrypt("x")) == "x"


def test_existing_key_file_is_read_as_is(tmp_path: Path) -> None:
    path = tmp_path / "jwt.key"
    path.write_bytes(b"  operator-provided-key \n")
    assert load_or_create_key(path, lambda: b"other") == b"operator-provided-key"


def test_empty_key_file_is_replaced(tmp_path: Path) -> None:
    # A crash between creating and writing the file leaves it empty; an empty HMAC or
    # Fernet key is unusable, so it is replaced rather than used (or crashing every login).
    path = tmp_path / "jwt.key"
    path.write_bytes(b"")
    path.chmod(0o644)
    key = load_or_create_key(path, lambda: b"fresh-key")
    assert key == b"fresh-key"
    assert path.read_bytes().strip() == b"fresh-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_token_times_are_utc(clock: FakeClock) -> None:
    claims = _tokens(clock).issue("user-1", 0).claims
    assert claims.issued_at.tzinfo is not None
    assert claims.issued_at.utcoffset() == timedelta(0)
    assert abs(claims.issued_at - datetime.now(UTC)) < timedelta(minutes=1)
