"""Table helpers for the routing engine's tests.

A test is a population (queues, operators) and a table of rows ``(now, event, expected)``:
`play` feeds each event to the engine at `now` and checks what came out against `expected`,
which is one of

* a list of commands: the output must be exactly that list (frozen dataclasses compare by value);
* ``Sub(*commands)``: these commands appear in this order, other commands may sit between;
* ``Rings(*operator_ids)``: the operators rung (RingOperator targets), exactly and in order;
* ``Has(*commands)`` / ``Lacks(*types_or_commands)``: present anywhere / absent;
* ``ANY``: no check (the step only moves the scenario on);
* a tuple of the above: all must hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.commands import CallOutcome, Command, EndReason
from callcenterd.domain.queues import Member, OperatorProfile, Presence, QueueConfig, Strategy
from callcenterd.domain.users import OperatorStatus
from callcenterd.routing import EngineSettings, RoutingEngine

CALLER = "5550100"
BUSY = OperatorStatus.BUSY
ONLINE = OperatorStatus.ONLINE
OFFLINE = OperatorStatus.OFFLINE


# --- population ---------------------------------------------------------------------------------
def ext(operator_id: str) -> str:
    return f"ext-{operator_id}"


def op(
    operator_id: str,
    *skills: str,
    max_calls: int = 1,
    presence: Presence = Presence.ONLINE,
) -> OperatorProfile:
    return OperatorProfile(
        operator_id, ext(operator_id), frozenset(skills), max_calls, presence, name=operator_id
    )


def queue(
    queue_id: str,
    *members: str | tuple[str, int],
    strategy: Strategy = Strategy.RINGALL,
    **options: Any,
) -> QueueConfig:
    """`members` are operator ids, or (operator id, penalty)."""
    declared = tuple(Member(m) if isinstance(m, str) else Member(*m) for m in members)
    options.setdefault("asterisk_name", queue_id)
    options.setdefault("name", queue_id)
    options.setdefault("max_wait_time", 600.0)
    return QueueConfig(queue_id, strategy=strategy, members=declared, **options)


def build(
    queues: Sequence[QueueConfig],
    operators: Sequence[OperatorProfile],
    *,
    settings: EngineSettings | None = None,
    seed: int = 0,
) -> RoutingEngine:
    """An engine with this population, set up at t=0; the set-up's own output is dropped."""
    engine = RoutingEngine(settings or EngineSettings(queue_timeout=600.0), seed=seed)
    for config in queues:
        engine.handle(ev.QueueUpserted(config), 0.0)
    for profile in operators:
        engine.handle(ev.OperatorUpserted(profile), 0.0)
    return engine


# --- events, briefly ----------------------------------------------------------------------------
def arrive(call_id: str, queue_id: str | None = None, called: str | None = None) -> ev.CallArrived:
    return ev.CallArrived(call_id, CALLER, called_number=called, queue_hint=queue_id)


def answer(leg_id: str) -> ev.LegAnswered:
    return ev.LegAnswered(leg_id)


def fail(leg_id: str, reason: ev.LegFailure = ev.LegFailure.BUSY) -> ev.LegFailed:
    return ev.LegFailed(leg_id, reason)


def caller_hangup(call_id: str) -> ev.CallerHungUp:
    return ev.CallerHungUp(call_id)


def leg_hangup(leg_id: str) -> ev.LegHungUp:
    return ev.LegHungUp(leg_id)


def presence(
    operator_id: str, value: Presence, reason: str | None = None
) -> ev.OperatorPresenceSet:
    return ev.OperatorPresenceSet(operator_id, value, reason)


TICK = ev.Tick()


# --- commands, briefly --------------------------------------------------------------------------
def ring(call_id: str, leg_no: int, operator_id: str, timeout: float = 15.0) -> cmd.RingOperator:
    return cmd.RingOperator(
        call_id, f"{call_id}-{leg_no}", operator_id, ext(operator_id), CALLER, timeout
    )


def queued(
    call_id: str, queue_id: str, position: int = 1, moved_from: str | None = None
) -> Command:
    return cmd.CallQueued(call_id, queue_id, position, moved_from)


def greeted(call_id: str, music: str = "default") -> list[Command]:
    """What a fresh call gets at once when there is no auto-answer delay."""
    return [cmd.AnswerCaller(call_id), cmd.HoldCaller(call_id, music)]


def cancel(call_id: str, leg_no: int) -> cmd.CancelLeg:
    return cmd.CancelLeg(call_id, f"{call_id}-{leg_no}")


