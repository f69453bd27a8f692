"""Pause reasons: why a paused operator (the API's `busy`) is not offered calls.

The reasons people choose from are configured (SystemSettings.pause_reasons, edited by
admins); the system reasons are the daemon's own and can be neither configured nor chosen.
"""

from __future__ import annotations

# What a new installation offers; admins edit the list through /api/admin/settings.
DEFAULT_PAUSE_REASONS = ("lunch", "break", "training", "meeting", "after_call_work")
# Set by the routing engine after `autopause_after` rings in a row went unanswered.
AUTOPAUSE_REASON = "no_answer"
# A pause chosen without a reason is shown, counted and reported under this name.
UNSPECIFIED_PAUSE_REASON = "paused"
SYSTEM_PAUSE_REASONS = frozenset({AUTOPAUSE_REASON, UNSPECIFIED_PAUSE_REASON})
