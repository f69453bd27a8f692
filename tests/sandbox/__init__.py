"""A real Asterisk 22 with sipp phones and callers for the e2e tests (see README.md here)."""

from .build import ProvisioningError, RootfsRecipe
from .callers import BulkCallResult, CallerCall, CallerOutcome, Callers
from .config import SandboxSettings
from .instance import AsteriskSandbox
from .phones import OperatorPhone, OperatorPhones, PhoneBehaviour, PhoneCallState, ReceivedCall
from .sipp import Side, monotonic_from_wall

__all__ = [
    "AsteriskSandbox",
    "BulkCallResult",
    "CallerCall",
    "CallerOutcome",
    "Callers",
    "OperatorPhone",
    "OperatorPhones",
    "PhoneBehaviour",
    "PhoneCallState",
    "ProvisioningError",
    "ReceivedCall",
    "RootfsRecipe",
    "SandboxSettings",
    "Side",
    "monotonic_from_wall",
]
