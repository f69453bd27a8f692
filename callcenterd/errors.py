"""One exception class per failure, each with a stable code and HTTP status.

Services raise these; the error middleware is the only place they become HTTP
responses in the contract's shape ``{detail, type, code, field}``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CallcenterError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL"
    type: ClassVar[str] = "internal_error"
    default_detail: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str | None = None, *, field: str | None = None) -> None:
        self.detail = detail or self.default_detail
        self.field = field
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "type": self.type, "code": self.code, "field": self.field}


# --- authentication and authorisation ------------------------------------------------------
class InvalidCredentials(CallcenterError):
    status, code, type = 401, "AUTH_001", "authentication_error"
    default_detail = "Invalid username or password"


class NotAuthenticated(CallcenterError):
    status, code, type = 401, "AUTH_001", "authentication_error"
    default_detail = "Not authenticated: send 'Authorization: Bearer <token>'"


class TokenExpired(CallcenterError):
    status, code, type = 401, "AUTH_002", "authentication_error"
    default_detail = "Token expired"


class PermissionDenied(CallcenterError):
    status, code, type = 403, "AUTH_003", "authorization_error"
    default_detail = "Insufficient permissions"


class UserInactive(CallcenterError):
    status, code, type = 403, "AUTH_004", "authorization_error"
    default_detail = "User is inactive"


class AccountLocked(CallcenterError):
    # The same answer for a name no user has: a lock tells nothing about who exists.
    status, code, type = 403, "AUTH_005", "authorization_error"
    default_detail = (
        "Account locked after too many failed logins; try again later or ask an administrator"
    )


# --- users ---------------------------------------------------------------------------------
class UsernameTaken(CallcenterError):
    status, code, type = 409, "USER_001", "conflict"
    default_detail = "Username already exists"


class EmailTaken(CallcenterError):
    status, code, type = 409, "USER_002", "conflict"
    default_detail = "Email already exists"


class ExtensionTaken(CallcenterError):
    status, code, type = 409, "USER_003", "conflict"
    default_detail = "Extension already assigned"


class UserNotFound(CallcenterError):
    status, code, type = 404, "USER_004", "not_found"
    default_detail = "User not found"


class LastAdmin(CallcenterError):
    status, code, type = 409, "USER_005", "conflict"
    default_detail = "Cannot remove the last active administrator"


# --- Asterisk ------------------------------------------------------------------------------
class AsteriskTimeout(CallcenterError):
    status, code, type = 504, "AST_001", "asterisk_error"
    default_detail = "Connection to Asterisk timed out"


class AsteriskAuthFailed(CallcenterError):
    status, code, type = 502, "AST_002", "asterisk_error"
    default_detail = "Asterisk refused the credentials"


class AsteriskMisconfigured(CallcenterError):
    status, code, type = 422, "AST_003", "asterisk_error"
    default_detail = "Invalid Asterisk configuration"


class AsteriskUnavailable(CallcenterError):
    status, code, type = 503, "AST_004", "asterisk_error"
    default_detail = "Asterisk is unavailable"


class ChannelNotFound(CallcenterError):
    status, code, type = 404, "AST_005", "not_found"
    default_detail = "Channel not found"


# --- store ---------------------------------------------------------------------------------
class DatabaseUnavailable(CallcenterError):
    status, code, type = 503, "DB_001", "service_unavailable"
    default_detail = "Database unavailable"


class NotFound(CallcenterError):
    status, code, type = 404, "DB_002", "not_found"
    default_detail = "Record not found"


class InvalidData(CallcenterError):
    status, code, type = 422, "DB_003", "validation_error"
    default_detail = "Invalid data"


class Conflict(CallcenterError):
    status, code, type = 409, "DB_004", "conflict"
    default_detail = "Uniqueness violation"


# --- HTTP plumbing -------------------------------------------------------------------------
class UnsupportedMediaType(CallcenterError):
    status, code, type = 415, "UNSUPPORTED_MEDIA_TYPE", "unsupported_media_type"
    default_detail = "Send the request body as JSON: 'Content-Type: application/json'"


class RateLimited(CallcenterError):
    status, code, type = 429, "RATE_LIMIT", "rate_limit_error"
    default_detail = "Too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests; retry in {retry_after} s")
        self.retry_after = retry_after


# --- hold and transfers (issue 11, parts 1-2) ----------------------------------------------
class CallNotAnswered(CallcenterError):
    status, code, type = 409, "CALL_001", "conflict"
    default_detail = "The call is not answered by an operator (waiting, ringing or over)"


class CallAlreadyHeld(CallcenterError):
    status, code, type = 409, "CALL_002", "conflict"
    default_detail = "The call is already on hold"


class CallNotHeld(CallcenterError):
    status, code, type = 409, "CALL_003", "conflict"
    default_detail = "The call is not on hold"


class TransferInProgress(CallcenterError):
    status, code, type = 409, "CALL_004", "conflict"
    default_detail = "A transfer of this call is under way: complete or cancel it first"


class NoTransferInProgress(CallcenterError):
    status, code, type = 409, "CALL_005", "conflict"
    default_detail = "The call has no attended transfer under way"


class TransferTargetNotAnswered(CallcenterError):
    status, code, type = 409, "CALL_006", "conflict"
    default_detail = "The transfer target has not answered yet: cancel, or wait"


class TransferTargetOffline(CallcenterError):
    status, code, type = 409, "CALL_007", "conflict"
    default_detail = "The target operator is offline"


class TransferTargetBusy(CallcenterError):
    status, code, type = 409, "CALL_008", "conflict"
    default_detail = (
        "The target operator is not available (on a call, ringing, paused or in wrap-up)"
    )


class TransferToSelf(CallcenterError):
    status, code, type = 422, "CALL_009", "validation_error"
    default_detail = "A call cannot be transferred to the operator who has it"


class TransferTargetUnknown(CallcenterError):
    status, code, type = 422, "CALL_010", "validation_error"
    default_detail = "No such transfer target"


class TransferNotSupported(CallcenterError):
    status, code, type = 422, "CALL_011", "validation_error"
    default_detail = "This kind of transfer is not available"


# --- supervision (issue 11, part 3) ------------------------------------------------------------
class CallNotLive(CallcenterError):
    status, code, type = 409, "SUP_001", "conflict"
    default_detail = (
        "The call is not answered or no longer live: only a talking call can be supervised"
    )


class NoOwnPhone(CallcenterError):
    status, code, type = 422, "SUP_002", "validation_error"
    default_detail = (
        "You have no extension of your own to be rung on: an administrator sets it on your user"
        " (extension)"
    )


class SupervisionOver(CallcenterError):
    status, code, type = 409, "SUP_003", "conflict"
    default_detail = "The supervision session has ended"


class AlreadySupervising(CallcenterError):
    status, code, type = 409, "SUP_004", "conflict"
    default_detail = "You are supervising a call already: end that session or change its mode"


# --- the outbox and webhooks (issue 15) ----------------------------------------------------
class OutboxStateConflict(CallcenterError):
    status, code, type = 409, "OUTBOX_001", "conflict"
    default_detail = "The message's state does not allow this"


# --- start-up ------------------------------------------------------------------------------
class KeysMismatch(CallcenterError):
    status, code, type = 500, "CFG_001", "configuration_error"
    default_detail = "A key differs from the one this database was written with"
