"""The subscriber page of the editor UI: the story, and each form refused or done."""

from __future__ import annotations

import html
import json
import re

from sqlmodel import Session, select

from newsletter.models import (
    AuditEntry,
    Newsletter,
    Subscriber,
    SubscriberEvent,
    Subscription,
)
from tests.conftest import make_newsletter, make_subscribers
from tests.integration.admin_support import EDITOR_EMAIL, Editor

ACTOR = f"editor {EDITOR_EMAIL}"


def _reader(session: Session) -> tuple[Subscriber, Newsletter, Newsletter]:
    weekly = make_newsletter(session, name="Weekly")
    daily = make_newsletter(session, name="Daily")
    person = make_subscribers(session, weekly, 1)[0]
    session.commit()
    return person, weekly, daily


def _textarea(page: str) -> str:
    found = re.search(r'<textarea id="p-attributes"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, "no attributes box"
    return html.unescape(found.group(1))


def _status(session: Session, sid: int, nid: int) -> str:
    session.expire_all()
    return session.exec(
        select(Subscription.status).where(
            Subscription.subscriber_id == sid, Subscription.newsletter_id == nid
        )
    ).one()


def test_the_list_links_to_the_page_which_tells_the_story(editor: Editor, session: Session) -> None:
    person, weekly, _daily = _reader(session)
    listed = editor.client.get("/admin/subscribers", params={"email": person.email}).text
    assert f'href="/admin/subscribers/{person.id}"' in listed
    page = editor.client.get(f"/admin/subscribers/{person.id}")
    assert page.status_code == 200
    assert f"<h1>{person.email}</h1>" in page.text
    assert weekly.name in page.text and "source: " in page.text
    assert "Export their data" in page.text and "Type their address to erase them" in page.text
    assert editor.client.get("/admin/subscribers/999999").status_code == 404
    assert editor.client.get("/admin/subscribers/new").status_code == 200  # still the form


def test_bad_edits_come_back_with_the_reason_and_what_was_typed(
    editor: Editor, session: Session
) -> None:
    person, _weekly, _daily = _reader(session)
    url = f"/admin/subscribers/{person.id}"
    typed = '{"city": "Minsk", "broken": }'
    refused = editor.post(f"{url}/attributes", {"attributes": typed})
    assert refused.status_code == 422
    assert "attributes are not valid JSON" in refused.text
    assert 'class="error"' in refused.text
    assert _textarea(refused.text) == typed  # nothing lost
    nested = editor.post(f"{url}/attributes", {"attributes": '{"a": {"b": 1}}'})
    assert nested.status_code == 422 and "is an object" in nested.text
    session.expire_all()
    assert session.get(Subscriber, person.id).attributes == {}  # type: ignore[union-attr]

    saved = editor.post(f"{url}/attributes", {"attributes": '{"city": "Minsk", "age": 41}'})
    assert saved.status_code == 303
    page = editor.client.get(saved.headers["location"]).text
    assert "Attributes saved." in page
    assert json.loads(_textarea(page)) == {"city": "Minsk", "age": 41}
    assert "details edited" in page and ACTOR in page

    bad = editor.post(f"{url}/edit", {"name": "Olga", "language": "xx_YY!", "time_zone": ""})
    assert bad.status_code == 422 and "BCP 47" in bad.text
    assert 'value="xx_YY!"' in bad.text
    done = editor.post(
        f"{url}/edit", {"name": "Olga", "language": "be", "time_zone": "Europe/Minsk"}
    )
    assert done.status_code == 303
    session.expire_all()
    stored = session.get(Subscriber, person.id)
    assert stored is not None
    assert (stored.name, stored.language, stored.time_zone) == ("Olga", "be", "Europe/Minsk")


def test_subscribe_unsubscribe_resend_and_tags(editor: Editor, session: Session) -> None:
    person, weekly, daily = _reader(session)
    sid, url = person.id or 0, f"/admin/subscribers/{person.id}"
    no_reason = editor.post(f"{url}/subscribe", {"newsletter": daily.slug, "mode": "consent"})
    assert no_reason.status_code == 422 and "how you have their consent" in no_reason.text
    done = editor.post(
        f"{url}/subscribe",
        {"newsletter": daily.slug, "mode": "consent", "reason": "paper form at the fair"},
    )
    assert done.status_code == 303, done.text
    assert _status(session, sid, daily.id or 0) == "active"

    assert editor.post(f"{url}/unsubscribe", {"newsletter": weekly.slug}).status_code == 303
    assert _status(session, sid, weekly.id or 0) == "unsubscribed"
    again = editor.post(f"{url}/unsubscribe", {"newsletter": weekly.slug})
    assert again.status_code == 409 and "nothing to unsubscribe" in again.text

    resend = editor.post(f"{url}/resend", {"newsletter": daily.slug})
    assert resend.status_code == 409 and "nothing to confirm" in resend.text

    assert editor.post(f"{url}/tags", {"tag": "donor"}).status_code == 303
    page = editor.client.get(url).text
    assert '<span class="tag">donor</span>' in page
    assert "paper form at the fair" in page  # the reason, in the history
    assert editor.post(f"{url}/tags/remove", {"tag": "donor"}).status_code == 303
    assert '<span class="tag">donor</span>' not in editor.client.get(url).text

    events = session.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == sid)).all()
    by = {(e.kind, e.detail.get("by")) for e in events}
    assert {("admin-subscribe", ACTOR), ("unsubscribe", ACTOR), ("tag", ACTOR)} <= by


def test_export_downloads_and_erase_needs_the_typed_address(
    editor: Editor, session: Session
) -> None:
    person, _weekly, _daily = _reader(session)
    sid, url = person.id or 0, f"/admin/subscribers/{person.id}"
    export = editor.client.get(f"{url}/export.json")
    assert export.status_code == 200
    assert "attachment" in export.headers["content-disposition"]
    assert export.json()["subscriber"]["email"] == person.email

    wrong = editor.post(f"{url}/erase", {"typed": "someone.else@example.org"})
    assert wrong.status_code == 422
    assert "type the subscriber's email address" in html.unescape(wrong.text)
    session.expire_all()
    assert session.get(Subscriber, sid).email == person.email  # type: ignore[union-attr]
    assert "subscriber.erase" not in session.exec(select(AuditEntry.action)).all()  # refused

    done = editor.post(f"{url}/erase", {"typed": person.email.upper()})
    assert done.status_code == 303
    page = editor.client.get(url).text
    assert f"Erased subscriber {sid}" in page and person.email not in page
    actions = session.exec(select(AuditEntry.action).where(AuditEntry.target_id == sid)).all()
    assert {"subscriber.export", "subscriber.erase"} <= set(actions)
