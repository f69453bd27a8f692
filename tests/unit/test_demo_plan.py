"""The demo's pure parts: its callers' arrivals and behaviours, its operators' schedule, the
minute line, the options. Every draw comes from a seeded RNG, so each figure here is exact for
its seed: a change in how the streams draw shows up as a failure, not as noise."""

from __future__ import annotations

import itertools
import random
import statistics
from collections import Counter
from pathlib import Path

import pytest

from demo.options import DEFAULT_RATE, parse_options
from demo.plan import (
    CallerKind,
    CallerMix,
    CallerPlan,
    Habit,
    HabitTimes,
    OperatorChange,
    OperatorProfile,
    Presence,
    caller_stream,
    operator_schedule,
)
from demo.report import Figures, figures_from, minute_line
from demo.roster import DEMO_ROSTER
from demo.run import STATE_MARKER, prepare_state
from tests.sandbox import PhoneBehaviour

MIX = CallerMix(
    rate_per_minute=6.0,
    queue_weights={"support": 0.6, "sales": 0.4},
    abandon_share=0.25,
    callback_share=0.15,
    patience=(15.0, 60.0),
    offer_after={"support": 20.0, "sales": 25.0},
    press_delay=(2.0, 5.0),
)


def callers(seed: int, count: int, mix: CallerMix = MIX) -> list[CallerPlan]:
    return list(itertools.islice(caller_stream(random.Random(seed), mix), count))


def test_the_same_seed_draws_the_same_callers_and_another_seed_others() -> None:
    assert callers(42, 200) == callers(42, 200)
    assert callers(42, 200) != callers(43, 200)


