"""Article text made safe: HTML reduced to the email allow-list (nh3), and plain-text helpers."""

from __future__ import annotations

import html
import re

import nh3

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "a", "em", "strong", "b", "i", "ul", "ol", "li", "blockquote",
        "h2", "h3", "h4", "figure", "figcaption", "img",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "title"}),
    "img": frozenset({"src", "alt", "width", "height"}),
}
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
# These carry code or embedded documents; their text is never article copy, so drop it entirely.
DROPPED_CONTENT_TAGS = frozenset(
    {"script", "style", "iframe", "noscript", "object", "embed", "template", "frame", "frameset"}
)
# nh3 output always double-quotes attribute values, so this matches a whole <img> tag exactly.
IMG_TAG = re.compile(r'<img((?:\s+[a-z-]+="[^"]*")*)\s*/?>')
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")


def sanitize_html(html_text: str, *, base_url: str | None = None) -> str:
    """Reduce HTML to the email-safe allow-list; relative URLs resolve against base_url or go."""
    # Relative URLs mean nothing in an inbox, so they are resolved when we know the page, else cut.
    relative: nh3.UrlRelative = ("rewrite_with_base", base_url) if base_url else "deny"
    cleaned = nh3.clean(
        html_text,
        tags=ALLOWED_TAGS,
        clean_content_tags=DROPPED_CONTENT_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer",
        url_relative=relative,
    )
    return IMG_TAG.sub(_drop_sourceless_img, cleaned).strip()


def _drop_sourceless_img(match: re.Match[str]) -> str:
    """Remove an <img> whose src was stripped: mail clients draw it as a broken-image box."""
    return match.group(0) if re.search(r'\ssrc="', match.group(1)) else ""


def plain_text(value: str) -> str:
    """Strip every tag, unescape entities, drop control characters and collapse whitespace."""
    unescaped = html.unescape(nh3.clean(value, tags=set()))
    return " ".join(_CONTROLS.sub(" ", unescaped).split())


def plain_paragraphs(value: str) -> str:
    """Like plain_text, but blank-line paragraph breaks survive (summaries have paragraphs)."""
    paragraphs = (plain_text(p) for p in re.split(r"\n\s*\n", value))
    return "\n\n".join(p for p in paragraphs if p)


_EMAIL = re.compile(r"<?\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b>?")


def byline(value: str | None) -> str | None:
    """An author's name for a byline: e-mail addresses are never shown ("jane@example.org
    (Jane Doe)" is "Jane Doe"; an address alone is no byline)."""
    if not value:
        return None
    name = _EMAIL.sub(" ", value)
    name = re.sub(r"\(\s*\)", " ", name).strip()
    if name.startswith("(") and name.endswith(")"):
        name = name[1:-1]
    name = " ".join(name.strip(" ,;-").split())
    return name or None
