"""Each feed source is fetched at its own interval (minutes, 5 to 1440, 30 unless set): the beat
respects it over a real HTTP server; the API, the page and the CLI set it, and refuse a bad one
with the reason (both databases; the CLI's one red line is in ``test_cli_autopilot``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.autopilot import sources
from newsletter.config import Settings
from newsletter.exceptions import InvalidInput
from newsletter.models import Source, utcnow
from newsletter.transports.sink import SMTPSink
from tests.conftest import make_newsletter
from tests.integration.admin_support import Editor
from tests.integration.autopilot_support import FeedState, rss
from tests.integration.test_autopilot import feed, sink, the_beat, weekly

__all__ = ["feed", "sink"]  # the autopilot tests' fixtures, used by name


@pytest.fixture
def api(settings: Settings, session: Session) -> Iterator[tuple[TestClient, dict[str, str]]]:
    token = api_tokens.create(session, "tests")
    session.commit()
    with TestClient(create_app(settings, dispatch=lambda _issue_id: None)) as client:
        yield client, {"Authorization": f"Bearer {token}"}


def test_the_beat_fetches_each_feed_at_its_own_interval(
    session: Session, settings: Settings, feed: tuple[str, FeedState], sink: SMTPSink
) -> None:
    url, state = feed
    nl = weekly(session, url)  # its first feed: the default, 30 minutes
    often = sources.add_feed(session, newsletter=nl.id, url=f"{url}?often", fetch_minutes=10)  # type: ignore[arg-type]
    rarely = sources.add_feed(session, newsletter=nl.id, url=f"{url}?rarely", fetch_minutes="120")  # type: ignore[arg-type]
    default = sources.list_sources(session, nl.id)[0]  # type: ignore[arg-type]
    session.commit()
    assert default.fetch_minutes == sources.FETCH_MINUTES == 30
    state.serve(rss([]))
    start = utcnow() + timedelta(days=30)  # far from any run: fetching only

    def fetched_at(minutes: int) -> list[int | None]:
        done = the_beat(settings, sink, start + timedelta(minutes=minutes)).fetched
        return sorted(f.source_id for f in done)

    everyone = sorted([default.id, often.id, rarely.id])
    assert fetched_at(0) == everyone  # never fetched: all of them
    assert fetched_at(9) == []
    assert fetched_at(10) == [often.id]
    assert fetched_at(30) == sorted([default.id, often.id])
    assert fetched_at(119) == sorted([default.id, often.id])  # 40 and 60 minutes after theirs
    assert fetched_at(120) == [rarely.id]
    assert len(state.requests) == 3 + 1 + 2 + 2 + 1


def test_the_domain_refuses_an_interval_out_of_bounds(session: Session) -> None:
    nl = make_newsletter(session)
    for bad, reason in (
        (4, "between 5 and 1440 minutes (a day), not 4"),
        ("1441", "not 1441"),
        ("soon", "'soon' is not whole minutes"),
    ):
        with pytest.raises(InvalidInput, match=re.escape(reason)):
            sources.add_feed(
                session, newsletter=nl.id, url="https://n.example.org/f", fetch_minutes=bad
            )  # type: ignore[arg-type]
    query = sources.add_query(session, newsletter=nl.id, tag="sanctions")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="is a library query: it is not fetched"):
        sources.set_fetch_minutes(session, query.id, 60)  # type: ignore[arg-type]


def test_the_api_sets_the_interval_and_refuses_a_bad_one_with_a_422(
    api: tuple[TestClient, dict[str, str]], session: Session
) -> None:
    client, auth = api
    nl = make_newsletter(session)
    base = f"/api/newsletters/{nl.id}/autopilot/sources"
    feed = {"url": "https://n.example.org/rss"}
    bad = client.post(base, json={**feed, "fetch_minutes": 2}, headers=auth)
    assert bad.status_code == 422 and "greater than or equal to 5" in bad.text
    added = client.post(base, json={**feed, "fetch_minutes": 15}, headers=auth)
    assert added.status_code == 201 and added.json()["fetch_minutes"] == 15
    source_id = added.json()["id"]
    too_long = client.patch(f"{base}/{source_id}", json={"fetch_minutes": 2000}, headers=auth)
    assert too_long.status_code == 422 and "less than or equal to 1440" in too_long.text
    changed = client.patch(f"{base}/{source_id}", json={"fetch_minutes": 90}, headers=auth)
    assert changed.status_code == 200 and changed.json()["fetch_minutes"] == 90
    query = client.post(base, json={"tag": "sanctions"}, headers=auth).json()["id"]
    refused = client.patch(f"{base}/{query}", json={"fetch_minutes": 60}, headers=auth)
    assert refused.status_code == 422 and "library query" in refused.text
    listed = client.get(f"/api/newsletters/{nl.id}/autopilot", headers=auth).json()["sources"]
    assert [s["fetch_minutes"] for s in listed] == [90, 30]


def test_the_page_sets_the_interval_and_says_why_it_refuses_one(
    editor: Editor, session: Session
) -> None:
    nl = make_newsletter(session)
    url = f"/admin/newsletters/{nl.id}/autopilot/sources"
    refused = editor.post(url, {"url": "https://n.example.org/rss", "fetch_minutes": "1"})
    assert refused.status_code == 422
    assert "between 5 and 1440 minutes (a day), not 1" in refused.text
    assert 'value="https://n.example.org/rss"' in refused.text  # what was typed, kept
    added = editor.post(url, {"url": "https://n.example.org/rss", "fetch_minutes": "45"})
    assert added.status_code == 303
    source = sources.list_sources(session, nl.id)[0]  # type: ignore[arg-type]
    assert source.fetch_minutes == 45
    changed = editor.post(f"{url}/{source.id}", {"fetch_minutes": "240"})
    assert changed.status_code == 303
    bad = editor.post(f"{url}/{source.id}", {"fetch_minutes": "every hour"})
    assert bad.status_code == 422 and "&#39;every hour&#39; is not whole minutes" in bad.text
    session.expire_all()
    assert session.get(Source, source.id).fetch_minutes == 240  # type: ignore[union-attr]
    page = editor.client.get(f"/admin/newsletters/{nl.id}/autopilot").text
    assert "every 240 min" in page and 'id="every-' in page
