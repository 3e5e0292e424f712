"""What the send commands say: a past schedule refused, a second send answered once, a test send,
an import with rejected items exiting 1. CliRunner over ``newsletter.cli.app``, both databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner, Result

from newsletter import cli
from newsletter.config import Settings, get_settings
from newsletter.content import articles
from newsletter.exceptions import UserError
from newsletter.models import Issue, IssueStatus, utcnow
from newsletter.sending import start
from newsletter.transports.sink import SMTPSink
from tests.conftest import make_issue, make_subscribers
from worker import tasks


def run(*args: str) -> Result:
    return CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "200"})


def refused(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, UserError), repr(result.exception)
    message = str(result.exception)
    assert "\n" not in message and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in message
    return message


def status_of(session: Session, issue_id: int) -> str:
    session.expire_all()
    issue = session.get(Issue, issue_id)
    assert issue is not None
    return issue.status


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The issue ids the CLI handed to the workers (no broker needed)."""
    ids: list[int] = []
    monkeypatch.setattr(tasks.dispatch, "delay", ids.append)
    return ids


# ---------------------------------------------------------------- schedule


def test_schedule_refuses_a_time_in_the_past(session: Session) -> None:
    fx = make_issue(session)
    issue_id = fx.issue.id or 0
    an_hour_ago = (utcnow() - timedelta(hours=1)).isoformat(timespec="minutes")
    refused(run("issues", "schedule", str(issue_id), an_hour_ago), "is in the past", "later time")
    refused(run("issues", "schedule", str(issue_id), "2030-01-01T08:00"), "needs a time zone")
    assert status_of(session, issue_id) == IssueStatus.draft

    # a few seconds behind (a slow clock, the minute just begun) is still accepted
    just_now = (utcnow() - timedelta(seconds=20)).isoformat()
    assert run("issues", "schedule", str(issue_id), just_now).exit_code == 0
    assert status_of(session, issue_id) == IssueStatus.scheduled
    tomorrow = (utcnow() + timedelta(days=1)).isoformat()
    done = run("issues", "schedule", str(issue_id), tomorrow)
    assert done.exit_code == 0 and "scheduled for" in done.stdout


# ---------------------------------------------------------------- send


def test_a_second_send_says_once_where_the_issue_is(session: Session, queued: list[int]) -> None:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 3)
    issue_id = str(fx.issue.id)

    first = run("issues", "send", issue_id)
    assert first.exit_code == 0, first.output
    assert f"issue {issue_id}: 3 recipients" in first.stdout and "queued" in first.stdout

    again = run("issues", "send", issue_id)
    assert again.exit_code == 0, again.output
    lines = again.stdout.strip().splitlines()
    assert lines == [
        f"issue {issue_id} is being prepared (a worker fills its ledger); its dispatch was "
        "queued again for a running `newsletter worker`"
    ]
    assert queued == [fx.issue.id, fx.issue.id]  # re-kicked, not started twice

    assert start.fill_prepared(session, issue_id=fx.issue.id) is not None  # the worker's fill
    session.commit()
    again = run("issues", "send", issue_id)
    lines = again.stdout.strip().splitlines()
    assert lines == [
        f"issue {issue_id} is already sending (0 of 3 done); its batches were queued again for "
        "a running `newsletter worker`"
    ]

    assert run("issues", "pause", issue_id).exit_code == 0
    paused = run("issues", "send", issue_id).stdout.strip().splitlines()
    assert paused == [f"issue {issue_id} is paused (0 of 3 done); `newsletter issues resume "
                      f"{issue_id}` goes on"]  # fmt: skip
    assert run("issues", "cancel", issue_id).exit_code == 0
    cancelled = run("issues", "send", issue_id).stdout.strip().splitlines()
    assert cancelled == [f"issue {issue_id} was cancelled (3 of 3 done); it cannot be sent"]
    assert queued == [fx.issue.id] * 3  # neither paused nor cancelled was dispatched


# ---------------------------------------------------------------- test send


@pytest.fixture
def sink(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        monkeypatch.setenv("NEWSLETTER_SMTP_HOST", running.host)
        monkeypatch.setenv("NEWSLETTER_SMTP_PORT", str(running.port))
        get_settings.cache_clear()
        yield running
    get_settings.cache_clear()


def test_a_test_send_reaches_the_addresses_and_leaves_a_draft(
    session: Session, sink: SMTPSink
) -> None:
    fx = make_issue(session)
    done = run("issues", "test-send", str(fx.issue.id), "desk@example.org", "Me@Example.org")
    assert done.exit_code == 0, done.output
    assert "test sent to desk@example.org, Me@example.org" in done.stdout
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == ["Me@example.org", "desk@example.org"]
    assert b"Subject: [Test] " in sink.messages[0].data
    assert status_of(session, fx.issue.id or 0) == IssueStatus.draft

    refused(run("issues", "test-send", str(fx.issue.id), "not-an-address"), "not-an-address")
    many = [f"r{i}@example.org" for i in range(11)]
    refused(run("issues", "test-send", str(fx.issue.id), *many), "at most 10")
    assert len(sink.messages) == 2


# ---------------------------------------------------------------- articles import


def test_an_import_with_rejected_items_exits_1_and_keeps_the_good_ones(
    session: Session, tmp_path: Path
) -> None:
    source = tmp_path / "articles.yaml"
    source.write_text(
        "- url: https://news.example.org/2026/11/good-one\n"
        "  title: A good one\n"
        "- title: No address [sic]\n",
        encoding="utf-8",
    )
    done = run("articles", "import", str(source))
    assert done.exit_code == 1
    assert "created 1, updated 0" in done.stdout
    assert "skipped" in done.stderr and "item 2" in done.stderr
    assert [a.title for a in articles.list_articles(session, search="good one")] == ["A good one"]

    clean = tmp_path / "clean.yaml"
    clean.write_text("- url: https://news.example.org/2026/11/other\n  title: Other\n")
    assert run("articles", "import", str(clean)).exit_code == 0
