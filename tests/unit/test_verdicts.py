"""The human-or-machine rules (``newsletter.analytics.verdicts``) on recorded samples: each
fixture in tests/fixtures/analytics/ is one request as a person, a scanner, a proxy or a bot
sends it (headers written from the vendors' documented behaviour), with the verdict it must
get."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from newsletter.analytics import verdicts
from newsletter.analytics.verdicts import Limits, Seen

SAMPLES = sorted((Path(__file__).parents[1] / "fixtures" / "analytics").glob("*.json"))
DELIVERED = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def seen_of(sample: dict[str, Any]) -> Seen:
    request = sample["request"]
    return Seen(
        kind=sample["kind"],
        method=request["method"],
        headers={k.lower(): v for k, v in request["headers"].items()},
        ip=request["ip"],
        at=DELIVERED + timedelta(seconds=sample["seconds_after_delivery"]),
        link_kind=sample["link_kind"],
        delivered_at=DELIVERED,
        burst_clicks=sample["burst_clicks"],
        links=sample["links"],
    )


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_each_recorded_sample_gets_its_verdict(path: Path) -> None:
    sample = json.loads(path.read_text(encoding="utf-8"))
    decision = verdicts.decide(seen_of(sample), Limits())
    assert (decision.verdict, decision.rule) == (
        sample["expect"]["verdict"],
        sample["expect"]["rule"],
    ), sample["case"]


def test_every_rule_of_the_module_has_a_recorded_sample() -> None:
    documented = set(re.findall(r"^``([a-z_]+)``", verdicts.__doc__ or "", re.MULTILINE))
    sampled = {json.loads(p.read_text())["expect"]["rule"] for p in SAMPLES}
    assert documented == sampled
    assert len(documented) == 12


def test_the_time_rule_follows_the_setting() -> None:
    sample = json.loads((SAMPLES[0].parent / "too_fast.json").read_text())
    seen = seen_of(sample)  # 2 s after delivery
    assert verdicts.decide(seen, Limits(machine_seconds=10)).rule == "too_fast"
    assert verdicts.decide(seen, Limits(machine_seconds=1)).rule == "human"


def test_a_burst_is_most_links_of_the_message_or_the_minimum() -> None:
    limits = Limits(burst_links=4, burst_share=0.5)
    assert [limits.burst_size(n) for n in (2, 8, 9, 20, 41)] == [4, 4, 5, 10, 21]
    assert not verdicts.is_burst(3, 4, limits)
    assert verdicts.is_burst(4, 4, limits)


def test_scanner_networks_match_only_their_family() -> None:
    assert verdicts.in_networks("2a01:111:f400::1")
    assert verdicts.in_networks("40.93.255.255")
    assert not verdicts.in_networks("40.94.0.1")
    assert not verdicts.in_networks("not an address")
    assert not verdicts.in_networks(None)
