"""Passwords (bcrypt), access tokens (JWT HS256), who is acting, and encryption of secrets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import stat
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt
import jwt
from cryptography.fernet import Fernet, InvalidToken

from callcenterd.domain.users import Role, User
from callcenterd.errors import NotAuthenticated, TokenExpired

Clock = Callable[[], datetime]

# bcrypt only looks at the first 72 bytes; longer passwords are refused at validation.
BCRYPT_MAX_BYTES = 72


def utcnow() -> datetime:
    return datetime.now(UTC)


class PasswordHasher:
    """bcrypt hashing off the event loop: a hash costs ~250 ms at 12 rounds."""

    def __init__(self, rounds: int) -> None:
        self._rounds = rounds
        # A real hash to compare against when the user does not exist, so a login's
        # timing does not reveal which usernames exist.
        self._dummy = bcrypt.hashpw(b"callcenterd-dummy", bcrypt.gensalt(rounds))

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self._rounds)
        hashed = await asyncio.to_thread(bcrypt.hashpw, password.encode(), salt)
        return hashed.decode()

    async def verify(self, password: str, hashed: str | None) -> bool:
        target = hashed.encode() if hashed else self._dummy
        ok = await asyncio.to_thread(bcrypt.checkpw, password.encode()[:BCRYPT_MAX_BYTES], target)
        return ok and hashed is not None


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: str
    jti: str
    issued_at: datetime
    expires_at: datetime
    # Bumped on password change and deactivation: older tokens stop working.
    generation: int


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated user of a request, with the token that proved it."""

    user: User
    claims: TokenClaims

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def role(self) -> Role:
        return self.user.role

    @property
    def group_id(self) -> str | None:
        return self.user.group_id


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: TokenClaims


class TokenService:
    ALGORITHM = "HS256"
    # Tokens whose signature was checked, kept so a client's next request skips the decode.
    # Only correctly signed tokens get in, so only tokens this daemon issued fill it.
    MAX_VERIFIED = 4096

    def __init__(self, signing_key: bytes, ttl: timedelta, clock: Clock = utcnow) -> None:
        self._key = signing_key
        self._ttl = ttl
        self._clock = clock
        self._verified: dict[str, TokenClaims] = {}

    @property
    def ttl_minutes(self) -> int:
        return int(self._ttl.total_seconds() // 60)

    def issue(self, user_id: str, generation: int) -> IssuedToken:
        now = self._clock().replace(microsecond=0)
        claims = TokenClaims(user_id, uuid.uuid4().hex, now, now + self._ttl, generation)
        payload = {
            "sub": user_id,
            "jti": claims.jti,
            "iat": now,
            "exp": claims.expires_at,
            "gen": generation,
        }
        return IssuedToken(jwt.encode(payload, self._key, algorithm=self.ALGORITHM), claims)

    def verify(self, token: str) -> TokenClaims:
        """The claims of a token signed with our key and not expired (revocation is the
        caller's). The same token string always has the same claims: decoded once."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._decode(token)
            if len(self._verified) >= self.MAX_VERIFIED:
                self._verified.clear()
            self._verified[token] = claims
        if claims.expires_at <= self._clock():
            del self._verified[token]
            raise TokenExpired()
        return claims

    def _decode(self, token: str) -> TokenClaims:
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[self.ALGORITHM],
                # Expiry is judged in verify() by the same clock that issued the token.
                options={
                    "require": ["exp", "iat", "jti", "sub"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as err:
            raise NotAuthenticated("Invalid token") from err
        try:
            claims = TokenClaims(
                user_id=str(payload["sub"]),
                jti=str(payload["jti"]),
                issued_at=datetime.fromtimestamp(payload["iat"], UTC),
                expires_at=datetime.fromtimestamp(payload["exp"], UTC),
                generation=int(payload.get("gen", 0)),
            )
        except (TypeError, ValueError, OverflowError, OSError) as err:
            raise NotAuthenticated("Invalid token") from err
        return claims


class SecretBox:
    """Encrypts secrets stored in the database (the Asterisk password)."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as err:
            raise ValueError("stored secret cannot be decrypted with this secret key") from err


# Never readable by other local users, whatever the umask: set explicitly, not left to it.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def restrict(path: Path) -> None:
    """Take every right away from group and others; the owner's stay (a file an admin made
    read-only stays read-only). Nothing is written when there is nothing to take."""
    current = stat.S_IMODE(os.stat(path).st_mode)
    if current & 0o077:
        os.chmod(path, current & 0o700)


def private_dir(path: Path) -> None:
    """Create the folder 0700 if missing, else take group's and others' rights away."""
    if path.is_dir():
        restrict(path)
        return
    path.mkdir(parents=True, mode=PRIVATE_DIR_MODE)
    os.chmod(path, PRIVATE_DIR_MODE)  # exactly, whatever the umask took away


def private_file(path: Path) -> None:
    """Create the file 0600 and empty if missing (before anything is written to it), else take
    group's and others' rights away."""
    if path.exists():
        restrict(path)
        return
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)  # exactly, whatever the umask took away
    finally:
        os.close(fd)


def load_or_create_key(path: Path, make: Callable[[], bytes]) -> bytes:
    """Read a key file, or create it with mode 0600 (never readable by others)."""
    private_dir(path.parent)
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        exists = False
    else:
        if key:
            restrict(path)  # also a key written by an older version
            return key
        # Empty: a crash between creating and writing it. No key was ever used; replace it.
        exists = True
    key = make()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if exists else os.O_EXCL)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), PRIVATE_FILE_MODE)
        fh.write(key + b"\n")
    return key


def key_fingerprint(key: bytes) -> str:
    """Names a key without revealing it: an HMAC of a fixed text under the key."""
    return hmac.new(key, b"callcenterd key fingerprint v1", hashlib.sha256).hexdigest()[:16]


def new_signing_key() -> bytes:
    return secrets.token_urlsafe(48).encode()


def new_secret_key() -> bytes:
    return Fernet.generate_key()


def random_password() -> str:
    return secrets.token_urlsafe(12)
