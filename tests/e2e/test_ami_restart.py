"""ARI down, AMI up, and Asterisk restarts: the AMI link reconnects and recording goes on.

As in test_ami_fallback: the daemon's ARI points at a closed port, so the dialplan falls back
to Asterisk's own `Queue()` and the daemon records the calls from AMI events (`routed_by` ami).

What drops the AMI session: `module reload manager` (and `manager reload`) does NOT, the TCP
session and its login survive and only a `Reload` event is sent (checked against the sandbox's
Asterisk). A restart does: Asterisk sends `Shutdown` and closes the socket. So the test
restarts Asterisk, from the test's own thread: the sandbox's Asterisk dies with the thread
that started it, so it must not be restarted from a worker thread (`asyncio.to_thread`). The
event loop is blocked meanwhile (about half a second), which the daemon must survive as well.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from callcenterd import keys
from tests.e2e.daemon import Daemon
from tests.e2e.daemon_process import OPEN_STATUSES, settled_calls
from tests.eventually import eventually
from tests.sandbox import AsteriskSandbox, Callers, OperatorPhones, PhoneBehaviour

pytestmark = [pytest.mark.e2e, pytest.mark.daemon("ami")]

RECONNECT_WITHIN = 5.0  # seconds from Asterisk being up again to `ami.state` connected


async def ami_health(daemon: Daemon) -> dict[str, Any]:
    """The AMI link as an admin sees it (/readyz shows anyone the state only)."""
    body: dict[str, Any] = await daemon.api("GET", "/api/admin/system/info")
    ami: dict[str, Any] = body["ami"]
    return ami


async def wait_ami_state(daemon: Daemon, state: str, within: float) -> float:
    """Seconds until the system info reports `ami.state` == state; fails with the last answer."""
    began = time.monotonic()

    async def in_state() -> None:
        ami = await ami_health(daemon)
        assert ami["state"] == state, f"ami.state not {state}: {ami}"

    await eventually(in_state, within)
    return time.monotonic() - began


async def wait_member_idle(
    asterisk: AsteriskSandbox, queue: str, interface: str, within: float = 60.0
) -> float:
    """Seconds until app_queue lists `interface` as "Not in use" in `queue`. After a restart
    the phone's contact is unknown until Asterisk qualifies it again, and until then Queue()
    does not ring it (seen: 10 to 20+ s); that is Asterisk's, not the daemon's."""
    began = time.monotonic()

    async def idle() -> None:
        lines = (await asterisk.cli_async(f"queue show {queue}")).splitlines()
        mine = [line for line in lines if interface in line]
        assert mine and "(Not in use)" in mine[0], f"{interface} not idle in {queue}: {mine}"

    await eventually(idle, within)
    return time.monotonic() - began


async def native_queue_call(
    daemon: Daemon, asterisk: AsteriskSandbox, caller: Callers, number: str
) -> dict[str, Any]:
    """One call into q3 answered by 1013; returns its record once completed."""
    call = await caller.dial(asterisk.queue_number("q3"), caller_number=number)
    started = await daemon.wait_for_event("call_started")
    ended = await daemon.wait_for_event("call_ended")
    outcome = await call.outcome(within=30)
    assert outcome.exit_code == 0 and outcome.answered, outcome
    assert ended["call_id"] == started["call_id"]
    record: dict[str, Any] = await daemon.call_record(started["call_id"], "completed")
    assert record["caller_number"] == number
    assert record["routed_by"] == "ami"
    assert record["reason"] == "operator_hangup"
    return record


# About 40 s on an idle machine, most of it Asterisk re-qualifying the phone after its restart
# (wait_member_idle allows 60 s for that alone): more than the default 120 s under load.
@pytest.mark.timeout(300)
async def test_ami_reconnects_after_asterisk_restart_and_keeps_recording(
    daemon: Daemon, asterisk: AsteriskSandbox, operator_phones: OperatorPhones, caller: Callers
) -> None:
    services = daemon.client.app[keys.SERVICES]
    phones = await operator_phones.start(
        {"1013": PhoneBehaviour.answer(300, hang_up_after_ms=1000)}
    )
    operator_id = await daemon.operator("1013")
    await daemon.queue("q3", ["1013"])
    assert (await ami_health(daemon))["state"] == "connected"
    generation = services.ami.generation

    before = await native_queue_call(daemon, asterisk, caller, "5550881")
    assert before["operator_id"] == operator_id

    # Blocking on purpose (see the module docstring): the sandbox dies with its thread.
    asterisk.restart()
    reconnected = await wait_ami_state(daemon, "connected", RECONNECT_WITHIN)
    assert services.ami.generation > generation, "the link never noticed the restart"
    assert (await ami_health(daemon))["asterisk_version"]
    qualified = await wait_member_idle(asterisk, "q3", "PJSIP/1013")

    after = await native_queue_call(daemon, asterisk, caller, "5550882")
    assert after["operator_id"] == operator_id
    assert after["id"] != before["id"]
    # Count only this test's callers: app_queue's `q3` is shared by the session, and a
    # caller left in it by an earlier test may still reach this phone.
    await phones["1013"].wait_for_calls(2)
    mine = [c for c in phones["1013"].calls() if c.caller_number in ("5550881", "5550882")]
    assert sorted(c.caller_number for c in mine) == ["5550881", "5550882"]

    # Exactly the two calls sipp placed, none left open.
    async def fetch() -> list[dict[str, Any]]:
        page = await daemon.api("GET", "/api/calls/?limit=1000")
        assert page["total"] == len(page["items"])
        items: list[dict[str, Any]] = page["items"]
        return items

    items = await settled_calls(fetch, expected=2, within=10)
    assert sorted(i["caller_number"] for i in items) == ["5550881", "5550882"]
    assert all(i["status"] == "completed" and i["routed_by"] == "ami" for i in items), items
    assert not [i for i in items if i["status"] in OPEN_STATUSES]
    print(
        f"AMI reconnected {reconnected:.2f} s after Asterisk was up again; "
        f"PJSIP/1013 idle in q3 again {qualified:.1f} s later"
    )
