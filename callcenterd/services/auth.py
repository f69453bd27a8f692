"""Login, logout and the check every authenticated request goes through."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog

from callcenterd.domain.users import User
from callcenterd.errors import (
    AccountLocked,
    InvalidCredentials,
    NotAuthenticated,
    TokenExpired,
    UserInactive,
)
from callcenterd.security import Clock, IssuedToken, PasswordHasher, Principal, TokenService
from callcenterd.store.system import RevokedTokenRepository
from callcenterd.store.users import AuthEpoch, LoginFailureRepository, UserRepository

log = structlog.get_logger(__name__)

# Far more than a contact center has users: past it the copy starts again (a safety bound).
MAX_KNOWN_USERS = 10_000


@dataclass(frozen=True, slots=True)
class Lockout:
    """`attempts` failed logins in a row lock a username for `duration` (0 attempts: never)."""

    attempts: int
    duration: timedelta


class AuthService:
    def __init__(
        self,
        users: UserRepository,
        revoked: RevokedTokenRepository,
        tokens: TokenService,
        hasher: PasswordHasher,
        clock: Clock,
        failures: LoginFailureRepository,
        lockout: Lockout,
        epoch: AuthEpoch,
    ) -> None:
        self._users = users
        self._store_epoch = epoch
        self._failures = failures
        self._lockout = lockout
        self._revoked = revoked
        self._tokens = tokens
        self._hasher = hasher
        self._clock = clock
        # Revocations and users in memory: no query per request. Each request first reads the
        # store's auth epoch (microseconds, see AuthEpoch); when it moved, whoever changed
        # something (this process or another on the store), every user is forgotten and the
        # revocations are read again before the request goes on. The table restores them on
        # restart. Unknown epoch (a busy database): nothing is trusted from memory.
        self._revoked_jtis: set[str] = set()
        self._known_users: dict[str, User] = {}
        self._epoch: int | None = None
        self._catching_up: asyncio.Task[None] | None = None
        self._on_logout: list[Callable[[str], None]] = []

    def on_logout(self, listener: Callable[[str], None]) -> None:
        """Call `listener(user_id)` after a token is revoked (open WebSockets recheck theirs)."""
        self._on_logout.append(listener)

    @property
    def token_ttl_minutes(self) -> int:
        return self._tokens.ttl_minutes

    async def start(self) -> None:
        await self._catch_up()

    def close(self) -> None:
        self._store_epoch.close()

    def _stored(self) -> int | None:
        return self._store_epoch.read()

    async def _current(self) -> int | None:
        """The store's epoch, once users and revocations in memory are as of it."""
        epoch = self._stored()
        while epoch is None or epoch != self._epoch:
            if self._catching_up is None:
                self._catching_up = asyncio.create_task(self._catch_up())
            # Shared: requests arriving meanwhile wait for the same reload.
            await asyncio.shield(self._catching_up)
            if epoch is None:
                return None  # unknown: the caller reads the user from the database
            epoch = self._stored()
        return epoch

    async def _catch_up(self) -> None:
        try:
            # The epoch before the reads: a change made while they run moves it again.
            epoch = self._stored()
            self._known_users.clear()
            # Added to, never replaced: a logout here while this loads is kept. Revocations
            # only end by expiry, and an expired token is refused anyway.
            self._revoked_jtis |= await self._revoked.live_jtis(self._clock())
            self._epoch = epoch
        finally:
            self._catching_up = None

    async def login(self, username: str, password: str) -> tuple[IssuedToken, User]:
        # The lock is looked up by the name tried, before any user: a locked name is refused
        # the same way (and as fast) whether or not a user has it, even with the password.
        counted = await self._failures.counted(username, self._clock())
        if self._lockout.attempts and counted and counted.locked_until:
            log.info("login_refused_locked", username=username)
            raise AccountLocked()
        user = await self._users.get_by_username(username)
        ok = await self._hasher.verify(password, user.password_hash if user else None)
        if user is None or not ok:
            await self._count_failure(username)
            raise InvalidCredentials()
        if counted is not None:  # written only when there is a count to forget
            await self._failures.clear(username)
        if not user.is_active:
            log.info("login_refused_inactive", user_id=user.id)
            raise UserInactive()
        issued = self._tokens.issue(user.id, user.token_generation)
        log.info("login", user_id=user.id, role=user.role.value)
        return issued, user

    async def _count_failure(self, username: str) -> None:
        if not self._lockout.attempts:
            log.info("login_failed", username=username)
            return
        counted = await self._failures.record_failure(
            username, self._clock(), self._lockout.duration, self._lockout.attempts
        )
        log.info("login_failed", username=username, failures=counted.failures)
        if counted.locked_until is not None:
            log.warning(
                "login_locked", username=username, locked_until=counted.locked_until.isoformat()
            )

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise NotAuthenticated()
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("Authorization header must be 'Bearer <token>'")
        claims = self._tokens.verify(token.strip())
        epoch = await self._current()
        if claims.jti in self._revoked_jtis:
            raise TokenExpired("Token has been revoked (logged out)")
        user = await self._user(claims.user_id, epoch)
        if user is None:
            raise NotAuthenticated("User no longer exists")
        if not user.is_active:
            raise UserInactive()
        if claims.generation != user.token_generation:
            raise TokenExpired("Token was issued before a password change; log in again")
        return Principal(user, claims)

    async def _user(self, user_id: str, epoch: int | None) -> User | None:
        known = self._known_users.get(user_id) if epoch is not None else None
        if known is not None:
            return known
        user = await self._users.get(user_id)
        # Kept only if nothing changed while it was read (it could be the old row).
        if user is not None and epoch is not None and epoch == self._epoch == self._stored():
            if len(self._known_users) >= MAX_KNOWN_USERS:
                self._known_users.clear()
            self._known_users[user_id] = user
        return user

    async def logout(self, principal: Principal) -> None:
        claims = principal.claims
        await self._revoked.revoke(claims.jti, claims.user_id, claims.expires_at, self._clock())
        self._revoked_jtis.add(claims.jti)
        log.info("logout", user_id=claims.user_id)
        for listener in self._on_logout:
            listener(claims.user_id)
