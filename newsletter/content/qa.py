"""The QA report before a send: what blocks an issue (and what only warns), from its outline and
its compiled email."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlparse

from newsletter import text
from newsletter.content.issues import PREHEADER_MAX, SUBJECT_MAX, TITLE_MAX, IssueOutline
from newsletter.content.rendering import CompiledIssue
from newsletter.models import Article
from newsletter.statuses import IssueKind


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    blocking: bool


@dataclass
class QAReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]

    @property
    def ok(self) -> bool:
        return not self.blocking

    def add(self, code: str, message: str, *, blocking: bool) -> None:
        self.findings.append(Finding(code, message, blocking))


def _is_absolute(url: str | None) -> bool:
    parsed = urlparse(url or "")
    return parsed.scheme in {"http", "https"} and bool(parsed.netloc)


def qa_report(
    outline: IssueOutline, *, compiled: CompiledIssue | None, size_limit: int
) -> QAReport:
    """Check an issue before sending; blocking findings stop a send."""
    report = QAReport()
    if not outline.subject.strip():
        report.add("no-subject", "the issue has no subject", blocking=True)
    _check_one_line(report, "subject", outline.subject, SUBJECT_MAX)
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
        _check_compiled(report, compiled, size_limit)
    return report


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


def _check_compiled(report: QAReport, compiled: CompiledIssue, size_limit: int) -> None:
    for link in sorted(set(compiled.links())):
        if not (_is_absolute(link) or link.startswith("mailto:")):
            report.add("relative-link", f"link {link!r} is not absolute", blocking=True)
    if compiled.html_size > size_limit:
        report.add(
            "html-too-large",
            f"rendered HTML is {compiled.html_size:,} bytes, over {size_limit:,} "
            "(Gmail clips messages at about 102 KB)",
            blocking=False,
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
