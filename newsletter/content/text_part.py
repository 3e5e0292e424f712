"""The plain-text part of an issue: its Markdown as text, wrapped at 76 columns, per layout.

It reads the context ``rendering.issue_context`` makes of the outline, so the text shows the
HTML's own headlines, bullets, bylines and dates. Markdown becomes text from markdown-it's
token stream: emphasis markers, heading ``#`` and raw HTML go, a link reads "text <url>",
lists keep "- " / "1. " with a hanging indent. A URL or a per-recipient placeholder is never
broken (a long one stands on a line of its own); every other line fits 76 columns. Photo credits
are left out (a text reader sees no image), and the footer follows the "-- " signature separator.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from newsletter.content.sanitize import plain_text
from newsletter.i18n import gettext as _

WIDTH = 76
#: deeper nesting (lists in lists in quotes...) stops indenting here, so text keeps room
MAX_INDENT = 24
#: a chunk holding one of these is never broken, however long
_UNBREAKABLE = re.compile(r"://|mailto:|\bwww\.|__NL_[A-Z_]+__")
_LINK_SCHEMES = ("http://", "https://", "mailto:")
_STRAY_MARKERS = re.compile(r"\*\*|__")


class _Parser(MarkdownIt):
    """Takes every link as a link (``_link_target`` shows only web and mail addresses), so a
    ``[text](javascript:...)`` leaves its text, not its brackets."""

    def validateLink(self, url: str) -> bool:  # noqa: N802 - markdown-it's name
        return True


#: raw HTML is parsed (so it can be left out), never passed through
_markdown = _Parser("commonmark", {"html": True, "linkify": False})


# ---------------------------------------------------------------- wrapping


class _Wrapper(textwrap.TextWrapper):
    """Breaks over-long words, but gives a URL or a placeholder a line of its own instead."""

    def _handle_long_word(
        self, reversed_chunks: list[str], cur_line: list[str], cur_len: int, width: int
    ) -> None:
        if _UNBREAKABLE.search(reversed_chunks[-1]):
            if not cur_line:
                cur_line.append(reversed_chunks.pop())
            return
        super()._handle_long_word(reversed_chunks, cur_line, cur_len, width)


def wrap(text: str, first: str = "", rest: str | None = None, *, width: int = WIDTH) -> list[str]:
    """``text`` in lines of at most ``width`` (URLs aside); a newline in it is kept as a break.

    ``first`` prefixes the first line (a list marker), ``rest`` the others (a hanging indent)."""
    rest = first if rest is None else rest
    lines: list[str] = []
    for segment in text.split("\n"):
        indent = rest if lines else first
        wrapper = _Wrapper(
            width=width,
            initial_indent=indent,
            subsequent_indent=rest,
            break_on_hyphens=False,  # "belarus-kgb-dialogue-kyiv" in a URL stays whole
        )
        lines.extend(wrapper.wrap(segment) or ([indent.rstrip()] if lines else []))
    return lines


def _wrapped(text: str, first: str = "", rest: str | None = None) -> str:
    return "\n".join(wrap(text, first, rest))


# ---------------------------------------------------------------- Markdown to text


@dataclass
class _Container:
    """An open list item or quote: the prefix of its next first line, and of the others."""

    first: str
    rest: str


class _MarkdownText:
    """Walks markdown-it's block tokens, writing wrapped lines."""

    def __init__(self, first: str = "", rest: str = "") -> None:
        self.lines: list[str] = []
        self.containers = [_Container(first, rest)]
        self.counters: list[int | None] = []  # per open list: the next number, None for "- "
        self.tight = False  # the last block was a tight list's paragraph: no blank line after
        self.hidden = False  # the open paragraph is a tight list's (markdown-it hides its tags)
        self.handlers: dict[str, Callable[[Token], None]] = {
            "paragraph_open": self._paragraph_open,
            "inline": self._inline,
            "bullet_list_open": self._list_open,
            "ordered_list_open": self._list_open,
            "bullet_list_close": self._list_close,
            "ordered_list_close": self._list_close,
            "list_item_open": self._item_open,
            "list_item_close": self._container_close,
            "blockquote_open": self._quote_open,
            "blockquote_close": self._container_close,
            "code_block": self._code,
            "fence": self._code,
            "hr": self._rule,
            "html_block": self._html,
        }

    def render(self, source: str) -> list[str]:
        for token in _markdown.parse(source):
            handler = self.handlers.get(token.type)
            if handler is not None:
                handler(token)
        return self.lines

    def emit(self, text: str, *, tight: bool = False, indent: str = "") -> None:
        if not text.strip():
            return
        if self.lines and not (tight and self.tight):
            self.lines.append("")
        first = "".join(c.first for c in self.containers)[:MAX_INDENT] + indent
        rest = "".join(c.rest for c in self.containers)[:MAX_INDENT] + indent
        for container in self.containers:
            container.first = container.rest  # a list marker shows once
        self.lines.extend(wrap(text.strip("\n") if indent else text.strip(), first, rest))
        self.tight = tight

    def _paragraph_open(self, token: Token) -> None:
        self.hidden = token.hidden

    def _inline(self, token: Token) -> None:
        self.emit(inline_text(token.children or []), tight=self.hidden)
        self.hidden = False

    def _list_open(self, token: Token) -> None:
        if not self.counters:
            self.tight = False
        start = token.attrGet("start")
        ordered = token.type == "ordered_list_open"
        self.counters.append(int(start or 1) if ordered else None)

    def _list_close(self, token: Token) -> None:
        self.counters.pop()
        if not self.counters:
            self.tight = False

    def _item_open(self, token: Token) -> None:
        number = self.counters[-1]
        marker = "- " if number is None else f"{number}. "
        if number is not None:
            self.counters[-1] = number + 1
        self.containers.append(_Container(marker, " " * len(marker)))

    def _quote_open(self, token: Token) -> None:
        self.containers.append(_Container("    ", "    "))

    def _container_close(self, token: Token) -> None:
        self.containers.pop()

    def _code(self, token: Token) -> None:
        self.emit(token.content, indent="    ")

    def _rule(self, token: Token) -> None:
        self.emit("* * *")

    def _html(self, token: Token) -> None:
        self.emit(plain_text(token.content))


