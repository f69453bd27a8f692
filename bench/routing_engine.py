"""The pure routing engine at contact-center scale: time per decision, and how it grows.

For n = 100, 1,000 and 10,000 operators (queues = n / 10) it builds a population:

* operators with 1-2 specific skills, a fifth of them also "general"; 10% take 2 calls;
* queues cycling through all eight strategies, priorities 1-5, each operator a member of
  3 random listed queues (penalty 0/1/2; a quarter of listed queues also require a skill),
  plus skills-only queues: one needs "general" (its membership grows with n, a fifth of
  everyone: the large queue a pick must not scan), the others one specific skill each;

then fills the queues until callers wait, one per queue on average (n / 10: 1,000 callers
at 10,000 operators; operators answer as they are rung, so most are busy), and runs a
seeded stream of events through ``RoutingEngine.handle``: arrivals (by Stasis argument or
dialed number), answers, leg failures, hang-ups by either side, abandons, presence and
reachability changes, and a ``Tick`` whenever a timer is due, the way the dispatcher drives
it. Arrivals are steered to hold the waiting count. Scaling the waiting callers with the
population keeps the load per queue the same at every size, so the growth figures compare
like with like; ``--waiting 1000`` holds 1,000 at every size instead (at n = 100 that is a
backlog of 100 per queue, where nearly every decision is "join the line").

Every ``handle`` call is one decision, timed with ``time.perf_counter_ns``. It prints p50 /
p99 / max per decision and per event type for each n, the time per command emitted (which
takes out ringall's cost of ringing or cancelling a whole tier at once), then the growth
p50(10k) / p50(100) next to the log n bound log2(10000) / log2(100) = 2.0.

    python bench/routing_engine.py [--quick] [--events N] [--waiting W] [--seed S] [--profile]

``--quick`` runs n = 100 and 1,000 with a shorter stream (a smoke run, seconds).
``--profile`` adds a cProfile of the largest run's stream (top functions by own time).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import math
import pstats
import random
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.queues import (
    Member,
    OperatorProfile,
    OverflowAction,
    Presence,
    QueueConfig,
    Strategy,
)
from callcenterd.routing import EngineSettings, RoutingEngine

STRATEGIES = list(Strategy)


class Bag:
    """A set with O(1) add, remove and uniform random choice (for the simulated dispatcher)."""

    def __init__(self) -> None:
        self._items: list[str] = []
        self._index: dict[str, int] = {}

    def add(self, item: str) -> None:
        if item not in self._index:
            self._index[item] = len(self._items)
            self._items.append(item)

    def discard(self, item: str) -> None:
        index = self._index.pop(item, None)
        if index is None:
            return
        last = self._items.pop()
        if index < len(self._items):
            self._items[index] = last
            self._index[last] = index

    def choice(self, rng: random.Random) -> str:
        return self._items[rng.randrange(len(self._items))]

    def __contains__(self, item: object) -> bool:
        return item in self._index

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))


@dataclass
class Population:
    queues: list[QueueConfig]
    operators: list[OperatorProfile]
    numbers: list[str]  # dialed numbers that land in some queue


def build_population(n: int, rng: random.Random) -> Population:
    queue_count = max(n // 10, 4)
    specific = [f"s{i}" for i in range(max(10, queue_count // 10))]
    operators = []
    for index in range(n):
        skills = set(rng.sample(specific, rng.randint(1, 2)))
        if rng.random() < 0.2:
            skills.add("general")
        operators.append(
            OperatorProfile(
                f"op{index}",
                f"{1000 + index}",
                frozenset(skills),
                max_concurrent_calls=2 if rng.random() < 0.1 else 1,
                presence=Presence.ONLINE,
            )
        )
    skills_only = max(2, queue_count // 20)
    listed_count = queue_count - skills_only
    members: dict[int, list[Member]] = defaultdict(list)
    for operator in operators:
        for queue_index in rng.sample(range(listed_count), 3):
            penalty = rng.choices([0, 1, 2], weights=[7, 2, 1])[0]
            members[queue_index].append(Member(operator.id, penalty))
    queues: list[QueueConfig] = []
    numbers: list[str] = []
    for index in range(queue_count):
        if index < listed_count:
            required = frozenset({rng.choice(specific)}) if index % 4 == 3 else frozenset()
            listed = tuple(members[index])
        else:
            which = index - listed_count
            required = frozenset({"general" if which == 0 else specific[which % len(specific)]})
            listed = ()
        number = f"8{index:05d}"
        numbers.append(number)
        queues.append(
            QueueConfig(
                id=f"q{index}",
                name=f"Queue {index}",
                asterisk_name=f"queue-{index}",
                strategy=STRATEGIES[index % len(STRATEGIES)],
                priority=rng.randint(1, 5),
                members=listed,
                required_skills=required,
                numbers=(number,),
                is_default=index == 0,
                max_wait_time=600.0,
                ring_timeout=15.0,
                retry_delay=5.0,
                wrapup_seconds=rng.choice([0.0, 0.0, 5.0]),
                overflow_action=rng.choice(list(OverflowAction)),
                overflow_queue_id=f"q{rng.randrange(queue_count)}",
            )
        )
    return Population(queues, operators, numbers)


@dataclass
class Dispatcher:
    """Follows the engine's commands the way the real dispatcher and Asterisk would."""

    ringing: Bag = field(default_factory=Bag)  # leg ids
    talking: Bag = field(default_factory=Bag)  # connected leg ids
    waiting: Bag = field(default_factory=Bag)  # call ids queued, not connected, not ended
    leg_call: dict[str, str] = field(default_factory=dict)
    call_leg: dict[str, str] = field(default_factory=dict)  # connected call -> its leg

    def follow(self, out: list[cmd.Command]) -> None:
        for command in out:
            match command:
                case cmd.RingOperator(leg_id=leg, call_id=call):
                    self.ringing.add(leg)
                    self.leg_call[leg] = call
                case cmd.CancelLeg(leg_id=leg) | cmd.LegEnded(leg_id=leg):
                    self.ringing.discard(leg)
                    self.talking.discard(leg)
                case cmd.ConnectCall(leg_id=leg, call_id=call):
                    self.ringing.discard(leg)
                    self.talking.add(leg)
                    self.waiting.discard(call)
                    self.call_leg[call] = leg
                case cmd.CallQueued(call_id=call):
                    self.waiting.add(call)
                case cmd.CallEnded(call_id=call):
                    self.waiting.discard(call)
                    connected = self.call_leg.pop(call, None)
                    if connected is not None:
                        self.talking.discard(connected)


