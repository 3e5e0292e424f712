"""Tests for qa.qa_report and the QA gate in sending.start."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from newsletter.content import issues, qa, rendering
from newsletter.content.qa import QAConfig, QAReport
from newsletter.exceptions import QABlocked
from newsletter.models import Delivery, IssueStatus, SubjectTest
from newsletter.sending.start import fill_ledger, freeze
from tests.conftest import make_article, make_issue, make_newsletter, make_subscribers

CHECKS = QAConfig()


def _report(session: Session, issue_id: int, *, checks: QAConfig = CHECKS) -> QAReport:
    outline = issues.load_outline(session, issue_id)
    return qa.qa_report(outline, compiled=rendering.compile_issue(outline), checks=checks)


def _codes(report: QAReport) -> list[str]:
    """The blocking findings' codes (the advice on the template is tested in test_qa_checks)."""
    return sorted(f.code for f in report.blocking)


def _only(report: QAReport, code: str) -> list[qa.Finding]:
    return [f for f in report.findings if f.code == code]


def test_clean_issue_has_no_blocking_findings(session: Session) -> None:
    fx = make_issue(session)
    report = _report(session, fx.issue.id)  # type: ignore[arg-type]
    assert report.blocking == []
    assert report.ok


def test_issue_without_items_or_subject_is_blocked_for_both(session: Session) -> None:
    nl = make_newsletter(session)
    issue = issues.create_issue(session, newsletter=nl.slug, title="Empty")
    report = _report(session, issue.id)  # type: ignore[arg-type]
    assert _codes(report) == ["no-items", "no-subject"]
    assert not report.ok


def test_explicit_subject_silences_no_subject(session: Session) -> None:
    nl = make_newsletter(session)
    issue = issues.create_issue(session, newsletter=nl.slug, title="Empty", subject="Hello")
    assert _codes(_report(session, issue.id)) == ["no-items"]  # type: ignore[arg-type]


def test_empty_section_is_a_blocking_finding(session: Session) -> None:
    fx = make_issue(session, layout=(1, 0))
    report = _report(session, fx.issue.id)  # type: ignore[arg-type]
    [finding] = report.blocking
    assert (finding.code, finding.blocking) == ("empty-section", True)
    assert "'Section 2'" in finding.message


