"""Email notifications through the real app, received by a real SMTP server on 127.0.0.1.

The app runs in Europe/Moscow. The outbox worker is not part of these tests: `deliver`
stands in for it, sending each queued email through the daemon's own SMTP transport, so
what is asserted is what a mailbox receives. Calls are inserted as the recorder leaves them
(tests/api/routing_helpers.insert_call); the rollups' triggers count them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from callcenterd import keys
from callcenterd.analytics.periods import local_midnight
from callcenterd.domain.clock import from_iso
from callcenterd.domain.messages import CallFacts, MessageKind, QueuedMessage
from callcenterd.notify.email import SmtpTransport
from callcenterd.services.email_notifications import EmailNotifications, window_end
from callcenterd.store.analytics import AnalyticsStore
from callcenterd.store.notifications import NotificationDirectory
from callcenterd.store.outbox import enqueue_in
from tests.api.conftest import PASSWORD, Actor, ClientFactory
from tests.api.helpers import expect_error, query_db
from tests.api.routing_helpers import execute, insert_call
from tests.conftest import FakeClock, free_port
from tests.smtp_server import Certificate, SmtpServer, self_signed, smtp_server

TZ = ZoneInfo("Europe/Moscow")
SMTP_PASSWORD = "smtp-Secret-1"
MASK = "********"
HALF_HOUR = timedelta(minutes=30)


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[Any, Any]:
    return await make_client(timezone="Europe/Moscow")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def mail() -> Iterator[SmtpServer]:
    with smtp_server(username="mailer", password=SMTP_PASSWORD) as server:
        yield server


def email_service(client: TestClient[Any, Any]) -> EmailNotifications:
    return client.app[keys.SERVICES].email


def email_config(server: SmtpServer | None, **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port if server else free_port(),
        "security": "none",
        "username": "mailer",
        "password": SMTP_PASSWORD,
        "from_address": "callcenter@example.com",
        "timeout": 2,
    }
    return {**config, **changes}


async def configure(
    client: TestClient[Any, Any], admin: Actor, server: SmtpServer | None, **changes: Any
) -> dict[str, Any]:
    response = await client.put(
        "/api/admin/settings",
        json={"email_notifications": True, "email_config": email_config(server, **changes)},
        headers=admin.headers,
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def deliver(client: TestClient[Any, Any]) -> int:
    """The outbox worker's part: send each queued email once, with the daemon's transport."""
    email = email_service(client)
    transport = SmtpTransport(email.config)
    rows = query_db(client, "SELECT * FROM outbox WHERE kind = 'email' AND state = 'queued'")
    for row in rows:
        message = QueuedMessage(
            id=row["id"],
            kind=MessageKind.EMAIL,
            recipient=row["recipient"],
            idempotency_key=row["idempotency_key"],
            content=json.loads(row["content"]),
            topic=row["topic"],
            attempts=row["attempts"],
            created_at=from_iso(row["created_at"]),
        )
        await transport.send(message)
        execute(client, "UPDATE outbox SET state = 'sent' WHERE id = ?", (row["id"],))
    return len(rows)


async def make_queue(
    client: TestClient[Any, Any], admin: Actor, name: str, asterisk: str, members: list[str]
) -> str:
    response = await client.post(
        "/api/queues/",
        json={"name": name, "asterisk_name": asterisk, "members": members},
        headers=admin.headers,
    )
    assert response.status == 201, await response.text()
    queue_id: str = (await response.json())["id"]
    return queue_id


async def make_user(
    client: TestClient[Any, Any], admin: Actor, username: str, role: str, **extra: Any
) -> dict[str, Any]:
    body = {
        "username": username,
        "email": f"{username}@example.com",
        "name": username.title(),
        "password": PASSWORD,
        "role": role,
        **extra,
    }
    response = await client.post("/api/admin/users", json=body, headers=admin.headers)
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


@pytest.fixture
async def world(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    group: dict[str, Any],
    other_group: dict[str, Any],
) -> dict[str, str]:
    """Sales queue (member: the operator actor, of `group`, whose supervisor is
    supervisor1); Support queue (member: op_c of `other_group`, supervisor sup_c)."""
    admin = actors["admin"]
    await make_user(client, admin, "op_c", "operator", group_id=other_group["id"], extension="1003")
    await make_user(client, admin, "sup_c", "supervisor", group_id=other_group["id"])
    return {
        "sales": await make_queue(client, admin, "Sales", "sales", ["1001"]),
        "support": await make_queue(client, admin, "Support", "support", ["1003"]),
    }


# --- settings ----------------------------------------------------------------------------------
async def test_email_settings_have_defaults(client: TestClient[Any, Any], admin: Actor) -> None:
    body = await (await client.get("/api/admin/settings", headers=admin.headers)).json()
    assert body["email_notifications"] is False
    assert body["email_config"] == {
        "host": "",
        "port": 587,
        "security": "starttls",
        "verify_certificate": True,
        "username": "",
        "password": "",
        "from_address": None,
        "timeout": 15,
        "language": "ru",
        "supervisor_alerts": "immediate",
        "digest_interval_minutes": 30,
        "daily_report": True,
        "daily_report_time": "08:00",
        "daily_report_recipients": [],
        "admin_recipients": [],
    }


async def test_the_smtp_password_is_stored_encrypted_and_answered_masked(
    client: TestClient[Any, Any], admin: Actor, mail: SmtpServer
) -> None:
    saved = await configure(client, admin, mail)
    assert saved["email_config"]["password"] == MASK
    assert saved["asterisk_config"]["password"] == MASK  # the other secret still masked
    shown = await (await client.get("/api/admin/settings", headers=admin.headers)).text()
    assert SMTP_PASSWORD not in shown and MASK in shown
    [stored] = query_db(client, "SELECT data FROM system_settings")
    assert SMTP_PASSWORD not in stored["data"]
    data = json.loads(stored["data"])
    assert "password" not in data["email_config"]
    assert data["email_config"]["password_encrypted"]
    [audit] = query_db(
        client, "SELECT changes FROM audit_log WHERE entity = 'settings' ORDER BY id DESC LIMIT 1"
    )
    assert SMTP_PASSWORD not in audit["changes"]
    assert json.loads(audit["changes"])["email_config"]["password"] == "(changed)"
    # The daemon has it in clear; sending the mask back (or nothing) keeps it.
    assert email_service(client).config().password == SMTP_PASSWORD
    for kept in ({"password": MASK}, {"port": mail.port}):
        response = await client.put(
            "/api/admin/settings", json={"email_config": kept}, headers=admin.headers
        )
        assert response.status == 200
        assert email_service(client).config().password == SMTP_PASSWORD


async def test_changing_email_settings_keeps_the_others(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    await client.put("/api/admin/settings", json={"call_recording": True}, headers=admin.headers)
    response = await client.put(
        "/api/admin/settings",
        json={"email_config": {"language": "en", "daily_report_time": "07:30"}},
        headers=admin.headers,
    )
    body = await response.json()
    assert body["call_recording"] is True
    assert body["email_config"]["language"] == "en"
    assert body["email_config"]["daily_report_time"] == "07:30"
    assert body["email_config"]["security"] == "starttls"  # untouched


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"security": "ssl"}, "security"),
        ({"daily_report_time": "8:00"}, "daily_report_time"),
        ({"daily_report_time": "24:00"}, "daily_report_time"),
        ({"from_address": "not-an-address"}, "from_address"),
        ({"port": 0}, "port"),
        ({"host": None}, "host"),
        ({"host": "smtp example"}, "host"),
        ({"digest_interval_minutes": 1}, "digest_interval_minutes"),
        ({"supervisor_alerts": "sometimes"}, "supervisor_alerts"),
        (
            {"daily_report_recipients": ["a@example.com", "A@example.com"]},
            "daily_report_recipients",
        ),
        ({"admin_recipients": ["nobody"]}, "admin_recipients"),
        ({"timeout": 0}, "timeout"),
        ({"relay": "x"}, "relay"),
    ],
)
async def test_bad_email_settings_are_refused_naming_the_field(
    client: TestClient[Any, Any], admin: Actor, change: dict[str, Any], field: str
) -> None:
    response = await client.put(
        "/api/admin/settings", json={"email_config": change}, headers=admin.headers
    )
    body = await expect_error(response, 422, "DB_003")
    assert body["field"] == field


# --- the test endpoint -------------------------------------------------------------------------
async def email_test(
    client: TestClient[Any, Any], actor: Actor, to: str = "admin@example.com"
) -> dict[str, Any]:
    response = await client.post(
        "/api/admin/settings/email/test", json={"to": to}, headers=actor.headers
    )
    assert response.status == 200, await response.text()
    text = await response.text()
    assert SMTP_PASSWORD not in text
    body: dict[str, Any] = json.loads(text)
    return body


async def test_the_test_sends_a_mail_at_once(
    client: TestClient[Any, Any], admin: Actor, mail: SmtpServer
) -> None:
    await configure(client, admin, mail)
    body = await email_test(client, admin, "ops@example.com")
    assert body["success"] is True
    assert body["message"] == "Test email sent to ops@example.com"
    assert body["data"]["connection_details"]["status"] == "Sent"
    [got] = mail.mailbox.to("ops@example.com")
    assert got.subject == "Проверка почты callcenterd" and got.login == "mailer"
    assert query_db(client, "SELECT * FROM outbox") == []  # not through the outbox


async def test_the_test_says_email_is_not_configured(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    body = await email_test(client, admin)
    assert body["success"] is False
    assert body["data"]["code"] == "not_configured"
    assert body["message"].startswith("Email not configured:")


async def test_the_test_reports_a_wrong_password(
    client: TestClient[Any, Any], admin: Actor, mail: SmtpServer
) -> None:
    await configure(client, admin, mail, password="wrong-one")
    body = await email_test(client, admin)
    assert (body["success"], body["data"]["code"], body["data"]["smtp_code"]) == (
        False,
        "auth_failed",
        535,
    )
    assert body["message"].startswith("Authentication failed: authentication as 'mailer'")
    assert "wrong-one" not in json.dumps(body)
    assert body["data"]["troubleshooting"]


async def test_the_test_reports_a_refused_recipient(
    client: TestClient[Any, Any], admin: Actor, mail: SmtpServer
) -> None:
    mail.mailbox.refuse["ghost@example.com"] = "550 5.1.1 No such user"
    await configure(client, admin, mail)
    body = await email_test(client, admin, "ghost@example.com")
    assert (body["success"], body["data"]["code"]) == (False, "recipient_refused")
    assert "550 5.1.1 No such user" in body["message"]


async def test_the_test_reports_a_refused_connection(
    client: TestClient[Any, Any], admin: Actor
) -> None:
    await configure(client, admin, None)  # a closed port
    body = await email_test(client, admin)
    assert (body["success"], body["data"]["code"]) == (False, "connection_refused")
    assert body["message"].startswith("Connection refused: cannot connect to 127.0.0.1:")
    assert body["data"]["details"]["possible_causes"]


async def test_the_test_reports_an_untrusted_certificate(
    client: TestClient[Any, Any], admin: Actor, certificate: Certificate
) -> None:
    with smtp_server(security="starttls", certificate=certificate) as server:
        await configure(client, admin, server, security="starttls", username="", password="")
        body = await email_test(client, admin)
        assert (body["success"], body["data"]["code"]) == (False, "tls_failed")
        assert "certificate" in body["message"]
        # A private relay may be used without verification when the admin says so.
        await configure(
            client,
            admin,
            server,
            security="starttls",
            username="",
            password="",
            verify_certificate=False,
        )
        assert (await email_test(client, admin))["success"] is True
        [got] = server.mailbox.received
        assert got.tls is True


async def test_only_admins_may_send_a_test(
    client: TestClient[Any, Any], actors: dict[str, Actor], mail: SmtpServer
) -> None:
    await configure(client, actors["admin"], mail)
    for role in ("manager", "supervisor", "operator"):
        response = await client.post(
            "/api/admin/settings/email/test",
            json={"to": "x@example.com"},
            headers=actors[role].headers,
        )
        await expect_error(response, 403, "AUTH_003")
    response = await client.post("/api/admin/settings/email/test", json={"to": "x@example.com"})
    assert response.status == 401
    assert mail.mailbox.received == []


async def test_the_test_needs_an_address(client: TestClient[Any, Any], admin: Actor) -> None:
    for body in ({"to": "nobody"}, {}, {"to": "a@example.com", "cc": "b@example.com"}):
        response = await client.post(
            "/api/admin/settings/email/test", json=body, headers=admin.headers
        )
        await expect_error(response, 422, "DB_003")


# --- missed-call alerts (immediate) ------------------------------------------------------------
async def alert_for(
    client: TestClient[Any, Any], queue_id: str, caller: str, call_id: str, at: datetime
) -> int:
    """What the recorder does with a `call_ended` fact: the source's messages, enqueued in
    the fact's transaction."""
    email = email_service(client)
    event = {"call_id": call_id, "status": "missed", "reason": "abandoned", "duration": 0}
    facts = CallFacts(call_id, caller, "100", queue_id, "missed", "abandoned", {"wait_seconds": 37})
    messages = email.alerts.messages_for("call_ended", event, facts, at)
    async with client.app[keys.SERVICES].db.transaction() as conn:
        return await enqueue_in(conn, messages, at)


