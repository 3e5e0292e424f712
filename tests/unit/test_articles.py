"""Tests for the article library (``content.articles``: ArticleCreate, upsert by URL, import,
listing), its sanitiser (``content.sanitize``) and its readers (``content.importers``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import feedparser
import pytest
from sqlalchemy import func
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine, select

import newsletter.models
from newsletter import outbound
from newsletter.content.articles import (
    ArticleCreate,
    ImportResult,
    import_feed,
    import_file,
    import_records,
    import_upload,
    list_articles,
    upsert_article,
)
from newsletter.content.sanitize import sanitize_html
from newsletter.exceptions import InvalidInput, NotFound
from newsletter.models import Article
from newsletter.outbound import AddressNotAllowed, OutboundPolicy

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def session() -> Iterator[Session]:
    assert newsletter.models.Article is Article  # the import registers every table
    engine = create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    SQLModel.metadata.create_all(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


def count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Article)).one()


def by_url(session: Session, url: str) -> Article:
    article = session.exec(select(Article).where(Article.url == url)).one()
    return article


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"url": "https://example.com/a", "title": "A title"}
    base.update(overrides)
    return base


def upsert(session: Session, data: object) -> tuple[Article, bool]:
    """Validate a record as every way in does (``ArticleCreate.parse``), then upsert it."""
    return upsert_article(session, ArticleCreate.parse(data))


# --- sanitize_html: XSS ------------------------------------------------------------------------


def test_sanitize_removes_script_tag_and_its_content() -> None:
    assert sanitize_html("<p>hi<script>alert('x')</script> there</p>") == "<p>hi there</p>"


def test_sanitize_drops_img_onerror_and_the_sourceless_img() -> None:
    assert sanitize_html("<p>a<img src=x onerror=alert(1)>b</p>") == "<p>ab</p>"


def test_sanitize_drops_onerror_but_keeps_a_valid_img() -> None:
    out = sanitize_html('<img src="https://cdn.example.com/a.png" onerror="alert(1)" alt="A">')
    assert out == '<img src="https://cdn.example.com/a.png" alt="A">'


def test_sanitize_drops_javascript_href() -> None:
    out = sanitize_html('<a href="javascript:alert(1)">x</a>')
    assert out == '<a rel="noopener noreferrer">x</a>'


def test_sanitize_drops_mixed_case_javascript_href() -> None:
    out = sanitize_html('<a href="JaVaScRiPt:alert(document.cookie)">x</a>')
    assert out == '<a rel="noopener noreferrer">x</a>'


def test_sanitize_drops_entity_encoded_javascript_href() -> None:
    out = sanitize_html('<a href="&#106;avascript:alert(1)">x</a>')
    assert out == '<a rel="noopener noreferrer">x</a>'


def test_sanitize_drops_data_url_link() -> None:
    out = sanitize_html('<a href="data:text/html;base64,PHNjcmlwdD4=">d</a>')
    assert out == '<a rel="noopener noreferrer">d</a>'


def test_sanitize_drops_data_url_image() -> None:
    assert sanitize_html('<p>x<img src="data:image/png;base64,AAAA"></p>') == "<p>x</p>"


def test_sanitize_drops_vbscript_href() -> None:
    out = sanitize_html('<a href="vbscript:msgbox(1)">v</a>')
    assert out == '<a rel="noopener noreferrer">v</a>'


def test_sanitize_removes_svg_with_onload() -> None:
    assert sanitize_html("<svg onload=alert(1)><circle r=1 /></svg><p>ok</p>") == "<p>ok</p>"


def test_sanitize_removes_iframe_and_its_content() -> None:
    out = sanitize_html('<iframe src="https://evil.example/">inner</iframe><p>after</p>')
    assert out == "<p>after</p>"


def test_sanitize_drops_style_attribute() -> None:
    assert sanitize_html('<p style="background:url(javascript:x)">s</p>') == "<p>s</p>"


def test_sanitize_removes_style_element_and_its_content() -> None:
    assert sanitize_html("<style>p { color: red }</style><p>t</p>") == "<p>t</p>"


def test_sanitize_drops_event_handlers_on_allowed_tags() -> None:
    out = sanitize_html('<p onclick="x()" onmouseover="y()">t</p>')
    assert out == "<p>t</p>"


@pytest.mark.parametrize(
    "payload",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        '<a href="JaVaScRiPt:alert(1)">x</a>',
        '<a href="java\tscript:alert(1)">x</a>',
        '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
        "<svg onload=alert(1)>",
        '<iframe src="javascript:alert(1)"></iframe>',
        '<p style="x:expression(alert(1))">s</p>',
        '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
        '<math><mi xlink:href="javascript:alert(1)">m</mi></math>',
    ],
)
def test_sanitize_leaves_no_executable_markup(payload: str) -> None:
    out = sanitize_html(payload).lower()
    for token in ("<script", "javascript:", "onerror=", "onload=", "<iframe", "<svg", "style="):
        assert token not in out


def test_sanitize_keeps_ordinary_markup() -> None:
    html = (
        "<h2>Head</h2><p>Some <strong>bold</strong>, <em>em</em>, <b>b</b> and <i>i</i>.<br>"
        "Line</p><ul><li>one</li></ul><ol><li>two</li></ol><blockquote>q</blockquote>"
        "<h3>h3</h3><h4>h4</h4><figure>"
        '<img src="https://cdn.example.com/p.jpg" alt="Pic" width="600" height="400">'
        "<figcaption>Cap</figcaption></figure>"
    )
    assert sanitize_html(html) == html


def test_sanitize_adds_rel_noopener_noreferrer_to_links() -> None:
    out = sanitize_html('<a href="https://example.com/x" title="T" rel="opener">l</a>')
    assert out == '<a href="https://example.com/x" title="T" rel="noopener noreferrer">l</a>'


def test_sanitize_keeps_mailto_links() -> None:
    out = sanitize_html('<a href="mailto:desk@example.com">m</a>')
    assert out == '<a href="mailto:desk@example.com" rel="noopener noreferrer">m</a>'


def test_sanitize_strips_unlisted_tags_but_keeps_their_text() -> None:
    assert sanitize_html("<h1>Big</h1><table><tr><td>cell</td></tr></table>") == "Bigcell"


def test_sanitize_drops_relative_urls_without_a_base() -> None:
    assert sanitize_html('<a href="/about">x</a>') == '<a rel="noopener noreferrer">x</a>'


def test_sanitize_resolves_relative_urls_against_the_base() -> None:
    out = sanitize_html('<img src="img/a.png">', base_url="https://example.com/news/story")
    assert out == '<img src="https://example.com/news/img/a.png">'


# --- ArticleCreate and upsert_article ----------------------------------------------------------


def test_upsert_creates_an_article_with_normalised_fields(session: Session) -> None:
    article, created = upsert(
        session,
        record(
            title="  Tom &amp; <b>Jerry</b>\n  return ",
            summary="<p>Short   <em>summary</em></p>",
            author=" <i>Ana</i> ",
            image_alt="A &lt;cat&gt;",
            section="World",
        ),
    )
    assert created is True
    assert (article.title, article.summary, article.author) == (
        "Tom & Jerry return",
        "Short summary",
        "Ana",
    )
    assert article.image_alt == "A <cat>"
    assert article.section == "World"
    assert count(session) == 1


def test_upsert_sanitises_body_html(session: Session) -> None:
    body = '<p onclick="x()">Hi<script>bad()</script></p><a href="javascript:x">l</a>'
    article, _ = upsert(session, record(body_html=body))
    assert article.body_html == '<p>Hi</p><a rel="noopener noreferrer">l</a>'


def test_upsert_resolves_relative_body_links_against_the_article_url(session: Session) -> None:
    data = record(url="https://example.com/news/a", body_html='<a href="b">b</a>')
    article, _ = upsert(session, data)
    expected = '<a href="https://example.com/news/b" rel="noopener noreferrer">b</a>'
    assert article.body_html == expected


def test_reimport_of_same_url_updates_instead_of_duplicating(session: Session) -> None:
    first, _ = upsert(session, record(title="Old", summary="old"))
    first.updated_at = datetime(2020, 1, 1, tzinfo=UTC)
    second, created = upsert(session, record(title="New", summary="new"))
    assert created is False
    assert second.id == first.id
    assert (second.title, second.summary) == ("New", "new")
    assert second.updated_at > datetime(2020, 1, 1, tzinfo=UTC)
    assert count(session) == 1


def test_url_identity_ignores_scheme_and_host_case(session: Session) -> None:
    upsert(session, record(url="https://example.com/Path"))
    _, created = upsert(session, record(url="HTTPS://EXAMPLE.com/Path"))
    assert created is False
    assert by_url(session, "https://example.com/Path").title == "A title"


def test_update_keeps_fields_absent_from_the_record(session: Session) -> None:
    upsert(session, record(body_html="<p>Rich body</p>", tags=["x"]))
    article, _ = upsert(session, record(title="Renamed"))
    assert article.title == "Renamed"
    assert (article.body_html, article.tags) == ("<p>Rich body</p>", ["x"])


def test_update_clears_a_field_given_as_null(session: Session) -> None:
    upsert(session, record(image_url="https://cdn.example.com/i.jpg"))
    article, _ = upsert(session, record(image_url=None))
    assert article.image_url is None


def test_relative_url_is_rejected(session: Session) -> None:
    with pytest.raises(InvalidInput, match="absolute http"):
        upsert(session, record(url="/2024/story"))
    assert count(session) == 0


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "ftp://example.com/a", "https://", "//example.com/a"]
)
def test_non_http_url_is_rejected(session: Session, url: str) -> None:
    with pytest.raises(InvalidInput, match="'url'"):
        upsert(session, record(url=url))


def test_url_with_whitespace_inside_is_rejected(session: Session) -> None:
    with pytest.raises(InvalidInput, match="whitespace"):
        upsert(session, record(url="https://example.com/a b"))


def test_overlong_url_is_rejected(session: Session) -> None:
    with pytest.raises(InvalidInput, match="longer than 2000"):
        upsert(session, record(url="https://example.com/" + "a" * 2000))


def test_missing_url_is_rejected(session: Session) -> None:
    with pytest.raises(InvalidInput, match="missing 'url'"):
        upsert(session, {"title": "T"})


def test_missing_title_is_rejected(session: Session) -> None:
    with pytest.raises(InvalidInput, match="missing 'title'"):
        upsert(session, {"url": "https://example.com/a"})


def test_title_empty_after_stripping_tags_is_rejected(session: Session) -> None:
    with pytest.raises(InvalidInput, match="'title' is empty"):
        upsert(session, record(title="<b> </b><script>x</script>"))


def test_relative_image_url_is_rejected(session: Session) -> None:
    with pytest.raises(InvalidInput, match="'image_url'"):
        upsert(session, record(image_url="img/a.png"))


def test_empty_image_url_is_stored_as_none(session: Session) -> None:
    article, _ = upsert(session, record(image_url="  "))
    assert article.image_url is None


def test_comma_separated_tags_are_split_trimmed_and_deduplicated(session: Session) -> None:
    article, _ = upsert(session, record(tags=" Politics, ,Cycling,Politics "))
    assert article.tags == ["Politics", "Cycling"]


def test_tags_list_with_non_strings_is_rejected(session: Session) -> None:
    with pytest.raises(InvalidInput, match="'tags'"):
        upsert(session, record(tags=["ok", 3]))


def test_published_at_iso_z_string_is_stored_as_aware_utc(session: Session) -> None:
    article, _ = upsert(session, record(published_at="2024-05-01T09:30:00Z"))
    assert article.published_at == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert article.published_at.utcoffset() == timedelta(0)


def test_published_at_offset_is_converted_to_utc(session: Session) -> None:
    article, _ = upsert(session, record(published_at="2024-05-01T09:30:00+02:00"))
    assert article.published_at is not None
    assert (article.published_at.hour, article.published_at.tzinfo) == (7, UTC)


def test_naive_published_at_is_taken_as_utc(session: Session) -> None:
    article, _ = upsert(session, record(published_at=datetime(2024, 5, 1, 9, 30)))
    assert article.published_at == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert article.published_at.tzinfo is UTC


def test_aware_datetime_published_at_is_converted_to_utc(session: Session) -> None:
    moment = datetime(2024, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    article, _ = upsert(session, record(published_at=moment))
    assert article.published_at == datetime(2024, 5, 1, 14, 30, tzinfo=UTC)
    assert article.published_at.tzinfo is UTC


def test_date_published_at_is_midnight_utc(session: Session) -> None:
    article, _ = upsert(session, record(published_at=date(2024, 5, 1)))
    assert article.published_at == datetime(2024, 5, 1, tzinfo=UTC)


def test_invalid_published_at_is_rejected(session: Session) -> None:
    with pytest.raises(InvalidInput, match="ISO 8601"):
        upsert(session, record(published_at="last Tuesday"))


def test_bullet_and_unknown_keys_are_ignored(session: Session) -> None:
    data = record(bullet="One-line teaser", colour="blue", id=999)
    article, created = upsert(session, data)
    assert created is True
    assert article.id != 999
    assert article.tags == []
    assert "One-line teaser" not in (article.summary, article.body_html, article.title)


def test_non_string_title_is_rejected(session: Session) -> None:
    with pytest.raises(InvalidInput, match="'title' must be a string"):
        upsert(session, record(title=["a"]))


def test_article_create_changes_are_the_fields_the_record_gave() -> None:
    fields = ArticleCreate.parse(record(summary="S", image_url=None, colour="blue"))
    assert fields.changes() == {
        "url": "https://example.com/a",
        "title": "A title",
        "summary": "S",
        "image_url": None,
    }
    assert fields.body_html == "" and fields.tags == []  # defaults, but not changes


def test_article_create_reports_the_first_problem_in_check_order() -> None:
    with pytest.raises(InvalidInput, match=r"^'url' must be an absolute http"):
        ArticleCreate.parse({"url": "/rel", "title": ["x"], "tags": 3})
    with pytest.raises(InvalidInput, match=r"^'title' must be a string$"):
        ArticleCreate.parse({"url": "https://example.com/a", "title": ["x"], "tags": 3})


def test_article_create_refuses_what_is_not_a_mapping() -> None:
    for value in ("text", ["url", "title"], None, 3):
        with pytest.raises(InvalidInput, match=r"^an article must be a mapping of fields$"):
            ArticleCreate.parse(value)


def test_blank_published_at_is_no_date(session: Session) -> None:
    # the editor's form posts an empty or blank date field for "no date"
    for blank in ("", "   "):
        article, _ = upsert(session, record(published_at=blank))
        assert article.published_at is None


def test_errors_are_one_line_invalid_input_not_pydantic_errors() -> None:
    with pytest.raises(InvalidInput) as info:
        ArticleCreate.parse(record(url="https://example.com/a\nb"))
    assert str(info.value) == "'url' contains whitespace or control characters: " + repr(
        "https://example.com/a\nb"
    )
    assert "\n" not in str(info.value)


# --- import_records ----------------------------------------------------------------------------


def test_bad_records_are_reported_by_item_number_and_good_ones_import(session: Session) -> None:
    result = import_records(
        session,
        [
            record(url="https://example.com/1", title="One"),
            {"title": "No URL"},
            record(url="/relative"),
            record(url="https://example.com/4", title="Four"),
            "not a mapping",  # type: ignore[list-item]
        ],
    )
    assert (result.created, result.updated) == (2, 0)
    assert result.errors[0] == "item 2: missing 'url'"
    assert result.errors[1].startswith("item 3: 'url' must be an absolute http(s) URL")
    assert result.errors[2] == "item 5: an article must be a mapping of fields"
    assert len(result.errors) == 3
    assert count(session) == 2


def test_import_records_counts_updates(session: Session) -> None:
    import_records(session, [record()])
    result = import_records(session, [record(title="Again"), record(url="https://example.com/b")])
    assert result == ImportResult(created=1, updated=1, errors=[])


def test_import_records_flushes_without_committing(session: Session) -> None:
    import_records(session, [record()])
    assert by_url(session, "https://example.com/a").id is not None
    session.rollback()
    assert count(session) == 0


# --- import_file -------------------------------------------------------------------------------


def test_json_fixture_imports(session: Session) -> None:
    result = import_file(session, FIXTURES / "articles.json")
    assert result == ImportResult(created=2, updated=0, errors=[])
    tide = by_url(session, "https://news.example.com/2024/03/tide-tables")
    assert tide.summary == "The port authority has published the 2024 tide tables."
    assert tide.body_html == "<p>Tables are <em>free</em> to download.</p>"
    assert (tide.image_url, tide.image_alt, tide.image_credit) == (
        "https://cdn.example.com/tide.jpg",
        "A tide gauge",
        "Port Authority",
    )
    assert (tide.author, tide.section, tide.tags) == ("Rui Mendes", "Coast", ["tides", "port"])
    light = by_url(session, "https://news.example.com/2024/03/lighthouse")
    assert light.tags == ["heritage", "events"]
    assert light.published_at == datetime(2024, 3, 12, 8, 30, tzinfo=UTC)


def test_json_reimport_updates_every_article(session: Session) -> None:
    import_file(session, FIXTURES / "articles.json")
    result = import_file(session, FIXTURES / "articles.json")
    assert (result.created, result.updated) == (0, 2)
    assert count(session) == 2


def test_yaml_fixture_with_articles_key_imports(session: Session) -> None:
    result = import_file(session, FIXTURES / "articles.yaml")
    assert result == ImportResult(created=2, updated=0, errors=[])
    beach = by_url(session, "https://news.example.com/2024/04/beach-cleanup")
    assert beach.published_at == datetime(2024, 4, 6, 9, 0, tzinfo=UTC)
    assert beach.tags == ["environment", "volunteers"]
    bridge = by_url(session, "https://news.example.com/2024/04/bridge-works")
    assert bridge.published_at == datetime(2024, 4, 8, tzinfo=UTC)


def test_yml_suffix_with_top_level_list_imports(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "list.yml"
    path.write_text("- url: https://example.com/y\n  title: From YML\n", encoding="utf-8")
    assert import_file(session, path).created == 1
    assert by_url(session, "https://example.com/y").title == "From YML"


def test_rss_fixture_imports(session: Session) -> None:
    result = import_file(session, FIXTURES / "feed_rss.xml")
    assert result == ImportResult(created=2, updated=0, errors=[])
    ferry = by_url(session, "https://gazette.example.org/2024/05/ferry-timetable")
    assert ferry.title == "Ferry timetable changes & new routes"
    assert ferry.summary == "The summer timetable starts on Monday."
    assert ferry.body_html == (
        "<p>The summer timetable <strong>starts on Monday</strong>.</p>"
        '<p><a href="https://gazette.example.org/ferries" rel="noopener noreferrer">'
        "All routes</a></p>"
    )
    assert ferry.author == "Ana Costa"
    assert ferry.published_at == datetime(2024, 5, 1, 7, 30, tzinfo=UTC)
    assert ferry.tags == ["Transport", "Harbour"]
    assert (ferry.image_url, ferry.image_credit) == (
        "https://cdn.example.org/ferry.jpg",
        "Photo: J. Silva",
    )


def test_rss_enclosure_image_and_summary_body_fallback(session: Session) -> None:
    import_file(session, FIXTURES / "feed_rss.xml")
    market = by_url(session, "https://gazette.example.org/2024/04/market-hall")
    assert market.image_url == "https://cdn.example.org/market.png"
    assert market.body_html == "After two years of works the market hall opens again."
    assert market.published_at == datetime(2024, 4, 28, 7, 0, tzinfo=UTC)


def test_atom_fixture_imports(session: Session) -> None:
    result = import_file(session, FIXTURES / "feed_atom.xml")
    assert result == ImportResult(created=2, updated=0, errors=[])
    lanes = by_url(session, "https://citydesk.example.net/bike-lanes")
    assert lanes.title == "Council votes on bike lanes"
    assert lanes.summary == "The council approved 12 km of new lanes."
    assert lanes.body_html == (
        "<p>The council approved <em>12 km</em> of lanes.</p>"
        '<img alt="Map" src="https://citydesk.example.net/img/map.png">'
    )
    assert lanes.author == "Ben Okafor"
    assert lanes.published_at == datetime(2024, 6, 1, 17, 15, tzinfo=UTC)
    assert lanes.tags == ["Politics", "Cycling"]
    assert lanes.image_url == "https://citydesk.example.net/img/lanes.jpg"


def test_atom_entry_without_published_uses_updated(session: Session) -> None:
    import_file(session, FIXTURES / "feed_atom.xml")
    library = by_url(session, "https://citydesk.example.net/library-hours")
    assert library.published_at == datetime(2024, 5, 20, 8, 0, tzinfo=UTC)
    assert library.image_url is None


def test_feed_reimport_updates_not_duplicates(session: Session) -> None:
    import_file(session, FIXTURES / "feed_atom.xml")
    result = import_file(session, FIXTURES / "feed_atom.xml")
    assert (result.created, result.updated, count(session)) == (0, 2, 2)


def test_malformed_yaml_raises_invalid_input_naming_file_and_line(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("articles:\n  - url: https://example.com/a\n    title: [unclosed\n")
    with pytest.raises(InvalidInput) as info:
        import_file(session, path)
    message = str(info.value)
    assert str(path) in message
    assert "invalid YAML at line" in message
    assert "\n" not in message


def test_malformed_json_raises_invalid_input_naming_file(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[{"url": "https://example.com/a",}]')
    with pytest.raises(InvalidInput, match=r"broken\.json: invalid JSON at line 1"):
        import_file(session, path)


def test_json_of_wrong_shape_raises_invalid_input(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "shape.json"
    path.write_text('{"items": []}')
    with pytest.raises(InvalidInput, match="expected a list of articles"):
        import_file(session, path)


def test_non_utf8_file_raises_invalid_input(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"- title: caf\xe9\n")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        import_file(session, path)


def test_missing_file_raises_not_found(session: Session, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"nope\.json"):
        import_file(session, tmp_path / "nope.json")


def test_unknown_suffix_that_is_a_feed_imports(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "feed.txt"
    path.write_bytes((FIXTURES / "feed_rss.xml").read_bytes())
    assert import_file(session, path).created == 2


def test_unknown_suffix_that_is_not_a_feed_raises_invalid_input(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some notes")
    with pytest.raises(InvalidInput, match=r"notes\.txt: not a JSON, YAML or RSS/Atom file"):
        import_file(session, path)


# --- import_feed -------------------------------------------------------------------------------


def test_import_feed_accepts_a_path_string(session: Session) -> None:
    assert import_feed(session, str(FIXTURES / "feed_rss.xml")).created == 2


def test_import_feed_missing_path_raises_not_found(session: Session, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        import_feed(session, str(tmp_path / "missing.xml"))


def test_import_feed_rejects_non_http_url(session: Session) -> None:
    with pytest.raises(InvalidInput, match="only http"):
        import_feed(session, "ftp://example.com/feed.xml")


def test_import_feed_broken_xml_raises_invalid_input(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    path.write_text('<?xml version="1.0"?><rss><channel><title>x</broken>')
    with pytest.raises(InvalidInput, match=r"broken\.xml: not a readable feed \(.*mismatched tag"):
        import_feed(session, str(path))


def test_import_feed_of_html_page_raises_invalid_input(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "page.xml"
    path.write_text("<html><body><p>hello</p></body></html>")
    with pytest.raises(InvalidInput, match="not an RSS or Atom feed"):
        import_feed(session, str(path))


def test_empty_but_valid_feed_imports_nothing(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "empty.rss"
    path.write_text('<rss version="2.0"><channel><title>t</title></channel></rss>')
    assert import_file(session, path) == ImportResult()


def test_import_feed_fetches_urls_through_the_outbound_guard_and_parses_a_stream(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched: list[tuple[str, OutboundPolicy]] = []
    parsed_from: list[object] = []
    real_parse = feedparser.parse

    def fake_fetch(url: str, policy: OutboundPolicy, **_kw: object) -> bytes:
        fetched.append((url, policy))
        return (FIXTURES / "feed_atom.xml").read_bytes()

    def spy_parse(source: object) -> Any:
        parsed_from.append(source)
        return real_parse(source)

    monkeypatch.setattr(outbound, "fetch", fake_fetch)
    monkeypatch.setattr(feedparser, "parse", spy_parse)
    policy = OutboundPolicy(max_redirects=1)
    result = import_feed(session, "https://citydesk.example.net/feed.atom", policy=policy)
    assert fetched == [("https://citydesk.example.net/feed.atom", policy)]
    # feedparser gets the fetched bytes as a stream: never a URL or a name it could open itself
    (source,) = parsed_from
    assert hasattr(source, "read") and not isinstance(source, str | bytes)
    assert result.created == 2


def test_import_feed_of_a_local_url_is_refused_by_the_default_policy(session: Session) -> None:
    with pytest.raises(AddressNotAllowed, match="not a public address"):
        import_feed(session, "http://127.0.0.1:9/feed.xml")
    with pytest.raises(InvalidInput, match="not a public address"):
        import_feed(session, "http://localhost:6379/")


def test_a_file_whose_content_names_another_file_is_not_followed(
    session: Session, tmp_path: Path
) -> None:
    # feedparser given bytes opens the file they name: the fixture's 2 articles came in that way
    path = tmp_path / "pointer.txt"
    path.write_text(str(FIXTURES / "feed_rss.xml"))
    with pytest.raises(InvalidInput, match="not a JSON, YAML or RSS/Atom file"):
        import_file(session, path)
    path = tmp_path / "pointer.xml"
    path.write_text(str(FIXTURES / "feed_rss.xml"))
    with pytest.raises(InvalidInput, match="not a readable feed"):
        import_file(session, path)
    assert session.exec(select(func.count()).select_from(Article)).one() == 0


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("deep.json", "[" * 100_000 + "]" * 100_000),
        ("deep.json", '{"a":' * 100_000 + "1" + "}" * 100_000),
        ("deep.yaml", "[" * 100_000 + "]" * 100_000),
        ("deep.yml", "- " * 5_000 + "x"),
    ],
)
def test_deeply_nested_data_is_invalid_input(
    session: Session, tmp_path: Path, filename: str, content: str
) -> None:
    with pytest.raises(InvalidInput, match="nested too deeply"):
        import_upload(session, content.encode(), filename)
    path = tmp_path / filename
    path.write_text(content)
    with pytest.raises(InvalidInput, match="nested too deeply"):
        import_file(session, path)


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("big.json", '[{"url": ' + "9" * 5000 + "}]", "invalid JSON"),
        ("big.yaml", "- url: " + "9" * 5000, "invalid YAML"),
        ("date.yaml", "- published_at: 2024-13-45", "invalid YAML"),
    ],
)
def test_values_python_refuses_are_invalid_input(
    session: Session, filename: str, content: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        import_upload(session, content.encode(), filename)


@pytest.mark.parametrize(
    "record",
    [
        {"url": "https://example.com/a", "title": "T\ud800"},
        {"url": "https://example.com/a", "title": "T", "tags": ["ok", "\udfff"]},
        {"url": "http://[::1/a", "title": "T"},
        {"url": "https://example.com/a", "title": "T", "published_at": "0001-01-01T00:00+01:00"},
    ],
)
def test_records_no_database_can_store_are_reported_not_raised(
    session: Session, record: dict[str, Any]
) -> None:
    result = import_records(session, [record])
    assert result.created == 0 and len(result.errors) == 1, result


def test_feed_entry_without_link_is_reported(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "nolink.rss"
    path.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>No link</title></item>"
        "<item><title>Linked</title><link>https://example.com/l</link></item>"
        "</channel></rss>"
    )
    result = import_file(session, path)
    assert result == ImportResult(created=1, updated=0, errors=["item 1: missing 'url'"])


def test_plain_text_feed_title_keeps_angle_brackets(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "lt.atom"
    path.write_text(
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        '<entry><title type="text">Why x &lt;y&gt; z</title>'
        '<link href="https://example.com/lt"/><id>1</id></entry></feed>'
    )
    import_file(session, path)
    assert by_url(session, "https://example.com/lt").title == "Why x <y> z"


# --- list_articles -----------------------------------------------------------------------------


def seed_for_listing(session: Session) -> None:
    import_records(
        session,
        [
            record(url="https://example.com/old", title="Old budget", published_at="2024-01-01"),
            record(url="https://example.com/new", title="New BUDGET", published_at="2024-03-01"),
            record(url="https://example.com/mid", title="Harbour", published_at="2024-02-01"),
            record(url="https://example.com/undated", title="Undated budget"),
        ],
    )


def test_list_articles_orders_newest_published_first_and_undated_last(session: Session) -> None:
    seed_for_listing(session)
    titles = [a.title for a in list_articles(session)]
    assert titles == ["New BUDGET", "Harbour", "Old budget", "Undated budget"]


def test_list_articles_search_matches_title_case_insensitively(session: Session) -> None:
    seed_for_listing(session)
    titles = [a.title for a in list_articles(session, search="budget")]
    assert titles == ["New BUDGET", "Old budget", "Undated budget"]


def test_list_articles_search_treats_wildcards_literally(session: Session) -> None:
    seed_for_listing(session)
    upsert(session, record(url="https://example.com/pct", title="100% renewable"))
    assert [a.title for a in list_articles(session, search="100%")] == ["100% renewable"]
    assert list_articles(session, search="_") == []


def test_list_articles_respects_limit(session: Session) -> None:
    seed_for_listing(session)
    assert [a.title for a in list_articles(session, limit=2)] == ["New BUDGET", "Harbour"]


def test_list_articles_rejects_non_positive_limit(session: Session) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        list_articles(session, limit=0)


def test_control_characters_in_a_title_become_spaces_on_save(session: Session) -> None:
    record = {"url": "https://news.example.org/ctl", "title": "Minsk\x07talks &#1;resume\r\nin May"}
    article, _ = upsert(session, record)
    assert article.title == "Minsk talks resume in May"
