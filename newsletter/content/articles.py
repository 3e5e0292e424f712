"""The article library: ``ArticleCreate`` validation, upsert by URL, create/edit, list, import.

An article's URL is its identity. Every way in (the editor's form, a JSON/YAML file, a feed) goes
through ``ArticleCreate.parse``, which turns a record into checked, plain or sanitised fields or
raises one line of ``InvalidInput``. The readers of files and feeds live in ``importers``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails
from sqlalchemy import ColumnElement, cast, func, literal
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, col, select

from newsletter import outbound
from newsletter.content import importers
from newsletter.content.sanitize import plain_paragraphs, plain_text, sanitize_html
from newsletter.exceptions import InvalidInput, InvalidState, NotFound
from newsletter.models import Article, utcnow

MAX_URL_LENGTH = 2000  # the width of the article.url column
# lone surrogates (JSON can carry "\ud800") are no text: nh3 and the databases cannot encode them
NOT_TEXT = re.compile("[\ud800-\udfff]")


# --- ArticleCreate ---------------------------------------------------------------------------


class ArticleCreate(BaseModel):
    """An article's fields, checked and cleaned; build one from outside data with ``parse``.

    The fields a record gave are ``model_fields_set`` (url and title always): an update writes
    those (``changes``) and every other field keeps its stored value, so a thin feed entry does
    not erase a rich body. A field given as null clears it.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    # in the order they are checked: a record's first problem is the one reported
    url: str
    title: str
    summary: str = ""
    bullet: str = ""
    image_alt: str | None = None
    image_credit: str | None = None
    author: str | None = None
    section: str | None = None
    body_html: str = ""
    image_url: str | None = None
    tags: list[str] = Field(default_factory=list)
    published_at: datetime | None = None

    @classmethod
    def parse(cls, record: object) -> ArticleCreate:
        """Validate one record (a mapping of fields; others are ignored) or raise InvalidInput."""
        if not isinstance(record, Mapping):
            raise InvalidInput("an article must be a mapping of fields")
        try:
            return cls.model_validate(dict(record))
        except ValidationError as exc:
            raise InvalidInput(_reason(exc.errors()[0])) from None

    def changes(self) -> dict[str, Any]:
        """The fields the record gave: what an update writes."""
        return self.model_dump(include=set(self.model_fields_set))

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: object) -> str:
        """Absolute http(s), scheme and host lower-cased: it is the article's identity."""
        raw = _string(value, "url")
        if raw is None or not raw.strip():
            raise ValueError("missing 'url'")
        return _absolute_url(raw, "url")

    @field_validator("title", mode="before")
    @classmethod
    def _title(cls, value: object) -> str:
        """Plain text that is not empty."""
        raw = _string(value, "title")
        if raw is None:
            raise ValueError("missing 'title'")
        title = plain_text(raw)
        if not title:
            raise ValueError("'title' is empty")
        return title

    @field_validator("summary", mode="before")
    @classmethod
    def _summary(cls, value: object) -> str:
        """Plain text whose blank-line paragraph breaks survive."""
        return plain_paragraphs(_string(value, "summary") or "")

    @field_validator("bullet", mode="before")
    @classmethod
    def _bullet(cls, value: object) -> str:
        """Plain text; null is empty (the column is NOT NULL)."""
        return plain_text(_string(value, "bullet") or "")

    @field_validator("image_alt", "image_credit", "author", "section", mode="before")
    @classmethod
    def _optional_text(cls, value: object, info: ValidationInfo) -> str | None:
        """Plain text; empty after cleaning counts as absent."""
        raw = _string(value, str(info.field_name))
        return (plain_text(raw) or None) if raw is not None else None

    @field_validator("body_html", mode="before")
    @classmethod
    def _body(cls, value: object, info: ValidationInfo) -> str:
        """Sanitised HTML; relative links resolve against the article's URL (checked before)."""
        return sanitize_html(_string(value, "body_html") or "", base_url=info.data.get("url"))

    @field_validator("image_url", mode="before")
    @classmethod
    def _image_url(cls, value: object) -> str | None:
        """An absolute http(s) URL, or None when blank."""
        raw = _string(value, "image_url")
        return _absolute_url(raw, "image_url") if raw and raw.strip() else None

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: object) -> list[str]:
        """From a list of strings or a comma-separated string, cleaned and de-duplicated."""
        if value is None:
            return []
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list | tuple) or not all(isinstance(t, str) for t in value):
            raise ValueError("'tags' must be a list of strings or a comma-separated string")
        cleaned = (plain_text(_text(t, "tags")) for t in value)
        return list(dict.fromkeys(t for t in cleaned if t))

    @field_validator("published_at", mode="before")
    @classmethod
    def _published_at(cls, value: object) -> datetime | None:
        """Aware UTC from ISO 8601 text, a datetime or a date; naive means UTC; blank is None."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return _utc(_moment(value), value)


def _reason(error: ErrorDetails) -> str:
    """One line for pydantic's first finding: our validators' own message where there is one."""
    name = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        return f"missing '{name}'"
    cause = error.get("ctx", {}).get("error")
    return str(cause) if isinstance(cause, ValueError) else f"'{name}': {error['msg']}"


def _string(value: object, key: str) -> str | None:
    """The raw value of a text field as a string, or None when null."""
    if value is None:
        return None
    # YAML turns `title: 1984` into an int; a bool is never meant as text, though.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"'{key}' must be a string")
    return _text(str(value), key)


def _text(value: str, key: str) -> str:
    """``value``, unless it holds characters no text has."""
    if NOT_TEXT.search(value):
        raise ValueError(f"'{key}' contains an unpaired surrogate, which is not text")
    return value


def _absolute_url(value: str, key: str) -> str:
    """Check an absolute http(s) URL; lower-case its scheme and host so identity is stable."""
    url = value.strip()
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"'{key}' is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ValueError(f"'{key}' contains whitespace or control characters: {url!r}")
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket
        raise ValueError(f"'{key}' is not a valid URL: {url!r}") from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"'{key}' must be an absolute http(s) URL, got {url!r}")
    return urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()))


def _moment(value: object) -> datetime:
    """A datetime, possibly naive, from ISO 8601 text, a datetime or a date."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"'published_at' is not an ISO 8601 date: {value!r}") from None
    raise ValueError("'published_at' must be an ISO 8601 string or a datetime")


