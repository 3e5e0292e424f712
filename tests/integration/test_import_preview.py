"""Import with a preview, on SQLite and PostgreSQL: the preview's verdicts are the import's, the
column mapping (Mailchimp and Substack exports without asking), keep or overwrite, statistics."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from newsletter.audience import csv_import, csv_preview, gdpr
from newsletter.audience.csv_profile import Existing
from newsletter.audience.csv_report import ImportReport
from newsletter.audience.subscribers import Way, admission_refusals
from newsletter.audience.suppression import Reason, reasons, suppress
from newsletter.exceptions import InvalidInput
from newsletter.models import (
    Newsletter,
    Subscriber,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
    address_key,
)
from tests.conftest import make_newsletter


def run_import(session: Session, data: str, **options: object) -> ImportReport:
    report = ImportReport(verdicts={})
    csv_import.import_csv(session, io.BytesIO(data.encode()), report=report, **options)  # type: ignore[arg-type]
    session.commit()
    return report


def statuses(session: Session, email: str) -> dict[int, str]:
    rows = session.exec(
        select(Subscription)
        .join(Subscriber, col(Subscriber.id) == Subscription.subscriber_id)
        .where(Subscriber.email == email)
    ).all()
    return {s.newsletter_id: s.status for s in rows}


def person(session: Session, email: str) -> Subscriber:
    session.expire_all()
    found = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
    assert found is not None, email
    return found


def tags_of(session: Session, email: str) -> set[str]:
    sid = person(session, email).id
    return {
        t.tag for t in session.exec(select(SubscriberTag).where(SubscriberTag.subscriber_id == sid))
    }


# ---------------------------------------------------------------- the preview is the import


def a_mixed_file(session: Session, weekly: Newsletter) -> str:
    """Rows of every kind, against a database that already holds some of them."""
    other = make_newsletter(session, slug="other-daily")
    for email, name in (("known@example.org", "Known"), ("same@example.org", "Same")):
        session.add(Subscriber(email=email, name=name))
    session.add(Subscriber(email="gone@example.org", name="Gone"))
    session.commit()
    gdpr.erase_subscriber(session, "gone@example.org")
    suppress(session, "bounced@example.org", Reason.bounced)
    session.commit()
    run_import(session, "email\nsame@example.org\nknown@example.org\n", newsletters=[weekly.slug])
    return (
        "email,name,language,tags,city,newsletters\n"
        "new@example.org,New Reader,be,sport,Minsk,\n"  # new
        "known@example.org,Known Better,ru,,Grodno,\n"  # update: language, attributes
        "same@example.org,Same,,,,\n"  # unchanged
        "not-an-address,Bad,,,,\n"  # skip: bad address
        "gone@example.org,Gone,,,,\n"  # skip: erased
        "bounced@example.org,Bounce,,,,\n"  # skip: suppressed
        "NEW@example.org,Again,,,,\n"  # skip: duplicate of line 2
        f"new@example.org,,,,,{other.slug}\n"  # new: a subscription for line 2's reader
        "lang@example.org,Lang,klingon!!,,,\n"  # new, with a warning
        "status@example.org,Odd,,,,nope\n"  # skip: unknown newsletter
    )


@pytest.mark.parametrize("existing", [Existing.keep, Existing.overwrite])
def test_the_preview_says_of_each_row_what_the_import_then_does(
    session: Session, existing: Existing
) -> None:
    weekly = make_newsletter(session)
    data = a_mixed_file(session, weekly)
    columns = ["email", "name", "language", "tags", "attribute:city", "newsletters"]

    preview = csv_preview.preview_csv(
        session, data.encode(), columns=columns, newsletters=[weekly.slug], existing=existing
    )
    session.commit()
    assert (
        session.exec(select(Subscriber).where(Subscriber.email == "new@example.org")).first()
        is None
    )
    report = run_import(
        session, data, columns=columns, newsletters=[weekly.slug], existing=existing
    )

    assert report.verdicts is not None
    assert {r.line: r.verdict for r in preview.rows} == report.verdicts
    kinds = [r.verdict.kind for r in preview.rows]
    assert kinds == [
        "new", "update", "unchanged", "skip", "skip", "skip", "skip", "new", "new", "skip"
    ]  # fmt: skip
    why = {r.line: r.verdict.detail for r in preview.rows}
    assert "invalid email address" in why[5]
    assert "suppression list (erased)" in why[6]
    assert "suppression list (bounced)" in why[7]
    assert why[8] == "duplicate of line 2"
    assert "unknown newsletter 'nope'" in why[11]
    assert why[9] == "new subscription: other-daily"
    assert any("klingon" in w for w in preview.rows[8].warnings)
    changed = why[3]
    assert "language" in changed and "attributes" in changed
    assert ("name" in changed) is (existing is Existing.overwrite)
    assert person(session, "known@example.org").name == (
        "Known Better" if existing is Existing.overwrite else "Known"
    )
    reader = person(session, "new@example.org")
    assert (reader.language, reader.attributes) == ("be", {"city": "Minsk"})
    assert tags_of(session, "new@example.org") == {"sport"}


def test_a_preview_changes_nothing_and_the_default_newsletter_is_preselected(
    session: Session,
) -> None:
    only = make_newsletter(session)
    assert csv_preview.default_newsletters(session) == [only.slug]
    second = make_newsletter(session)
    assert csv_preview.default_newsletters(session) == []
    assert csv_preview.default_newsletters(session, second.slug) == [second.slug]

    preview = csv_preview.preview_csv(
        session, b"E-mail,Full name\na@example.org,A\n", newsletters=[only.slug]
    )
    session.commit()
    assert preview.mapping.fields == ["email", "name"]
    assert [r.verdict.kind for r in preview.rows] == ["new"]
    assert session.exec(select(Subscriber)).all() == []


# ---------------------------------------------------------------- exports, mapped without asking

MAILCHIMP = (
    "Email Address,First Name,Last Name,Birthday,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,"
    "CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES,"
    "TAGS{extra}\n"
)


def mailchimp_row(email: str, first: str, extra: str = "") -> str:
    return (
        f"{email},{first},Reader,05/17,2,2021-03-01 10:00:00,,2021-03-01 10:05:00,198.51.100.7,,,"
        f',,Europe/Minsk,BY,,2024-01-01 00:00:00,123,abc,,"""Sport"",""Daily"""{extra}\n'
    )


def test_mailchimp_exports_map_without_asking_and_never_make_unsubscribed_or_cleaned_active(
    session: Session,
) -> None:
    weekly = make_newsletter(session)
    subscribed = MAILCHIMP.format(extra="") + mailchimp_row("anna@example.org", "Anna")
    unsub = MAILCHIMP.format(
        extra=",UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_CAMPAIGN_ID,UNSUB_REASON"
    )
    unsub += mailchimp_row("left@example.org", "Left", ",2023-05-01 00:00:00,Issue 9,c9,")
    unsub += mailchimp_row("anna-too@example.org", "Anna", ",2023-05-01 00:00:00,Issue 9,c9,")
    cleaned = MAILCHIMP.format(extra=",CLEAN_TIME,CLEAN_CAMPAIGN_TITLE,CLEAN_CAMPAIGN_ID")
    cleaned += mailchimp_row("dead@example.org", "Dead", ",2023-06-01 00:00:00,Issue 10,c10")

    preview = csv_preview.preview_csv(session, subscribed.encode(), newsletters=[weekly.slug])
    fields = preview.mapping.fields
    assert preview.mapping.format == "mailchimp"
    assert fields[:4] == ["email", "name", "name", "attribute:birthday"]
    assert fields[fields.index("time_zone")] == "time_zone"
    assert fields[-1] == "tags" and "consent_at" in fields and "consent_ip" in fields
    for data in (subscribed, unsub, cleaned):
        report = run_import(session, data, newsletters=[weekly.slug])
        assert report.errors == [], report.errors

    anna = person(session, "anna@example.org")
    assert (anna.name, anna.time_zone, anna.attributes) == (
        "Anna Reader",
        "Europe/Minsk",
        {"birthday": "05/17"},
    )
    assert tags_of(session, "anna@example.org") == {"Sport", "Daily"}
    assert statuses(session, "anna@example.org") == {weekly.id: "active"}
    assert statuses(session, "left@example.org") == {weekly.id: "unsubscribed"}
    assert statuses(session, "dead@example.org") == {weekly.id: "bounced"}
    assert reasons(
        session,
        [address_key(a) for a in ("left@example.org", "dead@example.org", "anna@example.org")],
    ) == {
        address_key("left@example.org"): "unsubscribed",
        address_key("dead@example.org"): "bounced",
    }
    # a later subscribed export does not bring them back: both are suppressed, and said so
    again = MAILCHIMP.format(extra="") + mailchimp_row("left@example.org", "Left")
    again += mailchimp_row("dead@example.org", "Dead")
    report = run_import(session, again, newsletters=[weekly.slug])
    assert statuses(session, "left@example.org") == {weekly.id: "unsubscribed"}
    assert statuses(session, "dead@example.org") == {weekly.id: "bounced"}
    assert report.suppressed == 2
    # nor does an editor; only the person's own confirmation lifts an imported unsubscribe
    refused = admission_refusals(session, ["left@example.org"], way=Way.operator, override=True)
    assert "suppression list (unsubscribed)" in refused["left@example.org"]
    assert admission_refusals(session, ["left@example.org"], way=Way.confirm) == {}
    assert reasons(session, [address_key("left@example.org")]) == {}
    refused = admission_refusals(session, ["dead@example.org"], way=Way.confirm)
    assert "suppression list (bounced)" in refused["dead@example.org"]


def test_a_substack_export_maps_without_asking_and_email_disabled_rows_are_unsubscribed(
    session: Session,
) -> None:
    weekly = make_newsletter(session)
    data = (
        "email,active_subscription,expiry,plan,email_disabled,created_at,title\n"
        "paid@example.org,true,2026-01-01,yearly,false,2022-02-02T10:00:00.000Z,Dr\n"
        "free@example.org,false,,,false,2022-02-03T10:00:00.000Z,\n"
        "off@example.org,false,,,true,2022-02-04T10:00:00.000Z,\n"
    )
    preview = csv_preview.preview_csv(session, data.encode(), newsletters=[weekly.slug])
    assert preview.mapping.format == "substack"
    assert preview.mapping.fields == [
        "email",
        "attribute:substack_paid",
        "attribute:substack_expiry",
        "attribute:substack_plan",
        "opted_out",
        "consent_at",
        "ignore",
    ]
    run_import(session, data, newsletters=[weekly.slug])
    assert statuses(session, "paid@example.org") == {weekly.id: "active"}
    assert statuses(session, "off@example.org") == {weekly.id: "unsubscribed"}
    assert reasons(
        session,
        [address_key(a) for a in ("paid@example.org", "free@example.org", "off@example.org")],
    ) == {address_key("off@example.org"): "unsubscribed"}
    assert person(session, "paid@example.org").attributes == {
        "substack_paid": "true",
        "substack_expiry": "2026-01-01",
        "substack_plan": "yearly",
    }
    sub = session.exec(
        select(Subscription).where(
            Subscription.subscriber_id == person(session, "paid@example.org").id
        )
    ).one()
    assert sub.consent_at is not None and sub.consent_at.year == 2022


# ---------------------------------------------------------------- keep or overwrite


def test_existing_subscribers_keep_their_fields_unless_overwrite_is_chosen(
    session: Session,
) -> None:
    weekly = make_newsletter(session)
    session.add(
        Subscriber(email="k@example.org", name="Kept", language="be", attributes={"city": "Minsk"})
    )
    session.commit()
    data = (
        "email,name,language,time zone,city,zip\n"
        "k@example.org,New Name,ru,Europe/Warsaw,Brest,220\n"
    )
    columns = ["email", "name", "language", "time_zone", "attribute:city", "attribute:zip"]

    run_import(session, data, newsletters=[weekly.slug], columns=columns)
    kept = person(session, "k@example.org")
    assert (kept.name, kept.language, kept.time_zone) == ("Kept", "be", "Europe/Warsaw")
    assert kept.attributes == {"city": "Minsk", "zip": "220"}  # only the empty field filled

    report = run_import(
        session, data, newsletters=[weekly.slug], columns=columns, existing=Existing.overwrite
    )
    over = person(session, "k@example.org")
    assert (over.name, over.language, over.attributes["city"]) == ("New Name", "ru", "Brest")
    assert report.verdicts == {2: report.verdicts[2]} and report.verdicts[2].kind == "update"

    run_import(
        session,
        "email,name\nk@example.org,\n",
        newsletters=[weekly.slug],
        existing=Existing.overwrite,
    )
    assert person(session, "k@example.org").name == "New Name"  # an empty cell erases nothing


# ---------------------------------------------------------------- bad files, statistics


def test_a_mapping_without_email_or_naming_a_field_twice_is_refused(session: Session) -> None:
    make_newsletter(session)
    with pytest.raises(InvalidInput, match="no 'email' column"):
        csv_preview.preview_csv(session, b"a,b\nx,y\n", columns=["ignore", "name"])
    with pytest.raises(InvalidInput, match="both mapped to Language"):
        csv_preview.preview_csv(
            session, b"email,a,b\nx@example.org,y,z\n", columns=["email", "language", "language"]
        )
    with pytest.raises(InvalidInput, match="not a column target"):
        csv_preview.preview_csv(session, b"email\nx@example.org\n", columns=["password"])


def test_a_bulk_import_refreshes_the_planner_statistics_on_postgresql(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    weekly = make_newsletter(session)
    executed: list[str] = []
    real = csv_import.refresh_statistics
    monkeypatch.setattr(csv_import, "BULK_ROWS", 5)

    def spy(s: Session) -> None:
        executed.append("analyze")
        real(s)

    monkeypatch.setattr(csv_import, "refresh_statistics", spy)
    rows = "".join(f"r{i}@example.org\n" for i in range(4))
    run_import(session, "email\n" + rows, newsletters=[weekly.slug])
    assert executed == []  # a small import leaves it to autovacuum
    rows = "".join(f"s{i}@example.org\n" for i in range(6))
    run_import(session, "email\n" + rows, newsletters=[weekly.slug])
    assert executed == ["analyze"]
    if session.get_bind().dialect.name == "postgresql":
        # reltuples is what ANALYZE wrote (-1 before any ANALYZE), transactional and at once
        assert (
            session.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = 'subscriber'")
            ).scalar_one()
            == 10
        )
    assert SubscriptionStatus.active in statuses(session, "s0@example.org").values()
