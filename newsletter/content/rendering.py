"""Compile an issue once (Jinja2 -> MJML -> HTML, and a text twin); personalise per recipient.

Per-recipient values are rendered as placeholder tokens that survive Jinja2 and MJML untouched;
``Personaliser`` splits the compiled output on them once, so each recipient costs one join.
The newsletter's layout (digest, alert, letter) picks the body of ``email/issue.mjml.j2``;
``design`` gives every email its font stacks and colours, dark mode's included.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nh3
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from markdown_it import MarkdownIt
from markupsafe import Markup
from mjml import mjml2html

from newsletter import i18n
from newsletter.content import text_part
from newsletter.content.issues import IssueOutline, OutlineItem
from newsletter.exceptions import RenderError
from newsletter.models import Newsletter

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"

#: per-recipient fields; each becomes the token ``__NL_<NAME>__`` in compiled output
RECIPIENT_FIELDS = (
    "name",
    "greeting",
    "email",
    "unsubscribe_url",
    "preferences_url",
    "view_url",
    "confirm_url",  # the sign-up confirmation email's link
    "track_token",  # the tracking links' per-recipient part (``analytics.tokens``)
)
PLACEHOLDERS = {name: f"__NL_{name.upper()}__" for name in RECIPIENT_FIELDS}
_TOKEN_RE = re.compile(r"__NL_([A-Z_]+?)__")
_HREF_RE = re.compile(r"""href=["']([^"']*)["']""")

LAYOUTS = ("digest", "alert", "letter")  # newsletters.CHOICES["layout"]; the first is the default
#: several rows of columns in one mj-section: browsers wrap the columns, Outlook's ghost table
#: needs a new row, which MJML cannot write (it refuses a conditional comment in mj-raw)
ROW_BREAK = '<i class="nl-row"></i>'
_MSO_ROW_BREAK = "<!--[if mso | IE]></tr><tr><![endif]-->"
FONTS = {
    "serif": "Georgia, Times, serif",
    "sans": "Helvetica, Arial, sans-serif",
}


@dataclass(frozen=True)
class CompiledIssue:
    subject: str
    preheader: str
    html: str
    text: str

    @property
    def html_size(self) -> int:
        return len(self.html.encode())

    def links(self) -> list[str]:
        """Every href in the HTML that is not a per-recipient placeholder."""
        return [h for h in _HREF_RE.findall(self.html) if not _TOKEN_RE.fullmatch(h)]


#: tags a story's link while an issue is compiled for click tracking (``analytics.links``):
#: (url, kind, story or None) -> the URL with a marker the rewriter reads and removes
LinkTagger = Callable[[str, str, Mapping[str, Any] | None], str]
LINK_TAGGER: ContextVar[LinkTagger | None] = ContextVar("link_tagger", default=None)


def link(url: str, kind: str, story: Mapping[str, Any] | None = None) -> str:
    """A link of the email as the template writes it: ``url`` itself unless tracking tags it
    (its kind: headline, image, read_more, brief; and the story's article, section, place)."""
    tagger = LINK_TAGGER.get()
    return url if tagger is None else tagger(url, kind, story)


def _tag_intro(html_in: str) -> str:
    tagger = LINK_TAGGER.get()
    if tagger is None:
        return html_in
    return _HREF_RE.sub(lambda m: f'href="{tagger(m[1], "intro", None)}"', html_in)


@lru_cache(maxsize=1)
def environment() -> Environment:
    # text twins are not HTML: escaping them would print &amp; to readers; all else is escaped
    env = Environment(
        extensions=["jinja2.ext.i18n"],
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=lambda name: name is not None and not name.endswith(".txt.j2"),  # noqa: S701
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_no_controls,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["paragraphs"] = _paragraphs
    env.globals["design"] = design
    env.globals["link"] = link
    env.globals["row_break"] = Markup(ROW_BREAK)  # noqa: S704 - a constant
    return env


def _mix(colour: str, other: str, share: float) -> str:
    """``colour`` moved ``share`` of the way to ``other`` (both ``#rrggbb``)."""
    a, b = (tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in (colour, other))
    return "#" + "".join(f"{round(x + (y - x) * share):02x}" for x, y in zip(a, b, strict=True))


def design(newsletter: Newsletter) -> dict[str, str]:
    """Font stacks and colours of a newsletter's emails, light and dark."""
    brand = newsletter.brand_color or ""
    brand = brand if re.fullmatch(r"#[0-9a-fA-F]{6}", brand) else "#b4121b"  # checked on save
    return {
        "font": FONTS.get(newsletter.font, FONTS["serif"]),
        "ui_font": FONTS["sans"],
        "text": "#1f1f1f",
        "meta": "#666666",
        "page": "#f2f2ef",
        "dark_page": "#121212",
        "dark_card": "#1e1e1e",
        "dark_text": "#e8e8e6",
        "dark_meta": "#a8a8a8",
        "dark_link": _mix(brand, "#ffffff", 0.45),
    }


_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _no_controls(value: Any) -> Any:
    """Every ``{{ value }}`` without C0 control characters: MJML cannot parse them, and no
    reader should see them. QA reports the stored value (``qa.qa_report``)."""
    if isinstance(value, str) and _CONTROLS.search(value):
        cleaned = _CONTROLS.sub("", value)
        # removing characters from safe markup leaves it safe
        return Markup(cleaned) if isinstance(value, Markup) else cleaned  # noqa: S704
    return value


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]


_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": True})


def markdown_to_html(source: str) -> str:
    """Editor Markdown to safe HTML (raw HTML in the Markdown is not passed through)."""
    rendered = _markdown.render(source or "")
    return nh3.clean(rendered, url_schemes={"http", "https", "mailto"})


def _story(entry: OutlineItem) -> dict[str, Any]:
    article = entry.article
    return {
        "id": entry.item.id,
        "article_id": article.id,
        "headline": article.title,
        "url": article.url,
        "summary": entry.blurb,
        "first_paragraph": next(iter(_paragraphs(entry.blurb)), ""),
        "bullet": (article.bullet if not entry.item.blurb else "") or _first_sentence(entry.blurb),
        "image_url": article.image_url,
        "image_alt": article.image_alt or "",
        "image_credit": article.image_credit or "",
        "author": article.author or "",
        "published": _date(article.published_at),
    }


_SENTENCE_END = re.compile(r"[.!?][\"\u201d\u2019']?\s+(?=[A-Z\"\u201c])")
_ABBREVIATION = re.compile(
    r"(\b[A-Z]|\b(?:Mr|Mrs|Ms|Dr|St|Gen|Gov|Sen|Rep|Jan|Feb|Aug|Sept|Oct|Nov|Dec))\.$"
)


def _first_sentence(text: str) -> str:
    """The first sentence of the first paragraph ("U.S." and "Oct." do not end one)."""
    first = _paragraphs(text)[0] if text.strip() else ""
    for match in _SENTENCE_END.finditer(first):
        candidate = first[: match.start() + 1]
        if not _ABBREVIATION.search(candidate):
            return first[: match.end()].strip()
    return first


_AP_MONTHS = (
    "Jan.",
    "Feb.",
    "March",
    "April",
    "May",
    "June",
    "July",
    "Aug.",
    "Sept.",
    "Oct.",
    "Nov.",
    "Dec.",
)


def _date(value: datetime | None) -> str:
    """Wire-service style in English: "Oct. 19, 2025", "May 4, 2025"; else the locale's long
    date (``i18n.long_date``)."""
    if value is None:
        return ""
    if i18n.current() != i18n.SOURCE:
        return i18n.long_date(value)
    return f"{_AP_MONTHS[value.month - 1]} {value.day}, {value.year}"


def _local(value: datetime | None, zone: str) -> datetime | None:
    """``value`` (aware, or naive UTC as SQLite returns it) in the newsletter's time zone."""
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return aware.astimezone(ZoneInfo(zone or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):  # checked on save; an old row stays in UTC
        return aware


def local_date(value: datetime, zone: str) -> str:
    """``value``'s day in ``zone``, written as the current locale writes dates."""
    return _date(_local(value, zone))


def issue_context(outline: IssueOutline) -> dict[str, Any]:
    nl, issue = outline.newsletter, outline.issue
    by_section = [[_story(i) for i in s.items] for s in outline.sections]
    stories = [story for section in by_section for story in section]
    for place, story in enumerate(stories, start=1):  # what a tracked link records
        story["position"] = place
    for s, found in zip(outline.sections, by_section, strict=True):
        for story in found:
            story["section"] = s.section.title
    lead = stories[0] if stories else None
    # the digest shows the lead on its own, then the others by section
    sections = [
        {"title": s.section.title, "stories": found, "others": [x for x in found if x is not lead]}
        for s, found in zip(outline.sections, by_section, strict=True)
    ]
    return {
        "newsletter": nl,
        "issue": issue,
        "layout": nl.layout if nl.layout in LAYOUTS else LAYOUTS[0],
        "thumbnails": nl.story_images != "none",
        "subject": outline.subject,
        "preheader": issue.preheader,
        "title": text_part.display_title(nl.name, issue.title) or issue.title,
        "intro_html": Markup(_tag_intro(markdown_to_html(issue.intro_md))),  # noqa: S704
        "intro_md": issue.intro_md,
        "date": _date(_local(issue.send_started_at or issue.created_at, nl.time_zone)),
        "sections": sections,
        "lead": lead,
        "others": stories[1:],
        "bullets": [story["bullet"] for story in stories],
        "brief": [
            {"text": s["bullet"], "url": s["url"], "story": s} for s in stories if s["bullet"]
        ],
        "r": PLACEHOLDERS,
        "lang": outline.language or nl.language or i18n.SOURCE,
    }


def render_template(name: str, context: Mapping[str, Any]) -> str:
    try:
        return environment().get_template(name).render(**context)
    except TemplateError as exc:
        raise RenderError(f"template {name}: {exc}") from exc


def compile_mjml(source: str, *, template: str) -> str:
    try:
        compiled = str(mjml2html(source, disable_comments=True))
    except (ValueError, RuntimeError) as exc:
        raise RenderError(f"MJML in template {template} does not compile: {exc}") from exc
    return compiled.replace(ROW_BREAK, _MSO_ROW_BREAK)


def compile_email(template: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """Render ``email/<template>.mjml.j2`` and its text twin; MJML is compiled here, once."""
    mjml_name, text_name = f"email/{template}.mjml.j2", f"email/{template}.txt.j2"
    html_out = compile_mjml(render_template(mjml_name, context), template=mjml_name)
    return html_out, render_template(text_name, context)


def compile_issue(outline: IssueOutline) -> CompiledIssue:
    """The issue's HTML (its MJML template) and its text part (``text_part``, per layout), the
    chrome in the outline's language (an edition's, else the newsletter's)."""
    with i18n.use(outline.language or outline.newsletter.language):
        context = issue_context(outline)
        template = "email/issue.mjml.j2"
        html_out = compile_mjml(render_template(template, context), template=template)
        text_out = text_part.issue_text(context)
    return CompiledIssue(
        subject=outline.subject,
        preheader=outline.issue.preheader,
        html=html_out,
        text=text_out,
    )


class Personaliser:
    """Fills per-recipient values into a compiled template without compiling it again."""

    def __init__(self, compiled: str, *, html_escape: bool) -> None:
        parts = _TOKEN_RE.split(compiled)
        # split() alternates literal, field, literal...; unknown tokens stay literal
        self._literals = parts[0::2]
        self._fields = [p.lower() for p in parts[1::2]]
        unknown = [f for f in self._fields if f not in PLACEHOLDERS]
        if unknown:
            raise RenderError(f"unknown per-recipient fields: {sorted(set(unknown))}")
        self._escape = html_escape

    @property
    def literals(self) -> tuple[str, ...]:
        """The fixed text around the fields: one more than ``fields``, first and last included."""
        return tuple(self._literals)

    @property
    def fields(self) -> tuple[str, ...]:
        """The per-recipient fields in order of appearance (``RECIPIENT_FIELDS`` names)."""
        return tuple(self._fields)

    def value(self, name: str, values: Mapping[str, str]) -> str:
        """One field's text as it goes into the output (HTML-escaped for an HTML template)."""
        value = values.get(name, "")
        return html.escape(value, quote=True) if self._escape else value

    def __call__(self, values: Mapping[str, str]) -> str:
        out = [self._literals[0]]
        for name, literal in zip(self._fields, self._literals[1:], strict=True):
            out.append(self.value(name, values))
            out.append(literal)
        return "".join(out)


def personalise(compiled: CompiledIssue, values: Mapping[str, str]) -> tuple[str, str]:
    """One recipient's (html, text); for many recipients build ``Personaliser`` once."""
    return (
        Personaliser(compiled.html, html_escape=True)(values),
        Personaliser(compiled.text, html_escape=False)(values),
    )
