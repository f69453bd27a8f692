"""What can go wrong talking to Asterisk, in telephony's own terms.

No HTTP statuses and no API codes here: the services translate these into the API's errors
(callcenterd.services.asterisk_errors), once, where they know what the caller asked for.
"""

from __future__ import annotations


class TelephonyError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# --- ARI -------------------------------------------------------------------------------------
class AriError(TelephonyError):
    """Any failure of an ARI request or of the ARI link."""


class AriNotFound(AriError):
    """The channel, bridge, endpoint or recording is gone: the expected race with a far end
    that already hung up, which callers that do not care simply ignore."""


class AriRequestFailed(AriError):
    """Asterisk refused the request (a channel in the wrong state, a bad argument)."""


class AriUnavailable(AriError):
    """ARI cannot be reached: not connected, refused connection, not Asterisk answering."""


class AriTimeout(AriError):
    """No answer from ARI in time."""


class AriAuthFailed(AriError):
    """Asterisk refused the ARI credentials."""


# --- AMI -------------------------------------------------------------------------------------
class AmiError(TelephonyError):
    """Any failure of an AMI action or of the AMI link."""


class AmiUnavailable(AmiError):
    """The AMI link is not connected, or an action got no answer in time."""


class AmiAuthFailed(AmiError):
    """Asterisk refused the AMI login."""


class AmiActionFailed(AmiError):
    """Asterisk answered an action with an error (``Response: Error``)."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message
