"""Newsletters created and configured from the command line (`newsletter newsletters ...`), on
SQLite and PostgreSQL; refusals are one line and store nothing; new issues get the default
sections; the seed sets the new settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from newsletter import newsletters, seeding
from newsletter.config import Settings
from newsletter.content import issues
from newsletter.exceptions import InvalidInput
from newsletter.models import IssueSection, Newsletter
from tests.conftest import make_newsletter
from tests.integration.test_cli import assert_one_line_error, cli_env

CREATE = (
    "newsletters",
    "create",
    "--slug",
    "minsk-evening",
    "--name",
    "Minsk Evening",
    "--from-email",
    "evening@news.example.org",
    "--postal-address",
    "Example News Ltd, 12 Sample Street, Warsaw",
)


def run(settings: Settings, tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    return cli_env(tmp_path, {"NEWSLETTER_DATABASE_URL": settings.database_url}, *args)


def snapshot(session: Session) -> list[dict[str, Any]]:
    session.expire_all()
    rows = session.exec(select(Newsletter).order_by(Newsletter.id)).all()  # type: ignore[arg-type]
    return [r.model_dump() for r in rows]


def test_cli_creates_edits_lists_and_shows_a_newsletter(
    settings: Settings, session: Session, tmp_path: Path
) -> None:
    done = run(
        settings,
        tmp_path,
        *CREATE,
        "--language",
        "BE",
        "--time-zone",
        "Europe/Minsk",
        "--brand-color",
        "#1A5E9A",
        "--logo-url",
        "https://news.example.org/logo-evening.png",
        "--masthead",
        "Minsk after dark, every weekday",
        "--section",
        "Top stories",
        "--section",
        "Culture",
    )
    assert done.returncode == 0, done.stderr
    assert "minsk-evening (Minsk Evening)" in done.stdout
    stored = newsletters.get_newsletter(session, "minsk-evening")
    assert (stored.language, stored.time_zone, stored.brand_color) == (
        "be",
        "Europe/Minsk",
        "#1a5e9a",
    )
    assert stored.from_name == "Minsk Evening"  # the name, when no sender name is given
    assert stored.default_sections == ["Top stories", "Culture"]
    assert stored.membership_cta is False and stored.requires_review is False

    done = run(
        settings,
        tmp_path,
        "newsletters",
        "edit",
        "minsk-evening",
        "--footer-text",
        "You asked for Minsk Evening.",
        "--membership-url",
        "https://news.example.org/join",
        "--membership-cta",
        "--requires-review",
        "--clear-sections",
    )
    assert done.returncode == 0, done.stderr
    session.expire_all()
    stored = newsletters.get_newsletter(session, "minsk-evening")
    assert stored.footer_text == "You asked for Minsk Evening."
    assert stored.membership_cta is True and stored.requires_review is True
    assert stored.default_sections == []
    assert stored.masthead == "Minsk after dark, every weekday"  # not given: unchanged

    listed = run(settings, tmp_path, "newsletters", "list")
    assert listed.returncode == 0 and "minsk-evening" in listed.stdout
    shown = run(settings, tmp_path, "newsletters", "show", str(stored.id))
    assert shown.returncode == 0, shown.stderr
    assert "Europe/Minsk" in shown.stdout and "You asked for Minsk Evening." in shown.stdout


REFUSALS = [
    (("--from-email", "not-an-address"), "invalid email address"),
    (("--logo-url", "http://news.example.org/logo.png"), "logo_url must be an absolute https"),
    (("--brand-color", "red"), "is not a #rrggbb colour"),
    (("--slug", "taken"), "slug 'taken' is taken by newsletter"),
    (("--time-zone", "Europe/Atlantis"), "is not an IANA time zone"),
    (("--name", "Evening\x1b[31m"), "name contains a control character"),
    (("--masthead", "line one\nline two"), "masthead contains a line break"),
    (("--language", "english please"), "is not a BCP 47 tag"),
    (("--slug", "Not A Slug"), "lower-case letters, digits and hyphens"),
]


@pytest.mark.parametrize(("option", "message"), REFUSALS, ids=[r[1][:24] for r in REFUSALS])
def test_cli_edit_refuses_a_bad_value_in_one_line_and_changes_nothing(
    settings: Settings,
    session: Session,
    tmp_path: Path,
    option: tuple[str, str],
    message: str,
) -> None:
    make_newsletter(session, slug="taken")
    make_newsletter(session, slug="evening")
    before = snapshot(session)

    done = run(settings, tmp_path, "newsletters", "edit", "evening", *option)

    assert_one_line_error(done, message)
    assert snapshot(session) == before


def test_cli_create_refuses_a_taken_slug_and_stores_nothing(
    settings: Settings, session: Session, tmp_path: Path
) -> None:
    make_newsletter(session, slug="minsk-evening")
    before = snapshot(session)
    assert_one_line_error(
        run(settings, tmp_path, *CREATE), "slug 'minsk-evening' is taken by newsletter"
    )
    assert snapshot(session) == before


def test_cli_refuses_the_membership_cta_without_a_membership_url(
    settings: Settings, session: Session, tmp_path: Path
) -> None:
    make_newsletter(session, slug="evening", membership_url="")
    before = snapshot(session)
    done = run(settings, tmp_path, "newsletters", "edit", "evening", "--membership-cta")
    assert_one_line_error(done, "needs a membership_url")
    assert snapshot(session) == before


def test_cli_edit_without_options_and_of_an_unknown_newsletter_are_one_line(
    settings: Settings, tmp_path: Path
) -> None:
    assert_one_line_error(
        run(settings, tmp_path, "newsletters", "edit", "nowhere", "--name", "X"),
        "no newsletter 'nowhere'",
    )
    assert_one_line_error(
        run(settings, tmp_path, "newsletters", "edit", "nowhere"), "nothing to change"
    )


# ---------------------------------------------------------------- the domain


def test_update_changes_only_the_fields_given(session: Session) -> None:
    weekly = make_newsletter(session, masthead="Every Friday", language="ru")
    newsletters.update_newsletter(session, weekly.slug, {"time_zone": "Europe/Vilnius"})
    session.commit()
    session.expire_all()
    again = newsletters.get_newsletter(session, weekly.id)  # type: ignore[arg-type]
    assert (again.time_zone, again.masthead, again.language) == (
        "Europe/Vilnius",
        "Every Friday",
        "ru",
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("default_sections", ["News", "News"], "listed twice"),
        ("default_sections", "News", "must be a list"),
        ("requires_review", "yes", "must be true or false"),
        ("website_url", "https://user:pw@news.example.org", "user name or password"),
        ("footer_text", "fine\x07", "control character"),
        ("colour", "#ffffff", "unknown newsletter field"),
        ("name", "", "name must not be empty"),
    ],
)
def test_update_refuses_bad_values(session: Session, field: str, value: Any, message: str) -> None:
    weekly = make_newsletter(session)
    with pytest.raises(InvalidInput, match=message):
        newsletters.update_newsletter(session, weekly.id, {field: value})  # type: ignore[arg-type]


def test_language_tags_and_time_zones_are_normalised_or_refused() -> None:
    assert newsletters.language_tag("be-by") == "be-BY"
    assert newsletters.language_tag("sr-latn-rs") == "sr-Latn-RS"
    assert newsletters.language_tag("es-419") == "es-419"
    for bad in ("", "e", "english", "en_US", "en-", "x-klingon"):
        with pytest.raises(InvalidInput):
            newsletters.language_tag(bad)
    assert newsletters.time_zone("Europe/Minsk") == "Europe/Minsk"
    for bad in ("", "europe/minsk", "../../etc/passwd", "Mars/Base", "UTC+3"):
        with pytest.raises(InvalidInput):
            newsletters.time_zone(bad)


def test_a_new_issue_starts_with_the_default_sections_in_order(session: Session) -> None:
    weekly = make_newsletter(session, default_sections=["Diplomacy", "Economy", "Culture"])
    issue = issues.create_issue(session, newsletter=weekly.slug, title="Week 1")
    sections = session.exec(
        select(IssueSection)
        .where(IssueSection.issue_id == issue.id)
        .order_by(IssueSection.position)  # type: ignore[arg-type]
    ).all()
    assert [(s.title, s.position) for s in sections] == [
        ("Diplomacy", 0),
        ("Economy", 1),
        ("Culture", 2),
    ]
    # and one added later goes after them
    added = issues.add_section(session, issue_id=issue.id, title="Opinion")  # type: ignore[arg-type]
    assert added.position == 3

    bare = make_newsletter(session)
    plain = issues.create_issue(session, newsletter=bare.slug, title="Week 1")
    assert session.exec(select(IssueSection).where(IssueSection.issue_id == plain.id)).all() == []


def test_the_seed_sets_the_sample_newsletter_settings_and_stays_idempotent(
    session: Session,
) -> None:
    first = seeding.seed(session).newsletter
    session.commit()
    again = seeding.seed(session).newsletter
    session.commit()
    assert first.id == again.id
    assert again.time_zone == "Europe/Warsaw"
    assert again.membership_cta is True and again.membership_text
    assert again.footer_text.startswith("You are receiving this email because")
    assert again.description and again.description != again.footer_text
