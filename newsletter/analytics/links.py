"""Click tracking's link rewriting, once per issue when it is frozen (``sending.start.freeze``).

The templates write every story link through ``rendering.link`` (its kind, and the story's
article, section and place); while an issue is compiled here that call leaves a marker in front
of the URL (``__NLTAG<i>__``). After MJML, one pass over the HTML's ``<a href>`` numbers each
link in order (``n`` from 1), records what it is (``LinkSpec``: the tagged kind, or "intro" for
the intro's links and "other" for the masthead, logo, membership button and any untagged link)
and writes ``{base_url}/r/{issue_id}/{n}/__NL_TRACK_TOKEN__`` in its place: one per-recipient
placeholder, filled like the unsubscribe link, so nothing is parsed per recipient.

Never rewritten: the per-recipient links (unsubscribe, preferences, view in browser / archive:
they are placeholders), ``mailto:``/``tel:`` and anything not http(s).

Added when tracking is on: a trap link (kind ``trap``) just before ``</body>``: an empty
``<a>`` with ``display:none``, ``aria-hidden`` and ``tabindex=-1``, so no person sees, reaches or
hears it, while a scanner that fetches every ``href`` follows it. With ``track_opens``, a 1x1
image ``{base_url}/o/{issue_id}/__NL_TRACK_TOKEN__.gif`` there too.

The text part keeps the original URLs (decided): a plain-text reader cannot hover a link to see
where it goes, so it shows the real address; clicks from the text part are not counted (a small
share: most mail apps show the HTML part).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlmodel import Session, select

from newsletter.content import rendering
from newsletter.content.issues import IssueOutline
from newsletter.content.rendering import CompiledIssue
from newsletter.models_analytics import EngagementEvent, IssueLink, LinkKind

TOKEN = rendering.PLACEHOLDERS["track_token"]
_MARK = re.compile(r"__NLTAG([0-9]+)__")
_A_HREF = re.compile(r"""(<a\b[^>]*?\shref=")([^"]*)(")""", re.IGNORECASE)
_BODY_END = re.compile(r"</body>", re.IGNORECASE)
TRAP = (
    '<a href="{url}" tabindex="-1" aria-hidden="true" '
    'style="display:none;mso-hide:all;font-size:0;line-height:0;max-height:0;"></a>'
)
PIXEL = (
    '<img src="{url}" width="1" height="1" alt="" '
    'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0;" />'
)


@dataclass(frozen=True)
class LinkSpec:
    n: int
    url: str
    kind: str
    article_id: int | None = None
    section: str | None = None
    position: int | None = None


class Tagger:
    """``rendering.LinkTagger`` for one compile: remembers each tagged link's kind and story."""

    def __init__(self) -> None:
        self.tags: list[tuple[str, Mapping[str, Any] | None]] = []

    def __call__(self, url: str, kind: str, story: Mapping[str, Any] | None) -> str:
        self.tags.append((kind, story))
        return f"__NLTAG{len(self.tags) - 1}__{url}"


def click_url(base_url: str, issue_id: int | str, n: int | str, token: str = TOKEN) -> str:
    return f"{base_url.rstrip('/')}/r/{issue_id}/{n}/{token}"


def open_url(base_url: str, issue_id: int | str, token: str = TOKEN) -> str:
    return f"{base_url.rstrip('/')}/o/{issue_id}/{token}.gif"


def tracked(href: str) -> bool:
    """Whether the rewriter sends ``href`` through /r/: an absolute http(s) URL that is not a
    per-recipient placeholder (unsubscribe, preferences, the archive)."""
    plain = html.unescape(href).strip()
    return plain.lower().startswith(("http://", "https://")) and "__NL_" not in plain


def _spec(n: int, url: str, kind: str, story: Mapping[str, Any] | None) -> LinkSpec:
    if story is None:
        return LinkSpec(n, url, kind)
    return LinkSpec(
        n, url, kind, story.get("article_id"), story.get("section"), story.get("position")
    )


