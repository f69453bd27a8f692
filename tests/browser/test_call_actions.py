"""What is done to calls and operators from the board, in a real browser against the real
Asterisk with sipp phones and callers: an attended transfer completed from the board, hold and
resume by the call's own operator, a supervisor listening, switching to whisper and leaving,
and an operator pausing with a reason (and a supervisor setting them back online)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import BrowserContext, expect

from tests.browser.conftest import PASSWORD, Screenshots, create_user, online_operator
from tests.browser.pages import STEP_MS, open_board
from tests.e2e.daemon_process import ADMIN_PASSWORD, DaemonProcess
from tests.eventually import eventually
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, PhoneBehaviour
from tests.sandbox.phones import PhoneCallState

pytestmark = pytest.mark.e2e

TALKS_ON = PhoneBehaviour.answer(200)  # answers, then talks until the far end hangs up


def talking(calls: list[Any]) -> bool:
    return bool(calls) and calls[-1].state is PhoneCallState.TALKING


def ended(calls: list[Any]) -> bool:
    return bool(calls) and calls[-1].state is PhoneCallState.COMPLETED


async def call_id_of(row: Any) -> str:
    await expect(row).to_be_visible(timeout=STEP_MS)
    found = await row.get_attribute("data-call-id")
    assert found
    return found


async def timeline_has(daemon: DaemonProcess, call_id: str, kind: str) -> None:
    async def present() -> None:
        record = await daemon.api("GET", f"/api/calls/{call_id}")
        assert kind in [event["kind"] for event in record["events"]]

    await eventually(present, within=20)


async def hang_up_caller(daemon: DaemonProcess, call_id: str) -> dict[str, Any]:
    record = await daemon.api("GET", f"/api/calls/{call_id}")
    await daemon.api("POST", f"/api/asterisk/channels/{record['channel_id']}/hangup")
    return await daemon.call_record(call_id, "completed", within=20)


async def group_with_operator(daemon: DaemonProcess, extension: str) -> tuple[str, str]:
    """Group Floor with operator `agent` (online, on `extension`) and queue support; answers
    (the group's id, the operator's id)."""
    group = await daemon.api("POST", "/api/admin/groups", {"name": "Floor"}, status=201)
    agent = await create_user(
        daemon, "agent", "operator", extension=extension, group_id=group["id"]
    )
    operator_id = await online_operator(daemon, agent)
    await daemon.queue("support", [extension])
    return group["id"], operator_id


async def test_an_attended_transfer_is_completed_from_the_board(
    daemon: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
    browser: BrowserContext,
    screenshots: Screenshots,
) -> None:
    # The target rings for 2 s before answering: the board shows the consultation ringing.
    phones = await operator_phones.start({"1005": TALKS_ON, "1006": PhoneBehaviour.answer(2000)})
    first, second = await daemon.operator("1005"), await daemon.operator("1006")
    await daemon.queue("support", ["1005"])
    board = await open_board(browser, daemon.base, "admin", ADMIN_PASSWORD)
    page = board.page

    await caller.dial(asterisk.queue_number("support"), caller_number="5556104")
    row = board.row("talking", "5556104")
    call_id = await call_id_of(row)
    await row.locator('[data-action="transfer"]').click()
    dialog = page.locator("dialog.dialog")
    attended = dialog.locator('select[name="mode"] option[value="attended"]')
    await expect(attended).to_be_disabled()  # a queue is chosen first: blind only
    await dialog.locator('select[name="target"]').select_option(f"operator:{second}")
    await expect(attended).to_be_enabled()
    await dialog.locator('select[name="mode"]').select_option("attended")
    await dialog.locator('[data-answer="ok"]').click()

    await expect(row).to_have_attribute("data-consulting", "true", timeout=STEP_MS)
    await expect(row.locator(".state")).to_contain_text("Operator 1006")
    await expect(row.locator('[data-action="transfer-complete"]')).to_be_visible()
    await expect(row.locator('[data-action="transfer-cancel"]')).to_be_visible()
    await expect(row.locator('[data-action="hold"]')).to_have_count(0)
    # The target's phone rings and answers; the daemon has the consultation answered.
    await phones["1006"].wait_for(talking, within=20)
    await timeline_has(daemon, call_id, "consult_answered")
    await screenshots.both_sizes(page, "board-attended-transfer-consulting")

    await row.locator('[data-action="transfer-complete"]').click()
    await expect(page.locator(".notice-error")).to_have_count(0)
    await expect(row).to_have_attribute("data-consulting", "false", timeout=STEP_MS)
    await expect(row.locator(".where")).to_have_text("Operator 1006", timeout=STEP_MS)
    await phones["1005"].wait_for(ended, within=20)  # the first operator was hung up
    await screenshots.both_sizes(page, "board-attended-transfer-completed")

    record = await hang_up_caller(daemon, call_id)
    assert record["operator_id"] == second
    legs = {leg["operator_id"]: leg for leg in record["legs"] if leg["answered_at"]}
    assert (legs[first]["outcome"], legs[second]["outcome"]) == ("transferred", "caller_hangup")
    kinds = [event["kind"] for event in record["events"]]
    assert [k for k in kinds if "transfer" in k or k == "consult_answered"] == [
        "transfer_started",
        "consult_answered",
        "transferred",
    ]
    await expect(row).to_have_count(0, timeout=STEP_MS)
    board.assert_clean()


async def test_the_operator_holds_and_resumes_their_call_from_the_board(
    daemon: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
    browser: BrowserContext,
    screenshots: Screenshots,
) -> None:
    await operator_phones.start({"1001": TALKS_ON})
    agent = await create_user(daemon, "agent", "operator", extension="1001")
    await online_operator(daemon, agent)
    await daemon.queue("support", ["1001"])
    board = await open_board(browser, daemon.base, "agent", PASSWORD)

    await caller.dial(asterisk.queue_number("support"), caller_number="5556201")
    row = board.row("talking", "5556201")
    call_id = await call_id_of(row)
    # Their own call: hold, but no supervision and no transfer (no targets for an operator).
    for absent in ("listen", "transfer"):
        await expect(row.locator(f'[data-action="{absent}"]')).to_have_count(0)
    await row.locator('[data-action="hold"]').click()
    await expect(row).to_have_attribute("data-held", "true", timeout=STEP_MS)
    await expect(row.locator(".state")).to_contain_text("на удержании")
    await expect(row.locator(".timer.hold")).to_be_visible()
    await expect(row.locator('[data-action="unhold"]')).to_be_visible()
    await screenshots.both_sizes(board.page, "board-call-on-hold")

    await row.locator('[data-action="unhold"]').click()
    await expect(row).to_have_attribute("data-held", "false", timeout=STEP_MS)
    await expect(row.locator('[data-action="hold"]')).to_be_visible()
    record = await hang_up_caller(daemon, call_id)
    assert record["hold_seconds"] > 0
    kinds = [event["kind"] for event in record["events"]]
    assert [k for k in kinds if k in ("held", "unheld")] == ["held", "unheld"]
    board.assert_clean()


async def test_a_supervisor_listens_switches_to_whisper_and_leaves(
    daemon: DaemonProcess,
    asterisk: AsteriskSandbox,
    operator_phones: OperatorPhones,
    caller: Callers,
    browser: BrowserContext,
    screenshots: Screenshots,
) -> None:
    phones = await operator_phones.start({"1001": TALKS_ON, "1010": PhoneBehaviour.answer(300)})
    group_id, _ = await group_with_operator(daemon, "1001")
    coach = await create_user(daemon, "coach", "supervisor", extension="1010", group_id=group_id)
    board = await open_board(browser, daemon.base, "coach", PASSWORD)

    await caller.dial(asterisk.queue_number("support"), caller_number="5557101")
    row = board.row("talking", "5557101")
    call_id = await call_id_of(row)
    await row.locator('[data-action="listen"]').click()
    # The supervisor's own phone rings and answers: the session is live, in listen mode.
    await phones["1010"].wait_for(talking, within=20)
    badge = row.locator("[data-session]")
    await expect(badge).to_have_attribute("data-state", "active", timeout=STEP_MS)
    await expect(badge).to_have_attribute("data-mode", "listen")
    await expect(row.locator('[data-action="listen"]')).to_have_count(0)
    await screenshots.both_sizes(board.page, "board-supervisor-listening")

    await row.locator('[data-action="mode-whisper"]').click()
    await expect(badge).to_have_attribute("data-mode", "whisper", timeout=STEP_MS)
    await expect(badge).to_have_attribute("data-state", "active")
    assert talking(phones["1010"].calls())  # one call all along: the phone stayed up
    await screenshots.both_sizes(board.page, "board-supervisor-whispering")

    await row.locator('[data-action="supervise-end"]').click()
    await expect(badge).to_have_count(0, timeout=STEP_MS)
    await expect(row.locator('[data-action="listen"]')).to_be_visible()
    await phones["1010"].wait_for(ended, within=20)
    [audit] = await daemon.api("GET", f"/api/calls/{call_id}/supervisions")
    assert audit["supervisor_id"] == coach["id"]
    assert [span["mode"] for span in audit["modes"]] == ["listen", "whisper"]
    assert (audit["state"], audit["end_reason"]) == ("ended", "ended_by_user")
    # The call itself goes on: the operator still talks with the caller.
    assert talking(phones["1001"].calls())
    await hang_up_caller(daemon, call_id)
    board.assert_clean()


async def test_an_operator_pauses_with_a_reason_and_a_supervisor_sets_them_back_online(
    daemon: DaemonProcess,
    operator_phones: OperatorPhones,
    browser: BrowserContext,
    screenshots: Screenshots,
) -> None:
    await operator_phones.start({"1001": TALKS_ON})  # reachable: shown online, not offline
    group_id, operator_id = await group_with_operator(daemon, "1001")
    await create_user(daemon, "coach", "supervisor", group_id=group_id)
    agent = await open_board(browser, daemon.base, "agent", PASSWORD)
    coach = await open_board(browser, daemon.base, "coach", PASSWORD)
    me = agent.section("me").locator(".me")
    await expect(me).to_have_attribute("data-status", "online")

    await me.locator('[data-action="set-status"]').click()
    dialog = agent.page.locator("dialog.dialog")
    reason = dialog.locator('select[name="reason"]')
    await expect(reason).to_be_disabled()  # a reason only for a pause
    await dialog.locator('select[name="status"]').select_option("busy")
    options = await reason.locator("option").evaluate_all("(all) => all.map((o) => o.value)")
    reasons = (await daemon.api("GET", "/api/operators/pause-reasons"))["reasons"]
    assert options == ["", *reasons]  # the configured list, and a pause without one
    await reason.select_option("lunch")
    await dialog.locator('[data-answer="ok"]').click()

    await expect(me).to_have_attribute("data-status", "busy", timeout=STEP_MS)
    await expect(me).to_have_attribute("data-reason", "lunch")
    await expect(me.locator(".me-reason")).to_have_text("обед")
    [listed] = await daemon.api("GET", "/api/operators/")
    # Chosen as paused with the reason; shown as busy (not rung).
    assert (listed["presence"], listed["presence_reason"], listed["status"]) == (
        "paused",
        "lunch",
        "busy",
    )
    # The supervisor's board shows it live.
    coach_row = coach.section("operators").locator(f'tr[data-operator-id="{operator_id}"]')
    await expect(coach_row).to_have_attribute("data-status", "busy", timeout=STEP_MS)
    await expect(coach_row).to_contain_text("обед")
    await screenshots.both_sizes(agent.page, "board-operator-paused")
    await screenshots.both_sizes(coach.page, "board-supervisor-sees-pause")

    # In English, then back in Russian.
    await agent.page.locator('.topbar [data-lang="en"]').click()
    await expect(agent.section("me").locator("h2")).to_have_text("My status")
    await expect(me.locator(".me-reason")).to_have_text("lunch")
    await screenshots.both_sizes(agent.page, "board-operator-paused-english")
    await agent.page.locator('.topbar [data-lang="ru"]').click()
    await expect(agent.section("me").locator("h2")).to_have_text("Мой статус")
    await expect(me.locator(".me-reason")).to_have_text("обед")

    # The supervisor sets their operator back online from the board.
    await coach.page.bring_to_front()
    await coach_row.locator('[data-action="set-status"]').click()
    await coach.page.locator('dialog.dialog select[name="status"]').select_option("online")
    await coach.page.locator('dialog.dialog [data-answer="ok"]').click()
    await expect(coach_row).to_have_attribute("data-status", "online", timeout=STEP_MS)
    await expect(me).to_have_attribute("data-status", "online", timeout=STEP_MS)
    [listed] = await daemon.api("GET", "/api/operators/")
    assert (listed["presence"], listed["presence_reason"]) == ("online", None)
    agent.assert_clean()
    coach.assert_clean()
