"""JSON Feed 1.1 (and 1.0) documents read as article records (https://jsonfeed.org/version/1.1).

feedparser reads RSS and Atom only; this maps a JSON Feed's items to the same records
``importers`` makes of feed entries, which ``articles.import_records`` validates and sanitises.
Authors are names only: a JSON Feed author has no e-mail field, and an e-mail address written
as a name is dropped (``sanitize.byline``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from newsletter.content.sanitize import byline
from newsletter.exceptions import InvalidInput

VERSION_PREFIX = "https://jsonfeed.org/version/"


def looks_like(data: bytes, content_type: str = "") -> bool:
    """Whether a fetched body is a JSON Feed rather than XML (by its type, or its first byte)."""
    if "json" in content_type.lower():
        return True
    return data.lstrip()[:1] == b"{"


def read(data: bytes, name: str) -> list[dict[str, Any]]:
    """The records of a JSON Feed's items; InvalidInput names ``name`` when it is not one."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InvalidInput(f"{name}: not a readable JSON Feed") from None
    if not is_feed(document):
        raise InvalidInput(f"{name}: not a JSON Feed (no jsonfeed.org version)")
    return records(document, name)


def is_feed(document: Any) -> bool:
    """Whether parsed JSON is a JSON Feed (its version names jsonfeed.org)."""
    version = document.get("version") if isinstance(document, Mapping) else None
    return isinstance(version, str) and version.startswith(VERSION_PREFIX)


def records(document: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """The records of a parsed JSON Feed's items."""
    items = document.get("items")
    if not isinstance(items, list):
        raise InvalidInput(f"{name}: a JSON Feed needs a list of items")
    feed_authors = _authors(document)
    return [_record(item, feed_authors) for item in items if isinstance(item, Mapping)]


def _record(item: Mapping[str, Any], feed_authors: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {"url": item.get("url") or item.get("external_url") or ""}
    record["title"] = item.get("title") or item.get("summary") or ""
    if isinstance(item.get("summary"), str):
        record["summary"] = item["summary"]
    body = item.get("content_html") or item.get("content_text")
    if isinstance(body, str):
        record["body_html"] = body
    author = byline(", ".join(_authors(item) or feed_authors))
    if author:
        record["author"] = author
    moment = item.get("date_published") or item.get("date_modified")
    if moment:
        record["published_at"] = moment
    tags = item.get("tags")
    if isinstance(tags, list):
        record["tags"] = [t for t in tags if isinstance(t, str)]
    image = item.get("image") or item.get("banner_image")
    if isinstance(image, str) and image:
        record["image_url"] = image
    return record


def _authors(holder: Mapping[str, Any]) -> list[str]:
    """The names of ``authors`` (1.1) or ``author`` (1.0)."""
    found = holder.get("authors")
    if not isinstance(found, list):
        found = [holder["author"]] if isinstance(holder.get("author"), Mapping) else []
    names = (a.get("name") for a in found if isinstance(a, Mapping))
    return [n for n in names if isinstance(n, str) and n.strip()]
