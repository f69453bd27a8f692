"""The admin pages in a real browser, against the daemon on the real Asterisk: a queue created
in the pages is there through the API, the API's error is shown, the Asterisk connection test
answers; Russian by default, English on request and remembered; each role sees what it may do,
and logging out revokes the token."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import BrowserContext, expect

from tests.browser.conftest import PASSWORD, Screenshots, create_user
from tests.browser.pages import STEP_MS, Board, open_board
from tests.e2e.daemon_process import ADMIN_PASSWORD, DaemonProcess
from tests.eventually import eventually

pytestmark = pytest.mark.e2e


async def test_a_queue_created_in_the_admin_pages_is_in_the_api(
    daemon: DaemonProcess, browser: BrowserContext, screenshots: Screenshots
) -> None:
    await daemon.operator("1001")
    board = await open_board(browser, daemon.base, "admin", ADMIN_PASSWORD)
    page = board.page
    await board.open_page("queues")
    await page.locator('[data-action="new"]').click()
    form = page.locator(".form-panel form")
    await form.locator('[name="name"]').fill("Биллинг")
    await form.locator('[name="asterisk_name"]').fill("billing")
    await form.locator('[name="strategy"]').select_option("linear")
    await form.locator('[name="members"]').fill("1001")
    await form.locator('[name="required_skills"]').fill("billing, ru")
    await form.locator('[name="announce_every"]').fill("30")
    await form.locator('[name="announce_wait"]').check()
    await form.locator('[name="callback_enabled"]').select_option("true")
    await form.locator('[name="callback_offer_after"]').fill("45")
    await screenshots.both_sizes(page, "admin-queue-form")
    await form.locator('button[type="submit"]').click()
    await expect(page.locator("table.records tr", has_text="billing")).to_be_visible()

    [queue] = await daemon.api("GET", "/api/queues/")
    assert (queue["name"], queue["asterisk_name"], queue["strategy"]) == (
        "Биллинг",
        "billing",
        "linear",
    )
    assert queue["members"] == ["1001"] and queue["required_skills"] == ["billing", "ru"]
    assert (queue["announce_every"], queue["announce_wait"]) == (30, True)
    assert (queue["callback_enabled"], queue["callback_offer_after"]) == (True, 45)
    await screenshots.both_sizes(page, "admin-queues")

    # The same Asterisk name again: the API refuses, and its own words are shown.
    refused = await daemon.api(
        "POST", "/api/queues/", {"name": "Again", "asterisk_name": "billing"}, status=409
    )
    await page.locator('[data-action="new"]').click()
    await form.locator('[name="name"]').fill("Again")
    await form.locator('[name="asterisk_name"]').fill("billing")
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".form-error")).to_have_text(refused["detail"])
    assert len(await daemon.api("GET", "/api/queues/")) == 1
    board.assert_clean()


async def test_the_asterisk_connection_test_answers_in_the_settings(
    daemon: DaemonProcess, browser: BrowserContext, screenshots: Screenshots
) -> None:
    board = await open_board(browser, daemon.base, "admin", ADMIN_PASSWORD)
    await board.open_page("settings")
    await board.page.locator('[data-action="test-asterisk"]').click()
    result = board.page.locator('[data-result="asterisk-test"]')
    await expect(result).to_have_attribute("data-success", "true", timeout=STEP_MS)
    await screenshots.both_sizes(board.page, "admin-settings")
    board.assert_clean()


async def test_russian_by_default_english_on_request_and_remembered(
    daemon: DaemonProcess, browser: BrowserContext, screenshots: Screenshots
) -> None:
    await daemon.operator("1001")
    await daemon.queue("support", ["1001"])
    board = await open_board(browser, daemon.base, "admin", ADMIN_PASSWORD)
    page = board.page
    await expect(page.locator("html")).to_have_attribute("lang", "ru")
    await expect(board.nav("board")).to_have_text("Табло")
    await expect(page.locator('[data-kpi="calls"] .kpi-label')).to_have_text("Звонков")

    await page.locator('.topbar [data-lang="en"]').click()
    await expect(board.nav("board")).to_have_text("Wallboard")
    await expect(board.nav("users")).to_have_text("Users & operators")
    await expect(page.locator('[data-kpi="calls"] .kpi-label')).to_have_text("Calls")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await screenshots.both_sizes(page, "board-english")

    await page.reload()  # the language is remembered, and the session kept in this tab
    await expect(board.nav("board")).to_have_text("Wallboard", timeout=STEP_MS)
    await board.live()
    await page.locator('.topbar [data-lang="ru"]').click()
    await expect(board.nav("board")).to_have_text("Табло")
    board.assert_clean()


async def test_the_browser_enforces_the_pages_policy(
    daemon: DaemonProcess, browser: BrowserContext
) -> None:
    """An inline script (what an injected one would be) does not run, and is reported."""
    board = await open_board(browser, daemon.base, "admin", ADMIN_PASSWORD)
    await board.page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = true'; document.body.append(s); }"
    )
    assert await board.page.evaluate("window.injected === undefined") is True
    [refused] = await eventually(lambda: board.problems)
    assert "Content Security Policy" in refused


async def user(daemon: DaemonProcess, role: str, **extra: str) -> None:
    await create_user(daemon, role, role, **extra)


async def routes_shown(board: Board) -> list[str]:
    page = board.page
    return [await link.get_attribute("data-route") for link in await page.locator(".nav a").all()]


async def test_each_role_sees_what_it_may_do_and_logout_revokes_the_token(
    daemon: DaemonProcess, browser: BrowserContext, screenshots: Screenshots
) -> None:
    await user(daemon, "supervisor")
    await user(daemon, "operator", extension="1001")
    await daemon.queue("support", ["1001"])

    supervisor = await open_board(browser, daemon.base, "supervisor", PASSWORD)
    assert await routes_shown(supervisor) == ["board", "groups", "queues"]
    await expect(supervisor.kpi("calls")).to_be_visible()
    await supervisor.open_page("queues")
    await expect(supervisor.page.locator('[data-action="new"]')).to_have_count(0)
    await expect(supervisor.page.locator('[data-action="edit"]')).to_have_count(0)

    operator = await open_board(browser, daemon.base, "operator", PASSWORD)
    assert await routes_shown(operator) == ["board"]
    await expect(operator.section("waiting")).to_be_visible()
    await expect(operator.page.locator('[data-section="kpis"]')).to_have_count(0)
    await expect(operator.section("operators")).to_have_count(0)
    await screenshots.both_sizes(operator.page, "board-operator-role")

    token = await operator.page.evaluate("sessionStorage.getItem('callcenterd.token')")
    assert token
    await operator.page.locator('[data-action="logout"]').click()
    await expect(operator.page.locator("form.login")).to_be_visible()
    assert await operator.page.evaluate("sessionStorage.getItem('callcenterd.token')") is None
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{daemon.base}/api/auth/me", headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        assert response.status == 401
        assert (await response.json())["code"] == "AUTH_002"
    supervisor.assert_clean()
    operator.assert_clean()


async def test_a_group_and_a_user_created_in_the_admin_pages_are_in_the_api(
    daemon: DaemonProcess, browser: BrowserContext, screenshots: Screenshots
) -> None:
    board = await open_board(browser, daemon.base, "admin", ADMIN_PASSWORD)
    page = board.page
    await board.open_page("groups")
    await page.locator('[data-action="new"]').click()
    form = page.locator(".form-panel form")
    await form.locator('[name="name"]').fill("Смена А")
    await form.locator('[name="description"]').fill("Утренняя смена")
    await form.locator('button[type="submit"]').click()
    await expect(page.locator("table.records tr", has_text="Смена А")).to_be_visible()
    [group] = await daemon.api("GET", "/api/admin/groups")
    assert (group["name"], group["description"]) == ("Смена А", "Утренняя смена")
    await screenshots.both_sizes(page, "admin-groups")

    await board.open_page("users")
    await page.locator('[data-action="new"]').click()
    await form.locator('[name="username"]').fill("ivanova")
    await form.locator('[name="name"]').fill("Мария Иванова")
    await form.locator('[name="email"]').fill("ivanova@example.com")
    await form.locator('[name="password"]').fill(PASSWORD)
    await form.locator('[name="role"]').select_option("operator")
    await form.locator('[name="group_id"]').select_option(group["id"])
    await form.locator('[name="extension"]').fill("1003")
    await form.locator('[name="skills"]').fill("ru, billing")
    await screenshots.both_sizes(page, "admin-user-form")
    await form.locator('button[type="submit"]').click()
    row = page.locator("table.records tr", has_text="ivanova")
    await expect(row).to_contain_text("Смена А")
    await screenshots.both_sizes(page, "admin-users")

    users = await daemon.api("GET", "/api/admin/users")
    [created] = [found for found in users if found["username"] == "ivanova"]
    assert (created["name"], created["role"], created["group_id"]) == (
        "Мария Иванова",
        "operator",
        group["id"],
    )
    assert created["extension"] == "1003"
    operator = await daemon.api("GET", f"/api/admin/users/{created['id']}/operator")
    assert sorted(operator["skills"]) == ["billing", "ru"] and operator["group_id"] == group["id"]
    # The new user logs in with the password set in the page.
    operator_board = await open_board(browser, daemon.base, "ivanova", PASSWORD)
    await expect(operator_board.section("me")).to_contain_text("1003")
    board.assert_clean()
    operator_board.assert_clean()


async def test_a_revoked_or_expired_session_says_so_instead_of_a_frozen_board(
    daemon: DaemonProcess, browser: BrowserContext, screenshots: Screenshots
) -> None:
    """The API has no refresh endpoint: when the token stops working (expired, or revoked as
    here) the board is replaced by a screen that says so, and logging in again brings it back."""
    board = await open_board(browser, daemon.base, "admin", ADMIN_PASSWORD)
    page = board.page
    token = await page.evaluate("sessionStorage.getItem('callcenterd.token')")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{daemon.base}/api/auth/logout", headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        assert response.status == 200
    expired = page.locator("form.login [data-expired]")
    await expect(expired).to_be_visible(timeout=STEP_MS)
    await expect(expired).to_contain_text("Сеанс истёк")
    await expect(page.locator(".topbar")).to_have_count(0)
    # The username is kept: only the password is asked for.
    await expect(page.locator('form.login input[name="username"]')).to_have_value("admin")
    await screenshots.both_sizes(page, "board-session-expired")

    await page.locator('form.login input[name="password"]').fill(ADMIN_PASSWORD)
    await page.locator('form.login button[type="submit"]').click()
    await board.live()
    await expect(page.locator("form.login")).to_have_count(0)
    board.assert_clean()
