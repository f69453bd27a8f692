"""Telephony's failures as the API's errors: the one place they are translated."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

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

ErrorFor = Callable[[str], CallcenterError]


def api_error(
    err: TelephonyError,
    *,
    not_found: ErrorFor = ChannelNotFound,
    refused: ErrorFor = AsteriskUnavailable,
) -> CallcenterError:
    """`not_found`: what a missing channel/recording means to the caller; `refused`: what
    Asterisk refusing the request means (a bad originate is a misconfiguration)."""
    match err:
        case AriNotFound():
            return not_found(err.detail)
        case AriTimeout():
            return AsteriskTimeout(err.detail)
        case AriAuthFailed() | AmiAuthFailed():
            return AsteriskAuthFailed(err.detail)
        case AriRequestFailed() | AmiActionFailed():
            return refused(err.detail)
    return AsteriskUnavailable(err.detail)  # ARI or AMI unreachable


@contextlib.contextmanager
def as_api_errors(
    *, not_found: ErrorFor = ChannelNotFound, refused: ErrorFor = AsteriskUnavailable
) -> Iterator[None]:
    try:
        yield
    except TelephonyError as err:
        raise api_error(err, not_found=not_found, refused=refused) from err


def misconfigured(detail: str) -> CallcenterError:
    return AsteriskMisconfigured(f"Asterisk refused: {detail}")