def inline_text(children: Sequence[Token]) -> str:
    """One paragraph's inline tokens as text: emphasis markers and tags dropped, links as
    "text <url>", images as their alt text, a hard break as a newline."""
    parts: list[str] = []
    open_links: list[tuple[str, int]] = []
    for token in children:
        if token.type in ("text", "code_inline"):
            parts.append(token.content)
        elif token.type == "softbreak":
            parts.append(" ")
        elif token.type == "hardbreak":
            parts.append("\n")
        elif token.type == "image":
            parts.append(inline_text(token.children or []))
        elif token.type == "link_open":
            open_links.append((str(token.attrGet("href") or ""), len(parts)))
        elif token.type == "link_close" and open_links:
            href, start = open_links.pop()
            parts.append(_link_target(href, "".join(parts[start:])))
    return "".join(parts)


def _link_target(href: str, label: str) -> str:
    """What follows a link's text: " <url>", or nothing when the text already is the URL (or the
    URL is no web or mail address: nothing a reader could open)."""
    if not href.startswith(_LINK_SCHEMES):
        return ""
    label = label.strip()
    if label in (href, href.removeprefix("mailto:"), _markdown.normalizeLinkText(href)):
        return ""
    return f" <{href}>" if label else href


def markdown_text(source: str, first: str = "", rest: str = "") -> str:
    """Editor Markdown as wrapped plain text (paragraphs apart by a blank line); ``first`` and
    ``rest`` prefix its first line and the others (a list item's marker and hanging indent)."""
    return "\n".join(_MarkdownText(first, rest).render(source or ""))


# ---------------------------------------------------------------- the issue


def issue_text(context: Mapping[str, Any]) -> str:
    """The text part of an issue from ``rendering.issue_context``; per-recipient values stay
    placeholders (``context["r"]``)."""
    nl = context["newsletter"]
    layout = _LAYOUTS.get(getattr(nl, "layout", "digest"), _digest)
    blocks = [_header(context), *_opening(context), *layout(context), _membership(nl)]
    body = "\n\n".join(b for b in blocks if b.strip())
    return f"{body}\n\n-- \n{_footer(context)}\n"


def display_title(name: str, title: str) -> str:
    """The issue title without a leading "<newsletter name>:" (the header line names it), or ""
    when the title is the name alone."""
    if title.strip().casefold() == name.strip().casefold():
        return ""
    prefix = re.match(rf"\s*{re.escape(name.strip())}\s*[:|\u2013\u2014-]\s*(?=\S)", title, re.I)
    return title[prefix.end() :] if prefix else title


