"""The wallboard in a real browser, against the real Asterisk: calls placed by sipp appear on
the board, are answered and end; the day's figures move; a missed call is called back from the
board and the operator's phone rings; the board rides out a daemon restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, expect

from tests.browser.conftest import Screenshots
from tests.browser.pages import STEP_MS, Board, open_board
from tests.e2e.daemon_process import ADMIN_PASSWORD, DaemonProcess
from tests.e2e.test_callbacks import CALLER_PHONE, callback_daemon
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, PhoneBehaviour

pytestmark = pytest.mark.e2e


@pytest.fixture
async def daemon(
    asterisk: AsteriskSandbox, sandbox_test_dir: Path, tmp_path: Path
) -> AsyncIterator[DaemonProcess]:
    """The daemon as a process (it can be restarted), dialing callbacks through 1020."""
    running = callback_daemon(asterisk, tmp_path, sandbox_test_dir)
    await running.start()
    yield running
    await running.close()


async def admin_board(browser: BrowserContext, daemon: DaemonProcess) -> Board:
    return await open_board(browser, daemon.base, "admin", ADMIN_PASSWORD)


async def test_a_call_appears_is_answered_and_ends_and_the_figures_change(
    daemon: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
    browser: BrowserContext,
    screenshots: Screenshots,
) -> None:
    # The phone rings 5 s before answering (the caller is seen waiting), talks 6 s.
    await operator_phones.start(
        {
            "1001": PhoneBehaviour.answer(5000, hang_up_after_ms=6000),
            "1002": PhoneBehaviour.answer(200),
        }
    )
    operator_id = await daemon.operator("1001")
    await daemon.operator("1002")
    await daemon.queue("support", ["1001"])
    await daemon.queue("sales", ["1002"])
    board = await admin_board(browser, daemon)
    await expect(board.kpi("calls")).to_have_text("0")
    await expect(board.section("queues").locator(".tile")).to_have_count(2)

    call = await caller.dial(asterisk.queue_number("support"), caller_number="5551001")
    waiting = board.row("waiting", "5551001")
    await expect(waiting).to_be_visible(timeout=STEP_MS)
    await expect(waiting.locator(".timer")).to_have_attribute("data-level", "green")
    await screenshots.both_sizes(board.page, "board-caller-waiting")

    talking = board.row("talking", "5551001")
    await expect(talking).to_be_visible(timeout=STEP_MS)
    await expect(waiting).to_have_count(0)
    # An admin gets the live actions on an answered call.
    for action in ("listen", "whisper", "barge", "transfer"):
        await expect(talking.locator(f'[data-action="{action}"]')).to_be_visible()
    operator_row = board.section("operators").locator(f'tr[data-operator-id="{operator_id}"]')
    await expect(operator_row).to_have_attribute("data-status", "busy")
    await screenshots.both_sizes(board.page, "board-call-answered")
    # The admin has no phone of their own: the API says so, and the board shows its words.
    await talking.locator('[data-action="listen"]').click()
    await expect(board.page.locator(".notice-error")).to_contain_text("extension")
    await talking.locator('[data-action="transfer"]').click()
    dialog = board.page.locator("dialog.dialog")
    # Two queues, the other operator, an external number.
    await expect(dialog.locator("select[name=target] option")).to_have_count(4)
    await dialog.locator('[data-answer="cancel"]').click()
    await expect(dialog).to_have_count(0)

    await expect(talking).to_have_count(0, timeout=STEP_MS)
    outcome = await call.outcome(within=30)
    assert outcome.answered
    await expect(operator_row).not_to_have_attribute("data-status", "busy", timeout=STEP_MS)
    await expect(board.kpi("calls")).to_have_text("1", timeout=STEP_MS)
    await expect(board.kpi("answered")).to_have_text("1", timeout=STEP_MS)
    await expect(board.kpi("missed")).to_have_text("0")
    await screenshots.both_sizes(board.page, "board-after-the-call")
    board.assert_clean()


async def test_call_back_on_a_missed_call_rings_the_operator(
    daemon: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
    browser: BrowserContext,
    screenshots: Screenshots,
) -> None:
    phones = await operator_phones.start(
        {
            "1001": PhoneBehaviour.answer(300, hang_up_after_ms=2000),
            CALLER_PHONE: PhoneBehaviour.answer(300),
        }
    )
    operator_id = await daemon.operator("1001")
    await daemon.api("PUT", f"/api/operators/{operator_id}/status", {"status": "offline"})
    await daemon.queue("support", ["1001"])
    board = await admin_board(browser, daemon)

    # Nobody is there: the caller waits, gives up, and the call is missed.
    call = await caller.dial(
        asterisk.queue_number("support"), caller_number="5559001", hang_up_after_ms=1500
    )
    await expect(board.row("waiting", "5559001")).to_be_visible(timeout=STEP_MS)
    await call.outcome(within=30)
    missed = board.row("missed", "5559001")
    await expect(missed).to_be_visible(timeout=STEP_MS)
    await expect(board.kpi("missed")).to_have_text("1", timeout=STEP_MS)
    await screenshots.both_sizes(board.page, "board-missed-call")
    assert phones["1001"].calls() == []

    # The operator is back; the supervisor presses "call back" on the missed call.
    await daemon.api("PUT", f"/api/operators/{operator_id}/status", {"status": "online"})
    await missed.locator('[data-action="callback"]').click()
    await expect(board.page.locator(".notice-ok")).to_contain_text("5559001")
    [operator_leg] = await phones["1001"].wait_for_calls(1, within=20)
    assert operator_leg.caller_number is not None
    [caller_leg] = await phones[CALLER_PHONE].wait_for_calls(1, within=20)
    assert operator_leg.answered and caller_leg.answered
    [callback] = (await daemon.api("GET", "/api/callbacks/"))["items"]
    assert callback["number"] == "5559001" and callback["origin_call_id"] is not None
    board.assert_clean()


async def test_the_board_follows_the_daemon_through_a_restart(
    daemon: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
    browser: BrowserContext,
) -> None:
    await operator_phones.start({"1001": PhoneBehaviour.answer(4000, hang_up_after_ms=1000)})
    await daemon.operator("1001")
    await daemon.queue("support", ["1001"])
    board = await admin_board(browser, daemon)
    await board.page.evaluate("window.sameDocument = true")

    await daemon.kill()
    await expect(board.page.locator("[data-live]")).to_have_attribute(
        "data-live", "offline", timeout=STEP_MS
    )
    await daemon.start()
    await board.live()
    # The same page (no reload), live again: a new call shows up.
    await caller.dial(asterisk.queue_number("support"), caller_number="5557001")
    await expect(board.row("waiting", "5557001")).to_be_visible(timeout=STEP_MS)
    await expect(board.row("talking", "5557001")).to_be_visible(timeout=STEP_MS)
    assert await board.page.evaluate("window.sameDocument") is True
    board.assert_clean()
