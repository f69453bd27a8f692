"""How wrong is the estimated wait? The engine's estimate against what simulated callers waited.

A discrete-event simulation drives the real ``RoutingEngine`` (the way the dispatcher does,
with a ``Tick`` whenever a timer is due): Poisson arrivals into one queue, operators who
answer after a ring delay (a few let it ring out), lognormal talk times, wrap-up, and
callers who give up after an exponential patience. Every caller is asked for an estimate on
entry and then every ``--every`` seconds while waiting, as the announcements do; when an
operator answers, each estimate is compared with the wait that really remained. Callers who
gave up are left out (their real wait is not known), and counted.

Three estimators answer the same questions:
- ``engine``: ``RoutingEngine.estimated_wait`` (routing/wait_estimate.py);
- ``app_queue``: Asterisk's announce-holdtime formula, at its best (an exponential average of
  recent waits, 3/4 old + 1/4 new, minus what this caller has waited already, floored at 0);
- ``naive``: position x mean handle time / operators.

Reported per scenario (operators, offered load): the mean absolute error (MAE) and the error
at p90 of each, the mean real wait they are measured against, and the number of samples.

    python bench/wait_estimate.py [--hours 8] [--every 30] [--seed 1] [--quick]
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.queues import Member, OperatorProfile, Presence, QueueConfig, Strategy
from callcenterd.routing import EngineSettings, RoutingEngine

TALK_MEAN = 170.0  # seconds
TALK_SIGMA = 0.6  # lognormal shape: a coefficient of variation of about 0.66
WRAPUP = 10.0
RING_DELAY = (2.0, 6.0)  # an operator answers after a uniform delay in this range
RING_OUT = 0.03  # share of rings left to time out
PATIENCE_MEAN = 400.0


@dataclass(order=True)
class Happening:
    at: float
    seq: int
    event: ev.Event = field(compare=False)


@dataclass
class Asked:
    at: float
    engine: float | None
    app_queue: float
    naive: float


@dataclass
class Scenario:
    operators: int
    load: float  # offered load per operator (Erlangs / operators)


class Simulation:
    def __init__(self, scenario: Scenario, hours: float, every: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.scenario = scenario
        self.every = every
        self.end = hours * 3600.0
        self.engine = RoutingEngine(EngineSettings(queue_timeout=0.0), seed=seed)
        self.heap: list[Happening] = []
        self.seq = 0
        self.now = 0.0
        self.arrived: dict[str, float] = {}
        self.asked: dict[str, list[Asked]] = {}
        self.samples: list[tuple[float, Asked]] = []  # (real remaining wait, estimates)
        self.ringing: dict[str, Happening] = {}  # leg id -> its scheduled answer
        self.abandoned = 0
        self.hold_average = 0.0  # app_queue's qe->parent->holdtime
        self.handle_mean = TALK_MEAN + WRAPUP  # what the naive estimator is given

    def at(self, when: float, event: ev.Event) -> Happening:
        self.seq += 1
        happening = Happening(when, self.seq, event)
        heapq.heappush(self.heap, happening)
        return happening

    def set_up(self) -> None:
        members = tuple(Member(f"op{n}") for n in range(self.scenario.operators))
        queue = QueueConfig(
            "q",
            "q",
            "q",
            strategy=Strategy.RRMEMORY,
            members=members,
            ring_timeout=15.0,
            retry_delay=2.0,
            wrapup_seconds=WRAPUP,
            max_wait_time=0.0,
            is_default=True,
        )
        self.feed(ev.QueueUpserted(queue))
        for member in members:
            profile = OperatorProfile(
                member.operator_id, member.operator_id, presence=Presence.ONLINE
            )
            self.feed(ev.OperatorUpserted(profile))
        rate = self.scenario.load * self.scenario.operators / (TALK_MEAN + WRAPUP)
        t, n = 0.0, 0
        while True:
            t += self.rng.expovariate(rate)
            if t >= self.end:
                break
            n += 1
            self.at(t, ev.CallArrived(f"c{n}", f"+49{n:09d}"))

    def feed(self, event: ev.Event) -> None:
        for command in self.engine.handle(event, self.now):
            self.carry_out(command)

    def carry_out(self, command: cmd.Command) -> None:
        match command:
            case cmd.RingOperator(leg_id=leg_id):
                if self.rng.random() < RING_OUT:
                    return  # rings until the engine's ring timeout
                delay = self.rng.uniform(*RING_DELAY)
                self.ringing[leg_id] = self.at(self.now + delay, ev.LegAnswered(leg_id))
            case cmd.CancelLeg(leg_id=leg_id):
                answer = self.ringing.pop(leg_id, None)
                if answer is not None:
                    answer.event = ev.Tick()  # cancelled: becomes a no-op
            case cmd.ConnectCall(leg_id=leg_id):
                self.ringing.pop(leg_id, None)
                talk = self.rng.lognormvariate(math.log(TALK_MEAN) - TALK_SIGMA**2 / 2, TALK_SIGMA)
                self.at(self.now + talk, ev.LegHungUp(leg_id))
            case cmd.CallQueued(call_id=call_id):
                self.arrived.setdefault(call_id, self.now)
                self.asked.setdefault(call_id, [])
                self.ask(call_id)
            case cmd.CallAnswered(call_id=call_id, wait_seconds=waited):
                for asked in self.asked.pop(call_id, []):
                    self.samples.append((self.now - asked.at, asked))
                # app_queue: holdtime = (3 * holdtime + this wait) / 4
                self.hold_average = (3 * self.hold_average + waited) / 4
            case cmd.CallEnded(call_id=call_id, outcome=outcome):
                if outcome is not cmd.CallOutcome.COMPLETED and self.asked.pop(call_id, None):
                    self.abandoned += 1
            case _:
                pass

    def ask(self, call_id: str) -> None:
        position = self.engine.queue_position(call_id)
        if position is None:
            return
        waited = self.now - self.arrived[call_id]
        self.asked[call_id].append(
            Asked(
                self.now,
                self.engine.estimated_wait(call_id, self.now),
                max(0.0, self.hold_average - waited),
                position * self.handle_mean / self.scenario.operators,
            )
        )

    def run(self) -> None:
        self.set_up()
        next_ask = self.every
        while self.heap:
            deadline = self.engine.next_deadline()
            when = min(self.heap[0].at, deadline if deadline is not None else math.inf, next_ask)
            self.now = when
            if when == next_ask:
                for call_id in list(self.asked):
                    if self.now - self.asked[call_id][-1].at >= self.every - 1e-9:
                        self.ask(call_id)
                next_ask += 1.0  # a caller is asked every `every` s from their own entry
                continue
            if deadline is not None and when == deadline and when < self.heap[0].at:
                self.feed(ev.Tick())
                continue
            happening = heapq.heappop(self.heap)
            if isinstance(happening.event, ev.CallArrived):
                patience = self.rng.expovariate(1 / PATIENCE_MEAN)
                self.at(self.now + patience, ev.CallerHungUp(happening.event.call_id))
            if isinstance(happening.event, ev.CallerHungUp) and (
                happening.event.call_id not in self.asked
            ):
                continue  # connected (or gone) before their patience ran out
            self.feed(happening.event)


def errors(samples: list[tuple[float, Asked]], name: str) -> tuple[float, float, int]:
    diffs = sorted(
        abs(real - value) for real, asked in samples if (value := getattr(asked, name)) is not None
    )
    if not diffs:
        return math.nan, math.nan, 0
    return sum(diffs) / len(diffs), diffs[int(0.9 * (len(diffs) - 1))], len(diffs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--every", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="1 simulated hour, 2 scenarios")
    args = parser.parse_args()
    scenarios = [Scenario(n, load) for n in (5, 20) for load in (0.80, 0.90, 0.97)]
    if args.quick:
        args.hours, scenarios = 1.0, scenarios[1:2] + scenarios[4:5]
    print(f"{args.hours:g} simulated hours per scenario, asked on entry and every {args.every:g} s")
    print(
        f"{'operators':>9} {'load':>5} {'callers':>7} {'gave up':>7} {'samples':>7} "
        f"{'mean wait':>9} | MAE (p90 error), seconds: {'engine':>15} {'app_queue':>15} "
        f"{'naive':>15}"
    )
    worst = 0.0
    for scenario in scenarios:
        sim = Simulation(scenario, args.hours, args.every, args.seed)
        sim.run()
        real = [r for r, _ in sim.samples]
        figures = {name: errors(sim.samples, name) for name in ("engine", "app_queue", "naive")}
        cells = " ".join(f"{mae:7.1f} ({p90:5.0f})" for mae, p90, _ in figures.values())
        callers = sum(1 for _ in sim.arrived)
        print(
            f"{scenario.operators:>9} {scenario.load:>5.2f} {callers:>7} {sim.abandoned:>7} "
            f"{len(sim.samples):>7} {sum(real) / max(1, len(real)):>9.1f} | "
            f"{'':>27}{cells}"
        )
        worst = max(worst, figures["engine"][0] / max(figures["app_queue"][0], 1e-9))
    print(f"engine MAE / app_queue MAE, worst scenario: {worst:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
