"""The email design against today's: phone height, HTML size and SpamAssassin's local score.

Seeds a temporary SQLite database with the sample issue (10 stories in 4 sections), then renders
it twice in one run:
  * before: the single layout of commit fa2f51a (kept in bench/baseline/email/), with that
    commit's default subject ("<newsletter>: <lead headline>");
  * after: the newsletter's layout as rendering.compile_issue chooses it (``--layout`` picks
    digest, alert or letter; ``--font`` and ``--images`` the other settings).
For each: the HTML's bytes as compiled (before personalisation), the page height in headless
Chromium (/usr/bin/chromium) at 375 px with every story image served as a 16:9 picture, and the
score of ``spamassassin -L -t`` (local rules only) on the message the project's MessageTemplate
builds for one recipient. Prints both and their ratios; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

from jinja2 import ChoiceLoader, FileSystemLoader  # noqa: E402

from newsletter import db, seeding  # noqa: E402
from newsletter.config import Settings  # noqa: E402
from newsletter.content import issues, rendering  # noqa: E402
from newsletter.content.issues import IssueOutline  # noqa: E402
from newsletter.mail.message import MessageTemplate, Recipient  # noqa: E402
from newsletter.sending import recipients  # noqa: E402
from tests.support.pictures import PHOTO  # noqa: E402

BASELINE = Path(__file__).resolve().parent / "baseline"
CHROMIUM = os.environ.get("NEWSLETTER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
PHONE = 375
SETTINGS = Settings(base_url="https://news.example.org", database_url="sqlite://")


@contextmanager
def seeded_outline(layout: str, font: str, images: str) -> Iterator[IssueOutline]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        db.upgrade(url)
        with db.session_scope(url) as session:
            result = seeding.seed(session)
            nl = result.newsletter
            nl.layout, nl.font, nl.story_images = layout, font, images
            session.add(nl)
            issue_id = seeding.draft_sample_issue(session).id
            assert issue_id is not None
            yield issues.load_outline(session, issue_id)
        db.get_engine(url).dispose()


def compile_before(outline: IssueOutline) -> rendering.CompiledIssue:
    """The issue as commit fa2f51a rendered it: its templates, its default subject."""
    env = rendering.environment().overlay(
        loader=ChoiceLoader([FileSystemLoader(BASELINE), FileSystemLoader(rendering.TEMPLATES_DIR)])
    )
    context = rendering.issue_context(outline)
    lead = outline.lead
    subject = outline.issue.subject or (
        f"{outline.newsletter.name}: {lead.article.title}" if lead else ""
    )
    context["subject"] = subject
    source = env.get_template("email/issue.mjml.j2").render(**context)
    html = rendering.compile_mjml(source, template="baseline issue.mjml.j2")
    text = env.get_template("email/issue.txt.j2").render(**context)
    return rendering.CompiledIssue(subject, outline.issue.preheader, html, text)


def message(outline: IssueOutline, compiled: rendering.CompiledIssue) -> tuple[bytes, str]:
    """(the .eml for one reader as MessageTemplate builds it, that reader's HTML)."""
    nl, issue = outline.newsletter, outline.issue
    values, links = recipients.recipient_values(
        SETTINGS, nl, issue, subscriber_id=1, email="reader@example.net", name="Alesia Reader"
    )
    template = MessageTemplate(
        compiled=compiled,
        newsletter=nl,
        issue_id=issue.id or 1,
        secret=SETTINGS.secret_key,
    )
    _, data = template.render(
        Recipient(
            subscriber_id=1,
            email="reader@example.net",
            name="Alesia Reader",
            values=values,
            unsubscribe_url=links["unsubscribe_url"],
            unsubscribe_mailto=links["unsubscribe_mailto"],
        )
    )
    return data, rendering.Personaliser(compiled.html, html_escape=True)(values)


def phone_height(browser: Any, html: str) -> int:
    page = browser.new_page(viewport={"width": PHONE, "height": 800})
    try:
        page.route(
            re.compile(r"^https?://"),
            lambda route: (
                route.fulfill(status=200, content_type="image/png", body=PHOTO)
                if route.request.resource_type == "image"
                else route.abort()
            ),
        )
        page.set_content(html, wait_until="load")
        return int(page.evaluate("document.scrollingElement.scrollHeight"))
    finally:
        page.close()


def spam_score(eml: bytes) -> tuple[float, list[str]]:
    """(score, rules that fired) of ``spamassassin -L -t``: local rules, no network tests."""
    run = subprocess.run(
        ["spamassassin", "-L", "-t"], input=eml, capture_output=True, check=True, timeout=120
    )
    out = run.stdout.decode("utf-8", "replace")
    status = re.search(r"^X-Spam-Status: .*?score=(-?[\d.]+)", out, re.M)
    assert status is not None, out[:2000]
    report = out.split("Content analysis details:", 1)[-1]
    rules = re.findall(r"^\s*(-?\d+\.\d+)\s+([A-Z][A-Z0-9_]+)\s", report, re.M)
    return float(status.group(1)), [f"{name} {points}" for points, name in rules]


def measure(
    browser: Any, outline: IssueOutline, compiled: rendering.CompiledIssue
) -> dict[str, Any]:
    eml, html = message(outline, compiled)
    score, rules = spam_score(eml)
    return {
        "html_bytes": compiled.html_size,
        "height": phone_height(browser, html),
        "spam_score": score,
        "rules": rules,
        "subject": compiled.subject,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", default="digest", choices=["digest", "alert", "letter"])
    parser.add_argument("--font", default="serif", choices=["serif", "sans"])
    parser.add_argument("--images", default="thumbnail", choices=["thumbnail", "none"])
    parser.add_argument("--save", type=Path, help="write before.html/after.html/*.eml here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with seeded_outline(args.layout, args.font, args.images) as outline:
        before_c, after_c = compile_before(outline), rendering.compile_issue(outline)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            before, after = measure(browser, outline, before_c), measure(browser, outline, after_c)
            browser.close()
        stories, sections = len(outline.items), len(outline.sections)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            for name, compiled in (("before", before_c), ("after", after_c)):
                eml, html = message(outline, compiled)
                (args.save / f"{name}.html").write_text(html, encoding="utf-8")
                (args.save / f"{name}.eml").write_bytes(eml)

    print(f"seeded issue: {stories} stories in {sections} sections, layout {args.layout}")
    for name, m in (("before (fa2f51a)", before), (f"after ({args.layout})", after)):
        print(f"{name}: subject {m['subject']!r}")
        print(f"  phone height {m['height']:,} px at {PHONE} px, HTML {m['html_bytes']:,} bytes")
        print(f"  spamassassin -L: {m['spam_score']:+.1f} ({', '.join(m['rules'])})")
    height_ratio = after["height"] / before["height"]
    bytes_ratio = after["html_bytes"] / before["html_bytes"]
    print(f"height ratio {height_ratio:.2f} (target <= 0.60), HTML ratio {bytes_ratio:.2f} (< 1)")
    low_contrast = any(r.startswith("HTML_FONT_LOW_CONTRAST") for r in after["rules"])
    print(f"HTML_FONT_LOW_CONTRAST: {'fires' if low_contrast else 'does not fire'}")
    result = {
        "layout": args.layout,
        "phone_height_px": after["height"],
        "phone_height_before_px": before["height"],
        "height_ratio": round(height_ratio, 3),
        "html_bytes": after["html_bytes"],
        "html_bytes_before": before["html_bytes"],
        "html_ratio": round(bytes_ratio, 3),
        "spam_score": after["spam_score"],
        "spam_score_before": before["spam_score"],
        "spam_rules": after["rules"],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
