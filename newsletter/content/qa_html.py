"""The compiled email read once for QA: its links (with their text), images, headings and runs
of text with the colours they are drawn in.

``html.parser`` (the standard library) is enough: MJML writes well-formed markup, and what an
Outlook conditional comment holds is not what other readers see, so comments are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
SKIPPED = frozenset({"style", "script", "title", "head"})
_DECL = re.compile(r"([a-z-]+)\s*:\s*([^;]+)")


@dataclass(frozen=True)
class Link:
    href: str
    text: str  # the visible text and the alt text of images inside, whitespace collapsed


@dataclass(frozen=True)
class Image:
    src: str
    alt: str | None  # None: no alt attribute at all


@dataclass(frozen=True)
class TextRun:
    text: str
    color: str  # the nearest colour set on the element or an ancestor ("" if none)
    background: str  # the nearest background set on the element or an ancestor ("" if none)
    size_px: float  # the nearest font size (16 when none is set)
    bold: bool
    hidden: bool  # inside display:none (the preheader)


@dataclass
class ParsedEmail:
    links: list[Link] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    headings: list[tuple[int, str]] = field(default_factory=list)
    runs: list[TextRun] = field(default_factory=list)


def style_of(attrs: dict[str, str]) -> dict[str, str]:
    """The inline declarations of an element (last one wins), plus ``bgcolor``/``color``
    attributes as fallbacks."""
    decls = {k.lower(): v.strip().lower() for k, v in _DECL.findall(attrs.get("style", ""))}
    if "bgcolor" in attrs:
        decls.setdefault("background-color", attrs["bgcolor"].strip().lower())
    if "color" in attrs:  # <font color>
        decls.setdefault("color", attrs["color"].strip().lower())
    return decls


@dataclass
class _Open:
    tag: str
    style: dict[str, str]


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = ParsedEmail()
        self.stack: list[_Open] = []
        self.link: tuple[str, list[str]] | None = None
        self.heading: tuple[int, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "img":
            alt = dict(attrs).get("alt")
            self.out.images.append(Image(values.get("src", ""), alt))
            if self.link is not None and alt:
                self.link[1].append(alt)
            return
        if tag in VOID:
            return
        self.stack.append(_Open(tag, style_of(values)))
        if tag == "a" and "href" in values:
            self.link = (values["href"], [])
        if re.fullmatch(r"h[1-6]", tag):
            self.heading = (int(tag[1]), [])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if tag == "a" and self.link is not None:
            self.out.links.append(Link(self.link[0], " ".join(" ".join(self.link[1]).split())))
            self.link = None
        if self.heading is not None and tag == f"h{self.heading[0]}":
            self.out.headings.append((self.heading[0], " ".join(" ".join(self.heading[1]).split())))
            self.heading = None
        for index in range(len(self.stack) - 1, -1, -1):  # close up to the matching element
            if self.stack[index].tag == tag:
                del self.stack[index:]
                break

    def handle_data(self, data: str) -> None:
        if any(o.tag in SKIPPED for o in self.stack):
            return
        if self.link is not None:
            self.link[1].append(data)
        if self.heading is not None:
            self.heading[1].append(data)
        if data.strip():
            self.out.runs.append(self._run(data.strip()))

    def _nearest(self, *names: str) -> str:
        for element in reversed(self.stack):
            for name in names:
                value = element.style.get(name, "")
                if value and value not in {"transparent", "inherit", "none"}:
                    return value
        return ""

    def _run(self, text: str) -> TextRun:
        size = re.match(r"([\d.]+)px", self._nearest("font-size"))
        weight = self._nearest("font-weight")
        bold = weight == "bold" or (weight.isdigit() and int(weight) >= 700)
        bold = bold or any(o.tag in {"b", "strong", "h1", "h2", "h3"} for o in self.stack)
        return TextRun(
            text=text,
            color=self._nearest("color"),
            background=self._nearest("background-color", "background"),
            size_px=float(size[1]) if size else 16.0,
            bold=bold,
            hidden=any(o.style.get("display") == "none" for o in self.stack),
        )


def parse(html: str) -> ParsedEmail:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.out
