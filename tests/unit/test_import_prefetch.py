"""The import parses the next chunk in a thread while the database writes this one."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator

import pytest

from newsletter.audience.csv_import import SWITCH_INTERVAL, prefetched, tuned_for_import


def test_items_come_in_order_and_an_error_in_the_thread_is_raised_to_the_caller() -> None:
    def items() -> Iterator[int]:
        yield from range(5)
        raise ValueError("bad chunk")

    got: list[int] = []
    with pytest.raises(ValueError, match="bad chunk"):
        for item in prefetched(items()):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_a_caller_that_stops_early_stops_the_thread() -> None:
    made: list[int] = []

    def items() -> Iterator[int]:
        for i in range(1000):
            made.append(i)
            yield i

    before = threading.active_count()
    source = prefetched(items(), depth=2)
    assert next(source) == 0
    source.close()
    assert threading.active_count() == before
    assert len(made) <= 5  # it ran at most a few items ahead


def test_the_interpreter_is_tuned_while_imports_run_and_put_back_after_the_last() -> None:
    gc.set_threshold(700, 10, 10)
    before = sys.getswitchinterval()
    try:
        with tuned_for_import():
            assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
            assert gc.get_threshold()[0] == 50_000
            with tuned_for_import():  # a second import in the same process
                assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
            # the first one still runs: still tuned
            assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
            assert gc.get_threshold()[0] == 50_000
        assert sys.getswitchinterval() == before
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(700, 10, 10)
        sys.setswitchinterval(before)
