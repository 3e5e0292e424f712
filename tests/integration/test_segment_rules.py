"""Segment rules: the compiled SQL agrees with a plain Python reading of the same rules on
random subscribers (hypothesis), on SQLite and PostgreSQL, and is one statement."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event
from sqlmodel import Session

from newsletter.audience import segment_rules, segments
from newsletter.audience.segment_rules import Group
from newsletter.exceptions import InvalidInput
from newsletter.models import (
    Subscriber,
    SubscriberEvent,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
)
from newsletter.tables import EV, SUB, TAG, S
from tests.conftest import make_newsletter

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KEYS = ["city", "age", "plan"]
TAGS = ["vip", "donor", "press"]
STATUSES = list(SubscriptionStatus)
SOURCES = ["form", "import", "api", "https://news.example.org/story"]
LANGS = [None, "en", "be", "ru"]
ZONES = [None, "Europe/Minsk", "UTC"]
DAYS = [0, 1, 7, 30]
WORDS = ["Minsk", "minsk", "Brest", "Gomel", "", "5", "x%y"]

attribute_values = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from([0, 5, 18, 30, 7, -1.5, 2.25, 18.0]),
    st.booleans(),
    st.none(),
)


@st.composite
def people(draw: st.DrawFn) -> list[dict[str, Any]]:
    found = []
    for i in range(draw(st.integers(0, 14))):
        subs = {}
        for nl in draw(st.sets(st.sampled_from([0, 1]), max_size=2)):
            subs[nl] = {
                "status": draw(st.sampled_from(STATUSES)),
                "source": draw(st.sampled_from([None, *SOURCES])),
                "soft": draw(st.integers(0, 3)),
                "last_bounce": draw(st.sampled_from([None, *DAYS])),
            }
        found.append(
            {
                "email": f"Reader{i}@{draw(st.sampled_from(['example.org', 'Mail.BY']))}",
                "attributes": draw(st.dictionaries(st.sampled_from(KEYS), attribute_values)),
                "tags": draw(st.sets(st.sampled_from(TAGS))),
                "language": draw(st.sampled_from(LANGS)),
                "time_zone": draw(st.sampled_from(ZONES)),
                "age_days": draw(st.sampled_from(DAYS)),
                "bounce_event": draw(st.booleans()),
                "subs": subs,
            }
        )
    return found


def conditions() -> st.SearchStrategy[dict[str, Any]]:
    number = st.sampled_from([0, 2.25, 5, 18, 30])
    return st.one_of(
        st.fixed_dictionaries(
            {
                "kind": st.just("subscription"),
                "status": st.sampled_from([None, *STATUSES]),
                "newsletter": st.sampled_from([None, 0, 1]),
            }
        ),
        st.fixed_dictionaries(
            {"kind": st.just("attribute"), "key": st.sampled_from(KEYS), "op": st.just("exists")}
        ),
        st.fixed_dictionaries(
            {
                "kind": st.just("attribute"),
                "key": st.sampled_from(KEYS),
                "op": st.just("equals"),
                "value": st.one_of(st.sampled_from(WORDS[:-1] or ["x"]).filter(bool), number),
            }
        ),
        st.fixed_dictionaries(
            {
                "kind": st.just("attribute"),
                "key": st.sampled_from(KEYS),
                "op": st.just("contains"),
                "value": st.sampled_from(["min", "SK", "%", "5", "re"]),
            }
        ),
        st.fixed_dictionaries(
            {
                "kind": st.just("attribute"),
                "key": st.sampled_from(KEYS),
                "op": st.sampled_from(["lt", "le", "gt", "ge"]),
                "value": number,
            }
        ),
        st.fixed_dictionaries(
            {"kind": st.just("tag"), "tag": st.sampled_from(TAGS), "has": st.booleans()}
        ),
        st.fixed_dictionaries(
            {
                "kind": st.just("signed_up"),
                "op": st.sampled_from(["before", "after"]),
                "at": st.integers(0, 60).map(lambda d: NOW - timedelta(days=d, hours=1)),
            }
        ),
        st.fixed_dictionaries(
            {
                "kind": st.just("signed_up"),
                "op": st.just("within_days"),
                "days": st.sampled_from(DAYS),
            }
        ),
        st.fixed_dictionaries({"kind": st.just("source"), "value": st.sampled_from(SOURCES)}),
        st.fixed_dictionaries({"kind": st.just("language"), "value": st.sampled_from(LANGS)}),
        st.fixed_dictionaries({"kind": st.just("time_zone"), "value": st.sampled_from(ZONES)}),
        st.fixed_dictionaries(
            {
                "kind": st.just("bounces"),
                "op": st.sampled_from(["soft_at_least", "bounced_within_days", "bounce_event"]),
                "value": st.sampled_from([0, 1, 2, 3, *DAYS]),
            }
        ),
        st.fixed_dictionaries(
            {"kind": st.just("email"), "value": st.sampled_from(["reader1", "MAIL", "@ex", "_"])}
        ),
    )


def groups() -> st.SearchStrategy[dict[str, Any]]:
    def group(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries(
            {
                "match": st.sampled_from(["all", "any"]),
                "conditions": st.lists(children, min_size=1, max_size=3),
            }
        )

    return group(st.recursive(conditions(), group, max_leaves=5))


# ---------------------------------------------------------------- the oracle


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _attribute(c: Any, attrs: dict[str, Any]) -> bool:
    if c.op == "exists":
        return c.key in attrs
    v = attrs.get(c.key)
    if isinstance(c.value, str):
        if not isinstance(v, str):
            return False
        return v == c.value if c.op == "equals" else c.value.lower() in v.lower()
    if not _num(v):
        return False
    ops = {
        "equals": v == c.value,
        "lt": v < c.value,
        "le": v <= c.value,
        "gt": v > c.value,
        "ge": v >= c.value,
    }
    return ops[c.op]


def matches(rules: Any, p: dict[str, Any], nl_ids: list[int]) -> bool:
    if isinstance(rules, Group):
        results = [matches(c, p, nl_ids) for c in rules.conditions]
        return all(results) if rules.match == "all" else any(results)
    c, subs, created = rules, p["subs"], NOW - timedelta(days=p["age_days"])
    if c.kind == "subscription":
        return any(
            (c.status is None or s["status"] == c.status)
            and (c.newsletter is None or nl_ids[k] == c.newsletter)
            for k, s in subs.items()
        )
    if c.kind == "attribute":
        return _attribute(c, p["attributes"])
    if c.kind == "tag":
        return (c.tag in p["tags"]) == c.has
    if c.kind == "signed_up":
        if c.op == "within_days":
            return created >= NOW - timedelta(days=c.days)
        return created < c.at if c.op == "before" else created > c.at
    if c.kind == "source":
        return any(s["source"] == c.value for s in subs.values())
    if c.kind in ("language", "time_zone"):
        return p[c.kind] == c.value
    if c.kind == "bounces":
        if c.op == "soft_at_least":
            return any(s["soft"] >= c.value for s in subs.values())
        if c.op == "bounced_within_days":
            return any(
                s["last_bounce"] is not None and s["last_bounce"] <= c.value for s in subs.values()
            )
        return bool(p["bounce_event"])
    assert c.kind == "email"
    return c.value.lower() in p["email"].lower()


def _store(session: Session, crowd: list[dict[str, Any]], nl_ids: list[int]) -> dict[int, int]:
    for table in (TAG, EV, S, SUB):
        session.execute(delete(table))
    index = {}
    for i, p in enumerate(crowd):
        sub = Subscriber(
            email=p["email"],
            attributes=p["attributes"],
            language=p["language"],
            time_zone=p["time_zone"],
            created_at=NOW - timedelta(days=p["age_days"]),
        )
        session.add(sub)
        session.flush()
        assert sub.id is not None
        index[sub.id] = i
        session.add_all(SubscriberTag(subscriber_id=sub.id, tag=t) for t in p["tags"])
        for k, s in p["subs"].items():
            bounce = None if s["last_bounce"] is None else NOW - timedelta(days=s["last_bounce"])
            session.add(
                Subscription(
                    subscriber_id=sub.id,
                    newsletter_id=nl_ids[k],
                    status=s["status"],
                    consent_source=s["source"],
                    soft_bounces=s["soft"],
                    last_bounce_at=bounce,
                )
            )
        if p["bounce_event"]:
            session.add(SubscriberEvent(subscriber_id=sub.id, kind="bounce"))
    session.flush()
    return index


@pytest.fixture
def two_newsletters(session: Session) -> list[int]:
    return [make_newsletter(session).id or 0, make_newsletter(session).id or 0]


def _bind_newsletters(data: dict[str, Any], nl_ids: list[int]) -> dict[str, Any]:
    """Strategy newsletters are indexes 0/1; rules name real ids."""
    out = dict(data)
    if out.get("kind") == "subscription" and out.get("newsletter") is not None:
        out["newsletter"] = nl_ids[out["newsletter"]]
    if "conditions" in out:
        out["conditions"] = [_bind_newsletters(c, nl_ids) for c in out["conditions"]]
    return out


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    crowd=people(),
    data=st.one_of(
        groups(),
        st.builds(lambda c: {"conditions": c}, st.lists(conditions(), min_size=3, max_size=8)),
    ),
)
def test_compiled_rules_match_the_python_reading(
    session: Session, two_newsletters: list[int], crowd: list[dict[str, Any]], data: dict[str, Any]
) -> None:
    rules = segments.check_rules(_bind_newsletters(data, two_newsletters))
    index = _store(session, crowd, two_newsletters)
    got = {index[i] for i in session.execute(segment_rules.select_ids(rules, now=NOW)).scalars()}
    expected = {i for i, p in enumerate(crowd) if matches(rules, p, two_newsletters)}
    assert got == expected, rules.model_dump_json()
    assert segments.count_rules(session, rules, now=NOW) == len(expected)
    for leaf in _leaves(rules):  # and each condition alone: many checks per stored crowd
        alone = Group(conditions=[leaf])
        got = {
            index[i] for i in session.execute(segment_rules.select_ids(alone, now=NOW)).scalars()
        }
        expected = {i for i, p in enumerate(crowd) if matches(leaf, p, two_newsletters)}
        assert got == expected, leaf.model_dump_json()
    session.rollback()


def _leaves(rules: Group) -> Iterator[Any]:
    for c in rules.conditions:
        if isinstance(c, Group):
            yield from _leaves(c)
        else:
            yield c


@pytest.fixture
def statements(session: Session) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_segment_compiles_to_one_statement(
    session: Session, two_newsletters: list[int], statements: list[str]
) -> None:
    rules = segments.check_rules(
        {
            "match": "any",
            "conditions": [
                {"kind": "attribute", "key": "city", "op": "equals", "value": "Minsk"},
                {"kind": "attribute", "key": "age", "op": "ge", "value": 30},
                {"kind": "tag", "tag": "vip"},
                {"kind": "bounces", "op": "bounce_event"},
                {
                    "match": "all",
                    "conditions": [
                        {"kind": "subscription", "status": "active"},
                        {"kind": "signed_up", "op": "within_days", "days": 7},
                        {"kind": "language", "value": "be"},
                    ],
                },
            ],
        }
    )
    session.connection()  # the connection's own set-up statements are not the segment's
    statements.clear()
    segments.count_rules(session, rules, newsletter_id=two_newsletters[0])
    segments.count_rules(session, rules)
    list(session.execute(segment_rules.select_ids(rules)).scalars())
    assert len(statements) == 3, statements
    assert all(s.lstrip().upper().startswith("SELECT") for s in statements)


@pytest.mark.parametrize(
    "bad",
    [
        {"conditions": [{"kind": "attribute", "key": 'a"b', "op": "exists"}]},
        {"conditions": [{"kind": "attribute", "key": "age", "op": "lt", "value": "ten"}]},
        {"conditions": [{"kind": "attribute", "key": "age", "op": "equals"}]},
        {"conditions": [{"kind": "engagement", "opened": 3}]},
        {"conditions": [{"kind": "signed_up", "op": "before"}]},
        {"match": "some"},
        {"conditions": [{"kind": "tag", "tag": ""}]},
        [1, 2],
    ],
)
def test_bad_rules_are_refused_with_a_reason(bad: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        segments.check_rules(bad)
    assert str(refused.value).startswith("rules")


def test_text_and_number_attributes_never_match_each_other(session: Session) -> None:
    """``->>`` reads a number as text on PostgreSQL: the JSON type guard keeps "5" from 5."""
    for table in (TAG, EV, S, SUB):
        session.execute(delete(table))
    number = Subscriber(email="n@example.org", attributes={"age": 5})
    text = Subscriber(email="t@example.org", attributes={"age": "5"})
    nothing = Subscriber(email="z@example.org", attributes={"age": None})
    session.add_all([number, text, nothing])
    session.flush()

    def ids(value: Any, op: str = "equals") -> set[int | None]:
        rules = segments.check_rules(
            {"conditions": [{"kind": "attribute", "key": "age", "op": op, "value": value}]}
        )
        return set(session.execute(segment_rules.select_ids(rules)).scalars())

    assert ids("5") == {text.id}
    assert ids(5) == {number.id}
    assert ids(4, "gt") == {number.id}
    assert ids(None, "exists") == {number.id, text.id, nothing.id}
