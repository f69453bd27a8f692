"""The daemon's logging set-up: lines below the level cost nothing and are not written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from callcenterd.logs import MASK, configure_logging


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    """configure_logging at info, as JSON, written here; the global state put back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("json", "info")
    written = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(written)
    try:
        yield written
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)


def _lines(written: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in written.getvalue().splitlines()]


def test_lines_below_the_level_are_not_written(configured: io.StringIO) -> None:
    log = structlog.get_logger("callcenterd.http")
    log.debug("http_request", method="GET", status=200)
    log.info("http_request", method="POST", status=201, access_token="eyJ.secret")
    lines = _lines(configured)
    assert [(line["event"], line["level"], line["method"]) for line in lines] == [
        ("http_request", "info", "POST")
    ]
    assert lines[0]["access_token"] == MASK
    assert lines[0]["logger"] == "callcenterd.http"


def test_an_exception_is_written_with_its_traceback(
    configured: io.StringIO,
) -> None:
    log = structlog.get_logger("callcenterd.http")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("unhandled_error", path="/api/x")
    (line,) = _lines(configured)
    assert line["level"] == "error"
    assert "RuntimeError: boom" in str(line["exception"])


def test_other_libraries_lines_go_through_the_same_formatter(
    configured: io.StringIO,
) -> None:
    server = logging.getLogger("aiohttp.server")
    server.debug("not %s", "written")
    server.error("failed %s", "here")
    lines = _lines(configured)
    assert [(line["event"], line["level"]) for line in lines] == [("failed here", "error")]
