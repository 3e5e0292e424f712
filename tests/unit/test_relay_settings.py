"""The relays' settings, the receiving-domain groups and the weighted choice (no server)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from newsletter.config import Settings
from newsletter.config_relays import DEFAULT_CAPS, GroupCap
from newsletter.db import get_engine
from newsletter.exceptions import InvalidInput, TemporaryFailure
from newsletter.sending import relay_health
from newsletter.sending.domain_caps import group_of
from newsletter.sending.relay_health import Health, RelayBreaker, State, read_states
from newsletter.sending.relays import RelaySet, Route, route


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_without_relays_there_is_one_default_relay_from_the_smtp_settings() -> None:
    (relay,) = settings(smtp_host="relay.example.net", smtp_port=2525).relays()
    assert (relay.name, relay.smtp.host, relay.smtp.port, relay.weight) == (
        "default",
        "relay.example.net",
        2525,
        1,
    )
    assert not relay.caps


def test_relays_are_read_from_json_with_their_defaults() -> None:
    given = [
        {"name": "eu", "host": "a.example.net", "port": 587, "starttls": True, "weight": 3},
        {"name": "mx", "host": "b.example.net", "weight": 0, "caps": True},
    ]
    eu, mx = settings(smtp_relays=json.dumps(given), smtp_timeout=12).relays()
    assert eu.smtp.starttls and eu.weight == 3 and eu.smtp.timeout == 12
    assert (mx.smtp.port, mx.weight, mx.caps) == (25, 0, True)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[", "is not JSON"),
        ("[]", "at least one relay"),
        ('[{"name": "a", "host": "h"}, {"name": "a", "host": "i"}]', "a name of its own"),
        ('[{"name": "a", "host": "h", "weight": 0}]', "weight above 0"),
        ('[{"name": "A b", "host": "h"}]', "NEWSLETTER_SMTP_RELAYS"),
        ('[{"name": "a b", "host": "h"}]', "NEWSLETTER_SMTP_RELAYS"),
        ('[{"name": "a", "host": "h", "colour": 1}]', "NEWSLETTER_SMTP_RELAYS"),
    ],
)
def test_a_malformed_relay_list_is_refused_at_start_saying_why(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(smtp_relays=value)


def test_domain_caps_change_the_defaults_of_the_groups_named() -> None:
    caps = settings(domain_caps='{"yahoo": {"per_connection": 10, "rate": 2}}').group_caps()
    assert caps["yahoo"] == GroupCap(10, 2.0) and caps["gmail"] == DEFAULT_CAPS["gmail"]
    with pytest.raises(ValidationError, match="keyed by"):
        settings(domain_caps='{"hotmail": {}}')


@pytest.mark.parametrize(
    ("address", "group"),
    [
        ("a@gmail.com", "gmail"),
        ("a@GoogleMail.com", "gmail"),
        ("a@yahoo.co.uk", "yahoo"),
        ("a@ymail.com", "yahoo"),
        ("a@aol.com", "yahoo"),
        ("a@outlook.de", "microsoft"),
        ("a@hotmail.fr", "microsoft"),
        ("a@live.com", "microsoft"),
        ("a@msn.com", "microsoft"),
        ("a@yahoo", "others"),
        ("a@mail.yahoo.com", "others"),
        ("a@example.org", "others"),
    ],
)
def test_each_address_falls_in_one_group(address: str, group: str) -> None:
    assert group_of(address) == group


class _Health:
    """What ``RelaySet`` asks of the health table, in memory."""

    def __init__(self) -> None:
        self.states: dict[str, State] = {}

    def out(self) -> dict[str, State]:
        now = datetime.now(UTC)
        return {n: s for n, s in self.states.items() if s.out(now)}

    def mark_out(self, name: str, reason: str) -> State:
        self.states[name] = State(name, datetime.now(UTC) + timedelta(seconds=60), reason, 1)
        return self.states[name]

    def mark_back(self, name: str) -> None:
        self.states.pop(name, None)


def relay_set(relays: str, health: _Health | None = None) -> RelaySet:
    return RelaySet(
        settings(smtp_relays=relays).relays(),
        health=health or _Health(),  # type: ignore[arg-type]
        breaker=RelayBreaker(window=10, threshold=0.5),
        limits=None,  # type: ignore[arg-type]
    )


THREE_RELAYS = json.dumps(
    [
        {"name": "a", "host": "h", "weight": 3},
        {"name": "b", "host": "h", "weight": 1},
        {"name": "z", "host": "h", "weight": 0},
    ]
)


def test_the_weighted_choice_interleaves_three_to_one_and_skips_weight_zero() -> None:
    relays = relay_set(THREE_RELAYS)
    picks = [relays._pick([]).name for _ in range(8)]  # type: ignore[union-attr]
    assert picks == ["a", "a", "b", "a"] * 2
    assert Counter(relays._pick([]).name for _ in range(400)) == {"a": 300, "b": 100}  # type: ignore[union-attr]


def test_a_relay_out_or_tried_is_skipped_and_a_route_narrows_the_choice() -> None:
    health = _Health()
    relays = relay_set(THREE_RELAYS, health)
    health.mark_out("a", "cannot connect")
    assert {relays._pick([]).name for _ in range(10)} == {"b"}  # type: ignore[union-attr]
    assert relays._pick(["b"]) is None
    assert "a out until" in relays._none_left(["b"]) and "b failed just now" in relays._none_left(
        ["b"]
    )
    route(relays, "z")  # a weight 0 relay named by a newsletter
    assert relays.route == Route(frozenset({"z"}))
    assert {relays._pick([]).name for _ in range(3)} == {"z"}  # type: ignore[union-attr]
    with pytest.raises(InvalidInput, match="relay 'y' is not configured"):
        route(relays, "y")


def test_with_every_relay_out_the_failure_says_when_the_first_is_due_back() -> None:
    health = _Health()
    relays = relay_set(THREE_RELAYS, health)
    now = datetime.now(UTC)
    health.states["a"] = State("a", now + timedelta(seconds=90), "cannot connect", 2)
    health.states["b"] = State("b", now + timedelta(seconds=30), "cannot connect", 1)
    with pytest.raises(TemporaryFailure, match="no relay to send through") as none:
        relays.send("b@example.org", "r@example.org", b"x")
    assert none.value.connecting
    assert none.value.retry_at == now + timedelta(seconds=30)  # b, the first back
    route(relays, "a")  # a newsletter on relay a waits for a alone
    with pytest.raises(TemporaryFailure) as none:
        relays.send("b@example.org", "r@example.org", b"x")
    assert none.value.retry_at == now + timedelta(seconds=90)


def test_a_relays_breaker_trips_on_half_its_window_of_temporary_failures() -> None:
    breaker = RelayBreaker(window=10, threshold=0.5)
    assert [breaker.record("a", failed=False) for _ in range(3)] == [None] * 3
    tripped = [breaker.record("a", failed=True) for _ in range(3)]
    assert tripped == [None, None, "3 of its last 6 sends failed"]
    assert breaker.record("a", failed=True) is None  # the window starts again


def test_a_held_health_keeps_its_writes_until_it_lets_go_and_sees_them_meanwhile(
    settings: Settings,
) -> None:
    # SQLite: a batch's hand holds the write lock; a write from another connection would wait
    health = Health(get_engine(settings.database_url), cooldown=60, cooldown_max=60)
    health.hold()
    health.mark_out("a", "cannot connect: refused")
    assert "a" in health.out()  # this process knows at once
    assert read_states(health.engine) == {}  # the table not yet
    health.let_go()
    written = read_states(health.engine)
    assert set(written) == {"a"} and written["a"].reason == "cannot connect: refused"


def test_one_thread_reads_the_health_table_while_the_others_keep_their_view(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a pool's connections each ask before every message; when the view went stale they all
    # read at once, each on a connection beyond the pool's size (closed again after)
    now = [0.0]
    health = Health(
        get_engine(settings.database_url), cooldown=60, cooldown_max=60, clock=lambda: now[0]
    )
    reads: list[int] = []
    inside = threading.Event()
    release = threading.Event()

    def slow_read(engine: object) -> dict[str, State]:
        reads.append(1)
        inside.set()
        release.wait(5)
        return {"a": State("a", datetime.now(UTC) + timedelta(minutes=5), "down", 1)}

    monkeypatch.setattr(relay_health, "read_states", slow_read)
    first = threading.Thread(target=health.states)
    first.start()  # the first read of all: nothing to keep yet, so it is waited for
    assert inside.wait(5)
    release.set()
    first.join(5)
    assert len(reads) == 1 and "a" in health.states()

    now[0] += relay_health.REFRESH + 1  # stale: one thread reads, the rest keep the old view
    inside.clear()
    release.clear()
    reader = threading.Thread(target=health.states)
    reader.start()
    assert inside.wait(5)
    seen = []
    others = [threading.Thread(target=lambda: seen.append(health.out())) for _ in range(16)]
    for t in others:
        t.start()
    for t in others:
        t.join(5)
    assert len(reads) == 2  # only the one
    assert all("a" in view for view in seen)  # the old view: "a" still out
    release.set()
    reader.join(5)