def _header(context: Mapping[str, Any]) -> str:
    nl, issue, r = context["newsletter"], context["issue"], context["r"]
    label = (
        _("Welcome")
        if issue.kind == "welcome"
        else _("Issue %(number)s") % {"number": issue.number}
    )
    date = context["date"] if issue.kind != "welcome" else ""
    lines = [_wrapped(" - ".join(p for p in (nl.name.upper(), label, date) if p))]
    if nl.masthead:
        lines.append(_wrapped(nl.masthead))
    lines.append(f"{_('View in browser')}: {r['view_url']}")
    return "\n".join(lines)


def _opening(context: Mapping[str, Any]) -> list[str]:
    title = display_title(context["newsletter"].name, context["issue"].title)
    return [_wrapped(title), context["r"]["greeting"]]


def _stories(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [story for section in context["sections"] for story in section["stories"]]


def _digest(context: Mapping[str, Any]) -> list[str]:
    """Intro, the lead story (the issue's first item), the brief (when there is more than one
    story, as in the HTML), then each section's others."""
    stories = _stories(context)
    lead = stories[0] if stories else None
    blocks = [markdown_text(context["intro_md"])]
    if lead is not None:
        blocks += [_("Top story").upper(), _story(lead)]
    if len(stories) > 1:
        blocks.append(_brief(context["bullets"]))
    for section in context["sections"]:
        rest = [s for s in section["stories"] if s is not lead]
        if rest:
            blocks += [_wrapped(section["title"].upper()), *(_story(s) for s in rest)]
    return blocks


def _alert(context: Mapping[str, Any]) -> list[str]:
    """The one story (the lead) after the intro; the others as an "Also" list."""
    stories = _stories(context)
    lead = [_story(stories[0])] if stories else []
    return [markdown_text(context["intro_md"]), *lead, _also(stories[1:])]


def _letter(context: Mapping[str, Any]) -> list[str]:
    """The intro is the body; the stories follow as an "Also" list."""
    return [markdown_text(context["intro_md"]), _also(_stories(context))]


_LAYOUTS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "digest": _digest,
    "alert": _alert,
    "letter": _letter,
}


def _brief(bullets: Sequence[str]) -> str:
    # a bullet may be a blurb's first sentence, cut out of a bold span: drop its lone markers
    items = [_STRAY_MARKERS.sub("", markdown_text(b, "- ", "  ")) for b in bullets if b.strip()]
    return "\n".join([_("In brief").upper(), *items]) if items else ""


def _story(story: Mapping[str, Any]) -> str:
    """Headline, byline, the summary (Markdown as text) and its link; no photo credit."""
    byline = " - ".join(p for p in (_by(story["author"]), story["published"]) if p)
    head = "\n".join(_wrapped(line) for line in (story["headline"], byline) if line)
    summary = markdown_text(story["summary"])
    link = _wrapped(f"{_('Read more')}: {story['url']}")
    return "\n\n".join(part for part in (head, summary, link) if part)


def _by(author: str) -> str:
    return _("By %(author)s") % {"author": author} if author else ""


def _also(stories: Sequence[Mapping[str, Any]]) -> str:
    items = [_wrapped(f"{s['headline']} <{s['url']}>", "- ", "  ") for s in stories]
    return "\n".join([_("Also").upper(), *items]) if items else ""


def _membership(nl: Any) -> str:
    if not (nl.membership_cta and nl.membership_url):
        return ""
    button = nl.membership_button or "Become a member"
    button = _(button) if button == "Become a member" else button
    lines = [nl.membership_text, f"{button}: {nl.membership_url}"]
    return "\n".join(_wrapped(line) for line in lines if line)


def _footer(context: Mapping[str, Any]) -> str:
    nl, r = context["newsletter"], context["r"]
    lines = [
        *(p.strip() for p in (nl.footer_text or "").split("\n") if p.strip()),
        f"{_('Manage preferences')}: {r['preferences_url']}",
        f"{_('Unsubscribe')}: {r['unsubscribe_url']}",
        f"{nl.name}, {nl.postal_address}",
    ]
    return "\n".join(_wrapped(line) for line in lines)
