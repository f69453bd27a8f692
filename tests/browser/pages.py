"""What a person does on the pages, for the browser tests: log in, find a row, read a figure.

Every wait is Playwright's `expect`: it retries until the page shows what is expected (or the
test's limit passes), never a fixed sleep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import BrowserContext, Locator, Page, expect

# Long enough for a call's next step on a loaded 2-core machine, and for the figures'
# refresh (at most every 10 s after a call ends, or every 30 s).
STEP_MS = 30_000


@dataclass
class Board:
    page: Page
    problems: list[str] = field(default_factory=list)  # script errors, CSP refusals

    def section(self, name: str) -> Locator:
        return self.page.locator(f'[data-section="{name}"]')

    def row(self, section: str, text: str) -> Locator:
        return self.section(section).locator("li.row", has_text=text)

    def kpi(self, name: str) -> Locator:
        return self.page.locator(f'[data-kpi="{name}"] .kpi-value')

    def nav(self, route: str) -> Locator:
        return self.page.locator(f'.nav a[data-route="{route}"]')

    async def live(self) -> None:
        await expect(self.page.locator("[data-live]")).to_have_attribute(
            "data-live", "live", timeout=STEP_MS
        )

    async def open_page(self, route: str) -> None:
        await self.nav(route).click()
        await expect(self.page.locator(f'[data-page="{route}"]')).to_be_visible()

    def assert_clean(self) -> None:
        assert self.problems == [], self.problems


async def open_board(browser: BrowserContext, base: str, username: str, password: str) -> Board:
    """A new tab on the daemon's `/`, logged in, the board live."""
    page = await browser.new_page()
    board = Board(page)

    def console(message: Any) -> None:
        # A refusal by the page's Content-Security-Policy is a console message, not an error.
        if "Content Security Policy" in message.text or message.text.startswith("Refused"):
            board.problems.append(message.text)

    page.on("pageerror", lambda error: board.problems.append(f"script error: {error}"))
    page.on("console", console)
    await page.goto(base + "/")
    await log_in(page, username, password)
    await board.live()
    return board


async def log_in(page: Page, username: str, password: str) -> None:
    form = page.locator("form.login")
    await form.locator('input[name="username"]').fill(username)
    await form.locator('input[name="password"]').fill(password)
    await form.locator('button[type="submit"]').click()
    await expect(page.locator(".topbar")).to_be_visible(timeout=STEP_MS)
