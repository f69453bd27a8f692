"""Every fixture of the e2e tests: a real Asterisk (one per session), operator phones and
callers, and the daemon under test, in process (`daemon`) or as a process (`proc`).

`daemon` routes calls through ARI; a module or test marked `@pytest.mark.daemon("ami")` gets
it with ARI on a closed port instead, so calls fall back to Asterisk's own Queue() and are
followed through AMI.

When the sandbox cannot be provisioned the e2e tests are skipped with the reason, unless
CALLCENTERD_E2E=required (CI sets it): then they fail with it. It is provisioned (its root
filesystem built, the first time: minutes) before the first test runs, so that no test's
timeout includes the build.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any, Literal, NoReturn

import pytest
import pytest_asyncio

from tests.e2e.daemon import Daemon, start_daemon
from tests.e2e.daemon_process import DaemonProcess
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, ProvisioningError

REQUIRED_ENV = "CALLCENTERD_E2E"
_TEST_LOG_DIR = pytest.StashKey[Path]()
_TEST_FAILED = pytest.StashKey[bool]()
_PROVISIONED = pytest.StashKey["AsteriskSandbox | ProvisioningError"]()


def _sandbox_unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRED_ENV) == "required":
        pytest.fail(f"Asterisk sandbox required but unavailable: {reason}", pytrace=False)
    pytest.skip(f"Asterisk sandbox unavailable: {reason}")


def _provisioned(config: pytest.Config) -> AsteriskSandbox:
    found = config.stash.get(_PROVISIONED, None)
    if found is None:
        try:
            found = AsteriskSandbox.provision()
        except ProvisioningError as error:
            found = error
        config.stash[_PROVISIONED] = found
    if isinstance(found, ProvisioningError):
        _sandbox_unavailable(str(found))
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any(item.get_closest_marker("e2e") for item in session.items):
        with contextlib.suppress(pytest.skip.Exception, pytest.fail.Exception):
            _provisioned(session.config)  # the tests that need it report the failure


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_TEST_FAILED] = True
        log_dir = item.stash.get(_TEST_LOG_DIR, None)
        if log_dir is not None:
            report.sections.append(("sandbox logs", f"kept in {log_dir}"))
    return report


@pytest.fixture(scope="session")
def asterisk(request: pytest.FixtureRequest) -> Iterator[AsteriskSandbox]:
    """The running sandbox: ari_url, ari_username/password/app, ami_*, sip_port, phone_ports."""
    sandbox = _provisioned(request.config)
    try:
        sandbox.start()
    except BaseException:
        sandbox.close(keep_run_dir=True)
        raise
    yield sandbox
    failed = request.session.testsfailed > 0
    sandbox.close(keep_run_dir=failed)
    if failed:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"Asterisk sandbox run folder kept: {sandbox.run_dir}")


@pytest.fixture
def sandbox_test_dir(asterisk: AsteriskSandbox, request: pytest.FixtureRequest) -> Iterator[Path]:
    """This test's sipp logs; deleted when the test passes. Hangs up every call afterwards."""
    if not asterisk.is_running:  # an earlier test stopped it
        asterisk.start()
    folder = asterisk.run_dir / "tests" / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    request.node.stash[_TEST_LOG_DIR] = folder
    yield folder
    asterisk.hangup_all()
    if not request.node.stash.get(_TEST_FAILED, False):
        shutil.rmtree(folder, ignore_errors=True)


@pytest_asyncio.fixture
async def operator_phones(
    asterisk: AsteriskSandbox, sandbox_test_dir: Path
) -> AsyncIterator[OperatorPhones]:
    """`await operator_phones.start({"1001": PhoneBehaviour.answer(300, 1000), ...})`."""
    phones = OperatorPhones(asterisk, sandbox_test_dir)
    yield phones
    await phones.stop_all()


@pytest_asyncio.fixture
async def caller(asterisk: AsteriskSandbox, sandbox_test_dir: Path) -> AsyncIterator[Callers]:
    """`call = await caller.dial(asterisk.queue_number("support"), "5551234")`."""
    callers = Callers(asterisk, sandbox_test_dir)
    yield callers
    await callers.stop_all()


@pytest.fixture
async def daemon(
    aiohttp_client: Any, tmp_path: Path, asterisk: AsteriskSandbox, request: pytest.FixtureRequest
) -> AsyncIterator[Daemon]:
    """A fresh in-process daemon (its own SQLite file) on the session's Asterisk."""
    marker = request.node.get_closest_marker("daemon")
    via: Literal["ari", "ami"] = marker.args[0] if marker is not None else "ari"
    running = await start_daemon(aiohttp_client, tmp_path / "state", asterisk, via)
    yield running
    running.events.close()


@pytest.fixture
async def proc(
    asterisk: AsteriskSandbox, sandbox_test_dir: Path, tmp_path: Path
) -> AsyncIterator[DaemonProcess]:
    """A daemon subprocess on this test's state folder; its log stays with the sipp logs."""
    daemon = DaemonProcess(asterisk, tmp_path / "state", sandbox_test_dir / "daemon.log")
    await daemon.start()
    yield daemon
    await daemon.close()
