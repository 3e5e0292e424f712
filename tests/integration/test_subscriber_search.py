"""Finding subscribers at scale: a whole address on the unique index (any case), parts of one
(trigram index on PostgreSQL), counts capped at a small cap, keyset pages (``audience.search``,
``/api/subscribers`` and ``/admin/subscribers``)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlmodel import Session

from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.api.admin import subscribers as admin_subscribers
from newsletter.audience import search
from newsletter.config import Settings
from newsletter.models import Newsletter, Subscriber, Subscription, SubscriptionStatus
from tests.conftest import make_newsletter
from tests.integration.admin_support import Editor  # fixtures: tests/integration/conftest.py


@pytest.fixture
def people(session: Session) -> tuple[Newsletter, Newsletter, list[Subscriber]]:
    """40 readers with mixed-case addresses on two newsletters, statuses drawn at random."""
    rng = random.Random(14)
    weekly, daily = make_newsletter(session), make_newsletter(session)
    folks = []
    for i in range(40):
        local = rng.choice(["Anna", "boris", "CHLOE", "dmitry", "eva_k", "f%x"]) + str(i)
        domain = rng.choice(["Mail.example.org", "news.example.net", "post.example.com"])
        folks.append(Subscriber(email=f"{local}@{domain}", name=f"Reader {i}"))
    session.add_all(folks)
    session.flush()
    for i, person in enumerate(folks):
        assert person.id is not None and weekly.id is not None and daily.id is not None
        status = rng.choice(list(SubscriptionStatus))
        session.add(Subscription(subscriber_id=person.id, newsletter_id=weekly.id, status=status))
        if i % 3 == 0:
            session.add(
                Subscription(subscriber_id=person.id, newsletter_id=daily.id, status=status)
            )
    session.commit()
    return weekly, daily, folks


@pytest.fixture
def statements(session: Session) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = session.get_bind()

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_whole_address_is_looked_up_on_its_hash_whatever_its_case(
    session: Session, people: tuple[Newsletter, Newsletter, list[Subscriber]], statements: list[str]
) -> None:
    *_, folks = people
    target = folks[7]
    page = search.search(session, email=f"  {target.email.upper()} ")
    assert [p.id for p, _subs in page.items] == [target.id]
    assert page.exact_address and (page.total, page.capped) == (1, False)
    reads = [s for s in statements if "FROM subscriber" in s and "email_hash" in s]
    assert reads, statements
    assert not any(" LIKE " in s.upper() for s in statements), "an exact address must not scan"


def test_a_partial_address_that_looks_whole_still_finds_what_contains_it(
    session: Session, people: tuple[Newsletter, Newsletter, list[Subscriber]]
) -> None:
    *_, folks = people
    target = folks[3]
    cut = target.email[:-1]  # "anna3@mail.example.or": shaped like an address, belongs to none
    page = search.search(session, email=cut.upper())
    assert not page.exact_address
    assert target.id in {p.id for p, _ in page.items}


TERMS = ["example.org", "ANNA", "a1", "_k", "f%x", "@POST.", "xyz-nobody", "%", "_"]


def test_substring_search_matches_a_python_filter(
    session: Session, people: tuple[Newsletter, Newsletter, list[Subscriber]]
) -> None:
    weekly, _daily, folks = people
    active = {
        sub.subscriber_id
        for sub in session.query(Subscription).filter_by(newsletter_id=weekly.id, status="active")
    }
    for term in TERMS:
        expected = sorted(p.id for p in folks if term.lower() in p.email.lower() and p.id)
        page = search.search(session, email=term, limit=100)
        assert [p.id for p, _ in page.items] == expected, term
        assert page.total == len(expected) and not page.capped
        # with a status on one newsletter: the same subscription must hold both
        found = search.search(
            session, email=term, status="active", newsletter=weekly.slug, limit=100
        )
        assert [p.id for p, _ in found.items] == [i for i in expected if i in active], term


def test_status_alone_lists_each_subscriber_once_in_id_order(
    session: Session, people: tuple[Newsletter, Newsletter, list[Subscriber]]
) -> None:
    _weekly, daily, _folks = people
    for status in SubscriptionStatus:
        subs = session.query(Subscription).filter_by(status=status.value).all()
        expected = sorted({s.subscriber_id for s in subs})
        page = search.search(session, status=status.value, limit=100)
        assert [p.id for p, _ in page.items] == expected, status
        assert page.total == len(expected)
        on_daily = sorted(s.subscriber_id for s in subs if s.newsletter_id == daily.id)
        page = search.search(session, status=status.value, newsletter=daily.id, limit=100)
        assert [p.id for p, _ in page.items] == on_daily


def test_the_count_stops_at_the_cap(
    session: Session, people: tuple[Newsletter, Newsletter, list[Subscriber]]
) -> None:
    *_, folks = people
    assert search.search(session, count_cap=5).total == 5
    assert search.search(session, count_cap=5).capped
    exact = search.search(session, count_cap=len(folks))
    assert (exact.total, exact.capped) == (len(folks), False)
    few = search.search(session, email="example.com", count_cap=1000)
    capped = search.search(session, email="example.com", count_cap=2)
    assert few.total > 2 and (capped.total, capped.capped) == (2, True)
    assert [p.id for p, _ in capped.items] == [p.id for p, _ in few.items]  # the rows still all


def test_keyset_pages_walk_every_match_once_both_ways(
    session: Session, people: tuple[Newsletter, Newsletter, list[Subscriber]]
) -> None:
    *_, folks = people
    walked: list[int] = []
    page = search.search(session, limit=7)
    assert page.previous_before is None
    while True:
        walked.extend(p.id or 0 for p, _ in page.items)
        if page.next_after is None:
            break
        page = search.search(session, limit=7, after=page.next_after)
    assert walked == sorted(p.id or 0 for p in folks)
    back = search.search(session, limit=7, before=walked[14])
    assert [p.id for p, _ in back.items] == walked[7:14]
    assert back.previous_before == walked[7] and back.next_after == walked[13]


def test_postgresql_answers_a_part_from_the_trigram_index(
    session: Session, people: tuple[Newsletter, Newsletter, list[Subscriber]]
) -> None:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the trigram index is PostgreSQL's (SQLite has none)")
    session.execute(text("SET LOCAL enable_seqscan = off"))  # 40 rows: make the choice visible
    plan = "\n".join(
        session.execute(
            text("EXPLAIN SELECT id FROM subscriber WHERE email ILIKE :p"), {"p": "%ample.ne%"}
        ).scalars()
    )
    assert "ix_subscriber_email_trgm" in plan, plan


def test_the_api_reports_a_capped_count_and_a_keyset_cursor(
    settings: Settings,
    session: Session,
    people: tuple[Newsletter, Newsletter, list[Subscriber]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    *_, folks = people
    token = api_tokens.create(session, "search-tests")
    session.commit()
    monkeypatch.setattr(search, "COUNT_CAP", 10)
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings, dispatch=lambda _issue_id: None)) as client:
        first = client.get("/api/subscribers", params={"per_page": 25}, headers=auth).json()
        assert (first["total"], first["total_capped"]) == (10, True)
        assert len(first["items"]) == 25 and first["next_after"] == first["items"][-1]["id"]
        rest = client.get(
            "/api/subscribers", params={"per_page": 25, "after": first["next_after"]}, headers=auth
        ).json()
        assert [i["id"] for i in first["items"] + rest["items"]] == sorted(p.id for p in folks)
        assert rest["next_after"] is None
        one = client.get(
            "/api/subscribers", params={"email": folks[0].email.swapcase()}, headers=auth
        ).json()
        assert [i["id"] for i in one["items"]] == [folks[0].id]
        assert (one["total"], one["total_capped"]) == (1, False)


def test_the_list_page_says_cap_plus(
    editor: Editor,
    session: Session,
    people: tuple[Newsletter, Newsletter, list[Subscriber]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(search, "COUNT_CAP", 10)
    monkeypatch.setattr(admin_subscribers, "PER_PAGE", 25)
    page = editor.client.get("/admin/subscribers").text
    assert "10+ subscribers" in page and "counting stops at 10" in page
    assert "page 1</span>" in page and 'rel="next"' in page  # no "of N": N is unknown
    monkeypatch.setattr(search, "COUNT_CAP", 1000)
    page = editor.client.get("/admin/subscribers").text
    assert "40 subscribers; showing 1\u201325" in page and "page 1 of 2" in page
    assert "40+" not in page and "counting stops" not in page
