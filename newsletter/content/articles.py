"""Article import: validation, HTML sanitising, upsert by URL, and JSON/YAML/feed importers."""

from __future__ import annotations

import html
import io
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import feedparser
import nh3
import yaml
from sqlalchemy import ColumnElement, cast, func, literal
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, col, select

from newsletter import outbound
from newsletter.exceptions import InvalidInput, InvalidState, NotFound
from newsletter.models import Article, utcnow

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
MAX_URL_LENGTH = 2000  # the width of the article.url column
FEED_SUFFIXES = frozenset({".xml", ".rss", ".atom"})
DATA_SUFFIXES = frozenset({".json", ".yaml", ".yml"})
FEED_ACCEPT = {
    "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8"
}
TEXT_FIELDS = ("summary", "bullet", "image_alt", "image_credit", "author", "section")
# nh3 output always double-quotes attribute values, so this matches a whole <img> tag exactly.
IMG_TAG = re.compile(r'<img((?:\s+[a-z-]+="[^"]*")*)\s*/?>')
# lone surrogates (JSON can carry "\ud800") are no text: nh3 and the databases cannot encode them
NOT_TEXT = re.compile("[\ud800-\udfff]")


@dataclass
class ImportResult:
    """Counts of an import and one message per rejected item."""

    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)


# --- sanitising ------------------------------------------------------------------------------


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


_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")


def plain_text(value: str) -> str:
    """Strip every tag, unescape entities, drop control characters and collapse whitespace."""
    unescaped = html.unescape(nh3.clean(value, tags=set()))
    return " ".join(_CONTROLS.sub(" ", unescaped).split())


def plain_paragraphs(value: str) -> str:
    """Like plain_text, but blank-line paragraph breaks survive (summaries have paragraphs)."""
    paragraphs = (plain_text(p) for p in re.split(r"\n\s*\n", value))
    return "\n\n".join(p for p in paragraphs if p)


# --- field validation ------------------------------------------------------------------------


def _string(data: Mapping[str, Any], key: str) -> str | None:
    """The raw value of a text field as a string, or None when absent or null."""
    value = data.get(key)
    if value is None:
        return None
    # YAML turns `title: 1984` into an int; a bool is never meant as text, though.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidInput(f"'{key}' must be a string")
    return _text(str(value), key)


def _text(value: str, key: str) -> str:
    """``value``, unless it holds characters no text has."""
    if NOT_TEXT.search(value):
        raise InvalidInput(f"'{key}' contains an unpaired surrogate, which is not text")
    return value


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    """A plain-text field; empty after cleaning counts as absent."""
    raw = _string(data, key)
    return (plain_text(raw) or None) if raw is not None else None


def _absolute_url(value: str, key: str) -> str:
    """Check an absolute http(s) URL; lower-case its scheme and host so identity is stable."""
    url = value.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"'{key}' is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidInput(f"'{key}' contains whitespace or control characters: {url!r}")
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket
        raise InvalidInput(f"'{key}' is not a valid URL: {url!r}") from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(f"'{key}' must be an absolute http(s) URL, got {url!r}")
    return urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()))


def _required_url(data: Mapping[str, Any]) -> str:
    """The article URL, which is its identity."""
    raw = _string(data, "url")
    if raw is None or not raw.strip():
        raise InvalidInput("missing 'url'")
    return _absolute_url(raw, "url")


def _required_title(data: Mapping[str, Any]) -> str:
    """The title as plain text; it must not be empty."""
    raw = _string(data, "title")
    if raw is None:
        raise InvalidInput("missing 'title'")
    title = plain_text(raw)
    if not title:
        raise InvalidInput("'title' is empty")
    return title


def _image_url(data: Mapping[str, Any]) -> str | None:
    """An optional absolute http(s) image URL."""
    raw = _string(data, "image_url")
    return _absolute_url(raw, "image_url") if raw and raw.strip() else None


