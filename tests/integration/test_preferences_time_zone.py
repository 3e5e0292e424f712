"""A reader's time zone (a local-time send reaches them at their 08:00): in the preference centre
shown, saved with a record of the change, cleared back to the newsletter's, a bad zone refused;
by import set, a bad zone a warning on its line and left out (the subscriber still imported)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from newsletter.audience.links import Purpose, make_token
from newsletter.config import Settings
from newsletter.models import Newsletter, Subscriber, SubscriberEvent
from tests.conftest import make_newsletter, make_subscribers
from tests.integration.public_support import client, outbox
from tests.unit.test_locales import catalogue

__all__ = ["client", "outbox"]  # fixtures


def _preferences(settings: Settings, person: Subscriber) -> str:
    assert person.id is not None
    return f"/preferences/{make_token(settings.secret_key, Purpose.preferences, person.id, None)}"


def _reader(session: Session) -> tuple[Newsletter, Subscriber]:
    newsletter = make_newsletter(session)
    (person,) = make_subscribers(session, newsletter, 1)
    return newsletter, person


def _zone(session: Session, person: Subscriber) -> str | None:
    session.expire_all()
    found = session.get(Subscriber, person.id)
    assert found is not None
    return found.time_zone


def test_the_preference_centre_offers_the_zones_with_the_readers_selected(
    client: TestClient, session: Session, settings: Settings
) -> None:
    _, person = _reader(session)
    person.time_zone = "Europe/Vilnius"
    session.add(person)
    session.commit()
    page = client.get(_preferences(settings, person)).text
    assert "<option selected>Europe/Vilnius</option>" in page
    assert "<option>America/New_York</option>" in page
    assert "The newsletter's time zone</option>" in page


def test_saving_a_time_zone_keeps_it_and_records_the_change(
    client: TestClient, session: Session, settings: Settings
) -> None:
    newsletter, person = _reader(session)
    data = {"name": person.name, "newsletters": [str(newsletter.id)], "time_zone": "Asia/Tbilisi"}
    response = client.post(_preferences(settings, person), data=data)
    assert response.status_code == 200
    assert _zone(session, person) == "Asia/Tbilisi"
    events = session.exec(
        select(SubscriberEvent)
        .where(SubscriberEvent.subscriber_id == person.id)
        .order_by(col(SubscriberEvent.id))
    ).all()
    assert [(e.kind, e.detail) for e in events] == [
        ("preferences", {"changed": ["time_zone"], "time_zone": "Asia/Tbilisi"})
    ]

    data["time_zone"] = "newsletter"  # back to the newsletter's
    assert client.post(_preferences(settings, person), data=data).status_code == 200
    assert _zone(session, person) is None


def test_a_zone_zoneinfo_does_not_know_is_422_with_the_reason_and_nothing_changes(
    client: TestClient, session: Session, settings: Settings
) -> None:
    newsletter, person = _reader(session)
    data = {"name": "Someone Else", "newsletters": [str(newsletter.id)], "time_zone": "Mars/Base"}
    response = client.post(_preferences(settings, person), data=data)
    assert response.status_code == 422
    assert "is not an IANA time zone" in response.text
    session.expire_all()
    found = session.get(Subscriber, person.id)
    assert found is not None and (found.name, found.time_zone) == (person.name, None)


def test_a_form_without_the_field_leaves_the_zone_as_it_is(
    client: TestClient, session: Session, settings: Settings
) -> None:
    newsletter, person = _reader(session)
    person.time_zone = "Europe/Warsaw"
    session.add(person)
    session.commit()
    data = {"name": person.name, "newsletters": [str(newsletter.id)]}
    assert client.post(_preferences(settings, person), data=data).status_code == 200
    assert _zone(session, person) == "Europe/Warsaw"


def test_an_import_sets_zones_and_a_zone_zoneinfo_does_not_know_is_a_warning_left_out(
    session: Session,
) -> None:
    import io

    from newsletter.audience import csv_import
    from newsletter.audience.csv_report import ImportReport

    newsletter = make_newsletter(session)
    data = "email,time zone\nzoned@example.org,Asia/Tbilisi\njunk@example.org,Mars/Base\n"
    report = ImportReport()
    csv_import.import_csv(
        session, io.BytesIO(data.encode()), report=report, newsletters=[newsletter.slug]
    )
    session.commit()
    zones = dict(
        session.exec(
            select(Subscriber.email, Subscriber.time_zone).where(
                col(Subscriber.email).in_(["zoned@example.org", "junk@example.org"])
            )
        ).all()
    )
    assert zones == {"zoned@example.org": "Asia/Tbilisi", "junk@example.org": None}
    assert [(w.line, "time_zone" in w.reason) for w in report.warnings] == [(3, True)]


def test_a_reader_chooses_their_language_and_the_page_answers_in_it(
    client: TestClient, session: Session, settings: Settings
) -> None:
    newsletter, person = _reader(session)
    page = client.get(_preferences(settings, person)).text
    assert '<option value="be">Беларуская</option>' in page
    assert "The newsletter's language</option>" in page

    data = {"name": person.name, "newsletters": [str(newsletter.id)], "language": "be"}
    response = client.post(_preferences(settings, person), data=data)
    assert response.status_code == 200
    session.expire_all()
    found = session.get(Subscriber, person.id)
    assert found is not None and found.language == "be"
    assert '<html lang="be"' in response.text
    assert catalogue("be")["The newsletter's language"] in response.text
    assert '<option value="be" selected>Беларуская</option>' in response.text
    events = session.exec(
        select(SubscriberEvent).where(SubscriberEvent.subscriber_id == person.id)
    ).all()
    assert [(e.kind, e.detail) for e in events] == [
        ("preferences", {"changed": ["language"], "language": "be"})
    ]

    data["language"] = "newsletter"  # back to the newsletter's
    assert client.post(_preferences(settings, person), data=data).status_code == 200
    session.expire_all()
    found = session.get(Subscriber, person.id)
    assert found is not None and found.language is None


def test_a_language_we_do_not_ship_is_422_with_the_reason_and_nothing_changes(
    client: TestClient, session: Session, settings: Settings
) -> None:
    newsletter, person = _reader(session)
    data = {"name": "Someone Else", "newsletters": [str(newsletter.id)], "language": "xx"}
    response = client.post(_preferences(settings, person), data=data)
    assert response.status_code == 422
    assert "unknown language &#39;xx&#39;: one of en, be" in response.text
    session.expire_all()
    found = session.get(Subscriber, person.id)
    assert found is not None and found.language != "xx" and found.name != "Someone Else"


def test_the_tracking_notice_is_worded_in_the_readers_language(
    client: TestClient, session: Session, settings: Settings
) -> None:
    newsletter, person = _reader(session)
    newsletter.track_clicks = True
    person.language = "ru"
    session.add_all([newsletter, person])
    session.commit()
    page = client.get(_preferences(settings, person)).text
    worded = catalogue("ru")["%(name)s counts which links in its emails I click"]
    assert worded % {"name": newsletter.name} in page
    assert catalogue("ru")["The newsletter's time zone"] in page
    assert "counts which links" not in page
