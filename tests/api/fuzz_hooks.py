"""schemathesis hooks for tests/api/test_fuzz.py, loaded by the `st` process (SCHEMATHESIS_HOOKS).

1. The run must not act on its own account: a new password or a deactivation revokes the very
   token it authenticates with (as it should), and every later case would be a 401 that tests
   nothing. FUZZ_OWN_USER_ID names that account; every other user is fair game.
2. Some rules cannot be written in an OpenAPI schema, so schemathesis generates requests that
   break them and calls the 422 a rejection of valid data (ST202). They are documented in each
   parameter's description and in the README; a 422 is dropped here only when every error in
   it is one of these, word for word, on its field. Any other 422 to valid data still fails,
   and schemathesis counts the dropped ones in its summary.
"""

from __future__ import annotations

import os
import re
from typing import Any

import schemathesis

OWN_USER_ID = os.environ["FUZZ_OWN_USER_ID"]

# (field, message) of the 422s no schema can prevent.
RULES_BEYOND_THE_SCHEMA = (
    # Two parameters together: a report covers at most analytics.max_range_days, and no
    # range ends before it starts.
    ("date_to", re.compile(r"the range may cover at most \d+ days")),
    ("date_to", re.compile(r"date_to must (be after|not be before) date_from")),
    # A reference to a stored record: the schema cannot know which ids exist.
    ("group_id", re.compile(r"no such group|group \S* does not exist")),
    ("queue_id", re.compile(r"queue \S* does not exist")),
    ("overflow_queue_id", re.compile(r"queue \S* does not exist")),
    ("members", re.compile(r"members\[\d+\]: no operator (has extension )?\S*")),
    # A pause reason is one of the list admins configure (SystemSettings.pause_reasons).
    ("reason", re.compile(r"not a configured pause reason \([^)]*\)")),
    # Two body fields together, where the other may be the stored one (a partial update).
    ("overflow_queue_id", re.compile(r"overflow_action 'queue' needs overflow_queue_id")),
    # An operator needs an extension (role and extension together; on an update the role
    # may be the stored one). Any other role may have one, or none.
    ("extension", re.compile(r"(Value error, )?extension is required for role 'operator'")),
    # A webhook's URL must name a host that resolves, and to a public address (the config
    # file may allow private ones): the schema cannot know what a name resolves to.
    ("url", re.compile(r"URL refused: .*")),
    # An SMS recipient is a plausible number under the configured numbering plan ([sms]).
    ("to", re.compile(r"not a number an SMS can go to: .*")),
)


@schemathesis.hook
def filter_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> bool:
    return (path_parameters or {}).get("user_id") != OWN_USER_ID


def _beyond_the_schema(error: Any) -> bool:
    if not isinstance(error, dict):
        return False
    field = (error.get("loc") or [None])[-1]
    message = str(error.get("msg", ""))
    return any(field == name and rule.fullmatch(message) for name, rule in RULES_BEYOND_THE_SCHEMA)


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """False (drop) only for a 422 to valid data whose every error is a rule listed above."""
    if getattr(failure, "code", None) != "ST202":  # positive_data_acceptance
        return True
    if response.status_code != 422:
        return True
    try:
        errors = response.json().get("detail")
    except ValueError:
        return True
    return not (isinstance(errors, list) and errors and all(map(_beyond_the_schema, errors)))