def _tags(value: Any) -> list[str]:
    """Tags from a list of strings or a comma-separated string, cleaned and de-duplicated."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) for t in value):
        raise InvalidInput("'tags' must be a list of strings or a comma-separated string")
    cleaned = (plain_text(_text(t, "tags")) for t in value)
    return list(dict.fromkeys(t for t in cleaned if t))


def _published_at(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO 8601 string, a datetime or a date; naive means UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(f"'published_at' is not an ISO 8601 date: {value!r}") from None
    else:
        raise InvalidInput("'published_at' must be an ISO 8601 string or a datetime")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first UTC moment there is
        raise InvalidInput(f"'published_at' is out of range: {value!r}") from None


def _clean_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a record into Article fields; only keys present in the record are returned."""
    url = _required_url(data)
    fields: dict[str, Any] = {"url": url, "title": _required_title(data)}
    for key in TEXT_FIELDS:
        if key in data:
            fields[key] = _optional_text(data, key)
    if "summary" in data:
        fields["summary"] = plain_paragraphs(_string(data, "summary") or "")
    if "bullet" in fields:
        fields["bullet"] = fields["bullet"] or ""  # the column is NOT NULL
    if "body_html" in data:
        fields["body_html"] = sanitize_html(_string(data, "body_html") or "", base_url=url)
    if "image_url" in data:
        fields["image_url"] = _image_url(data)
    if "tags" in data:
        fields["tags"] = _tags(data["tags"])
    if "published_at" in data:
        fields["published_at"] = _published_at(data["published_at"])
    return fields


# --- persistence -----------------------------------------------------------------------------


def upsert_article(session: Session, *, data: Mapping[str, Any]) -> tuple[Article, bool]:
    """Create or update the article with this URL; returns (article, created)."""
    if not isinstance(data, Mapping):
        raise InvalidInput("an article must be a mapping of fields")
    # Validate everything before touching the session, so a bad record leaves no half-write.
    fields = _clean_fields(data)
    article = session.exec(select(Article).where(Article.url == fields["url"])).first()
    if article is None:
        article = Article(**fields)
        session.add(article)
        return article, True
    # Keys absent from the record keep their stored value: a thin feed must not erase a rich body.
    for key, value in fields.items():
        setattr(article, key, value)
    article.updated_at = utcnow()
    session.add(article)
    return article, False


def import_records(session: Session, records: Iterable[Mapping[str, Any]]) -> ImportResult:
    """Upsert each record, reporting bad ones as 'item N: reason'; flushes but never commits."""
    result = ImportResult()
    for number, record in enumerate(records, start=1):
        try:
            _, created = upsert_article(session, data=record)
        except InvalidInput as exc:
            result.errors.append(f"item {number}: {exc}")
            continue
        if created:
            result.created += 1
        else:
            result.updated += 1
    session.flush()
    return result


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


def list_sections(session: Session) -> list[str]:
    """The distinct sections articles are filed under, sorted."""
    rows = session.exec(
        select(Article.section).where(col(Article.section).is_not(None)).distinct()
    ).all()
    return sorted((s for s in rows if s), key=str.casefold)


def get_article(session: Session, article_id: int) -> Article:
    article = session.get(Article, article_id)
    if article is None:
        raise NotFound(f"no article with id {article_id}")
    return article


def _url_owner(session: Session, url: str) -> Article | None:
    return session.exec(select(Article).where(Article.url == url)).first()


def create_article(session: Session, *, data: Mapping[str, Any]) -> Article:
    """A new article from a form; a URL already in the library is refused, not merged."""
    fields = _clean_fields(data)
    owner = _url_owner(session, fields["url"])
    if owner is not None:
        raise InvalidState(
            f"{fields['url']} is already the URL of article {owner.id} ({owner.title!r}): "
            "edit that one instead"
        )
    article = Article(**fields)
    session.add(article)
    session.flush()
    return article


def update_article(session: Session, article_id: int, *, data: Mapping[str, Any]) -> Article:
    """Change an article; fields absent from ``data`` keep their value. Moving it to a URL that
    another article has is refused (the URL is an article's identity)."""
    article = get_article(session, article_id)
    fields = _clean_fields(data)
    owner = _url_owner(session, fields["url"])
    if owner is not None and owner.id != article.id:
        raise InvalidState(
            f"{fields['url']} is already the URL of article {owner.id} ({owner.title!r}); "
            "an article's URL must be unique"
        )
    for key, value in fields.items():
        setattr(article, key, value)
    article.updated_at = utcnow()
    session.add(article)
    session.flush()
    return article


