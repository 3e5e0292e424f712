"""An edition's tracked links numbered by URL against the issue's (``edition_freeze``).

``links.rewrite`` numbers an email's links by position. The editions of one issue share its
``IssueLink`` rows, but a translated intro naturally moves its links, drops one or adds one, so
position cannot be the key: a link keeps the number the issue gave its URL wherever it stands in
an edition; a URL no earlier email has gets a number of its own after the last. A URL the issue
links more than once (a story's headline, image and "Read more") is matched by its kind and
article first, the k-th such link of the edition to the k-th of the issue, so per-article and
per-kind counts stay right; the frozen HTML's ``/r/<issue>/<n>/`` links are then renumbered.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field, replace

from newsletter.analytics.links import TOKEN, LinkSpec
from newsletter.content.rendering import CompiledIssue

_Key = tuple[str, str, int | None]


def _key(spec: LinkSpec) -> _Key:
    return (spec.url, spec.kind, spec.article_id)


@dataclass
class LinkNumbers:
    """The issue's numbered links so far (the default edition's, then each edition's own)."""

    specs: list[LinkSpec]
    _by_key: dict[_Key, list[int]] = field(default_factory=lambda: defaultdict(list))
    _by_url: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for spec in sorted(self.specs, key=lambda s: s.n):
            self._remember(spec)

    def _remember(self, spec: LinkSpec) -> None:
        self._by_key[_key(spec)].append(spec.n)
        self._by_url.setdefault(spec.url, spec.n)

    def number(self, edition: list[LinkSpec]) -> dict[int, int]:
        """The edition's numbers (by position) -> the issue's numbers (by URL); URLs new to the
        issue are numbered after its last link and kept for the next edition."""
        seen: dict[_Key, int] = defaultdict(int)
        fresh: dict[_Key, int] = {}
        mapping = {}
        for spec in edition:
            key = _key(spec)
            known = self._by_key.get(key)
            if key in fresh:
                mapping[spec.n] = fresh[key]
            elif known:
                mapping[spec.n] = known[min(seen[key], len(known) - 1)]
            elif spec.url in self._by_url:  # the same address as another kind of link
                mapping[spec.n] = self._by_url[spec.url]
            else:
                fresh[key] = mapping[spec.n] = max((s.n for s in self.specs), default=0) + 1
                new = replace(spec, n=fresh[key])
                self.specs.append(new)
                self._remember(new)
            seen[key] += 1
        return mapping


def renumber(compiled: CompiledIssue, issue_id: int, mapping: dict[int, int]) -> CompiledIssue:
    """``compiled`` (as ``links.rewrite`` wrote it) with each tracked link's number mapped."""
    tracked = re.compile(rf"(/r/{issue_id}/)([0-9]+)(/{re.escape(TOKEN)})")

    def one(match: re.Match[str]) -> str:
        return f"{match[1]}{mapping[int(match[2])]}{match[3]}"

    return replace(compiled, html=tracked.sub(one, compiled.html))
