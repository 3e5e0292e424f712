"""The breaker's window counts its failures as results come and go: always what a count of the
results in it would say."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from newsletter.sending.breaker import Window

_STEPS = st.lists(st.sampled_from([0, 1, 2, "clear"]), max_size=300)


@given(size=st.integers(min_value=1, max_value=40), steps=_STEPS)
def test_the_running_counts_are_the_windows_counts(size: int, steps: list[int | str]) -> None:
    window = Window(size)
    for step in steps:
        if step == "clear":
            window.clear()
        else:
            assert isinstance(step, int)
            window.add(step)
        assert len(window.results) <= size
        assert window.failures == sum(1 for r in window.results if r)
        assert window.permanent == sum(1 for r in window.results if r == 2)