def test_arrivals_are_poisson_at_the_rate() -> None:
    plans = callers(1, 5000)
    gaps = [b.at - a.at for a, b in itertools.pairwise(plans)]
    assert all(gap > 0 for gap in gaps)
    # Exponential gaps: mean 60/rate = 10 s, and their spread equals their mean.
    assert statistics.mean(gaps) == pytest.approx(10.0, rel=0.05)
    assert statistics.stdev(gaps) == pytest.approx(10.0, rel=0.07)
    arrivals = Counter(int(p.at // 60) for p in plans)
    per_minute = [arrivals[minute] for minute in range(700)]  # the last minutes have none
    assert statistics.mean(per_minute) == pytest.approx(6.0, rel=0.05)
    assert statistics.variance(per_minute) == pytest.approx(6.0, rel=0.15)  # Poisson


def test_callers_split_between_queues_and_behaviours_by_the_mix() -> None:
    plans = callers(2, 5000)
    share = {kind: sum(p.kind is kind for p in plans) / len(plans) for kind in CallerKind}
    assert share[CallerKind.IMPATIENT] == pytest.approx(0.25, abs=0.02)
    assert share[CallerKind.CALLBACK] == pytest.approx(0.15, abs=0.02)
    assert share[CallerKind.PATIENT] == pytest.approx(0.60, abs=0.02)
    assert sum(p.queue == "support" for p in plans) / len(plans) == pytest.approx(0.6, abs=0.02)


def test_each_behaviour_carries_its_own_times() -> None:
    for plan in callers(3, 2000):
        if plan.kind is CallerKind.IMPATIENT:
            assert plan.patience is not None and 15.0 <= plan.patience <= 60.0
            assert plan.press_after is None
        elif plan.kind is CallerKind.CALLBACK:
            # Pressed 2-5 s after the queue's own offer.
            offer = {"support": 20.0, "sales": 25.0}[plan.queue]
            assert plan.press_after is not None
            assert offer + 2.0 <= plan.press_after <= offer + 5.0
            assert plan.patience is None
        else:
            assert plan.patience is None and plan.press_after is None


def test_caller_numbers_are_distinct_and_never_a_sandbox_extension() -> None:
    numbers = [p.number for p in callers(4, 3000)]
    assert len(set(numbers)) == len(numbers)
    assert all(n.isdigit() and len(n) == 11 and n.startswith("79") for n in numbers)


def test_a_queue_of_weight_zero_gets_no_caller() -> None:
    mix = CallerMix(rate_per_minute=6.0, queue_weights={"support": 1.0, "sales": 0.0})
    assert {p.queue for p in callers(5, 500, mix)} == {"support"}


@pytest.mark.parametrize(
    "fields",
    [
        {"rate_per_minute": 0.0},
        {"queue_weights": {}},
        {"abandon_share": 0.7, "callback_share": 0.4},
    ],
)
def test_a_mix_that_cannot_be_drawn_is_refused(fields: dict[str, object]) -> None:
    arguments: dict[str, object] = {"rate_per_minute": 6.0, "queue_weights": {"support": 1.0}}
    with pytest.raises(ValueError):
        CallerMix(**(arguments | fields))  # type: ignore[arg-type]  # wrong on purpose


PROFILES = (
    OperatorProfile("1001", "a", "A", "support"),
    OperatorProfile("1002", "b", "B", "support", habit=Habit.PAUSES),
    OperatorProfile("1003", "c", "C", "sales", habit=Habit.GOES_OFFLINE),
)
REASONS = ("lunch", "break")
TIMES = HabitTimes(
    first_change=(15.0, 45.0), working=(60.0, 180.0), paused=(30.0, 120.0), offline=(60.0, 150.0)
)


def schedule(
    seed: int, count: int, profiles: tuple[OperatorProfile, ...] = PROFILES
) -> list[OperatorChange]:
    changes = operator_schedule(random.Random(seed), profiles, REASONS, TIMES)
    return list(itertools.islice(changes, count))


def test_the_schedule_is_in_time_order_and_leaves_steady_operators_alone() -> None:
    changes = schedule(7, 200)
    assert [c.at for c in changes] == sorted(c.at for c in changes)
    assert {c.extension for c in changes} == {"1002", "1003"}
    assert schedule(7, 200) == changes


def test_a_pausing_operator_alternates_pause_with_a_reason_and_back_online() -> None:
    mine = [c for c in schedule(8, 300) if c.extension == "1002"]
    assert TIMES.first_change[0] <= mine[0].at <= TIMES.first_change[1]
    for pause, back, next_pause in zip(mine[::2], mine[1::2], mine[2::2], strict=False):
        assert pause.presence is Presence.PAUSED and pause.reason in REASONS and pause.phone_on
        assert back.presence is Presence.ONLINE and back.reason is None
        assert 30.0 <= back.at - pause.at <= 120.0
        assert 60.0 <= next_pause.at - back.at <= 180.0
    assert {c.reason for c in mine if c.reason} == set(REASONS)


def test_the_operator_who_logs_off_stops_the_phone_and_comes_back() -> None:
    mine = [c for c in schedule(9, 300) if c.extension == "1003"]
    for off, back in zip(mine[::2], mine[1::2], strict=True):
        assert off.presence is Presence.OFFLINE and not off.phone_on
        assert back.presence is Presence.ONLINE and back.phone_on
        assert 60.0 <= back.at - off.at <= 150.0


def test_one_operator_more_does_not_change_the_others_schedules() -> None:
    extra = (*PROFILES, OperatorProfile("1004", "d", "D", "sales"))
    assert schedule(10, 100, extra) == schedule(10, 100)


def test_pausing_needs_a_reason_to_pause_with() -> None:
    with pytest.raises(ValueError, match="pause reason"):
        operator_schedule(random.Random(1), PROFILES, ())


def test_the_demo_roster_shows_every_habit_in_its_first_minute() -> None:
    first = {}
    for change in operator_schedule(random.Random(11), DEMO_ROSTER.operators, REASONS):
        first.setdefault(change.presence, change.at)
        if Presence.PAUSED in first and Presence.OFFLINE in first:
            break
    assert first[Presence.PAUSED] < 60 and first[Presence.OFFLINE] < 60
    extensions = {op.extension for op in DEMO_ROSTER.operators}
    for queue in DEMO_ROSTER.queues:
        assert set(queue.members) <= extensions
    assert DEMO_ROSTER.callback_phone not in extensions | {DEMO_ROSTER.supervisor.extension}


def test_a_human_phone_hands_its_ranges_to_sipp_and_refuses_nonsense() -> None:
    phone = PhoneBehaviour.human((1000, 6000), (20_000, 120_000), busy_ratio=0.3)
    assert phone.scenario == "phone_human.xml"
    assert phone.sipp_variables == {
        "answer_min_ms": "1000",
        "answer_max_ms": "6000",
        "talk_min_ms": "20000",
        "talk_max_ms": "120000",
        "busy_ratio": "0.3",
    }
    with pytest.raises(ValueError):
        PhoneBehaviour.human((6000, 1000))
    with pytest.raises(ValueError):
        PhoneBehaviour.human(busy_ratio=1.5)


def test_figures_and_the_minute_line() -> None:
    stats = {
        "total_calls_today": 12,
        "answered_calls_today": 8,
        "abandoned_calls": 2,
        "missed_calls_today": 4,
        "service_level": 75.0,
    }
    activity = [
        {"status": "busy", "current_call_duration": 30, "pause_reason": None},
        {"status": "busy", "current_call_duration": None, "pause_reason": "lunch"},
        {"status": "offline", "current_call_duration": None, "pause_reason": None},
        {"status": "online", "current_call_duration": None, "pause_reason": None},
    ]
    callbacks = [{"status": "pending"}, {"status": "completed"}, {"status": "dialing"}]
    now = figures_from(stats, {"queue_waiting": 3}, callbacks, activity)
    assert now == Figures(
        calls=12,
        answered=8,
        abandoned=2,
        missed=4,
        waiting=3,
        callbacks_booked=3,
        callbacks_pending=2,
        callbacks_completed=1,
        operators_on_call=1,
        operators_free=1,
        pause_reasons=("lunch",),
        operators_offline=1,
        service_level=75.0,
    )
    before = Figures(calls=5, answered=4, abandoned=2, callbacks_booked=1)
    assert minute_line(3, 14, before, now) == (
        "[min 3] placed 14 | calls +7 (12), answered +4 (8), abandoned +0 (2), "
        "callbacks booked +2 (3) [2 pending, 1 done] | waiting 3 | operators: 1 talking, "
        "1 free, 1 paused (lunch), 1 offline | SL 75%"
    )


def test_options_come_from_the_command_line_then_the_environment_then_defaults() -> None:
    defaults = parse_options([], env={"DEMO_SEED": "5"})
    assert defaults.rate_per_minute == DEFAULT_RATE and defaults.minutes is None
    assert defaults.port == 8001 and defaults.seed == 5 and defaults.with_sandbox
    assert defaults.state_dir == Path("demo-state").resolve()
    from_env = parse_options([], env={"DEMO_RATE": "8", "DEMO_MINUTES": "2", "DEMO_SEED": "5"})
    assert (from_env.rate_per_minute, from_env.minutes) == (8.0, 2.0)
    # make passes an unset variable as an empty one: that means the default.
    empty = parse_options([], env={"DEMO_RATE": "", "DEMO_MINUTES": "", "DEMO_SEED": "5"})
    assert (empty.rate_per_minute, empty.minutes) == (DEFAULT_RATE, None)
    given = parse_options(["--rate", "3", "--no-sandbox"], env={"DEMO_RATE": "8"})
    assert given.rate_per_minute == 3.0 and not given.with_sandbox
    with pytest.raises(SystemExit):
        parse_options(["--rate", "0"], env={})


def test_the_state_folder_is_emptied_only_when_it_is_the_demos(tmp_path: Path) -> None:
    state = tmp_path / "demo-state"
    prepare_state(state)
    (state / "callcenterd.sqlite3").write_text("old run")
    prepare_state(state)
    assert sorted(p.name for p in state.iterdir()) == [STATE_MARKER]
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "data").write_text("keep me")
    with pytest.raises(RuntimeError, match="not a demo's state"):
        prepare_state(foreign)
    assert (foreign / "data").read_text() == "keep me"