def rewrite(
    compiled: CompiledIssue,
    tagger: Tagger | None,
    *,
    base_url: str,
    issue_id: int,
    clicks: bool,
    opens: bool,
) -> tuple[CompiledIssue, list[LinkSpec]]:
    """The compiled issue as sent with tracking, and its numbered links (none without clicks)."""
    specs: list[LinkSpec] = []

    def one(match: re.Match[str]) -> str:
        prefix, href, suffix = match.groups()
        kind, story = LinkKind.other.value, None
        tag = _MARK.match(href)
        if tag is not None and tagger is not None:
            kind, story = tagger.tags[int(tag[1])]
            href = href[tag.end() :]
        if not clicks or not tracked(href):
            return f"{prefix}{href}{suffix}"
        specs.append(_spec(len(specs) + 1, html.unescape(href).strip(), kind, story))
        return f"{prefix}{click_url(base_url, issue_id, len(specs))}{suffix}"

    out = _MARK.sub("", _A_HREF.sub(one, compiled.html))  # a marker outside an <a>: dropped
    tail = ""
    if clicks:
        specs.append(LinkSpec(len(specs) + 1, base_url.rstrip("/") + "/", LinkKind.trap.value))
        tail += TRAP.format(url=click_url(base_url, issue_id, len(specs)))
    if opens:
        tail += PIXEL.format(url=open_url(base_url, issue_id))
    if tail:
        ends = list(_BODY_END.finditer(out))
        at = ends[-1].start() if ends else len(out)
        out = out[:at] + tail + out[at:]
    return replace(compiled, html=out), specs


def compile_tracked(
    outline: IssueOutline, *, base_url: str, issue_id: int
) -> tuple[CompiledIssue, CompiledIssue, list[LinkSpec]]:
    """(the issue as compiled without tracking, as sent, its links). With tracking off both are
    the same object and there are no links: the message is byte for byte today's."""
    nl = outline.newsletter
    if not (nl.track_clicks or nl.track_opens):
        compiled = rendering.compile_issue(outline)
        return compiled, compiled, []
    tagger = Tagger() if nl.track_clicks else None
    reset = rendering.LINK_TAGGER.set(tagger)
    try:
        tagged = rendering.compile_issue(outline)
    finally:
        rendering.LINK_TAGGER.reset(reset)
    plain = replace(tagged, html=_MARK.sub("", tagged.html))
    sent, specs = rewrite(
        tagged,
        tagger,
        base_url=base_url,
        issue_id=issue_id,
        clicks=nl.track_clicks,
        opens=nl.track_opens,
    )
    return plain, sent, specs


def store_links(session: Session, issue_id: int, specs: list[LinkSpec]) -> None:
    """The issue's ``IssueLink`` rows as ``specs`` say, updated in place by number (a frozen
    issue frozen again keeps its rows, and the events that point at them)."""
    rows = {r.n: r for r in session.exec(select(IssueLink).where(IssueLink.issue_id == issue_id))}
    for spec in specs:
        row = rows.pop(spec.n, None) or IssueLink(issue_id=issue_id, n=spec.n, url="")
        row.url, row.kind, row.article_id = spec.url, spec.kind, spec.article_id
        row.section, row.position = spec.section, spec.position
        session.add(row)
    for row in rows.values():  # links the issue no longer has: kept only if clicked
        used = session.exec(select(EngagementEvent.id).where(EngagementEvent.link_id == row.id))
        if used.first() is None:
            session.delete(row)
    session.flush()


def sized_link(base_url: str) -> Callable[[str], str]:
    """QA's ``rewrite_link`` for a tracked newsletter: a link as long as the rewriter sends it
    (a 7-digit issue, a 3-digit number, the token of a 9-digit subscriber)."""
    sample = click_url(base_url, 1_000_000, 100, "1000000.100000000." + "x" * 16)

    def rewrite_link(href: str) -> str:
        return sample if tracked(href) else href

    return rewrite_link
