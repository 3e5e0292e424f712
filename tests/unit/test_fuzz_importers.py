"""The article importers under hypothesis, on SQLite and PostgreSQL: nothing but InvalidInput.

Arbitrary bytes, arbitrary (and deeply) nested JSON and YAML, article-shaped records with any
values, and feeds as if fetched: whatever comes in, ``import_upload`` and ``import_feed`` return
a result or raise ``InvalidInput``. Run on both databases: what passes validation must be
storable on each (PostgreSQL refuses some text SQLite takes, a NUL for one).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from xml.sax.saxutils import escape

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, SQLModel, create_engine

from newsletter import outbound
from newsletter.content import importers
from newsletter.content.articles import ImportResult, import_feed, import_upload
from newsletter.exceptions import InvalidInput
from newsletter.models import Article

FUZZ = settings(max_examples=60, deadline=None, database=None)
NAMES = ("articles.json", "articles.yaml", "a.yml", "feed.xml", "feed.atom", "notes.txt", "x")
FIELDS = ("url", "title", "summary", "bullet", "body_html", "image_url", "image_alt",
          "image_credit", "author", "section", "tags", "published_at", "articles")  # fmt: skip
# any code point, with the troublesome ones made likely: lone surrogates (JSON can carry
# "\ud800"), NUL, markup and URL characters
NASTY = st.sampled_from(["\x00", "\ud800", "\udfff", "<b>", "&amp;", "[", "%", "\n\n", "é"])
ANY_TEXT = st.lists(st.one_of(st.characters(exclude_categories=()), NASTY), max_size=12).map(
    "".join
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    ANY_TEXT,
    st.sampled_from(["https://example.com/a", "http://[::1", "0001-01-01T00:00+01:00"]),
    st.datetimes().map(lambda d: d.isoformat()),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), ANY_TEXT), inner, max_size=5),
    ),
    max_leaves=10,
)


@pytest.fixture
def memory_session() -> Iterator[Session]:
    """An in-memory SQLite session, where the database adds nothing (the parse fails first)."""
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine, tables=[Article.__table__])  # type: ignore[attr-defined]
    with Session(engine) as s:
        yield s


def attempt(session: Session, run: Callable[[], ImportResult]) -> None:
    """Run one import; only InvalidInput may escape it. Nothing is kept between examples."""
    try:
        result = run()
        assert result.created + result.updated + len(result.errors) >= 0
    except InvalidInput:
        pass
    finally:
        session.rollback()


def test_arbitrary_bytes_under_any_name(session: Session) -> None:
    @FUZZ
    @given(content=st.binary(max_size=400), name=st.sampled_from(NAMES))
    def check(content: bytes, name: str) -> None:
        attempt(session, lambda: import_upload(session, content, name))

    check()


def test_arbitrary_nested_json_and_yaml(session: Session) -> None:
    @FUZZ
    @given(value=JSON_VALUES, as_yaml=st.booleans())
    def check(value: Any, as_yaml: bool) -> None:
        if as_yaml:
            text, name = yaml.safe_dump(value, allow_unicode=False), "articles.yaml"
        else:
            text, name = json.dumps(value), "articles.json"
        attempt(
            session, lambda: import_upload(session, text.encode("utf-8", "surrogatepass"), name)
        )

    check()


@st.composite
def record(draw: st.DrawFn) -> dict[str, Any]:
    """An article-like record: mostly a good URL and title, any values elsewhere."""
    fields = draw(st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6))
    if draw(st.integers(0, 3)):
        fields.setdefault("url", f"https://example.com/{draw(st.integers(0, 5))}")
        fields.setdefault("title", draw(ANY_TEXT))
    return fields


def test_article_shaped_records_with_any_values(session: Session) -> None:
    @settings(FUZZ, max_examples=30)
    @given(records=st.lists(record(), max_size=4), as_yaml=st.booleans())
    def check(records: list[dict[str, Any]], as_yaml: bool) -> None:
        if as_yaml:
            text, name = yaml.safe_dump(records), "articles.yaml"
        else:
            text, name = json.dumps(records), "articles.json"
        attempt(
            session, lambda: import_upload(session, text.encode("utf-8", "surrogatepass"), name)
        )

    check()


@pytest.mark.parametrize("name", ["deep.json", "deep.yaml"])
def test_deep_nesting_at_any_depth(memory_session: Session, name: str) -> None:
    @settings(max_examples=10, deadline=None, database=None)
    @given(depth=st.integers(1, 1200), opener=st.sampled_from(["[", '{"a":', "- "]))
    def check(depth: int, opener: str) -> None:
        closer = {"[": "]", '{"a":': "}", "- ": ""}[opener]
        text = opener * depth + "1" + closer * depth
        attempt(memory_session, lambda: import_upload(memory_session, text.encode(), name))

    check()


FEED_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@st.composite
def feed_document(draw: st.DrawFn) -> bytes:
    """An RSS or Atom document whose fields hold anything (escaped, or now and then raw)."""

    def field() -> str:
        value = draw(st.one_of(FEED_TEXT, st.sampled_from(["http://[::1", "javascript:x", ""])))
        return value if draw(st.integers(0, 9)) == 0 else escape(value)

    if draw(st.booleans()):
        items = "".join(
            f"<item><title>{field()}</title><link>{field()}</link>"
            f"<description>{field()}</description><pubDate>{field()}</pubDate>"
            f'<enclosure url="{field()}" type="image/jpeg"/><category>{field()}</category></item>'
            for _ in range(draw(st.integers(0, 3)))
        )
        channel = f"<channel><title>t</title>{items}</channel>"
        doc = f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'
    else:
        entries = "".join(
            f'<entry><title type="{draw(st.sampled_from(["text", "html"]))}">{field()}</title>'
            f'<link href="{field()}"/><id>{field()}</id><updated>{field()}</updated>'
            f'<content type="html">{field()}</content>'
            f"<author><name>{field()}</name></author></entry>"
            for _ in range(draw(st.integers(0, 3)))
        )
        doc = f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>{entries}</feed>'
    return doc.encode()


def test_fetched_feeds_with_any_content(session: Session) -> None:
    """The URL path: whatever bytes the fetch returns go to feedparser as a stream, never crash."""

    @FUZZ
    @given(data=st.one_of(feed_document(), st.binary(max_size=300)))
    def check(data: bytes) -> None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(outbound, "fetch", lambda *_args, **_kw: data)
            url = "https://feeds.example.com/feed.xml"
            attempt(session, lambda: import_feed(session, url, policy=outbound.OutboundPolicy()))

    check()


@pytest.mark.parametrize(
    "data", [b"http://127.0.0.1:1/feed.xml", b"/etc/hosts", b"file:///etc/hosts", b"feed://x"]
)
def test_the_feed_parser_never_fetches_or_opens_what_it_is_given(data: bytes) -> None:
    parsed = importers.parse_feed_bytes(data)
    assert not parsed.get("entries") and not parsed.get("status") and not parsed.get("href")
