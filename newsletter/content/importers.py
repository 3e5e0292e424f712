"""Reading articles from outside: JSON/YAML lists, RSS/Atom files and feed URLs, uploads.

Each reader returns the raw records of a document (mappings of article fields, or whatever the
document held in their place); ``articles.import_records`` validates them one by one as
``ArticleCreate`` and stores the good ones. Nothing here touches the database. A document that
cannot be read at all is one line of ``InvalidInput`` naming it. Feed URLs are fetched through
``newsletter.outbound`` only: feedparser is always handed a stream, never a name it could open or
fetch by itself.
"""

from __future__ import annotations

import functools
import html
import io
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import yaml

from newsletter import outbound
from newsletter.content import jsonfeed
from newsletter.content.sanitize import byline
from newsletter.exceptions import InvalidInput, NotFound

FEED_SUFFIXES = frozenset({".xml", ".rss", ".atom"})
DATA_SUFFIXES = frozenset({".json", ".yaml", ".yml"})
FEED_ACCEPT = {
    "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8"
}


# --- files and uploads -----------------------------------------------------------------------


def read_file(path: Path) -> list[Any]:
    """The records of a JSON/YAML list of articles or of an RSS/Atom feed file."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in DATA_SUFFIXES:
        return _article_list(_parse_data(_read_text(path), suffix, str(path)), path)
    if suffix not in FEED_SUFFIXES:
        _require_feed(path)
    return read_feed(str(path))


def read_upload(content: bytes, filename: str) -> list[Any]:
    """The records of an uploaded file, by its name's suffix: a JSON/YAML list of articles, or an
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
        return _article_list(_parse_data(text, suffix, name), Path(name))
    parsed = parse_feed_bytes(content)
    if suffix not in FEED_SUFFIXES and not parsed.get("version"):
        raise InvalidInput(f"{name}: not a JSON, YAML or RSS/Atom file")
    return _feed_records(parsed, name)


def _read_text(path: Path) -> str:
    """The file as UTF-8 text, or InvalidInput naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from None


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
    """The list of records: the document itself or its 'articles' key (a JSON Feed's items)."""
    if jsonfeed.is_feed(data):
        return jsonfeed.records(data, str(path))
    if isinstance(data, Mapping) and "articles" in data:
        data = data["articles"]
    if not isinstance(data, list):
        raise InvalidInput(f"{path}: expected a list of articles or a mapping with 'articles'")
    return data


def _require_feed(path: Path) -> None:
    """Reject a file of unknown type unless feedparser recognises it as a feed."""
    try:
        parsed = parse_feed_bytes(path.read_bytes())
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from None
    if not parsed.get("version"):
        raise InvalidInput(f"{path}: not a JSON, YAML or RSS/Atom file")


# --- feeds -----------------------------------------------------------------------------------


def read_feed(source: str, policy: outbound.OutboundPolicy | None = None) -> list[dict[str, Any]]:
    """The entries of an RSS/Atom feed from a file path or an http(s) URL, as records.

    A URL is fetched through ``newsletter.outbound`` under ``policy`` (None: its defaults, which
    reach public addresses only); the edges build it from the settings.
    """
    return _feed_records(_parse_feed(source, policy or outbound.OutboundPolicy()), source)


def _feed_records(parsed: Any, source: str) -> list[dict[str, Any]]:
    """The records of the entries feedparser found in ``source`` (named in errors)."""
    entries = list(parsed.get("entries") or [])
    if parsed.get("bozo") and not entries:
        reason = parsed.get("bozo_exception") or "unknown error"
        raise InvalidInput(f"{source}: not a readable feed ({_one_line(reason)})")
    if not entries and not parsed.get("version"):
        # An HTML page or other XML parses cleanly but is not a feed; say so rather than import 0.
        raise InvalidInput(f"{source}: not an RSS or Atom feed")
    return [_entry_record(entry) for entry in entries]


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


def read_feed_bytes(data: bytes, name: str, content_type: str = "") -> list[dict[str, Any]]:
    """The records of a fetched feed body: a JSON Feed, or RSS/Atom through feedparser."""
    if jsonfeed.looks_like(data, content_type):
        return jsonfeed.read(data, name)
    return _feed_records(parse_feed_bytes(data), name)


def _start_media_description(parser: Any, _attrs: dict[str, str]) -> None:
    parser.push("media_description", 1)


def _end_media_description(parser: Any) -> None:
    parser.pop("media_description")  # kept on the entry as ``media_description``


@functools.cache
def _feedparser() -> Any:
    """feedparser, imported by the first feed read (a command that reads no feed, ``newsletter
    demo`` say, does not load it), with our reading of <media:description>.

    feedparser reads <media:description> as the entry's description: the first of the two
    becomes the summary and the second the content, so an image's caption replaces the item's
    blurb or its body. Kept apart instead, it is the image's alt text (``_entry_image``)."""
    import feedparser
    import feedparser.namespaces.mediarss

    feedparser.namespaces.mediarss.Namespace._start_media_description = _start_media_description
    feedparser.namespaces.mediarss.Namespace._end_media_description = _end_media_description
    return feedparser


def parse_feed_bytes(data: bytes) -> Any:
    """feedparser's reading of a document (it reports, never raises, what it cannot read).
    Always a stream: given bytes or a string, feedparser opens the file or fetches the URL
    they name, and it must never reach anything by itself."""
    return _feedparser().parse(io.BytesIO(data))


def _one_line(reason: object) -> str:
    """An exception's text on one line."""
    return " ".join(str(reason).split()) or type(reason).__name__


# --- feedparser entries -> records -----------------------------------------------------------


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
    author = byline((entry.get("author_detail") or {}).get("name") or entry.get("author"))
    if author:
        record["author"] = author
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
    """image_url (resolved against the link), image_credit and image_alt (the
    media:description) from media or enclosures."""
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
    if entry.get("media_description"):
        image["image_alt"] = str(entry["media_description"])
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