def leg_ended(call_id: str, leg_no: int, operator_id: str, outcome: str) -> cmd.LegEnded:
    return cmd.LegEnded(call_id, f"{call_id}-{leg_no}", operator_id, outcome)


def connected(call_id: str, leg_no: int, operator_id: str, waited: float) -> list[Command]:
    leg = f"{call_id}-{leg_no}"
    return [
        cmd.ConnectCall(call_id, leg, operator_id),
        cmd.CallAnswered(call_id, leg, operator_id, waited),
    ]


# Shown details of a busy operator who is not paused; any other busy detail is a pause reason.
NOT_PAUSED_DETAILS = frozenset({"on_call", "wrapup"})


def status(
    operator_id: str,
    value: OperatorStatus,
    reason: str | None = None,
    pause_reason: str | None = None,
) -> Command:
    """A status change; a busy one whose detail is not a call's is a pause with that reason."""
    if pause_reason is None and value is OperatorStatus.BUSY and reason not in NOT_PAUSED_DETAILS:
        pause_reason = reason
    return cmd.OperatorStatusChanged(operator_id, value, reason, pause_reason)


def completed(
    call_id: str,
    reason: EndReason,
    queue_id: str,
    operator_id: str,
    wait: float,
    talk: float,
) -> cmd.CallEnded:
    return cmd.CallEnded(call_id, CallOutcome.COMPLETED, reason, queue_id, operator_id, wait, talk)


def missed(call_id: str, reason: EndReason, queue_id: str | None, wait: float) -> cmd.CallEnded:
    return cmd.CallEnded(call_id, CallOutcome.MISSED, reason, queue_id, None, wait, 0.0)


# --- expectations -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sub:
    """These commands, in this order, somewhere in the output."""

    commands: tuple[Command, ...]

    def __init__(self, *commands: Command) -> None:
        object.__setattr__(self, "commands", commands)


@dataclass(frozen=True)
class Has:
    """These commands anywhere in the output."""

    commands: tuple[Command, ...]

    def __init__(self, *commands: Command) -> None:
        object.__setattr__(self, "commands", commands)


@dataclass(frozen=True)
class Lacks:
    """No command of these types (or equal to these commands) in the output."""

    what: tuple[type | Command, ...]

    def __init__(self, *what: type | Command) -> None:
        object.__setattr__(self, "what", what)


@dataclass(frozen=True)
class Rings:
    """Exactly these operators are rung, in this order."""

    operators: tuple[str, ...]

    def __init__(self, *operators: str) -> None:
        object.__setattr__(self, "operators", operators)


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()
Expect = list[Command] | Sub | Has | Lacks | Rings | _Any | tuple[Any, ...]
Row = tuple[float, ev.Event, Expect]


def rung(out: Sequence[Command]) -> list[str]:
    return [c.operator_id for c in out if isinstance(c, cmd.RingOperator)]


def _is_subsequence(wanted: Sequence[Command], out: Sequence[Command]) -> bool:
    rest = iter(out)
    return all(any(have == want for have in rest) for want in wanted)


def check(expected: Expect, out: list[Command], where: str) -> None:
    shown = "\n    ".join(repr(c) for c in out) or "(nothing)"
    if isinstance(expected, tuple):
        for part in expected:
            check(part, out, where)
    elif isinstance(expected, list):
        assert out == expected, f"{where}: got\n    {shown}\nwanted\n    " + "\n    ".join(
            repr(c) for c in expected
        )
    elif isinstance(expected, Sub):
        assert _is_subsequence(expected.commands, out), (
            f"{where}: {expected.commands!r} not in order in\n    {shown}"
        )
    elif isinstance(expected, Has):
        missing = [c for c in expected.commands if c not in out]
        assert not missing, f"{where}: missing {missing!r} in\n    {shown}"
    elif isinstance(expected, Lacks):
        for what in expected.what:
            found = [
                c for c in out if (isinstance(c, what) if isinstance(what, type) else c == what)
            ]
            assert not found, f"{where}: unexpected {found!r} in\n    {shown}"
    elif isinstance(expected, Rings):
        assert rung(out) == list(expected.operators), (
            f"{where}: rang {rung(out)}, wanted {list(expected.operators)}; output\n    {shown}"
        )
    else:
        assert expected is ANY, f"{where}: unknown expectation {expected!r}"


def play(engine: RoutingEngine, rows: Sequence[Row]) -> list[list[Command]]:
    """Feed each row's event at its time and check the output; returns every step's output."""
    outputs: list[list[Command]] = []
    for index, (now, event, expected) in enumerate(rows, start=1):
        out = engine.handle(event, now)
        check(expected, out, f"row {index} (t={now}, {event!r})")
        outputs.append(out)
    return outputs