def _utc(moment: datetime, value: object) -> datetime:
    """``moment`` in UTC; a naive one is taken as UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first UTC moment there is
        raise ValueError(f"'published_at' is out of range: {value!r}") from None


# --- storing ---------------------------------------------------------------------------------


@dataclass
class ImportResult:
    """Counts of an import and one message per rejected item."""

    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)


def upsert_article(session: Session, article: ArticleCreate) -> tuple[Article, bool]:
    """Create or update the article with this URL; returns (article, created)."""
    stored = _url_owner(session, article.url)
    if stored is None:
        stored = Article(**article.model_dump())
        session.add(stored)
        return stored, True
    _apply(session, stored, article)
    return stored, False


def _apply(session: Session, stored: Article, article: ArticleCreate) -> None:
    """Write the fields ``article`` gave onto ``stored``; the others keep their value."""
    for key, value in article.changes().items():
        setattr(stored, key, value)
    stored.updated_at = utcnow()
    session.add(stored)


def import_records(session: Session, records: Iterable[object]) -> ImportResult:
    """Upsert each record, reporting bad ones as 'item N: reason'; flushes but never commits."""
    result = ImportResult()
    for number, record in enumerate(records, start=1):
        try:
            # validated whole before the session is touched: a bad record leaves no half-write
            _, created = upsert_article(session, ArticleCreate.parse(record))
        except InvalidInput as exc:
            result.errors.append(f"item {number}: {exc}")
            continue
        if created:
            result.created += 1
        else:
            result.updated += 1
    session.flush()
    return result


def import_file(session: Session, path: Path) -> ImportResult:
    """Import a JSON/YAML list of articles or an RSS/Atom feed file."""
    return import_records(session, importers.read_file(path))


def import_upload(session: Session, content: bytes, filename: str) -> ImportResult:
    """Import an uploaded JSON/YAML list or RSS/Atom feed (``importers.read_upload``)."""
    return import_records(session, importers.read_upload(content, filename))


def import_feed(
    session: Session, source: str, *, policy: outbound.OutboundPolicy | None = None
) -> ImportResult:
    """Import a feed from a file path or an http(s) URL, fetched under ``policy`` (None: the
    outbound defaults, public addresses only; the edges build it from the settings)."""
    return import_records(session, importers.read_feed(source, policy))


def create_article(session: Session, article: ArticleCreate) -> Article:
    """A new article from a form; a URL already in the library is refused, not merged."""
    owner = _url_owner(session, article.url)
    if owner is not None:
        raise InvalidState(
            f"{article.url} is already the URL of article {owner.id} ({owner.title!r}): "
            "edit that one instead"
        )
    stored = Article(**article.model_dump())
    session.add(stored)
    session.flush()
    return stored


def update_article(session: Session, article_id: int, article: ArticleCreate) -> Article:
    """Change an article; fields ``article`` was not given keep their value. Moving it to a URL
    that another article has is refused (the URL is an article's identity)."""
    stored = get_article(session, article_id)
    owner = _url_owner(session, article.url)
    if owner is not None and owner.id != stored.id:
        raise InvalidState(
            f"{article.url} is already the URL of article {owner.id} ({owner.title!r}); "
            "an article's URL must be unique"
        )
    _apply(session, stored, article)
    session.flush()
    return stored


# --- reading ---------------------------------------------------------------------------------


def get_article(session: Session, article_id: int) -> Article:
    """The article with this id, or NotFound."""
    article = session.get(Article, article_id)
    if article is None:
        raise NotFound(f"no article with id {article_id}")
    return article


def _url_owner(session: Session, url: str) -> Article | None:
    return session.exec(select(Article).where(Article.url == url)).first()


def list_articles(
    session: Session,
    *,
    search: str | None = None,
    limit: int = 50,
    section: str | None = None,
    tag: str | None = None,
    published_from: date | None = None,
    published_to: date | None = None,
    offset: int = 0,
) -> list[Article]:
    """Articles newest published first (undated last), optionally filtered by title (contains),
    section (exact), tag (one of the tags, ignoring case) and publication day (UTC, inclusive)."""
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1, got {limit}")
    if offset < 0:
        raise InvalidInput(f"offset must not be negative, got {offset}")
    published = col(Article.published_at)
    query = select(Article).order_by(published.is_(None), published.desc(), col(Article.id).desc())
    if search and search.strip():
        # Escape LIKE wildcards so a search for "100%" means the literal text.
        term = search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(col(Article.title).ilike(f"%{term}%", escape="\\"))
    if section and section.strip():
        query = query.where(col(Article.section) == section.strip())
    if tag and tag.strip():
        query = query.where(_has_tag(session, tag.strip()))
    if published_from is not None:
        query = query.where(published >= _day_start(published_from))
    if published_to is not None:
        query = query.where(published < _day_start(published_to + timedelta(days=1)))
    return list(session.exec(query.offset(offset).limit(limit)).all())


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _has_tag(session: Session, tag: str) -> ColumnElement[bool]:
    """Whether the article's JSON tag list holds ``tag`` (case folded by the database)."""
    tags = col(Article.tags)
    if session.get_bind().dialect.name == "postgresql":
        values = func.jsonb_array_elements_text(cast(tags, JSONB)).table_valued("value")
    else:
        values = func.json_each(tags).table_valued("value")
    return (
        sa_select(literal(1))
        .select_from(values)
        .where(func.lower(values.c.value) == func.lower(literal(tag)))
        .exists()
    )


has_tag = _has_tag  # the autopilot's library queries


def list_sections(session: Session) -> list[str]:
    """The distinct sections articles are filed under, sorted."""
    rows = session.exec(
        select(Article.section).where(col(Article.section).is_not(None)).distinct()
    ).all()
    return sorted((s for s in rows if s), key=str.casefold)