async def test_a_missed_call_alerts_the_queues_supervisors_at_once(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    group: dict[str, Any],
    world: dict[str, str],
    mail: SmtpServer,
    clock: FakeClock,
) -> None:
    await configure(client, actors["admin"], mail)
    assert await alert_for(client, world["sales"], "+79161234567", "call-1", clock()) == 1
    assert await alert_for(client, world["sales"], "+79161234567", "call-1", clock()) == 0  # again
    assert await deliver(client) == 1
    [got] = mail.mailbox.to("supervisor1@example.com")
    assert got.subject == "Пропущенный звонок от +79161234567 (Sales)"
    assert "Ожидание: 37 с" in got.text and "Причина: абонент не дождался ответа" in got.text
    assert "+79161234567" in got.html
    assert mail.mailbox.to("sup_c@example.com") == []  # another group's queue
    # A supervisor joining the group is told of the next one (users' changes refresh).
    await make_user(client, actors["admin"], "sup_new", "supervisor", group_id=group["id"])
    await alert_for(client, world["sales"], "+79160000000", "call-2", clock())
    await deliver(client)
    assert [m.subject for m in mail.mailbox.to("sup_new@example.com")] == [
        "Пропущенный звонок от +79160000000 (Sales)"
    ]


async def test_a_queue_created_after_the_settings_alerts_its_supervisors_at_once(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    world: dict[str, str],
    mail: SmtpServer,
    clock: FakeClock,
) -> None:
    await configure(client, actors["admin"], mail)
    # Queue changes refresh who supervises what: no waiting for the next tick.
    billing = await make_queue(client, actors["admin"], "Billing", "billing", ["1001"])
    assert await alert_for(client, billing, "+79161234567", "call-9", clock()) == 1
    await deliver(client)
    [got] = mail.mailbox.to("supervisor1@example.com")
    assert got.subject == "Пропущенный звонок от +79161234567 (Billing)"


