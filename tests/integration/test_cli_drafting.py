"""Drafting from the command line, as the composer drafts: edit, sections, placement.

CliRunner over ``newsletter.cli.app`` on SQLite and on PostgreSQL. A refusal is a ``UserError``
with a one-line message (``main()`` prints it as ``error: ...`` and exits 1: the last test runs
the real entry point to show that line); exit codes are checked for every command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import Session, col, select
from typer.testing import CliRunner, Result

from newsletter import cli
from newsletter.content.qa import QAConfig
from newsletter.exceptions import UserError
from newsletter.models import Article, Issue, IssueItem, IssueSection, IssueStatus
from newsletter.sending.start import fill_ledger
from tests.conftest import IssueFixture, make_article, make_issue, make_subscribers
from tests.support import cli_fork

MISSING = 987_654


def run(*args: str) -> Result:
    return CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "200"})


def ok(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def refused(result: Result, *fragments: str) -> str:
    """Exit 1 with one user error whose one-line message holds every fragment."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, UserError), repr(result.exception)
    message = str(result.exception)
    assert "\n" not in message and "\r" not in message
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in message
    return message


def titles(session: Session, issue_id: int) -> list[str]:
    session.expire_all()
    rows = session.exec(
        select(IssueSection)
        .where(IssueSection.issue_id == issue_id)
        .order_by(col(IssueSection.position))
    ).all()
    assert [s.position for s in rows] == list(range(len(rows)))  # no gaps, no twins
    return [s.title for s in rows]


def fresh(session: Session, issue_id: int) -> Issue:
    session.expire_all()
    issue = session.get(Issue, issue_id)
    assert issue is not None
    return issue


def started(session: Session) -> IssueFixture:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 2)
    fill_ledger(session, issue_id=fx.issue.id or 0, checks=QAConfig())
    session.commit()
    return fx


# ---------------------------------------------------------------- issues edit


def test_edit_changes_only_the_fields_given(session: Session, tmp_path: Path) -> None:
    fx = make_issue(session)
    issue_id = str(fx.issue.id)
    out = ok("issues", "edit", issue_id, "--subject", "Minsk, this week", "--preheader", "Hi")
    assert "subject, preheader saved" in out
    issue = fresh(session, fx.issue.id or 0)
    assert (issue.title, issue.subject, issue.preheader) == (
        "This week in Belarus",
        "Minsk, this week",
        "Hi",
    )

    intro = tmp_path / "intro.md"
    intro.write_text("Dear reader,\n\nthree stories today.\n", encoding="utf-8")
    ok("issues", "edit", issue_id, "--title", "  Week 12  ", "--intro-file", str(intro))
    issue = fresh(session, fx.issue.id or 0)
    assert issue.title == "Week 12"
    assert issue.intro_md == "Dear reader,\n\nthree stories today.\n"
    assert (issue.subject, issue.preheader) == ("Minsk, this week", "Hi")

    ok("issues", "edit", issue_id, "--subject", "")  # back to the default subject
    assert fresh(session, fx.issue.id or 0).subject is None
    assert f"subject: {fx.articles[0].title}\n" in ok("issues", "show", issue_id)


def test_edit_validates_like_the_composer(session: Session, tmp_path: Path) -> None:
    fx = make_issue(session)
    issue_id = str(fx.issue.id)
    refused(run("issues", "edit", issue_id, "--subject", "Hi\r\nBcc: x@example.org"), "line break")
    refused(run("issues", "edit", issue_id, "--subject", "s" * 201), "at most 200")
    refused(run("issues", "edit", issue_id, "--preheader", "a\x00b"), "control character")
    refused(run("issues", "edit", issue_id, "--title", "   "), "needs a title")
    refused(run("issues", "edit", issue_id), "nothing to change")
    refused(run("issues", "edit", issue_id, "--intro-file", str(tmp_path / "gone.md")), "gone.md")
    bad = tmp_path / "bad.md"
    bad.write_text("a\x07b", encoding="utf-8")
    refused(run("issues", "edit", issue_id, "--intro-file", str(bad)), "intro", "control")
    issue = fresh(session, fx.issue.id or 0)
    assert (issue.title, issue.subject, issue.preheader, issue.intro_md) == (
        "This week in Belarus",
        None,
        "",
        "",
    )