@dataclass
class Run:
    n: int
    timings: dict[str, list[int]]
    per_command: list[float]  # ns per command emitted, for decisions that emitted any
    setup_seconds: float
    fill_events: int
    waiting_at_start: int
    waiting_at_end: int


class Simulation:
    def __init__(self, n: int, seed: int, waiting: int) -> None:
        self.waiting_target = waiting
        self.rng = random.Random(seed)
        self.population = build_population(n, self.rng)
        self.engine = RoutingEngine(
            EngineSettings(queue_timeout=600.0, autopause_after=3), seed=seed
        )
        self.dispatcher = Dispatcher()
        self.now = 0.0
        self.calls = 0
        self.paused: Bag = Bag()
        self.offline: Bag = Bag()
        self.unreachable: Bag = Bag()
        self.online: Bag = Bag()

    def feed(self, event: ev.Event) -> list[cmd.Command]:
        out = self.engine.handle(event, self.now)
        self.follow(out)
        return out

    def follow(self, out: list[cmd.Command]) -> None:
        self.dispatcher.follow(out)
        for command in out:
            if isinstance(command, cmd.OperatorStatusChanged) and command.reason == "no_answer":
                self.online.discard(command.operator_id)  # autopaused by the engine
                self.paused.add(command.operator_id)

    def setup(self) -> None:
        for config in self.population.queues:
            self.feed(ev.QueueUpserted(config))
        for profile in self.population.operators:
            self.feed(ev.OperatorUpserted(profile))
            self.online.add(profile.id)

    def arrival(self) -> ev.CallArrived:
        self.calls += 1
        index = self.rng.randrange(len(self.population.queues))
        call_id = f"call{self.calls}"
        if self.rng.random() < 0.2:  # by dialed number rather than Stasis argument
            return ev.CallArrived(call_id, "5550000", called_number=self.population.numbers[index])
        return ev.CallArrived(call_id, "5550000", queue_hint=f"queue-{index}")

    def fill(self) -> int:
        """Callers arrive and operators answer at once, until the target number wait."""
        events = 0
        while len(self.dispatcher.waiting) < self.waiting_target:
            self.now += 0.001
            out = self.feed(self.arrival())
            events += 1
            for command in out:
                if isinstance(command, cmd.RingOperator) and command.leg_id in (
                    self.dispatcher.ringing
                ):
                    self.feed(ev.LegAnswered(command.leg_id))
                    events += 1
        return events

    def next_event(self) -> tuple[str, ev.Event]:
        """The next event of the stream, and its label for the report."""
        rng = self.rng
        self.now += rng.expovariate(1 / 0.005)  # ~200 events per simulated second
        deadline = self.engine.next_deadline()
        if deadline is not None and deadline <= self.now:
            return "Tick", ev.Tick()
        d = self.dispatcher
        waiting = len(d.waiting)
        roll = rng.random()
        arrive_odds = 0.45 if waiting < self.waiting_target else 0.10
        if roll < arrive_odds:
            return "CallArrived", self.arrival()
        roll = rng.random()
        if roll < 0.30 and d.ringing:
            return "LegAnswered", ev.LegAnswered(d.ringing.choice(rng))
        if roll < 0.36 and d.ringing:
            reason = rng.choice(list(ev.LegFailure))
            return "LegFailed", ev.LegFailed(d.ringing.choice(rng), reason)
        if roll < 0.56 and d.talking:
            leg = d.talking.choice(rng)
            return "CallerHungUp (talking)", ev.CallerHungUp(d.leg_call[leg])
        if roll < 0.72 and d.talking:
            return "LegHungUp (talking)", ev.LegHungUp(d.talking.choice(rng))
        if roll < 0.77 and d.waiting:
            return "CallerHungUp (waiting)", ev.CallerHungUp(d.waiting.choice(rng))
        if roll < 0.97:
            return "OperatorPresenceSet", self.presence_change()
        return "OperatorReachability", self.reachability_change()

    def presence_change(self) -> ev.OperatorPresenceSet:
        """Breaks and log-outs, steered to keep about 85% of operators online."""
        rng = self.rng
        away = len(self.paused) + len(self.offline)
        if away > 0.15 * len(self.population.operators) or not self.online:
            bag = (
                self.paused
                if self.paused and (rng.random() < 0.8 or not self.offline)
                else (self.offline)
            )
            operator = bag.choice(rng)
            bag.discard(operator)
            self.online.add(operator)
            return ev.OperatorPresenceSet(operator, Presence.ONLINE)
        operator = self.online.choice(rng)
        self.online.discard(operator)
        if rng.random() < 0.9:
            self.paused.add(operator)
            return ev.OperatorPresenceSet(operator, Presence.PAUSED, "break")
        self.offline.add(operator)
        return ev.OperatorPresenceSet(operator, Presence.OFFLINE)

    def reachability_change(self) -> ev.OperatorReachability:
        if self.unreachable and self.rng.random() < 0.5:
            operator = self.unreachable.choice(self.rng)
            self.unreachable.discard(operator)
            return ev.OperatorReachability(operator, reachable=True)
        operator = self.online.choice(self.rng)  # a phone dropping its registration
        self.unreachable.add(operator)
        return ev.OperatorReachability(operator, reachable=False)

    def stream(self, events: int) -> tuple[dict[str, list[int]], list[float]]:
        timings: dict[str, list[int]] = defaultdict(list)
        per_command: list[float] = []
        clock = time.perf_counter_ns
        engine, follow = self.engine, self.follow
        for _ in range(events):
            label, event = self.next_event()
            start = clock()
            out = engine.handle(event, self.now)
            elapsed = clock() - start
            follow(out)
            timings[label].append(elapsed)
            if out:
                per_command.append(elapsed / len(out))
        return timings, per_command