# --- files -----------------------------------------------------------------------------------


def import_file(session: Session, path: Path) -> ImportResult:
    """Import a JSON/YAML list of articles or an RSS/Atom feed file."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in DATA_SUFFIXES:
        return import_records(session, _article_list(_load_data(path), path))
    if suffix not in FEED_SUFFIXES:
        _require_feed(path)
    return import_feed(session, str(path))


def _read_text(path: Path) -> str:
    """The file as UTF-8 text, or InvalidInput naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from None


def _load_data(path: Path) -> Any:
    """Parse a JSON or YAML file, turning parse errors into one-line InvalidInput."""
    return _parse_data(_read_text(path), path.suffix.lower(), str(path))


def _parse_data(text: str, suffix: str, name: str) -> Any:
    """JSON (``.json``) or YAML text; a parse error is one line of InvalidInput naming ``name``."""
    kind = "JSON" if suffix == ".json" else "YAML"
    try:
        return json.loads(text) if kind == "JSON" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{name}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{name}: invalid YAML{_yaml_where(exc)}") from None
    except RecursionError:
        raise InvalidInput(f"{name}: invalid {kind}: nested too deeply") from None
    except (ValueError, OverflowError) as exc:
        # a value the parser reads but Python refuses: a 5000-digit number, 2024-13-45
        raise InvalidInput(f"{name}: invalid {kind}: {_one_line(exc)}") from None


def _yaml_where(exc: yaml.YAMLError) -> str:
    """' at line N: problem' for a marked YAML error; PyYAML's own text spans several lines."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    where = f" at line {mark.line + 1}" if mark is not None else ""
    return f"{where}: {problem}" if problem else where


def _article_list(data: Any, path: Path) -> list[Any]:
    """The list of records: the document itself or its 'articles' key."""
    if isinstance(data, Mapping) and "articles" in data:
        data = data["articles"]
    if not isinstance(data, list):
        raise InvalidInput(f"{path}: expected a list of articles or a mapping with 'articles'")
    return data


def import_upload(session: Session, content: bytes, filename: str) -> ImportResult:
    """Import an uploaded file by its name's suffix: a JSON/YAML list of articles, or an
    RSS/Atom feed (``.xml``, ``.rss``, ``.atom``, or any file feedparser recognises as one)."""
    name = Path(filename.replace("\\", "/")).name or "upload"
    suffix = Path(name).suffix.lower()
    if suffix in DATA_SUFFIXES:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
        return import_records(session, _article_list(_parse_data(text, suffix, name), Path(name)))
    parsed = parse_feed_bytes(content)
    if suffix not in FEED_SUFFIXES and not parsed.get("version"):
        raise InvalidInput(f"{name}: not a JSON, YAML or RSS/Atom file")
    return _import_parsed(session, parsed, name)


def _require_feed(path: Path) -> None:
    """Reject a file of unknown type unless feedparser recognises it as a feed."""
    try:
        parsed = parse_feed_bytes(path.read_bytes())
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from None
    if not parsed.get("version"):
        raise InvalidInput(f"{path}: not a JSON, YAML or RSS/Atom file")


# --- feeds -----------------------------------------------------------------------------------


def import_feed(
    session: Session, source: str, *, policy: outbound.OutboundPolicy | None = None
) -> ImportResult:
    """Import the entries of an RSS/Atom feed from a file path or an http(s) URL.

    A URL is fetched through ``newsletter.outbound`` under ``policy`` (None: its defaults, which
    reach public addresses only); the edges build it from the settings.
    """
    return _import_parsed(session, _parse_feed(source, policy or outbound.OutboundPolicy()), source)


def _import_parsed(session: Session, parsed: Any, source: str) -> ImportResult:
    """Import the entries feedparser found in ``source`` (named in errors)."""
    entries = list(parsed.get("entries") or [])
    if parsed.get("bozo") and not entries:
        reason = parsed.get("bozo_exception") or "unknown error"
        raise InvalidInput(f"{source}: not a readable feed ({_one_line(reason)})")
    if not entries and not parsed.get("version"):
        # An HTML page or other XML parses cleanly but is not a feed; say so rather than import 0.
        raise InvalidInput(f"{source}: not an RSS or Atom feed")
    return import_records(session, [_entry_record(entry) for entry in entries])


def _parse_feed(source: str, policy: outbound.OutboundPolicy) -> Any:
    """Fetch a URL through the outbound guard, or read a path (a missing file is NotFound)."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in {"http", "https"}:
        return parse_feed_bytes(outbound.fetch(source, policy, headers=FEED_ACCEPT))
    # One-letter "schemes" are Windows drive letters, not URLs.
    if len(scheme) > 1:
        raise InvalidInput(f"{source}: only http(s) URLs and file paths are supported")
    path = Path(source)
    if not path.is_file():
        raise NotFound(f"{source}: no such file")
    try:
        return parse_feed_bytes(path.read_bytes())
    except OSError as exc:
        raise InvalidInput(f"{source}: cannot read ({exc.strerror})") from None