def test_edit_refuses_an_unknown_or_started_issue(session: Session) -> None:
    refused(run("issues", "edit", str(MISSING), "--title", "x"), f"no issue with id {MISSING}")
    fx = started(session)
    refused(
        run("issues", "edit", str(fx.issue.id), "--title", "Too late"),
        "is sending",
        "not yet scheduled or sent can be edited",
    )
    assert fresh(session, fx.issue.id or 0).title == "This week in Belarus"


# ---------------------------------------------------------------- issues section


def test_sections_are_added_renamed_moved_and_listed(session: Session) -> None:
    fx = make_issue(session)  # Section 1 (2 items), Section 2 (1 item)
    issue_id = fx.issue.id or 0
    out = ok("issues", "section", "add", str(issue_id), "Sport")
    assert "at position 2" in out
    out = ok("issues", "section", "add", str(issue_id), " Opinion ", "--position", "0")
    assert "'Opinion'" in out and "at position 0" in out
    assert titles(session, issue_id) == ["Opinion", "Section 1", "Section 2", "Sport"]

    first = fx.sections[0].id
    ok("issues", "section", "rename", str(first), "Politics [analysis]")
    ok("issues", "section", "move", str(first), "99")  # past the end: last
    assert titles(session, issue_id) == ["Opinion", "Section 2", "Sport", "Politics [analysis]"]
    ok("issues", "section", "move", str(first), "1")
    assert titles(session, issue_id) == ["Opinion", "Politics [analysis]", "Section 2", "Sport"]

    listed = ok("issues", "section", "list", str(issue_id))
    assert "Politics [analysis]" in listed  # a title is printed as typed, never as markup
    assert listed.index("Opinion") < listed.index("Politics") < listed.index("Sport")
    shown = ok("issues", "show", str(issue_id))
    assert "Politics [analysis]" in shown and shown.index("Opinion") < shown.index("Politics")


def test_a_section_title_must_be_one_line_and_not_empty(session: Session) -> None:
    fx = make_issue(session)
    issue_id, section_id = str(fx.issue.id), str(fx.sections[0].id)
    refused(run("issues", "section", "add", issue_id, "Top\nstories"), "line break")
    refused(run("issues", "section", "add", issue_id, "  "), "needs a title")
    refused(run("issues", "section", "add", issue_id, "x" * 201), "at most 200")
    refused(run("issues", "section", "rename", section_id, "A\tB\x1b"), "control character")
    refused(run("issues", "section", "rename", section_id, ""), "needs a title")
    assert titles(session, fx.issue.id or 0) == ["Section 1", "Section 2"]


def test_removing_a_section_with_items_needs_with_items(session: Session) -> None:
    fx = make_issue(session)  # Section 1 holds 2 items
    issue_id, section_id = fx.issue.id or 0, fx.sections[0].id or 0
    message = refused(
        run("issues", "section", "remove", str(section_id)), "holds 2 items", "--with-items"
    )
    assert "nothing removed" in message
    assert titles(session, issue_id) == ["Section 1", "Section 2"]

    out = ok("issues", "section", "remove", str(section_id), "--with-items")
    assert f"removed section {section_id} and its 2 items" in out
    assert titles(session, issue_id) == ["Section 2"]
    assert session.exec(select(IssueItem).where(IssueItem.section_id == section_id)).all() == []
    for article in fx.articles[:2]:  # the articles stay in the library
        assert session.get(Article, article.id) is not None

    empty = ok("issues", "section", "add", str(issue_id), "Empty")
    empty_id = empty.split()[2]
    assert ok("issues", "section", "remove", empty_id).strip() == f"removed section {empty_id}"
    assert titles(session, issue_id) == ["Section 2"]


