"""Each QA check of issue 18 one by one: it fires on crafted HTML or a crafted outline, and it is
quiet on the seeded issue (built as ``newsletter demo`` builds it: seeding.seed, then
seeding.draft_sample_issue).

The seeded issue's tests check the email the templates make today; the templates' rewrite for
issue 18 (named "Read more" links, semantic headings, a preheader without low-contrast text, a
subject without the sender's name) is what makes the duplicate-link-text, h1-count,
low-contrast and subject-long ones pass.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from newsletter import db, seeding
from newsletter.content import issues, qa, qa_access, qa_html, qa_links, qa_text, rendering
from newsletter.content.qa import QAConfig, QAReport
from newsletter.content.spam_check import RuleHit, SpamReport, SpamResult
from newsletter.exceptions import QABlocked
from newsletter.sending.start import fill_ledger
from tests.conftest import make_issue


def _codes(report: QAReport) -> list[str]:
    return [f.code for f in report.findings]


def _access(html: str) -> QAReport:
    report = QAReport()
    qa_access.check_accessibility(report, qa_html.parse(html))
    return report


def _links(html: str, *, production: bool = False) -> QAReport:
    report = QAReport()
    qa_links.check_links(report, qa_html.parse(html), production=production)
    return report


GOOD_HEADINGS = "<h1>Issue</h1><h2>World</h2><h3>Story</h3>"


# ---------------------------------------------------------------- accessibility


def test_an_image_without_an_alt_attribute_blocks() -> None:
    report = _access(GOOD_HEADINGS + '<img src="https://x.example/a.png">')
    [finding] = report.findings
    assert (finding.code, finding.blocking) == ("img-without-alt", True)
    assert "a.png" in finding.message


def test_an_empty_alt_is_decoration_not_a_finding() -> None:
    assert _access(GOOD_HEADINGS + '<img src="https://x.example/rule.png" alt="">').findings == []


def test_a_link_without_text_is_reported() -> None:
    report = _access(GOOD_HEADINGS + '<a href="https://x.example/s"><img src="i.png" alt=""></a>')
    [finding] = report.findings
    assert (finding.code, finding.blocking) == ("empty-link-text", False)


def test_an_image_link_is_named_by_its_alt_text() -> None:
    html = GOOD_HEADINGS + '<a href="https://x.example/s"><img src="i.png" alt="Minsk"></a>'
    assert _access(html).findings == []


def test_the_same_link_text_to_different_pages_is_reported_once() -> None:
    links = "".join(f'<a href="https://x.example/{i}">Read more &rarr;</a>' for i in range(10))
    report = _access(GOOD_HEADINGS + links)
    [finding] = report.findings
    assert finding.code == "duplicate-link-text" and not finding.blocking
    assert "10 links read 'read more →'" in finding.message


def test_the_same_link_text_to_the_same_page_is_fine() -> None:
    links = '<a href="https://x.example/v">View in browser</a>' * 2
    assert _access(GOOD_HEADINGS + links).findings == []


def test_no_h1_and_two_h1_are_each_reported() -> None:
    assert _codes(_access("<h2>A</h2>")) == ["h1-count"]
    assert _codes(_access("<h1>A</h1><h1>B</h1>")) == ["h1-count"]
    assert _access("<h1>A</h1><h2>B</h2>").findings == []


def test_a_skipped_heading_level_is_reported() -> None:
    report = _access("<h1>Issue</h1><h3>Story</h3><h2>Back</h2><h3>Fine</h3>")
    [finding] = report.findings
    assert finding.code == "heading-skip" and "h3 'Story' follows h1" in finding.message


def test_low_contrast_text_is_reported_with_its_ratio() -> None:
    html = GOOD_HEADINGS + '<div style="background-color:#ffffff"><p style="color:#aaaaaa">x</p>'
    [finding] = _access(html + "</div>").findings
    assert finding.code == "low-contrast" and not finding.blocking
    assert "2.32:1, below 4.5:1" in finding.message


def test_contrast_reads_the_nearest_background_and_bgcolor() -> None:
    dark = '<table bgcolor="#1a1a1a"><tr><td><span style="color:#ffffff">white on dark</span>'
    assert _access(GOOD_HEADINGS + dark + "</td></tr></table>").findings == []
    inner = '<div style="background:#1a1a1a"><div style="background:#fff"><span style="color:#fff">'
    assert _codes(_access(GOOD_HEADINGS + inner + "x</span></div></div>")) == ["low-contrast"]


def test_large_text_needs_three_to_one() -> None:
    # #949494 on white is 3.03:1: enough for 24 px text, not for 16 px
    large = '<p style="color:#949494;font-size:24px">Big</p>'
    assert _access(GOOD_HEADINGS + large).findings == []
    assert _codes(_access(GOOD_HEADINGS + '<p style="color:#949494">Small</p>')) == ["low-contrast"]


def test_hidden_low_contrast_text_is_reported_as_hidden() -> None:
    html = '<body style="background-color:#f2f2ef"><div style="display:none;color:#ffffff">pre'
    [finding] = _access(GOOD_HEADINGS + html + "</div></body>").findings
    assert "(hidden text)" in finding.message


def test_contrast_ratio_matches_wcag() -> None:
    black, white = (0, 0, 0), (255, 255, 255)
    assert qa_access.contrast_ratio(black, white) == pytest.approx(21.0)
    assert qa_access.parse_colour("#777") == (119, 119, 119)
    assert qa_access.contrast_ratio((119, 119, 119), white) == pytest.approx(4.48, abs=0.01)
    assert qa_access.parse_colour("rgb(10, 20, 30)") == (10, 20, 30)
    assert qa_access.parse_colour("#fff url(x.png) no-repeat") == (255, 255, 255)
    assert qa_access.parse_colour("inherit") is None


# ---------------------------------------------------------------- links


def test_a_relative_link_or_image_blocks() -> None:
    report = _links('<a href="/story">s</a><img src="img/a.png" alt="a">')
    assert [(f.code, f.blocking) for f in report.findings] == [("relative-link", True)] * 2


def test_an_http_link_is_advice() -> None:
    [finding] = _links('<a href="http://news.example.org/s">s</a>').findings
    assert (finding.code, finding.blocking) == ("http-link", False)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/a",
        "https://10.1.2.3/a",
        "https://172.20.0.5/a",
        "https://192.168.1.10/a",
        "https://[::1]/a",
        "https://169.254.1.1/a",
        "https://localhost:8000/a",
        "https://printer.local/a",
    ],
)
def test_a_private_address_blocks_in_production_and_warns_elsewhere(url: str) -> None:
    [prod] = _links(f'<a href="{url}">x</a>', production=True).findings
    [dev] = _links(f'<a href="{url}">x</a>', production=False).findings
    assert (prod.code, prod.blocking) == ("private-link", True)
    assert (dev.code, dev.blocking) == ("private-link", False)


def test_public_https_mailto_and_placeholder_links_are_fine() -> None:
    html = (
        '<a href="https://172.32.0.1/a">public</a><a href="https://news.example.org/">n</a>'
        '<a href="mailto:desk@news.example.org">m</a><a href="__NL_UNSUBSCRIBE_URL__">u</a>'
    )
    assert _links(html, production=True).findings == []


def test_the_size_counts_links_as_the_rewriter_sends_them() -> None:
    compiled = rendering.CompiledIssue("s", "p", '<a href="https://n.example/a">a</a>', "t")
    longer = qa_links.sent_html(compiled, None, lambda href: href + "?" + "x" * 200)
    assert len(longer) == len(compiled.html) + 201
    assert qa_links.sent_html(compiled, None, qa_links.identity) == compiled.html


def test_the_size_counts_the_sample_readers_values() -> None:
    compiled = rendering.CompiledIssue("s", "p", '<a href="__NL_VIEW_URL__">v</a>', "t")
    values = {"view_url": "https://news.example.org/archive/weekly/1"}
    assert "archive/weekly/1" in qa_links.sent_html(compiled, values, qa_links.identity)


def test_size_warns_then_blocks() -> None:
    report = QAReport()
    qa_links.check_size(report, 95_000, warn=90_000, limit=102_000)
    qa_links.check_size(report, 103_000, warn=90_000, limit=102_000)
    qa_links.check_size(report, 80_000, warn=90_000, limit=102_000)
    assert [(f.code, f.blocking) for f in report.findings] == [
        ("html-large", False),
        ("html-too-large", True),
    ]


# ---------------------------------------------------------------- subject and preheader


@pytest.mark.parametrize(
    ("subject", "code"),
    [
        ("Belarus Weekly: " + "a long headline that goes on and on " * 2, "subject-long"),
        ("BREAKING NEWS from Minsk", "subject-capitals"),
        ("Sanctions lifted!!!", "subject-punctuation"),
        ("Really?!", "subject-punctuation"),
        ("\U0001f525\U0001f525", "subject-no-words"),
        ("Minsk \U0001f525\U0001f525\U0001f525", "subject-emoji"),
    ],
)
def test_subject_advice_fires(subject: str, code: str) -> None:
    report = QAReport()
    qa_text.check_subject(report, subject)
    assert _codes(report) == [code]
    assert not report.findings[0].blocking


def test_one_acronym_in_a_subject_is_fine() -> None:
    report = QAReport()
    qa_text.check_subject(report, "NATO and OSCE observers watch Zapad drills")
    qa_text.check_subject(report, "KGB chief signals openness to talks with Kyiv")
    assert _codes(report) == ["subject-capitals"]  # the first: two words of four capitals


@pytest.mark.parametrize(
    ("preheader", "code"),
    [("", "no-preheader"), ("Short one", "preheader-short"), ("x " * 80, "preheader-long")],
)
def test_preheader_advice_fires(preheader: str, code: str) -> None:
    report = QAReport()
    qa_text.check_preheader(report, preheader)
    assert _codes(report) == [code]


# ---------------------------------------------------------------- spam in the report


def _spam(score: float, *, threshold: float = 5.0, available: bool = True) -> QAConfig:
    rules = (RuleHit("HTML_FONT_LOW_CONTRAST", 0.7, "BODY: low contrast"),)
    result = (
        SpamResult(True, score, rules, "test", 0.1)
        if available
        else SpamResult(False, problem="no spamd and no binary")
    )
    return QAConfig(spam=lambda outline, compiled: SpamReport(result, threshold))


def _issue_report(session: Session, checks: QAConfig) -> QAReport:
    fx = make_issue(session, layout=(1,))
    outline = issues.load_outline(session, fx.issue.id)  # type: ignore[arg-type]
    return qa.qa_report(outline, compiled=rendering.compile_issue(outline), checks=checks)


def test_a_spam_score_at_the_threshold_blocks_with_its_rules(session: Session) -> None:
    report = _issue_report(session, _spam(5.0))
    [finding] = [f for f in report.findings if f.code == "spam-score"]
    assert finding.blocking
    assert "5.0" in finding.message and "HTML_FONT_LOW_CONTRAST +0.7" in finding.message
    assert report.spam is not None and report.spam.result.score == 5.0


def test_a_spam_score_under_the_threshold_is_no_finding(session: Session) -> None:
    report = _issue_report(session, _spam(4.9))
    assert "spam-score" not in _codes(report)
    assert report.spam is not None and not report.spam.blocking


def test_spamassassin_not_available_is_advice(session: Session) -> None:
    report = _issue_report(session, _spam(0, available=False))
    [finding] = [f for f in report.findings if f.code == "spam-check-unavailable"]
    assert not finding.blocking
    assert "SpamAssassin not available: no spamd and no binary" in finding.message


def test_a_spam_score_over_the_threshold_refuses_the_send(session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    with pytest.raises(QABlocked) as raised:
        fill_ledger(session, issue_id=fx.issue.id, checks=_spam(7.5))  # type: ignore[arg-type]
    assert any("SpamAssassin scores it 7.5" in f for f in raised.value.findings)


# ---------------------------------------------------------------- quiet on the seeded issue


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[QAReport]:
    """QA of the seeded issue, with the size measured as sent to the preview's reader."""
    from newsletter.config import Settings
    from newsletter.sending.checks import qa_config

    path = tmp_path_factory.mktemp("seeded") / "newsletter.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    settings = Settings(database_url=url, base_url="https://news.example.org", spam_check="off")
    with Session(db.get_engine(url), expire_on_commit=False) as session:
        seeding.seed(session)
        issue = seeding.draft_sample_issue(session)
        session.commit()
        outline = issues.load_outline(session, issue.id)  # type: ignore[arg-type]
        checks = qa_config(settings)
        yield qa.qa_report(outline, compiled=rendering.compile_issue(outline), checks=checks)
    db.get_engine(url).dispose()


@pytest.mark.parametrize(
    "codes",
    [
        ("img-without-alt", "empty-link-text"),
        ("duplicate-link-text",),  # fails on today's templates: ten "Read more →"
        ("h1-count", "heading-skip"),  # fails on today's templates: no heading elements
        ("low-contrast",),  # fails on today's templates: the white preheader
        ("relative-link", "http-link", "private-link"),
        ("html-large", "html-too-large"),
        ("subject-capitals", "subject-punctuation", "subject-no-words", "subject-emoji"),
        ("subject-long",),  # fails today: the default subject repeats the newsletter's name
        ("no-preheader", "preheader-short", "preheader-long"),
    ],
)
def test_the_seeded_issue_is_quiet(seeded: QAReport, codes: tuple[str, ...]) -> None:
    fired = [f"{f.code}: {f.message}" for f in seeded.findings if f.code in codes]
    assert fired == []
