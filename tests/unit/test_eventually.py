"""The tests' one wait: `eventually(check, within=...)`."""

from __future__ import annotations

import pytest

from tests.eventually import eventually


async def test_a_truthy_value_is_returned_once_it_comes() -> None:
    answers = iter([0, [], "", ["found"]])
    assert await eventually(lambda: next(answers)) == ["found"]
    assert next(answers, "all asked") == "all asked"


async def test_an_assertion_that_passes_ends_the_wait() -> None:
    tries: list[int] = []

    async def check() -> None:
        tries.append(1)
        assert len(tries) == 3, f"only {len(tries)} tries"

    assert await eventually(check) is None
    assert len(tries) == 3


async def test_the_last_assertion_error_is_raised_after_the_time_limit() -> None:
    tries: list[int] = []

    def check() -> None:
        tries.append(1)
        assert False, f"still not there after {len(tries)} tries"  # noqa: B011

    with pytest.raises(AssertionError, match=r"not so within 0\.05 s: still not there") as caught:
        await eventually(check, within=0.05)
    assert f"after {len(tries)} tries" in str(caught.value)
    assert len(tries) > 1


async def test_a_falsy_value_names_the_check_and_the_message() -> None:
    with pytest.raises(AssertionError, match=r"the queue: not so within 0.02 s: .*returned \[\]"):
        await eventually(lambda: [], within=0.02, message="the queue")


async def test_other_errors_are_not_retried() -> None:
    tries: list[int] = []

    def check() -> None:
        tries.append(1)
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await eventually(check)
    assert tries == [1]
