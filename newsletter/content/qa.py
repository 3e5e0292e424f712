"""The QA report before a send: what blocks an issue (and what only warns), from its outline and
its compiled email."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from newsletter import text
from newsletter.content import qa_access, qa_html, qa_links, qa_text
from newsletter.content.issues import PREHEADER_MAX, SUBJECT_MAX, TITLE_MAX, IssueOutline
from newsletter.content.qa_findings import Finding, QAReport
from newsletter.content.rendering import CompiledIssue
from newsletter.content.spam_check import SpamReport
from newsletter.models import Article
from newsletter.statuses import IssueKind

__all__ = ["Finding", "QAConfig", "QAReport", "qa_report"]

#: scores the message a sample reader gets; None when it did not run (only cached results
#: were asked for, and there was none)
SpamRunner = Callable[[IssueOutline, CompiledIssue], SpamReport | None]
#: a sample reader's per-recipient values (``rendering.RECIPIENT_FIELDS``) for an issue
SampleValues = Callable[[IssueOutline], Mapping[str, str]]


@dataclass(frozen=True)
class QAConfig:
    """What the checks need besides the issue; ``sending.checks.qa_config`` builds it from
    the settings. The defaults run no SpamAssassin and measure the HTML unpersonalised."""

    size_warn: int = 90_000
    size_limit: int = 102_000
    production: bool = False
    rewrite_link: qa_links.LinkRewriter = qa_links.identity  # for a newsletter that tracks clicks
    base_url: str = "http://localhost:8000"  # where tracking's /r/ and /o/ links point
    sample_values: SampleValues | None = None
    spam: SpamRunner | None = None


def _is_absolute(url: str | None) -> bool:
    parsed = urlparse(url or "")
    return parsed.scheme in {"http", "https"} and bool(parsed.netloc)


def qa_report(
    outline: IssueOutline, *, compiled: CompiledIssue | None, checks: QAConfig
) -> QAReport:
    """Check an issue before sending; blocking findings stop a send."""
    report = QAReport()
    if not outline.subject.strip():
        report.add("no-subject", "the issue has no subject", blocking=True)
    _check_one_line(report, "subject", outline.subject, SUBJECT_MAX)
    qa_text.check_subject(report, outline.subject)
    _check_test_subjects(report, outline.test_subjects)
    qa_text.check_preheader(report, outline.issue.preheader)
    _check_one_line(report, "preheader", outline.issue.preheader, PREHEADER_MAX)
    _check_one_line(report, "title", outline.issue.title, TITLE_MAX)
    for sec in outline.sections:
        _check_one_line(report, f"section title {sec.section.title[:40]!r}", sec.section.title, 0)
    if outline.issue.kind == IssueKind.welcome:  # a welcome may be its intro alone
        if not outline.items and not outline.issue.intro_md.strip():
            report.add(
                "no-content", "the welcome email has no intro and no articles", blocking=True
            )
    elif not outline.items:
        report.add("no-items", "the issue has no articles", blocking=True)
    for sec in outline.sections:
        if not sec.items:
            report.add("empty-section", f"section {sec.section.title!r} is empty", blocking=True)
    for it in outline.items:
        _check_article(report, it.article)
    if compiled is not None:
        _check_compiled(report, outline, compiled, checks)
    return report


def _check_test_subjects(report: QAReport, subjects: tuple[str, ...]) -> None:
    """A subject test's subjects get the main subject's checks, and must differ."""
    seen: dict[str, str] = {}
    for n, subject in enumerate(subjects, 1):
        name = f"subject {'ABCD'[n - 1] if n <= 4 else n} of the subject test"
        if not subject.strip():
            report.add("no-subject", f"{name} is empty", blocking=True)
            continue
        _check_one_line(report, name, subject, SUBJECT_MAX)
        qa_text.check_subject(report, subject, name=name)
        same = " ".join(subject.casefold().split())
        if same in seen:
            report.add("subject-test-same", f"{name} is the same as {seen[same]}", blocking=True)
        seen.setdefault(same, name.removesuffix(" of the subject test"))


def _check_one_line(report: QAReport, field: str, value: str, max_length: int) -> None:
    """Blocks a stored value that would break the message (saved before it was refused)."""
    if text.has_controls(value):
        report.add(
            "control-characters",
            f"{field} contains a line break or control character",
            blocking=True,
        )
    if max_length and len(value) > max_length:
        report.add(
            "too-long", f"{field} is {len(value)} characters; at most {max_length}", blocking=True
        )


def _check_compiled(
    report: QAReport, outline: IssueOutline, compiled: CompiledIssue, checks: QAConfig
) -> None:
    parsed = qa_html.parse(compiled.html)
    qa_links.check_links(report, parsed, production=checks.production)
    qa_access.check_accessibility(report, parsed)
    values = checks.sample_values(outline) if checks.sample_values else None
    rewrite = checks.rewrite_link if outline.newsletter.track_clicks else qa_links.identity
    size = len(qa_links.sent_html(compiled, values, rewrite).encode())
    qa_links.check_size(report, size, warn=checks.size_warn, limit=checks.size_limit)
    if checks.spam is not None:
        _check_spam(report, checks.spam(outline, compiled))


def _check_spam(report: QAReport, spam: SpamReport | None) -> None:
    report.spam = spam
    if spam is None:
        return
    result = spam.result
    if not result.available:
        report.add(
            "spam-check-unavailable",
            f"SpamAssassin not available: {result.problem}",
            blocking=False,
        )
    elif spam.blocking:
        worst = sorted(result.rules, key=lambda r: -r.points)[:3]
        rules = ", ".join(f"{r.name} {r.points:+.1f}" for r in worst if r.points > 0)
        report.add(
            "spam-score",
            f"SpamAssassin scores it {result.score:.1f}, at or over this newsletter's "
            f"threshold {spam.threshold:.1f}" + (f" ({rules})" if rules else ""),
            blocking=True,
        )


def _check_article(report: QAReport, article: Article) -> None:
    name = f"article {article.id} ({article.title[:40]!r})"
    if article.image_url and not (article.image_alt or "").strip():
        report.add("image-without-alt", f"{name}: image has no alt text", blocking=True)
    if not _is_absolute(article.url):
        report.add("relative-link", f"{name}: link {article.url!r} is not absolute", blocking=True)
    if article.image_url and not _is_absolute(article.image_url):
        report.add(
            "relative-link", f"{name}: image {article.image_url!r} is not absolute", blocking=True
        )
