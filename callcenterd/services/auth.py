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
    CallcenterError,
    InvalidCredentials,
    NotAuthenticated,
    TokenExpired,
    UserInactive,
)
from callcenterd.security import Clock, IssuedToken, PasswordHasher, Principal, TokenService
from callcenterd.store.system import RevokedTokenRepository
from callcenterd.store.users import LoginFailureRepository, UserRepository

log = structlog.get_logger(__name__)

# How often the daemon looks for changes another process made to users or revocations (the
# `callcenterd user` commands): such a change takes effect within this time, this process's
# own changes on the very next request.
OTHER_WRITERS_POLL_SECONDS = 1.0
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
    ) -> None:
        self._users = users
        self._failures = failures
        self._lockout = lockout
        self._revoked = revoked
        self._tokens = tokens
        self._hasher = hasher
        self._clock = clock
        # Revocations and users in memory: no query per request. This process forgets a user
        # itself the moment it changes one (forget_user, called right after the commit);
        # another process's changes move the store's auth epoch, and check_other_writers then
        # forgets every user and reloads the revocations. The table restores them on restart.
        self._revoked_jtis: set[str] = set()
        self._known_users: dict[str, User] = {}
        # Counts forgets: a read begun before one is not kept (it may hold the old row).
        self._forgets = 0
        self._epoch: int | None = None
        self._on_logout: list[Callable[[str], None]] = []

    def on_logout(self, listener: Callable[[str], None]) -> None:
        """Call `listener(user_id)` after a token is revoked (open WebSockets recheck theirs)."""
        self._on_logout.append(listener)

    @property
    def token_ttl_minutes(self) -> int:
        return self._tokens.ttl_minutes

    async def start(self) -> None:
        # The epoch first: a change made while the revocations load moves it again.
        self._epoch = await self._users.auth_epoch()
        self._revoked_jtis = await self._revoked.live_jtis(self._clock())

    def forget_user(self, user_id: str) -> None:
        """The user's row, phone or lock changed: read them again on their next request."""
        self._forgets += 1
        self._known_users.pop(user_id, None)

    def _forget_username(self, username: str) -> None:
        key = username.casefold()
        for user in [u for u in self._known_users.values() if u.username.casefold() == key]:
            self.forget_user(user.id)

    def forget_all(self) -> None:
        self._forgets += 1
        self._known_users.clear()

    async def check_other_writers(self) -> bool:
        """Forget every user and reload the revocations if another process changed any
        (the store's auth epoch moved). Returns whether it did."""
        epoch = await self._users.auth_epoch()
        if epoch == self._epoch:
            return False
        self.forget_all()
        # Added to, never replaced: a logout here while this loads is kept. Revocations only
        # end by expiry, and an expired token is refused anyway.
        self._revoked_jtis |= await self._revoked.live_jtis(self._clock())
        self._epoch = epoch
        return True

    async def watch_other_writers(self, interval: float = OTHER_WRITERS_POLL_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check_other_writers()
            except CallcenterError as err:
                # Not knowing is treated as changed: users are read per request until it works.
                self.forget_all()
                log.warning("auth_epoch_unreadable", error=err.detail)

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
            self._forget_username(username)
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
        self._forget_username(username)  # a user shows the lock on their name
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
        if claims.jti in self._revoked_jtis:
            raise TokenExpired("Token has been revoked (logged out)")
        user = await self._user(claims.user_id)
        if user is None:
            raise NotAuthenticated("User no longer exists")
        if not user.is_active:
            raise UserInactive()
        if claims.generation != user.token_generation:
            raise TokenExpired("Token was issued before a password change; log in again")
        return Principal(user, claims)

    async def _user(self, user_id: str) -> User | None:
        known = self._known_users.get(user_id)
        if known is not None:
            return known
        forgets = self._forgets
        user = await self._users.get(user_id)
        if user is not None and forgets == self._forgets:
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