def parse_feed_bytes(data: bytes) -> Any:
    """feedparser's reading of a document (it reports, never raises, what it cannot read).
    Always a stream: given bytes or a string, feedparser opens the file or fetches the URL
    they name, and it must never reach anything by itself."""
    return feedparser.parse(io.BytesIO(data))


def _one_line(reason: object) -> str:
    """An exception's text on one line."""
    return " ".join(str(reason).split()) or type(reason).__name__


def _entry_record(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Map a feedparser entry to an article record; only fields the entry has are included."""
    link = entry.get("link") or ""
    record: dict[str, Any] = {"url": link, "title": _entry_text(entry, "title")}
    summary = _entry_text(entry, "summary")
    if summary is not None:
        record["summary"] = summary
    body = _entry_body(entry)
    if body is not None:
        record["body_html"] = body
    if entry.get("author"):
        record["author"] = entry["author"]
    moment = entry.get("published_parsed") or entry.get("updated_parsed")
    if moment:
        record["published_at"] = _struct_to_utc(moment)
    terms = [tag.get("term") for tag in entry.get("tags") or []]
    if any(terms):
        record["tags"] = [term for term in terms if term]
    record.update(_entry_image(entry, link))
    return record


def _entry_text(entry: Mapping[str, Any], key: str) -> str | None:
    """A text field, escaped first when the feed declares it plain so '<' is not read as a tag."""
    value = entry.get(key)
    if value is None:
        return None
    detail = entry.get(f"{key}_detail") or {}
    return html.escape(value) if detail.get("type") == "text/plain" else str(value)


def _entry_body(entry: Mapping[str, Any]) -> str | None:
    """The entry's full content, falling back to its summary."""
    content = entry.get("content") or []
    if content and content[0].get("value"):
        return str(content[0]["value"])
    summary = entry.get("summary")
    return str(summary) if summary else None


def _struct_to_utc(moment: time.struct_time) -> datetime:
    """feedparser's parsed dates are UTC struct_times."""
    return datetime(*moment[:6], tzinfo=UTC)


def _entry_image(entry: Mapping[str, Any], link: str) -> dict[str, Any]:
    """image_url (resolved against the link) and image_credit from media or enclosures."""
    url = _first_image_url(entry)
    if not url:
        return {}
    try:
        image: dict[str, Any] = {"image_url": urljoin(link, url)}
    except ValueError:  # a malformed link or URL: validation refuses it as it stands
        image = {"image_url": url}
    credits = entry.get("media_credit") or []
    if credits and credits[0].get("content"):
        image["image_credit"] = credits[0]["content"]
    return image


def _first_image_url(entry: Mapping[str, Any]) -> str | None:
    """The first image among media:content, media:thumbnail and enclosure links."""
    for media in entry.get("media_content") or []:
        if _is_image(media.get("medium"), media.get("type"), default=True) and media.get("url"):
            return str(media["url"])
    for thumb in entry.get("media_thumbnail") or []:
        if thumb.get("url"):
            return str(thumb["url"])
    for link in entry.get("links") or []:
        is_image = _is_image(None, link.get("type"))
        if link.get("rel") == "enclosure" and is_image and link.get("href"):
            return str(link["href"])
    return None


def _is_image(medium: str | None, mime: str | None, *, default: bool = False) -> bool:
    """Whether media metadata says image; with none given, media:content is assumed an image."""
    if medium or mime:
        return medium == "image" or bool(mime and mime.startswith("image/"))
    return default
