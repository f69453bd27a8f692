"""A queues.conf fragment from the stored queues, so Asterisk's fallback routes like the daemon.

While ARI is down the dialplan runs ``Queue(${QUEUE})``: app_queue then needs one section per
queue, named by its ``asterisk_name``, with the same members, order, penalties and timings.
The engine's strategy names are app_queue's, so they are copied as they are. A skills-only
queue (required skills, no members) gets every routable operator having all the skills.
"""

from __future__ import annotations

from collections.abc import Sequence

from callcenterd.domain.queues import OperatorProfile
from callcenterd.store.db import Database
from callcenterd.store.operators import all_operator_profiles
from callcenterd.store.queues import QueueRepository, StoredQueue

# app_queue reads [general] as its own settings, never as a queue.
RESERVED_SECTIONS = frozenset({"general"})
# join_empty=False refuses callers when nobody is logged in: paused or unreachable members
# count as absent; busy (inuse, ringing, wrapup) ones are there.
_ABSENT = "paused,unavailable,invalid,unknown"

HEADER = """\
; queues.conf fragment written by `callcenterd asterisk export-queues`.
; Asterisk's own queues, used only while callcenterd is not connected to ARI: the dialplan's
; Queue(${QUEUE}) fallback. Regenerate after changing queues or operators in callcenterd, put it
; after the [general] section of queues.conf (or #include it there), then:
;   asterisk -rx "module reload app_queue.so"
"""


def _members(queue: StoredQueue, operators: Sequence[OperatorProfile]) -> list[tuple[str, int]]:
    """(extension, penalty) in the queue's member order."""
    if queue.members:
        ordered = sorted(queue.members, key=lambda m: (m.position, m.operator_id))
        return [(m.extension, m.penalty) for m in ordered]
    required = queue.config.required_skills
    if required:
        having = [op for op in operators if required <= op.skills]
        return [(op.extension, 0) for op in sorted(having, key=lambda op: op.extension)]
    return []


def _int(seconds: float) -> int:
    return max(0, round(seconds))


def render_queue(queue: StoredQueue, operators: Sequence[OperatorProfile]) -> str:
    config = queue.config
    empty_join = "yes" if config.join_empty else _ABSENT
    empty_leave = "no" if config.join_empty else _ABSENT
    lines = [
        f"; {config.name}" + (f": {queue.description}" if queue.description else ""),
        f"[{config.asterisk_name}]",
        f"strategy={config.strategy.value}",
        f"timeout={_int(config.ring_timeout)}",
        f"retry={_int(config.retry_delay)}",
        f"wrapuptime={_int(config.wrapup_seconds)}",
        "maxlen=0",
        f"joinempty={empty_join}",
        f"leaveempty={empty_leave}",
        f"weight={max(0, config.priority)}",
        "ringinuse=no",
        f"musicclass={config.music_class}",
    ]
    members = _members(queue, operators)
    if not members:
        lines.append("; no members: callers wait until someone is added")
    lines.extend(f"member => PJSIP/{extension},{penalty}" for extension, penalty in members)
    return "\n".join(lines) + "\n"


def render_queues_conf(queues: Sequence[StoredQueue], operators: Sequence[OperatorProfile]) -> str:
    sections = [HEADER]
    for queue in sorted(queues, key=lambda q: q.config.asterisk_name.lower()):
        name = queue.config.asterisk_name
        if name.lower() in RESERVED_SECTIONS:
            sections.append(
                f"; skipped queue {queue.config.name!r}: [{name}] is app_queue's settings"
                " section; give it another Asterisk name\n"
            )
            continue
        if not queue.config.is_active:
            sections.append(
                f"; skipped queue {queue.config.name!r} ([{name}]): inactive in callcenterd\n"
            )
            continue
        sections.append(render_queue(queue, operators))
    return "\n".join(sections)


async def export_queues(db: Database) -> str:
    return render_queues_conf(
        await QueueRepository(db).live_queues(), await all_operator_profiles(db)
    )
