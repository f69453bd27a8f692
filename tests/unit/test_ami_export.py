"""`callcenterd asterisk export-queues`: the queues.conf fragment Asterisk's fallback routes by."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenterd.cli import main
from callcenterd.domain.queues import Member, OperatorProfile, Presence, QueueConfig, Strategy
from callcenterd.domain.users import OperatorStatus
from callcenterd.services.queues_export import render_queue, render_queues_conf
from callcenterd.store.queues import QueueMember, StoredQueue

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def _member(operator_id: str, extension: str, penalty: int, position: int) -> QueueMember:
    return QueueMember(
        operator_id, extension, f"Op {extension}", penalty, position,
        OperatorStatus.ONLINE, Presence.ONLINE,
    )  # fmt: skip


def _queue(config: QueueConfig, members: tuple[QueueMember, ...] = ()) -> StoredQueue:
    return StoredQueue(config, "", members, NOW, NOW)


OPERATORS = [
    OperatorProfile("op-3", "1003", frozenset({"en", "billing"})),
    OperatorProfile("op-1", "1001", frozenset({"en"})),
    OperatorProfile("op-2", "1002", frozenset({"billing", "en", "de"})),
]


def test_a_queue_with_members_keeps_their_order_penalties_and_timings() -> None:
    queue = _queue(
        QueueConfig(
            id="q1",
            name="Support",
            asterisk_name="support",
            strategy=Strategy.LINEAR,
            priority=3,
            members=(Member("op-2", 2), Member("op-1", 0)),
            ring_timeout=20,
            retry_delay=4,
            wrapup_seconds=10,
            join_empty=True,
        ),
        # Stored order: 1002 first (position 0), then 1001.
        (_member("op-1", "1001", 0, 1), _member("op-2", "1002", 2, 0)),
    )
    assert render_queue(queue, OPERATORS).splitlines() == [
        "; Support",
        "[support]",
        "strategy=linear",
        "timeout=20",
        "retry=4",
        "wrapuptime=10",
        "maxlen=0",
        "joinempty=yes",
        "leaveempty=no",
        "weight=3",
        "ringinuse=no",
        "musicclass=default",
        "member => PJSIP/1002,2",
        "member => PJSIP/1001,0",
    ]


def test_a_skills_only_queue_gets_every_operator_having_all_the_skills() -> None:
    queue = _queue(
        QueueConfig(
            id="q2",
            name="Billing",
            asterisk_name="billing",
            strategy=Strategy.RRMEMORY,
            required_skills=frozenset({"billing", "en"}),
            join_empty=False,
        )
    )
    text = render_queue(queue, OPERATORS)
    assert "strategy=rrmemory" in text.splitlines()
    assert "joinempty=paused,unavailable,invalid,unknown" in text
    assert "leaveempty=paused,unavailable,invalid,unknown" in text
    members = [line for line in text.splitlines() if line.startswith("member")]
    assert members == ["member => PJSIP/1002,0", "member => PJSIP/1003,0"]


def test_every_strategy_name_is_app_queues() -> None:
    app_queue = {
        "ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered", "linear",
        "wrandom",
    }  # fmt: skip
    assert {s.value for s in Strategy} <= app_queue


def test_general_is_never_a_queue_section_and_inactive_queues_are_left_out() -> None:
    text = render_queues_conf(
        [
            _queue(QueueConfig(id="a", name="Odd", asterisk_name="General")),
            _queue(QueueConfig(id="b", name="Old", asterisk_name="old", is_active=False)),
            _queue(QueueConfig(id="c", name="Sales", asterisk_name="sales")),
        ],
        OPERATORS,
    )
    sections = [line for line in text.splitlines() if line.startswith("[")]
    assert sections == ["[sales]"]
    assert "skipped queue 'Odd'" in text
    assert "skipped queue 'Old'" in text
    assert "no members" in text


def test_the_command_writes_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTERD_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "state").mkdir()
    output = tmp_path / "queues-callcenterd.conf"
    assert main(["asterisk", "export-queues", "--output", str(output)]) == 0
    text = output.read_text()
    assert text.startswith("; queues.conf fragment written by `callcenterd asterisk export-queues`")
    assert "[" not in "".join(line for line in text.splitlines() if not line.startswith(";"))