async def test_no_immediate_alerts_in_digest_mode_or_with_email_off(
    client: TestClient[Any, Any], actors: dict[str, Actor], world: dict[str, str], clock: FakeClock
) -> None:
    await configure(client, actors["admin"], None, supervisor_alerts="digest")
    assert await alert_for(client, world["sales"], "+79161234567", "c1", clock()) == 0
    await configure(client, actors["admin"], None, supervisor_alerts="immediate")
    assert await alert_for(client, world["sales"], "+79161234567", "c2", clock()) == 1
    response = await client.put(
        "/api/admin/settings", json={"email_notifications": False}, headers=actors["admin"].headers
    )
    assert response.status == 200
    assert await alert_for(client, world["sales"], "+79161234567", "c3", clock()) == 0


# --- digest ------------------------------------------------------------------------------------
def restarted(client: TestClient[Any, Any], clock: FakeClock) -> EmailNotifications:
    """A new service over the same database: what a restarted daemon has."""
    services = client.app[keys.SERVICES]
    return EmailNotifications(
        services.db,
        NotificationDirectory(services.db),
        AnalyticsStore(services.db),
        lambda: services.analytics.thresholds,
        services.system_settings,
        SmtpTransport(email_service(client).config),
        clock,
        TZ,
    )


async def test_the_digest_lists_the_windows_missed_calls_in_one_mail(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    world: dict[str, str],
    mail: SmtpServer,
    clock: FakeClock,
) -> None:
    await configure(client, actors["admin"], mail, supervisor_alerts="digest")
    until = window_end(clock(), HALF_HOUR) + HALF_HOUR  # the window running now
    start = until - HALF_HOUR
    sales, support = world["sales"], world["support"]
    for minute, caller in ((2, "+79000000001"), (9, "+79000000002"), (20, "+79000000003")):
        insert_call(
            client,
            start + timedelta(minutes=minute),
            status="missed",
            reason="abandoned",
            queue_id=sales,
            wait=30,
            caller=caller,
        )
    insert_call(client, start + timedelta(minutes=5), status="missed", queue_id=support, wait=9)
    insert_call(client, start + timedelta(minutes=6), status="completed", queue_id=sales)
    email = email_service(client)
    await email.refresh()
    await email.run_digest(until + timedelta(seconds=5))
    await deliver(client)
    [got] = mail.mailbox.to("supervisor1@example.com")
    assert got.subject.startswith("Пропущенные звонки: 3 с ")
    for caller in ("+79000000001", "+79000000002", "+79000000003"):
        assert caller in got.text and caller in got.html
    assert got.text.index("+79000000001") < got.text.index("+79000000003")
    assert len(mail.mailbox.to("sup_c@example.com")) == 1  # Support's own, one call
    # A restart in the same window sends nothing again.
    again = restarted(client, clock)
    await again.refresh()
    assert await again.run_digest(until + timedelta(seconds=40)) == 0
    assert await deliver(client) == 0
    # The next window lists only its own calls.
    insert_call(
        client, until + timedelta(minutes=3), status="missed", queue_id=sales, caller="+79000000004"
    )
    await again.run_digest(until + HALF_HOUR + timedelta(seconds=5))
    await deliver(client)
    _, second = mail.mailbox.to("supervisor1@example.com")
    assert second.subject.startswith("Пропущенные звонки: 1 с ")
    assert "+79000000004" in second.text and "+79000000001" not in second.text


