"""GET /api/calls/export: the call history as a CSV file, streamed batch by batch.

Nothing is buffered beyond one batch: each is written as it comes, and `write` waits while
the client is slow to read, so a slow download slows only its own export.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import structlog
from aiohttp import web

from callcenterd import keys
from callcenterd.contract.routing import CallExportQuery
from callcenterd.errors import CallcenterError
from callcenterd.security import Principal

log = structlog.get_logger(__name__)

CSV_MEDIA_TYPE = "text/csv"
EXPORT_NOTE = (
    " Streams every matching call, newest first: the filters of GET /calls/ without paging."
    " UTF-8, CRLF lines, a header row of the list items' field names; times ISO 8601 UTC;"
    " text cells quoted, empty cell = no value; a text cell starting with = + - @ (or a tab"
    " or CR) is prefixed with ' against spreadsheet formula injection. `format`: only csv."
)


def export_filename(request: web.Request) -> str:
    """calls-<today in the configured time zone>.csv"""
    services = request.app[keys.SERVICES]
    today = services.clock().astimezone(services.settings.tz).date()
    return f"calls-{today.isoformat()}.csv"


async def stream_calls_csv(
    request: web.Request, query: CallExportQuery, user: Principal
) -> web.StreamResponse:
    batches = request.app[keys.SERVICES].calls.export_csv(query, user)
    # Fetched before the headers go out: a bad filter or a database error still answers
    # in the API's error shape, not as a cut-off file.
    first = await anext(batches)
    response = web.StreamResponse(
        headers={
            "Content-Type": f"{CSV_MEDIA_TYPE}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{export_filename(request)}"',
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        sent = await _write_all(response, first, batches)
    except ConnectionError:
        log.info("calls_export_abandoned", by=user.id)  # the client went away
        return response
    except CallcenterError as err:
        # The headers are out: the one honest signal left is a transfer cut off (no final
        # chunk), which clients report as an error instead of taking half a file as whole.
        log.error("calls_export_cut_off", error=err.detail, by=user.id)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    log.info("calls_exported", bytes=sent, by=user.id)
    return response


async def _write_all(
    response: web.StreamResponse, first: str, rest: AsyncGenerator[str, None]
) -> int:
    """Write every batch (the first starts with the header); return the bytes written."""
    sent = 0
    try:
        head = first.encode()
        await response.write(head)
        sent += len(head)
        async for lines in rest:
            chunk = lines.encode()
            await response.write(chunk)  # waits while the client's buffer is full
            sent += len(chunk)
    finally:
        await rest.aclose()  # a client gone mid-file: release the page slot at once
    return sent
