"""A newsletter's sources: feed URLs fetched on the beat, and queries over the article library.

A feed is fetched through ``newsletter.outbound`` with the validators its server last gave
(``If-None-Match``, ``If-Modified-Since``): a 304 writes nothing but the time it was checked.
A body is read as RSS/Atom (feedparser) or JSON Feed (``content.importers.read_feed_bytes``) and
each item goes through ``articles.import_records`` like any import: the URL is the article's
identity (a re-fetch updates, never duplicates), the text is sanitised, and the byline never
shows an e-mail address. Each article a feed brought is linked to its source
(``SourceArticle``), which is what the drafting reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

from sqlalchemy import ColumnElement, or_
from sqlmodel import Session, col, select

from newsletter import db, outbound, text
from newsletter.content import articles, importers
from newsletter.exceptions import InvalidInput, NotFound
from newsletter.models import Article, Source, SourceArticle, SourceKind, utcnow
from newsletter.newsletters import get_newsletter
from newsletter.tables import table_of

#: a feed is fetched again this many minutes after its last check, per source (the beat runs
#: every minute): at least 5 (a feed is not a chat), at most a day (a weekly digest's feed
#: checked once a day still misses nothing); 30 unless set
FETCH_MINUTES, MIN_FETCH_MINUTES, MAX_FETCH_MINUTES = 30, 5, 24 * 60
ACCEPT = {
    "Accept": "application/feed+json, application/json;q=0.9, application/rss+xml, "
    "application/atom+xml, application/xml;q=0.9, */*;q=0.8"
}
SA = table_of(SourceArticle)


@dataclass(frozen=True)
class Fetched:
    """One fetch of a feed: not modified (304), or the items imported and the errors."""

    source_id: int
    not_modified: bool = False
    created: int = 0
    updated: int = 0
    errors: tuple[str, ...] = ()

    def summary(self) -> str:
        if self.not_modified:
            return "not modified"
        errors = f", {len(self.errors)} refused" if self.errors else ""
        return f"{self.created} new, {self.updated} updated{errors}"


# ---------------------------------------------------------------- the list


def add_feed(
    session: Session, *, newsletter: str | int, url: str, fetch_minutes: object = None
) -> Source:
    """A feed URL (http or https) as a source of the newsletter, fetched every
    ``fetch_minutes`` (``FETCH_MINUTES`` when None or empty)."""
    nl = get_newsletter(session, newsletter)
    clean = text.one_line(url, field="feed URL", max_length=2000).strip()
    if not clean.lower().startswith(("http://", "https://")):
        raise InvalidInput("a feed source needs an http(s) URL")
    every = FETCH_MINUTES if fetch_minutes in (None, "") else check_fetch_minutes(fetch_minutes)
    source = Source(newsletter_id=nl.id, kind=SourceKind.feed, url=clean, fetch_minutes=every)  # type: ignore[arg-type]
    session.add(source)
    session.flush()
    return source


def check_fetch_minutes(value: object) -> int:
    """A fetch interval in whole minutes within the bounds, or InvalidInput saying which."""
    try:
        minutes = int(str(value).strip())
    except ValueError:
        raise InvalidInput(f"the fetch interval {str(value)[:20]!r} is not whole minutes") from None
    if not MIN_FETCH_MINUTES <= minutes <= MAX_FETCH_MINUTES:
        raise InvalidInput(
            f"the fetch interval is between {MIN_FETCH_MINUTES} and {MAX_FETCH_MINUTES} minutes "
            f"(a day), not {minutes}"
        )
    return minutes


def set_fetch_minutes(
    session: Session, source_id: int, minutes: object, *, newsletter_id: int | None = None
) -> Source:
    """Fetch this feed every ``minutes`` from now on (a library query is never fetched)."""
    source = get_source(session, source_id, newsletter_id=newsletter_id)
    if source.kind != SourceKind.feed:
        raise InvalidInput(f"source {source_id} is a library query: it is not fetched")
    source.fetch_minutes = check_fetch_minutes(minutes)
    session.add(source)
    session.flush()
    return source


def add_query(
    session: Session, *, newsletter: str | int, tag: str = "", section: str = "", author: str = ""
) -> Source:
    """A library query as a source: articles with ``tag``, in ``section``, by ``author`` (each
    given one must match; at least one is given)."""
    nl = get_newsletter(session, newsletter)
    fields = {
        "tag": text.one_line(tag, field="tag", max_length=200).strip(),
        "section": text.one_line(section, field="section", max_length=200).strip(),
        "author": text.one_line(author, field="author", max_length=200).strip(),
    }
    if not any(fields.values()):
        raise InvalidInput("a library query needs a tag, a section or an author")
    source = Source(newsletter_id=nl.id, kind=SourceKind.query, **fields)  # type: ignore[arg-type]
    session.add(source)
    session.flush()
    return source


def list_sources(session: Session, newsletter_id: int) -> list[Source]:
    return list(
        session.exec(
            select(Source).where(Source.newsletter_id == newsletter_id).order_by(col(Source.id))
        ).all()
    )


def get_source(session: Session, source_id: int, *, newsletter_id: int | None = None) -> Source:
    source = session.get(Source, source_id)
    if source is None or (newsletter_id is not None and source.newsletter_id != newsletter_id):
        raise NotFound(f"no source with id {source_id}")
    return source


def remove_source(session: Session, source_id: int, *, newsletter_id: int | None = None) -> None:
    """Forget a source (the articles it brought stay in the library)."""
    source = get_source(session, source_id, newsletter_id=newsletter_id)
    session.execute(SA.delete().where(SA.c.source_id == source_id))
    session.delete(source)
    session.flush()


def describe(source: Source) -> str:
    if source.kind == SourceKind.feed:
        return source.url
    parts = [f"{k} {v!r}" for k, v in _query(source).items() if v]
    return "library: " + ", ".join(parts)


def _query(source: Source) -> dict[str, str]:
    return {"tag": source.tag, "section": source.section, "author": source.author}


# ---------------------------------------------------------------- fetching feeds


def fetch(
    session: Session,
    source: Source,
    policy: outbound.OutboundPolicy,
    *,
    now: datetime | None = None,
) -> Fetched:
    """Fetch one feed source (conditional GET) and import its items; flushes, never commits.
    A fetch that fails is recorded on the source and raised (an ``OutboundError`` or
    ``InvalidInput`` naming the feed)."""
    assert source.id is not None and source.kind == SourceKind.feed
    now = now or utcnow()
    source.checked_at = now
    try:
        response = _conditional_get(source, policy)
        result = _import(session, source, response) if response else Fetched(source.id, True)
    except InvalidInput as exc:
        source.last_result = f"failed: {exc}"[:2000]
        session.add(source)
        session.flush()
        raise
    if response:
        source.etag = response.headers.get("etag", "")[:500]
        source.last_modified = response.headers.get("last-modified", "")[:100]
        source.changed_at = now
    source.last_result = result.summary()
    session.add(source)
    session.flush()
    return result


def _conditional_get(source: Source, policy: outbound.OutboundPolicy) -> outbound.Response | None:
    """The feed's 2xx answer, or None for 304 Not Modified; redirects followed hop by hop."""
    headers = dict(ACCEPT)
    if source.etag:
        headers["If-None-Match"] = source.etag
    if source.last_modified:
        headers["If-Modified-Since"] = source.last_modified
    url = source.url
    for _hop in range(policy.max_redirects + 1):
        response = outbound.request("GET", url, policy, headers=headers)
        location = response.headers.get("location")
        if response.status in outbound.REDIRECT_STATUSES and location:
            url = _joined(url, location)
            continue
        if response.status == 304:
            return None
        if not 200 <= response.status < 300:
            raise outbound.OutboundError(f"could not fetch {source.url}: HTTP {response.status}")
        return response
    raise outbound.OutboundError(f"could not fetch {source.url}: too many redirects")