def test_image_without_alt_is_a_blocking_finding(session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    article = make_article(session, image_alt="  ")
    issues.add_item(session, section_id=fx.sections[0].id, article_id=article.id)  # type: ignore[arg-type]
    report = _report(session, fx.issue.id)  # type: ignore[arg-type]
    [finding] = report.blocking
    assert (finding.code, finding.blocking) == ("image-without-alt", True)
    assert f"article {article.id}" in finding.message


def test_article_without_image_needs_no_alt(session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    article = make_article(session, image_url=None, image_alt=None)
    issues.add_item(session, section_id=fx.sections[0].id, article_id=article.id)  # type: ignore[arg-type]
    assert _report(session, fx.issue.id).blocking == []  # type: ignore[arg-type]


def test_relative_article_url_is_a_blocking_finding(session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    article = make_article(session, url="/2025/10/relative-story")
    issues.add_item(session, section_id=fx.sections[0].id, article_id=article.id)  # type: ignore[arg-type]
    findings = _only(_report(session, fx.issue.id), "relative-link")  # type: ignore[arg-type]
    assert findings, "a relative article URL must be reported"
    assert all(f.blocking for f in findings)
    assert all("'/2025/10/relative-story'" in f.message for f in findings)


def test_relative_link_in_intro_markdown_is_a_blocking_finding(session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    issues.update_issue(session, issue_id=fx.issue.id, intro_md="See [x](/relative).")  # type: ignore[arg-type]
    report = _report(session, fx.issue.id)  # type: ignore[arg-type]
    [finding] = report.blocking
    assert (finding.code, finding.blocking) == ("relative-link", True)
    assert "'/relative'" in finding.message


def test_mailto_link_in_intro_is_not_a_relative_link(session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    issues.update_issue(
        session,
        issue_id=fx.issue.id,  # type: ignore[arg-type]
        intro_md="Write to [us](mailto:editors@news.example.org).",
    )
    report = _report(session, fx.issue.id)  # type: ignore[arg-type]
    assert report.blocking == [] and _only(report, "relative-link") == []


def test_html_over_the_warning_size_is_advice(session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    checks = QAConfig(size_warn=1_000, size_limit=10**9)
    report = _report(session, fx.issue.id, checks=checks)  # type: ignore[arg-type]
    [finding] = _only(report, "html-large")
    assert not finding.blocking
    assert _only(report, "html-too-large") == []
    assert report.ok


def test_html_over_the_size_limit_blocks(session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    checks = QAConfig(size_warn=500, size_limit=1_000)
    report = _report(session, fx.issue.id, checks=checks)  # type: ignore[arg-type]
    [finding] = _only(report, "html-too-large")
    assert finding.blocking and "over 1,000" in finding.message
    assert _only(report, "html-large") == []  # one finding, the worse one


def test_start_send_raises_qa_blocked_on_blocking_findings(session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    article = make_article(session, image_alt="")
    issues.add_item(session, section_id=fx.sections[0].id, article_id=article.id)  # type: ignore[arg-type]
    session.commit()
    with pytest.raises(QABlocked) as raised:
        fill_ledger(session, issue_id=fx.issue.id, checks=CHECKS)  # type: ignore[arg-type]
    assert len(raised.value.findings) == 1
    assert "image has no alt text" in raised.value.findings[0]


def test_blocked_start_send_leaves_a_draft_without_deliveries(session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    make_subscribers(session, fx.newsletter, 3)
    article = make_article(session, image_alt="")
    issues.add_item(session, section_id=fx.sections[0].id, article_id=article.id)  # type: ignore[arg-type]
    session.commit()
    with pytest.raises(QABlocked):
        fill_ledger(session, issue_id=fx.issue.id, checks=CHECKS)  # type: ignore[arg-type]
    session.rollback()
    session.expire_all()
    assert issues.get_issue(session, fx.issue.id).status == IssueStatus.draft  # type: ignore[arg-type]
    count = session.exec(
        select(func.count()).select_from(Delivery).where(Delivery.issue_id == fx.issue.id)
    ).one()
    assert count == 0


def test_qa_blocks_a_stored_subject_with_a_line_break(session: Session) -> None:
    # saved before such subjects were refused on save: QA still stops the send
    fx = make_issue(session)
    fx.issue.subject = "Hello\r\nBcc: all@example.org"
    session.add(fx.issue)
    session.commit()
    found = _only(_report(session, fx.issue.id), "control-characters")  # type: ignore[arg-type]
    assert [f.blocking for f in found] == [True]
    assert "subject" in found[0].message
    with pytest.raises(QABlocked):
        fill_ledger(session, issue_id=fx.issue.id, checks=CHECKS)  # type: ignore[arg-type]


def test_qa_blocks_a_default_subject_made_from_a_headline_with_a_control_character(
    session: Session,
) -> None:
    fx = make_issue(session)
    fx.articles[0].title = "Minsk\x07 talks"
    session.add(fx.articles[0])
    session.commit()
    found = _only(_report(session, fx.issue.id), "control-characters")  # type: ignore[arg-type]
    assert found and found[0].blocking and "subject" in found[0].message


def test_a_subject_tests_subjects_get_the_subjects_checks_and_must_differ(
    session: Session,
) -> None:
    fx = make_issue(session)
    assert _report(session, fx.issue.id).ok  # type: ignore[arg-type]
    long = "BREAKING NEWS from Minsk!! " + "and more " * 30  # over SUBJECT_MAX, shouting
    subjects = ["Minsk talks: what was said", "minsk  talks: What was said", "  ", long]
    session.add(
        SubjectTest(
            issue_id=fx.issue.id,  # type: ignore[arg-type]
            variants=[{"subject": s, "share": 10} for s in subjects],
            wait_seconds=3600,
        )
    )
    session.commit()

    report = _report(session, fx.issue.id)  # type: ignore[arg-type]
    blocking = {(f.code, f.message) for f in report.blocking}
    assert blocking == {
        ("subject-test-same", "subject B of the subject test is the same as subject A"),
        ("no-subject", "subject C of the subject test is empty"),
        ("too-long", f"subject D of the subject test is {len(long)} characters; at most 200"),
    }
    advice = {f.code for f in report.findings if "subject D" in f.message and not f.blocking}
    assert advice == {"subject-long", "subject-capitals", "subject-punctuation"}
    assert not [f for f in report.findings if f.message.startswith("subject A")]  # clean
    with pytest.raises(QABlocked, match="subject B of the subject test is the same"):
        freeze(session, fx.issue.id, checks=CHECKS)  # type: ignore[arg-type]
