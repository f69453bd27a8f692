"""The browser tests' fixtures: Debian's chromium driven by Playwright, against the real
sandbox Asterisk and the daemon run as a process, with sipp phones and callers.

Chromium comes from Debian's `chromium` package, installed here when missing (apt-get, root),
and is launched with `executable_path=/usr/bin/chromium`: Playwright never downloads a browser.
Without root (or without Playwright) the tests are skipped with a one-line reason, unless
CALLCENTERD_E2E=required (CI), which makes them fail.

The sandbox is the e2e suite's (the same provisioned instance): started here for this package
when it is not running, and stopped after it, so the e2e suite's own fixture finds it as it
expects.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from tests.e2e.conftest import (  # fixtures shared with the e2e suite
    REQUIRED_ENV,
    _provisioned,
    caller,
    operator_phones,
    sandbox_test_dir,
)
from tests.e2e.daemon_process import DaemonProcess
from tests.sandbox import AsteriskSandbox, ProvisioningError
from tests.sandbox.build import apt_install

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext

__all__ = ["caller", "operator_phones", "sandbox_test_dir"]

PASSWORD = "browser-pw"  # every user the browser tests create logs in with it
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WALL = {"width": 1920, "height": 1080}
LAPTOP = {"width": 1366, "height": 768}
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS_ENV = "CALLCENTERD_SCREENSHOTS"
# Resolves after the next two frames: the layout after a resize has been painted.
AFTER_LAYOUT = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRED_ENV) == "required":
        pytest.fail(f"browser tests required but unavailable: {reason}", pytrace=False)
    pytest.skip(f"browser unavailable: {reason}")


def ensure_chromium() -> Path:
    """Debian's chromium, installed through apt when it is missing."""
    if not CHROMIUM.exists():
        try:
            apt_install(["chromium"])
        except ProvisioningError as error:
            _unavailable(str(error))
        if not CHROMIUM.exists():
            _unavailable(f"apt-get installed chromium but {CHROMIUM} is not there")
    return CHROMIUM


@pytest.fixture(scope="session")
def chromium() -> Path:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    return ensure_chromium()


@pytest.fixture(scope="package")
def asterisk(request: pytest.FixtureRequest) -> Iterator[AsteriskSandbox]:
    sandbox = _provisioned(request.config)
    started_here = not sandbox.is_running
    if started_here:
        sandbox.start()
    yield sandbox
    if started_here:
        sandbox.stop()


@pytest.fixture
async def browser(chromium: Path, tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """One fresh Chromium (its own profile folder) per test, at the wall screen's size."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=WALL,
        )
        try:
            yield context
        finally:
            await context.close()


@pytest.fixture
async def daemon(
    asterisk: AsteriskSandbox, sandbox_test_dir: Path, tmp_path: Path
) -> AsyncIterator[DaemonProcess]:
    """The daemon as a process on the sandbox Asterisk (a module may define its own)."""
    running = DaemonProcess(asterisk, tmp_path / "state", sandbox_test_dir / "daemon.log")
    await running.start()
    yield running
    await running.close()


async def create_user(
    daemon: DaemonProcess, username: str, role: str, **extra: str
) -> dict[str, Any]:
    """A user who logs in with PASSWORD (`extra`: extension, group_id...)."""
    created: dict[str, Any] = await daemon.api(
        "POST",
        "/api/admin/users",
        {
            "username": username,
            "email": f"{username}@example.com",
            "name": f"{username.title()} Browser",
            "password": PASSWORD,
            "role": role,
            **extra,
        },
        status=201,
    )
    return created


async def online_operator(daemon: DaemonProcess, user: dict[str, Any]) -> str:
    """The operator record of an operator user, set online; answers its id."""
    operator = await daemon.api("GET", f"/api/admin/users/{user['id']}/operator")
    await daemon.api("PUT", f"/api/operators/{operator['id']}/status", {"status": "online"})
    return str(operator["id"])


class Screenshots:
    """Where the tests save their screenshots; listed at the end of the run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.saved: list[Path] = []

    async def take(self, page: Any, name: str) -> Path:
        size = page.viewport_size
        path = self.folder / f"{name}-{size['width']}x{size['height']}.png"
        await page.screenshot(path=str(path))
        self.saved.append(path)
        return path

    async def both_sizes(self, page: Any, name: str) -> None:
        """The same screen on a wall screen and on a laptop (then back to the wall size)."""
        for size in (WALL, LAPTOP):
            await page.set_viewport_size(size)
            await page.evaluate(AFTER_LAYOUT)
            await self.take(page, name)
        await page.set_viewport_size(WALL)


_SCREENSHOTS = pytest.StashKey[Screenshots]()


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest) -> Screenshots:
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or REPO / "test-artifacts" / "screenshots")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    shots = Screenshots(folder)
    request.config.stash[_SCREENSHOTS] = shots
    return shots


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    shots = config.stash.get(_SCREENSHOTS, None)
    if shots is None or not shots.saved:
        return
    terminalreporter.write_line(f"browser screenshots ({len(shots.saved)}) in {shots.folder}:")
    for path in shots.saved:
        terminalreporter.write_line(f"  {path}")