async def test_a_restart_reports_the_window_it_missed(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    world: dict[str, str],
    mail: SmtpServer,
    clock: FakeClock,
) -> None:
    await configure(client, actors["admin"], mail, supervisor_alerts="digest")
    until = window_end(clock(), HALF_HOUR) + HALF_HOUR
    email = email_service(client)
    await email.run_digest(until - timedelta(minutes=29))  # the previous window: nothing
    insert_call(
        client, until - timedelta(minutes=10), status="missed", queue_id=world["sales"], wait=20
    )
    # Down from before this window's end to two windows later.
    again = restarted(client, clock)
    await again.refresh()
    await again.run_digest(until + 2 * HALF_HOUR + timedelta(seconds=1))
    await deliver(client)
    [got] = mail.mailbox.to("supervisor1@example.com")
    assert got.subject.startswith("Пропущенные звонки: 1 с ")


# --- daily report ------------------------------------------------------------------------------
def row_of(text: str, name: str) -> list[str]:
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == name:
            return cells
    raise AssertionError(f"no row {name!r} in\n{text}")


@pytest.fixture
def yesterday(
    client: TestClient[Any, Any], world: dict[str, str], actors: dict[str, Actor], clock: FakeClock
) -> datetime:
    """Yesterday's calls (local midnight returned): Sales 6, Support 2, and one of today."""
    operator = query_db(
        client, "SELECT id FROM operators WHERE user_id = ?", (actors["operator"].user["id"],)
    )[0]["id"]
    today = clock().astimezone(TZ).date()
    midnight = local_midnight(today - timedelta(days=1), TZ)
    sales, support = world["sales"], world["support"]

    def at(hour: int, minute: int = 0) -> datetime:
        return midnight + timedelta(hours=hour, minutes=minute)

    insert_call(client, at(9), queue_id=sales, operator_id=operator, wait=10, talk=100)
    insert_call(client, at(9, 10), queue_id=sales, operator_id=operator, wait=30, talk=200)
    insert_call(client, at(9, 20), status="missed", reason="abandoned", queue_id=sales, wait=3)
    insert_call(client, at(9, 30), status="missed", reason="abandoned", queue_id=sales, wait=40)
    insert_call(client, at(10), status="missed", reason="timeout", queue_id=sales, wait=60)
    insert_call(client, at(23, 50), queue_id=sales, operator_id=operator, wait=15, talk=30)
    insert_call(client, at(11), queue_id=support, operator_id=operator, wait=5, talk=60)
    insert_call(client, at(12), status="missed", reason="no_operator", queue_id=support, wait=0)
    insert_call(client, at(24, 30), queue_id=sales, operator_id=operator, wait=5)  # today
    return midnight


