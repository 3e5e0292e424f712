"""The subscriber pages of the editor UI: list and filters, add, CSV import and export."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from sqlmodel import Session, select

from newsletter.audience import import_jobs
from newsletter.models import Subscriber, Subscription, SubscriptionStatus
from tests.conftest import make_newsletter, make_subscribers
from tests.integration.admin_support import Editor  # fixtures: tests/integration/conftest.py

ROW_EMAIL = re.compile(
    r"<td><a href=\"/admin/subscribers/\d+\">([^<@\s]+@[^<\s]+)</a>(?:<div|</td>)"
)


def _emails(html: str) -> list[str]:
    return ROW_EMAIL.findall(html)


def _follow(editor: Editor, response: Any) -> str:
    assert response.status_code == 303, response.text
    page = editor.client.get(response.headers["location"])
    assert page.status_code == 200
    return str(page.text)


def _statuses(session: Session, email: str) -> dict[int, str]:
    session.expire_all()
    person = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
    assert person is not None, f"{email} was not stored"
    subs = session.exec(select(Subscription).where(Subscription.subscriber_id == person.id)).all()
    return {s.newsletter_id: s.status for s in subs}


# ---------------------------------------------------------------- list


def test_list_filters_by_email_status_and_newsletter(editor: Editor, session: Session) -> None:
    weekly = make_newsletter(session, name="Weekly")
    daily = make_newsletter(session, name="Daily")
    active = make_subscribers(session, weekly, 3, domain="weekly.example.org")
    pending = make_subscribers(
        session, daily, 2, status=SubscriptionStatus.pending, domain="daily.example.org"
    )
    gone = make_subscribers(
        session, weekly, 1, status=SubscriptionStatus.unsubscribed, domain="gone.example.org"
    )
    everyone = {p.email for p in active + pending + gone}

    def listed(**params: str) -> set[str]:
        page = editor.client.get("/admin/subscribers", params=params)
        assert page.status_code == 200, page.text
        return set(_emails(page.text))

    assert listed() == everyone
    assert listed(email="DAILY.example") == {p.email for p in pending}
    assert listed(status="pending") == {p.email for p in pending}
    assert listed(newsletter=weekly.slug) == {p.email for p in active + gone}
    assert listed(newsletter=weekly.slug, status="unsubscribed") == {gone[0].email}
    assert listed(newsletter=daily.slug, status="active") == set()
    assert listed(email="", status="", newsletter="") == everyone

    page = editor.client.get("/admin/subscribers", params={"status": "pending"}).text
    assert "2 subscribers" in page
    assert 'Daily: <span class="status status-pending">pending</span>' in page
    assert f'<option value="{weekly.slug}"' in page
    assert "/admin/subscribers/export.csv?status=pending" in page


def test_list_rejects_an_unknown_status(editor: Editor) -> None:
    page = editor.client.get("/admin/subscribers", params={"status": "sleeping"})
    assert page.status_code == 422
    assert "is not one of" in page.text


def test_list_pages_by_fifty(editor: Editor, session: Session) -> None:
    weekly = make_newsletter(session)
    people = make_subscribers(session, weekly, 55)
    first = editor.client.get("/admin/subscribers").text
    second = editor.client.get("/admin/subscribers", params={"page": "2"}).text
    assert "55 subscribers" in first and "page 1 of 2" in first
    assert _emails(first) == [p.email for p in people[:50]]
    assert _emails(second) == [p.email for p in people[50:]]
    # the Next link goes by keyset (after the last id shown), Previous back before the first
    assert f'href="/admin/subscribers?after={people[49].id}&amp;page=2"' in first
    after = editor.client.get("/admin/subscribers", params={"after": people[49].id, "page": 2})
    assert _emails(after.text) == [p.email for p in people[50:]]
    assert "showing 51\u201355" in after.text and "page 2 of 2" in after.text
    assert 'href="/admin/subscribers?page=1"' in after.text
    back = editor.client.get("/admin/subscribers", params={"before": people[50].id}).text
    assert _emails(back) == [p.email for p in people[:50]]


def test_list_needs_a_signed_in_editor(anonymous: Any) -> None:
    response = anonymous.get("/admin/subscribers", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login")


# ---------------------------------------------------------------- add


def test_add_subscriber_and_refuse_a_duplicate(editor: Editor, session: Session) -> None:
    weekly = make_newsletter(session)
    daily = make_newsletter(session)
    form = editor.client.get("/admin/subscribers/new").text
    assert f'value="{weekly.slug}"' in form and f'value="{editor.csrf}"' in form

    added = editor.post(
        "/admin/subscribers",
        {
            "email": "Reader@Example.ORG",
            "name": "New Reader",
            "newsletters": [weekly.slug, daily.slug],
            "status": "pending",
        },
    )
    page = _follow(editor, added)
    assert "Reader@example.org added (pending)." in page
    assert _emails(page) == ["Reader@example.org"]
    found = editor.client.get("/admin/subscribers", params={"email": "READER@example"}).text
    assert _emails(found) == ["Reader@example.org"]  # whatever the case of the search
    assert _statuses(session, "Reader@example.org") == {weekly.id: "pending", daily.id: "pending"}

    again = editor.post(
        "/admin/subscribers",
        {"email": " Reader@EXAMPLE.org ", "newsletters": [weekly.slug], "status": "active"},
        headers={"referer": "https://testserver/admin/subscribers/new"},
    )
    assert again.headers["location"] == "/admin/subscribers/new"
    assert "is already subscriber" in _follow(editor, again)
    assert _statuses(session, "Reader@example.org") == {weekly.id: "pending", daily.id: "pending"}


def test_add_refuses_other_statuses_and_no_newsletter(editor: Editor, session: Session) -> None:
    weekly = make_newsletter(session)
    for data, message in (
        ({"email": "x@example.org", "newsletters": [weekly.slug], "status": "bounced"},
         "active or pending"),
        ({"email": "x@example.org", "status": "active"}, "at least one newsletter"),
    ):  # fmt: skip
        refused = editor.post("/admin/subscribers", data)
        assert message in _follow(editor, refused)
    session.expire_all()
    assert (
        session.exec(select(Subscriber).where(Subscriber.email == "x@example.org")).first() is None
    )


# ---------------------------------------------------------------- import and export


def test_csv_import_previews_then_imports_and_reports_bad_rows_by_line(
    editor: Editor, session: Session
) -> None:
    weekly = make_newsletter(session)
    daily = make_newsletter(session)
    page = editor.client.get(f"/admin/subscribers/import?newsletter={weekly.slug}").text
    assert 'enctype="multipart/form-data"' in page and f'value="{weekly.slug}"' in page
    body = (
        "email,name,newsletters,city\n"
        "first@example.org,First,,Minsk\n"
        "not an address,Broken,,\n"
        f"second@example.org,Second,{daily.slug},\n"
        "third@example.org,Third,no-such-newsletter,\n"
    )
    uploaded = editor.post(
        "/admin/subscribers/import",
        {"came_from": weekly.slug},
        files={"file": ("people.csv", body.encode(), "text/csv")},
    )
    assert uploaded.status_code == 303, uploaded.text
    job_url = uploaded.headers["location"]
    preview = _follow(editor, uploaded)
    # the newsletter the editor came from is ticked; the unknown column is offered as attribute
    assert re.search(rf'value="{weekly.slug}" checked', preview)
    assert not re.search(rf'value="{daily.slug}" checked', preview)
    assert '<option value="attribute:city">' in preview
    verdicts = re.findall(r'class="verdict verdict-(\w+)"', preview)
    assert verdicts == ["new", "skip", "new", "skip"]
    assert _statuses_or_none(session, "first@example.org") is None  # a preview imports nothing

    form = {
        "col-0": "email", "col-1": "name", "col-2": "newsletters", "col-3": "attribute:city",
        "newsletters": [weekly.slug], "existing": "keep",
    }  # fmt: skip
    started = editor.post(f"{job_url}/start", form)
    assert started.status_code == 303 and started.headers["location"] == job_url
    progress = editor.client.get(job_url).text
    assert 'Status: <span class="status status-queued">' in progress
    assert '<meta http-equiv="refresh"' in progress  # without JavaScript the page refreshes
    job_id = int(job_url.rsplit("/", 1)[1])
    import_jobs.run(session, job_id)  # what the worker does (a real one: test_import_jobs.py)

    done = editor.client.get(job_url).text
    assert "4 rows: 2 imported" in done and "2 with errors" in done
    assert "line 3: invalid email address" in done
    assert "line 5: unknown newsletter" in done
    state = editor.client.get(f"{job_url}/status.json").json()
    assert state["status"] == "done" and state["counts"]["imported"] == 2
    report = editor.client.get(f"{job_url}/report.csv")
    assert report.status_code == 200
    rows = list(csv.reader(io.StringIO(report.text)))
    assert rows[0] == ["line", "kind", "reason"] and [r[0] for r in rows[1:]] == ["3", "5"]
    assert _statuses(session, "first@example.org") == {weekly.id: "active"}
    assert _statuses(session, "second@example.org") == {daily.id: "active"}
    first = session.exec(select(Subscriber).where(Subscriber.email == "first@example.org")).one()
    assert first.attributes == {"city": "Minsk"}
    assert _statuses_or_none(session, "third@example.org") is None


def _statuses_or_none(session: Session, email: str) -> dict[int, str] | None:
    session.expire_all()
    found = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
    return None if found is None else _statuses(session, email)


def test_csv_without_an_email_column_is_refused(editor: Editor) -> None:
    refused = editor.post(
        "/admin/subscribers/import",
        files={"file": ("people.csv", b"name\nNobody\n", "text/csv")},
        headers={"referer": "https://testserver/admin/subscribers/import"},
    )
    assert refused.headers["location"] == "/admin/subscribers/import"
    assert "no &#39;email&#39; column" in _follow(editor, refused)


def test_export_streams_the_filtered_rows_as_csv(editor: Editor, session: Session) -> None:
    weekly = make_newsletter(session)
    daily = make_newsletter(session)
    on_weekly = make_subscribers(session, weekly, 3)
    on_daily = make_subscribers(session, daily, 2, status=SubscriptionStatus.pending)

    def export(**params: str) -> list[dict[str, str]]:
        response = editor.client.get("/admin/subscribers/export.csv", params=params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        return list(csv.DictReader(io.StringIO(response.text)))

    rows = export()
    assert {r["email"] for r in rows} == {p.email for p in on_weekly + on_daily}
    weekly_rows = export(newsletter=weekly.slug)
    assert [r["email"] for r in weekly_rows] == [p.email for p in on_weekly]
    assert {r["newsletters"] for r in weekly_rows} == {weekly.slug}
    assert {r["email"] for r in export(status="pending")} == {p.email for p in on_daily}
    assert export(newsletter=weekly.slug, status="pending") == []

    missing = editor.client.get("/admin/subscribers/export.csv", params={"newsletter": "nope"})
    assert missing.status_code == 404