def _joined(current: str, location: str) -> str:
    try:
        return urljoin(current, location.strip())
    except ValueError:
        raise outbound.OutboundError(f"could not fetch {current}: a malformed redirect") from None


def _import(session: Session, source: Source, response: outbound.Response) -> Fetched:
    assert source.id is not None
    content_type = response.headers.get("content-type", "")
    records = importers.read_feed_bytes(response.body, source.url, content_type)
    result = articles.import_records(session, records)
    urls = [r.get("url") for r in records if isinstance(r, Mapping)]
    _link(session, source.id, [u for u in urls if isinstance(u, str)])
    return Fetched(source.id, False, result.created, result.updated, tuple(result.errors))


def _link(session: Session, source_id: int, urls: list[str]) -> None:
    """Link the source to the stored articles of these URLs (the validated forms of them)."""
    clean = []
    for url in urls:
        try:
            clean.append(articles.ArticleCreate.parse({"url": url, "title": "-"}).url)
        except InvalidInput:
            continue
    if not clean:
        return
    ids = session.exec(select(Article.id).where(col(Article.url).in_(clean))).all()
    rows = [{"source_id": source_id, "article_id": i, "seen_at": utcnow()} for i in ids]
    db.insert_ignore(session, SA, rows)
    session.flush()


def due_feeds(session: Session, *, now: datetime, newsletter_ids: list[int]) -> list[Source]:
    """Feed sources of these newsletters not checked for their own ``fetch_minutes``. The
    interval is compared here, not in SQL (date arithmetic differs between the two databases):
    a newsletter has a handful of feeds, and the least interval bounds the rows read."""
    if not newsletter_ids:
        return []
    floor = now - timedelta(minutes=MIN_FETCH_MINUTES)
    stale = or_(col(Source.checked_at).is_(None), col(Source.checked_at) <= floor)
    found = session.exec(
        select(Source).where(
            Source.kind == SourceKind.feed, col(Source.newsletter_id).in_(newsletter_ids), stale
        )
    ).all()
    return [s for s in found if _is_due(s, now)]


def _is_due(source: Source, now: datetime) -> bool:
    if source.checked_at is None:
        return True
    checked = source.checked_at
    checked = checked if checked.tzinfo else checked.replace(tzinfo=UTC)  # SQLite: naive UTC
    return checked <= now - timedelta(minutes=source.fetch_minutes)


# ---------------------------------------------------------------- what the sources hold


def article_ids(session: Session, newsletter_id: int, *, since: datetime) -> set[int]:
    """Ids of articles published since ``since`` that the newsletter's sources hold: brought by
    one of its feeds, or matching one of its library queries."""
    found: set[int] = set()
    for source in list_sources(session, newsletter_id):
        where = [col(Article.published_at) >= since, *_matching(session, source)]
        query = select(Article.id).where(*where)
        if source.kind == SourceKind.feed:
            query = query.join(SourceArticle, col(SourceArticle.article_id) == Article.id)
        found.update(i for i in session.exec(query).all() if i is not None)
    return found


def _matching(session: Session, source: Source) -> list[ColumnElement[bool]]:
    """What an article of ``source`` is: one its feed brought, or one its query finds."""
    if source.kind == SourceKind.feed:
        return [col(SourceArticle.source_id) == source.id]
    where = []
    if source.section:
        where.append(col(Article.section) == source.section)
    if source.author:
        where.append(col(Article.author) == source.author)
    if source.tag:
        where.append(articles.has_tag(session, source.tag))
    return where