def test_section_commands_refuse_unknown_ids_and_started_issues(session: Session) -> None:
    for args in (
        ("add", str(MISSING), "News"),
        ("list", str(MISSING)),
    ):
        refused(run("issues", "section", *args), f"no issue with id {MISSING}")
    for args in (
        ("rename", str(MISSING), "News"),
        ("move", str(MISSING), "0"),
        ("remove", str(MISSING)),
        ("remove", str(MISSING), "--with-items"),
    ):
        refused(run("issues", "section", *args), f"no section with id {MISSING}")

    fx = started(session)
    section_id = str(fx.sections[0].id)
    for args in (
        ("add", str(fx.issue.id), "Late"),
        ("rename", section_id, "Late"),
        ("move", section_id, "1"),
        ("remove", section_id, "--with-items"),
    ):
        refused(
            run("issues", "section", *args), "is sending", "not yet scheduled or sent can be edited"
        )
    # refused for its status, not for its items
    refused(
        run("issues", "section", "remove", section_id), "not yet scheduled or sent can be edited"
    )
    assert titles(session, fx.issue.id or 0) == ["Section 1", "Section 2"]
    assert "Section 1" in ok("issues", "section", "list", str(fx.issue.id))  # reading is fine


# ---------------------------------------------------------------- issues add --section-position


def test_add_places_a_new_section_where_the_editor_says(session: Session) -> None:
    fx = make_issue(session)
    issue_id = str(fx.issue.id)
    first, second = make_article(session), make_article(session)
    out = ok("issues", "add", issue_id, str(first.id), "--section", "Breaking",
             "--section-position", "0")  # fmt: skip
    assert "new section" in out and "at position 0" in out
    assert titles(session, fx.issue.id or 0) == ["Breaking", "Section 1", "Section 2"]

    # an existing section is used where it is, and the command says so
    out = ok("issues", "add", issue_id, str(second.id), "--section", "Section 2",
             "--section-position", "0")  # fmt: skip
    assert "already existed and stays at position 2" in out
    assert titles(session, fx.issue.id or 0) == ["Breaking", "Section 1", "Section 2"]

    # without the option a new section goes last, as before
    ok("issues", "add", issue_id, str(make_article(session).id), "--section", "Letters")
    assert titles(session, fx.issue.id or 0)[-1] == "Letters"


def test_add_refuses_a_bad_section_title_and_leaves_no_section_behind(session: Session) -> None:
    fx = make_issue(session)
    article = make_article(session)
    refused(
        run("issues", "add", str(fx.issue.id), str(article.id), "--section", "A\nB"), "line break"
    )
    refused(
        run("issues", "add", str(fx.issue.id), str(MISSING), "--section", "New"),
        f"no article with id {MISSING}",
    )
    assert titles(session, fx.issue.id or 0) == ["Section 1", "Section 2"]  # rolled back


# ---------------------------------------------------------------- the real entry point


def test_the_entry_point_prints_a_refusal_as_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_SPAM_CHECK"] = "off"  # seconds per SpamAssassin run
    env["COLUMNS"] = "200"

    def newsletter(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "newsletter", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    # the set-up through the forked CLI (an interpreter start costs seconds on a busy machine);
    # the refusals below through a real ``python -m newsletter`` of their own
    for args in (
        ("seed",),
        ("issues", "create", "--newsletter", "belarus-weekly", "--title", "T"),
        ("issues", "add", "1", "1", "--section", "Notes [draft]"),
    ):
        assert cli_fork.run(list(args), cwd=tmp_path, env=env).returncode == 0
    for args, expected in (
        (("issues", "section", "remove", "1"), "error: section 1 ('Notes [draft]') holds 1 item;"),
        (("issues", "schedule", "1", "2020-01-01T08:00Z"), "error: 2020-01-01 08:00 UTC is in the"),
    ):
        done = newsletter(*args)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr + done.stdout
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(expected), done.stderr
    assert (
        IssueStatus.draft in cli_fork.run(["issues", "status", "1"], cwd=tmp_path, env=env).stdout
    )
