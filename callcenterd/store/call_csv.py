"""The call history as CSV lines, rendered by SQLite.

SQLite builds each line while the interpreter is released (as the JSON pages do), so a
long export costs the event loop only the joining of finished strings.

Rules of the file (RFC 4180, UTF-8, CRLF line ends):
- columns are the list items' fields (api CallItem), in the order of `CSV_COLUMNS`;
- text cells are always quoted, a `"` inside doubled; a missing value (NULL) is an empty,
  unquoted cell, so an empty text (`""`) stays distinguishable from no value;
- times are the stored ISO 8601 UTC text, e.g. `2026-03-01T09:30:00.000000Z`;
- spreadsheet formula injection: a text cell starting with `=`, `+`, `-`, `@`, a tab or a
  carriage return gets a leading `'`, so a spreadsheet shows it as text instead of running it
  (caller numbers like `+7900...` therefore read `'+7900...`).
"""

from __future__ import annotations

# Characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_STARTS_SQL = ", ".join(f"char({ord(ch)})" for ch in FORMULA_STARTS)


def _text(expression: str) -> str:
    """A quoted, injection-safe text cell; NULL: an empty cell."""
    defused = (
        f"CASE WHEN substr({expression}, 1, 1) IN ({_STARTS_SQL})"
        f" THEN '''' || {expression} ELSE {expression} END"
    )
    return (
        f"CASE WHEN {expression} IS NULL THEN ''"
        f" ELSE '\"' || replace({defused}, '\"', '\"\"') || '\"' END"
    )


def _number(expression: str) -> str:
    return f"COALESCE(CAST({expression} AS TEXT), '')"


def _time(expression: str) -> str:
    # Stored as ISO 8601 UTC text with 'Z' (domain.clock.to_iso): written as it is.
    return f"COALESCE({expression}, '')"


_RECORDING_URL = (
    "CASE WHEN c.recording IS NOT NULL AND c.recording != ''"
    " THEN '/api/calls/' || c.id || '/recording' END"
)

# (header, cell SQL) over the aliases of call_queries: c (calls), u (users), q (queues).
CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", _text("c.id")),
    ("channel_id", _text("c.channel_id")),
    ("caller_number", _text("c.caller_number")),
    ("called_number", _text("c.called_number")),
    ("operator_id", _text("c.operator_id")),
    ("operator_name", _text("u.name")),
    ("queue_id", _text("c.queue_id")),
    ("queue_name", _text("q.name")),
    ("status", _text("c.status")),
    ("reason", _text("c.reason")),
    ("start_time", _time("c.start_time")),
    ("answer_time", _time("c.answer_time")),
    ("end_time", _time("c.end_time")),
    ("duration", _number("c.duration")),
    ("wait_seconds", _number("c.wait_seconds")),
    ("recording_url", _text(_RECORDING_URL)),
    ("notes", _text("c.notes")),
    ("rating", _number("c.rating")),
    ("routed_by", _text("c.routed_by")),
    ("created_at", _time("c.created_at")),
)

CSV_HEADER = ",".join(name for name, _ in CSV_COLUMNS) + "\r\n"
# One whole CSV line (with its CRLF) per call.
CSV_LINE_SQL = " || ',' || ".join(f"({cell})" for _, cell in CSV_COLUMNS) + " || char(13, 10)"
