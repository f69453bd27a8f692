"""Fixtures for the e2e tests: a real Asterisk (one per session), operator phones and callers.

When the sandbox cannot be provisioned the e2e tests are skipped with the reason, unless
CALLCENTERD_E2E=required (CI sets it): then they fail with it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import pytest_asyncio

from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, ProvisioningError

REQUIRED_ENV = "CALLCENTERD_E2E"
_TEST_LOG_DIR = pytest.StashKey[Path]()
_TEST_FAILED = pytest.StashKey[bool]()


def _sandbox_unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRED_ENV) == "required":
        pytest.fail(f"Asterisk sandbox required but unavailable: {reason}", pytrace=False)
    pytest.skip(f"Asterisk sandbox unavailable: {reason}")


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
    try:
        sandbox = AsteriskSandbox.provision()
    except ProvisioningError as error:
        _sandbox_unavailable(str(error))
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