def run(n: int, events: int, seed: int, waiting: int | None, profile: bool) -> Run:
    started = time.perf_counter()
    simulation = Simulation(n, seed, waiting if waiting is not None else max(n // 10, 4))
    simulation.setup()
    fill_events = simulation.fill()
    setup_seconds = time.perf_counter() - started
    waiting_at_start = len(simulation.dispatcher.waiting)
    # A long-lived daemon's population is old-generation data: keep the collector off it.
    gc.collect()
    gc.freeze()
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        timings, per_command = simulation.stream(events)
        profiler.disable()
        print(f"\n--- cProfile, n={n:,} stream (own time) ---")
        pstats.Stats(profiler).strip_dirs().sort_stats("tottime").print_stats(14)
    else:
        timings, per_command = simulation.stream(events)
    gc.unfreeze()
    return Run(
        n,
        timings,
        per_command,
        setup_seconds,
        fill_events,
        waiting_at_start,
        len(simulation.dispatcher.waiting),
    )


def count_calls(n: int, events: int, seed: int, waiting: int | None) -> list[int]:
    """Python function calls per decision, on a replay of the same stream: the work done,
    which, unlike time, no other process on the machine can disturb."""
    simulation = Simulation(n, seed, waiting if waiting is not None else max(n // 10, 4))
    simulation.setup()
    simulation.fill()
    calls = 0

    def hook(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    counts: list[int] = []
    engine = simulation.engine
    for _ in range(events):
        _, event = simulation.next_event()
        calls = 0
        sys.setprofile(hook)
        out = engine.handle(event, simulation.now)
        sys.setprofile(None)
        simulation.follow(out)
        counts.append(calls)
    return counts


def percentile(sorted_values: list[int] | list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return float(sorted_values[index])


def summary(values: list[int] | list[float]) -> tuple[float, float, float]:
    """p50, p99, max in µs, of values in ns."""
    ordered = sorted(values)
    return (
        percentile(ordered, 0.50) / 1000,
        percentile(ordered, 0.99) / 1000,
        ordered[-1] / 1000,
    )


def report(result: Run) -> tuple[float, float, float]:
    everything = [t for values in result.timings.values() for t in values]
    p50, p99, worst = summary(everything)
    print(
        f"\n== n = {result.n:,} operators, {max(result.n // 10, 4):,} queues: "
        f"{len(everything):,} decisions; set-up + fill {result.setup_seconds:.1f} s "
        f"({result.fill_events:,} fill events), waiting {result.waiting_at_start:,} -> "
        f"{result.waiting_at_end:,}"
    )
    print(f"  {'event':<26}{'count':>8}{'p50 µs':>10}{'p99 µs':>10}{'max µs':>10}")
    for label in sorted(result.timings, key=lambda k: -len(result.timings[k])):
        values = result.timings[label]
        a, b, c = summary(values)
        print(f"  {label:<26}{len(values):>8,}{a:>10.1f}{b:>10.1f}{c:>10.1f}")
    verdict = "ok" if p99 < 1000 else "OVER the 1 ms target"
    print(f"  {'all decisions':<26}{len(everything):>8,}{p50:>10.1f}{p99:>10.1f}{worst:>10.1f}")
    c50, c99, cmax = summary(result.per_command)
    count = len(result.per_command)
    print(f"  {'per command emitted':<26}{count:>8,}{c50:>10.1f}{c99:>10.1f}{cmax:>10.1f}")
    print(f"  p99 {p99:.1f} µs vs target 1000 µs: {verdict}")
    return p50, p99, c50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 100 and 1,000, short stream")
    parser.add_argument("--events", type=int, default=None, help="stream length per n")
    parser.add_argument(
        "--waiting", type=int, default=None, help="callers kept waiting (default n / 10)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile the largest run")
    args = parser.parse_args()
    sizes = [100, 1_000] if args.quick else [100, 1_000, 10_000]
    events = args.events or (5_000 if args.quick else 40_000)
    print(
        f"routing engine benchmark: {events:,} stream events per size, seed {args.seed}, "
        f"Python {sys.version.split()[0]}"
    )
    figures: dict[int, tuple[float, float, float]] = {}
    work: dict[int, tuple[float, float, float]] = {}
    for n in sizes:
        result = run(n, events, args.seed, args.waiting, args.profile and n == sizes[-1])
        figures[n] = report(result)
        counts = sorted(count_calls(n, min(events, 10_000), args.seed, args.waiting))
        mean = sum(counts) / len(counts)
        work[n] = (percentile(counts, 0.5), mean, percentile(counts, 0.99))
        print(
            f"  work: Python calls per decision p50 {work[n][0]:.0f}, mean {mean:.1f}, "
            f"p99 {work[n][2]:.0f} (first {len(counts):,} decisions, replayed)"
        )
    small, large = sizes[0], sizes[-1]
    bound = math.log2(large) / math.log2(small)
    p50_ratio = figures[large][0] / figures[small][0]
    p99_ratio = figures[large][1] / figures[small][1]
    per_command_ratio = figures[large][2] / figures[small][2]
    print(f"\n== growth from n = {small:,} to n = {large:,} ({large // small}x operators)")
    print(
        f"  p50 ratio {p50_ratio:.2f}   p99 ratio {p99_ratio:.2f}   "
        f"p50 per command ratio {per_command_ratio:.2f}"
    )
    print(f"  log n bound log2({large})/log2({small}) = {bound:.2f}")
    work_ratio = work[large][1] / work[small][1]
    print(
        f"  work (Python calls per decision): p50 {work[small][0]:.0f} -> {work[large][0]:.0f}, "
        f"mean ratio {work_ratio:.2f}"
    )
    verdict = "within" if p50_ratio <= bound else "ABOVE"
    print(f"  p50 time growth is {verdict} the log n bound")
    verdict = "within" if work_ratio <= bound else "ABOVE"
    print(f"  mean work growth is {verdict} the log n bound")


if __name__ == "__main__":
    main()
