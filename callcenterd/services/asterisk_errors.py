"""Telephony's failures as the API's errors: the one place they are translated.

Telephony's details name Asterisk's address and the socket's error ("Cannot connect to
127.0.0.1:8088 ... Connection refused"). Those are for admins (system info, the connection
test, the log), never in an answer to anyone else: unless `show_cause`, an unreachable,
timed-out or refusing Asterisk is answered with the error's fixed text and the cause is logged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import structlog

from callcenterd.errors import (
    AsteriskAuthFailed,
    AsteriskMisconfigured,
    AsteriskTimeout,
    AsteriskUnavailable,
    CallcenterError,
    ChannelNotFound,
)
from callcenterd.telephony.errors import (
    AmiActionFailed,
    AmiAuthFailed,
    AriAuthFailed,
    AriNotFound,
    AriRequestFailed,
    AriTimeout,
    TelephonyError,
)

log = structlog.get_logger(__name__)

ErrorFor = Callable[[str], CallcenterError]


def api_error(
    err: TelephonyError,
    *,
    not_found: ErrorFor = ChannelNotFound,
    refused: ErrorFor = AsteriskUnavailable,
    show_cause: bool = False,
) -> CallcenterError:
    """`not_found`: what a missing channel/recording means to the caller; `refused`: what
    Asterisk refusing the request means (a bad originate is a misconfiguration), with
    Asterisk's own answer; `show_cause`: the link's detail (address, socket error), for admins."""
    cause = err.detail if show_cause else None
    match err:
        case AriNotFound():
            return not_found(err.detail)
        case AriRequestFailed() | AmiActionFailed():
            return refused(err.detail)
        case AriTimeout():
            return AsteriskTimeout(cause)
        case AriAuthFailed() | AmiAuthFailed():
            return AsteriskAuthFailed(cause)
    return AsteriskUnavailable(cause)  # ARI or AMI unreachable


@contextlib.contextmanager
def as_api_errors(
    *, not_found: ErrorFor = ChannelNotFound, refused: ErrorFor = AsteriskUnavailable
) -> Iterator[None]:
    try:
        yield
    except TelephonyError as err:
        log.info("asterisk_request_failed", error=err.detail)  # the cause the answer omits
        raise api_error(err, not_found=not_found, refused=refused) from err


def misconfigured(detail: str) -> CallcenterError:
    return AsteriskMisconfigured(f"Asterisk refused: {detail}")