async def test_the_daily_report_has_the_dashboards_figures(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    world: dict[str, str],
    yesterday: datetime,
    mail: SmtpServer,
    clock: FakeClock,
) -> None:
    await configure(client, actors["admin"], mail, daily_report_time="23:59")
    email = email_service(client)
    today = yesterday + timedelta(days=1)
    assert await email.run_daily_report(today + timedelta(hours=23, minutes=58)) == 0  # too early
    assert await email.run_daily_report(today + timedelta(hours=23, minutes=59, seconds=30)) == 1
    await deliver(client)
    [got] = mail.mailbox.to("manager1@example.com")
    day = yesterday.astimezone(TZ).date().isoformat()
    assert got.subject == f"Отчёт за {day}: 8 звонков, пропущено 4"
    assert f"Показатели очередей за {day} (часовой пояс Europe/Moscow)." in got.text
    for name in ("Sales", "Support"):
        response = await client.get(
            f"/api/queues/{world[name.lower()]}/stats?period=yesterday",
            headers=actors["manager"].headers,
        )
        stats = await response.json()
        cells = row_of(got.text, name)
        assert cells[1:] == [
            str(stats["calls_entered"]),
            str(stats["calls_answered"]),
            str(stats["calls_missed"]),
            str(stats["calls_abandoned"]),
            f"{stats['service_level']:.1f} %",
            str(stats["average_wait_time"]),
            str(stats["average_talk_time"]),
            f"{stats['abandon_rate']:.1f}",
            str(stats["max_wait_time"]),
        ], name
        assert name in got.html
    assert row_of(got.text, "Sales")[1:4] == ["6", "3", "3"]
    assert row_of(got.text, "Всего")[1:4] == ["8", "4", "4"]
    # Nobody else: managers only; a restart the same day does not send it again.
    assert mail.mailbox.to("admin@example.com") == []
    again = restarted(client, clock)
    await again.refresh()
    assert await again.run_daily_report(today + timedelta(hours=23, minutes=59, seconds=50)) == 0
    assert await deliver(client) == 0


