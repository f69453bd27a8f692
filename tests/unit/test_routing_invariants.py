"""Seeded random event streams against the engine's invariants, checked after every step.

The tables pin behaviour down case by case; this walks thousands of interleavings nobody
wrote down (answers racing cancels, operators vanishing mid-ring, overflow chains, late
and duplicate events) and checks what must always hold:

* an operator never rings or talks beyond max_concurrent_calls; a call never rings the
  same operator twice at once; only free, eligible members are rung;
* a call is connected at most once and ends exactly once; nothing is said about it after;
* no queue is left with a ready caller and an untried free member (the assignment ran);
* the engine's indexes agree with a recomputation from scratch;
* every timer due by `now` has fired; `next_deadline()` is in the future.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.commands import Command
from callcenterd.domain.queues import OverflowAction, Presence, QueueConfig, Strategy
from callcenterd.routing import EngineSettings, RoutingEngine
from callcenterd.routing.state import CallPhase
from callcenterd.routing.strategies import has_untried, sort_key
from tests.unit.routing_table import op, queue

OPERATORS = [f"o{i}" for i in range(8)]
SKILLS = ["en", "fr", "de"]


def population(rng: random.Random) -> tuple[list[QueueConfig], list[ev.OperatorUpserted]]:
    queues: list[QueueConfig] = []
    for index in range(5):
        members: list[str | tuple[str, int]] = [
            (name, rng.choice([0, 0, 1, 2])) for name in rng.sample(OPERATORS, rng.randint(0, 5))
        ]
        skills = frozenset(rng.sample(SKILLS, rng.choice([0, 0, 1])))
        action = rng.choice(list(OverflowAction))
        queues.append(
            queue(
                f"q{index}",
                *members,
                strategy=rng.choice(list(Strategy)),
                priority=rng.randint(1, 3),
                required_skills=skills,
                max_wait_time=rng.choice([None, 0, 20.0, 60.0]),
                ring_timeout=rng.choice([5.0, 10.0]),
                retry_delay=rng.choice([0.0, 2.0]),
                wrapup_seconds=rng.choice([0.0, 3.0]),
                join_empty=rng.random() < 0.7,
                overflow_action=action,
                overflow_queue_id=f"q{rng.randrange(5)}",
                is_default=index == 0,
                last_operator_wait=rng.choice([0.0, 0.0, 8.0]),
                announce_every=rng.choice([0.0, 0.0, 7.0]),
            )
        )
    operators = [
        ev.OperatorUpserted(
            op(
                name,
                *rng.sample(SKILLS, rng.randint(0, 2)),
                max_calls=rng.choice([1, 1, 2]),
                presence=rng.choice(list(Presence)),
            )
        )
        for name in OPERATORS
    ]
    return queues, operators


@dataclass
class World:
    """What a dispatcher would know: legs it was told to ring and has not seen end."""

    rng: random.Random
    engine: RoutingEngine
    now: float = 0.0
    calls: int = 0
    live_calls: set[str] = field(default_factory=set)
    ended_calls: set[str] = field(default_factory=set)
    ringing: dict[str, str] = field(default_factory=dict)  # leg -> call (per the commands)
    talking: dict[str, str] = field(default_factory=dict)
    old_legs: list[str] = field(default_factory=list)
    connected: set[str] = field(default_factory=set)

    def next_event(self) -> tuple[float, ev.Event]:
        rng = self.rng
        roll = rng.random()
        deadline = self.engine.next_deadline()
        if roll < 0.15 and deadline is not None:
            return deadline + rng.choice([0.0, 0.0, 0.5]), ev.Tick()
        now = self.now + rng.choice([0.0, 0.1, 1.0, 3.0])
        if roll < 0.30:
            self.calls += 1
            hint = rng.choice([None, "q1", "q2", "q3", "q4", "nope"])
            priority = rng.choice([0, 0, 0, 1, 5])
            last = rng.choice([None, None, *OPERATORS])
            arrived = ev.CallArrived(
                f"c{self.calls}", "555", queue_hint=hint, priority=priority, last_operator=last
            )
            return now, arrived
        if roll < 0.45 and self.ringing:
            return now, ev.LegAnswered(rng.choice(sorted(self.ringing)))
        if roll < 0.52 and self.ringing:
            leg = rng.choice(sorted(self.ringing))
            return now, ev.LegFailed(leg, rng.choice(list(ev.LegFailure)))
        if roll < 0.56 and self.ringing:
            return now, ev.LegHungUp(rng.choice(sorted(self.ringing)))
        if roll < 0.64 and self.talking:
            return now, ev.LegHungUp(rng.choice(sorted(self.talking)))
        if roll < 0.72 and self.live_calls:
            return now, ev.CallerHungUp(rng.choice(sorted(self.live_calls)))
        if roll < 0.82:
            name = rng.choice(OPERATORS)
            return now, ev.OperatorPresenceSet(name, rng.choice(list(Presence)), "why")
        if roll < 0.86:
            return now, ev.OperatorReachability(rng.choice(OPERATORS), rng.random() < 0.6)
        if roll < 0.89:
            name = rng.choice(OPERATORS)
            profile = self.engine.operators[name].profile if name in self.engine.operators else None
            skills = rng.sample(SKILLS, rng.randint(0, 2))
            presence = profile.presence if profile else Presence.ONLINE
            max_calls = profile.max_concurrent_calls if profile else 1
            return now, ev.OperatorUpserted(
                op(name, *skills, max_calls=max_calls, presence=presence)
            )
        if roll < 0.90:
            return now, ev.OperatorRemoved(rng.choice(OPERATORS))
        if roll < 0.95 and self.old_legs:
            # a late or duplicate report about a leg already over
            leg = rng.choice(self.old_legs)
            late: list[ev.Event] = [ev.LegAnswered(leg), ev.LegFailed(leg, ev.LegFailure.BUSY)]
            return now, rng.choice(late)
        return now, ev.Tick()

    def apply(self, event: ev.Event, out: list[Command]) -> None:
        """Follow the commands as a dispatcher (and Asterisk) would."""
        match event:
            case ev.LegAnswered(leg_id=leg) | ev.LegFailed(leg_id=leg) | ev.LegHungUp(leg_id=leg):
                if leg in self.ringing:
                    call = self.ringing.pop(leg)
                    if isinstance(event, ev.LegAnswered):
                        self.talking[leg] = call  # until the engine says otherwise
                    else:
                        self.old_legs.append(leg)
                elif leg in self.talking and isinstance(event, ev.LegHungUp):
                    self.talking.pop(leg)
                    self.old_legs.append(leg)
        for command in out:
            match command:
                case cmd.RingOperator(leg_id=leg, call_id=call):
                    assert leg not in self.ringing and leg not in self.old_legs, command
                    self.ringing[leg] = call
                case cmd.CancelLeg(leg_id=leg):
                    for table in (self.ringing, self.talking):
                        if table.pop(leg, None) is not None:
                            self.old_legs.append(leg)
                case cmd.ConnectCall(call_id=call, leg_id=leg):
                    assert call not in self.connected, f"{call} connected twice"
                    self.connected.add(call)
                    assert self.talking.get(leg) == call
                case cmd.CallQueued(call_id=call):
                    assert call not in self.ended_calls, command
                    self.live_calls.add(call)
                case cmd.CallEnded(call_id=call):
                    assert call not in self.ended_calls, f"{call} ended twice"
                    self.ended_calls.add(call)
                    self.live_calls.discard(call)
        # legs still "talking" here whose answer the engine refused were cancelled above
        for leg, call in list(self.talking.items()):
            if call in self.ended_calls:
                self.talking.pop(leg)
                self.old_legs.append(leg)


def check_invariants(engine: RoutingEngine, world: World, out: list[Command], now: float) -> None:
    rung_now = {c.operator_id for c in out if isinstance(c, cmd.RingOperator)}
    for command in out:
        if isinstance(command, cmd.RingOperator):
            call = engine.calls.get(command.call_id)
            if call is None or command.leg_id not in call.legs:
                continue  # rung and ended within the same step (e.g. went offline at once)
            operator = engine.operators[command.operator_id]
            assert command.operator_id in engine.queues[call.queue_id].members
            assert call.queue_id in operator.queues
        if isinstance(command, cmd.CallEnded | cmd.LegEnded | cmd.CancelLeg):
            pass
    for operator in engine.operators.values():
        load = len(operator.ringing) + len(operator.talking)
        if operator.id in rung_now:
            assert load <= operator.profile.max_concurrent_calls, operator
        if operator.profile.presence is not Presence.ONLINE or not operator.reachable:
            assert not (operator.id in rung_now and operator.ringing), operator
        assert operator.available == operator.is_available(now), operator
        assert operator.logged_in == operator.is_logged_in()
        for leg in operator.ringing:
            call = engine.calls[engine._legs[leg]]
            assert call.legs[leg] == operator.id
    legs_seen: dict[str, str] = {}
    for call in engine.calls.values():
        operators_ringing = list(call.legs.values())
        assert len(operators_ringing) == len(set(operators_ringing)), call
        for leg, operator_id in call.legs.items():
            assert engine._legs[leg] == call.id
            legs_seen[leg] = call.id
            if operator_id in engine.operators:
                assert leg in engine.operators[operator_id].ringing
        if call.phase is CallPhase.WAITING:
            assert call.id in engine.queues[call.queue_id].waiting
        else:
            assert not call.legs and call.connected_leg in engine._talking
    assert legs_seen == engine._legs
    # A caller kept for an operator is waiting, in that operator's list, and nowhere else.
    reserved = {
        (operator_id, call_id)
        for operator_id, calls in engine._reserved.items()
        for call_id in calls
    }
    kept = {(c.reserved_for, c.id) for c in engine.calls.values() if c.reserved_for is not None}
    assert reserved == kept
    for _, call_id in reserved:
        assert engine.calls[call_id].phase is CallPhase.WAITING
    # ...and an operator free for them is never left idle while they wait.
    for operator_id in engine._reserved:
        assert not engine.operators[operator_id].available, operator_id
    for queue_state in engine.queues.values():
        config = queue_state.config
        expected_members = {
            name: penalty
            for name, operator in engine.operators.items()
            if (penalty := engine._penalty(queue_state, operator)) is not None
        }
        assert queue_state.members == expected_members, config.id
        free = {name for name in expected_members if engine.operators[name].available}
        assert set(queue_state.available) == free, config.id
        keys = queue_state.available.keys
        assert keys == sorted(keys)
        assert keys == sorted(sort_key(queue_state, name) for name in free), config.id
        logged = {name for name in expected_members if engine.operators[name].logged_in}
        assert queue_state.logged_in == logged
        head = queue_state.head_ready(engine.calls)
        if head is not None:
            assert not has_untried(queue_state, head.tried), (config.id, head)
        # The head is the best ready caller: highest priority, then earliest.
        ready = [
            c for c in map(engine.calls.get, queue_state.waiting) if c and c.is_ready(config.id)
        ]
        assert head == min(ready, key=lambda c: c.sort_key(), default=None), config.id
    deadline = engine.next_deadline()
    assert deadline is None or deadline > now


@pytest.mark.parametrize("seed", range(40))
def test_random_streams_keep_the_invariants(seed: int) -> None:
    rng = random.Random(seed)
    settings = EngineSettings(
        auto_answer_delay=rng.choice([0.0, 1.0]),
        max_call_duration=rng.choice([0.0, 30.0]),
        queue_timeout=rng.choice([0.0, 40.0]),
        autopause_after=rng.choice([0, 2]),
    )
    engine = RoutingEngine(settings, seed=seed)
    world = World(rng, engine)
    queues, operators = population(rng)
    for config in queues:
        engine.handle(ev.QueueUpserted(config), 0.0)
    for upsert in operators:
        engine.handle(upsert, 0.0)
    for _ in range(400):
        now, event = world.next_event()
        world.now = max(world.now, now)
        out = engine.handle(event, world.now)
        world.apply(event, out)
        check_invariants(engine, world, out, world.now)
    # Let everything drain: hang up every caller, then run the timers out.
    for call_id in sorted(world.live_calls):
        world.now += 1
        out = engine.handle(ev.CallerHungUp(call_id), world.now)
        world.apply(ev.CallerHungUp(call_id), out)
    assert world.live_calls == set()
    assert not engine.calls and not engine._legs and not engine._talking