async def test_a_report_missed_while_down_is_sent_at_start_to_the_chosen_recipients(
    client: TestClient[Any, Any],
    actors: dict[str, Actor],
    yesterday: datetime,
    mail: SmtpServer,
    clock: FakeClock,
) -> None:
    await configure(
        client,
        actors["admin"],
        mail,
        daily_report_time="00:05",
        language="en",
        daily_report_recipients=["boss@example.com"],
    )
    today = yesterday + timedelta(days=1)
    # The daemon starts at 23:00, long after the report time.
    again = restarted(client, clock)
    await again.refresh()
    assert await again.run_daily_report(today + timedelta(hours=23)) == 1
    await deliver(client)
    [got] = mail.mailbox.to("boss@example.com")
    assert got.subject.endswith(": 8 calls, 4 missed")
    assert row_of(got.text, "Total")[1:4] == ["8", "4", "4"]
    assert mail.mailbox.to("manager1@example.com") == []


async def test_no_report_when_switched_off(
    client: TestClient[Any, Any], actors: dict[str, Actor], yesterday: datetime
) -> None:
    await configure(client, actors["admin"], None, daily_report=False)
    late = yesterday + timedelta(days=1, hours=23, minutes=59, seconds=59)
    assert await email_service(client).run_daily_report(late) == 0


# --- outbox failures ---------------------------------------------------------------------------
async def test_a_final_outbox_failure_reaches_the_admins(
    client: TestClient[Any, Any], actors: dict[str, Actor], mail: SmtpServer, clock: FakeClock
) -> None:
    await configure(client, actors["admin"], mail)
    failed = QueuedMessage(
        id=41,
        kind=MessageKind.SMS,
        recipient="+79161234567",
        idempotency_key="sms:missed:call-9",
        content={"text": "Мы пропустили ваш звонок"},
        topic="missed_call",
        attempts=7,
        created_at=clock(),
    )
    messages = email_service(client).failures.messages_for_failure(failed, "HTTP 503 from gateway")
    async with client.app[keys.SERVICES].db.transaction() as conn:
        await enqueue_in(conn, messages, clock())
    await deliver(client)
    [got] = mail.mailbox.to("admin@example.com")
    assert got.subject == "Не доставлено сообщение #41 (sms для +79161234567)"
    assert "Ошибка: HTTP 503 from gateway" in got.text
    assert mail.mailbox.to("manager1@example.com") == []
