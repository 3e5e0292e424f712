"""The issue email as a reader's mail app shows it: each layout (digest, alert, letter) of the
seeded issue rendered by Chromium at 375, 600 and 1200 px, light and dark, with images shown and
blocked. Nothing scrolls sideways, every image has alt text, the lead story is the first story on
screen, and dark mode switches the page. Full-page screenshots (375 and 1200 px, light and dark)
go to tests/artifacts/email/.

No web app: the compiled HTML (sample reader's values filled in) goes in with set_content. One
browser for the run (the session fixture), one page per layout and width."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from newsletter.content import rendering
from newsletter.content.articles import ArticleCreate
from newsletter.content.issues import IssueOutline, OutlineItem, OutlineSection
from newsletter.models import Article, Issue, IssueItem, IssueSection, Newsletter
from newsletter.seeding import SEEDS_DIR
from tests.support.pictures import PHOTO

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "email"
WIDTHS = (375, 600, 1200)
SHOT_WIDTHS = (375, 1200)
DARK_PAGE = "rgb(18, 18, 18)"  # rendering.design()["dark_page"]

#: where each story's first link sits on screen, the lead's first; overflow and missing alt
MEASURE = """(urls) => {
  const tops = urls.map((url) => Math.min(...[...document.querySelectorAll('a')]
    .filter((a) => a.href === url && a.getClientRects().length)
    .map((a) => a.getBoundingClientRect().top + window.scrollY)));
  return {
    scrollWidth: document.scrollingElement.scrollWidth,
    tops,
    imagesWithoutAlt: [...document.images].filter((i) => !(i.alt || '').trim()).map((i) => i.src),
    images: document.images.length,
    loaded: [...document.images].filter((i) => i.complete && i.naturalWidth > 0).length,
    body: getComputedStyle(document.body).backgroundColor,
  };
}"""


def seeded_outline(layout: str) -> IssueOutline:
    """The sample issue of seeds/ (10 stories, 4 sections), built in memory."""
    spec = yaml.safe_load((SEEDS_DIR / "newsletter.yaml").read_text(encoding="utf-8"))
    records = yaml.safe_load((SEEDS_DIR / "articles.yaml").read_text(encoding="utf-8"))
    by_url = {
        r["url"]: Article(id=n, **ArticleCreate.parse(r).model_dump())
        for n, r in enumerate(records, 1)
    }
    nl = Newsletter(id=1, layout=layout, **spec["newsletter"])
    plan = spec["issue"]
    issue = Issue(
        id=1,
        newsletter_id=1,
        number=12,
        title=plan["title"],
        preheader=plan["preheader"],
        intro_md=plan["intro"],
    )
    sections, item_id = [], 0
    for position, section_plan in enumerate(plan["sections"]):
        section = IssueSection(
            id=position, issue_id=1, title=section_plan["title"], position=position
        )
        items = []
        for index, url in enumerate(section_plan["articles"]):
            item_id += 1
            item = IssueItem(
                id=item_id, section_id=position, article_id=by_url[url].id, position=index
            )
            items.append(OutlineItem(item, by_url[url]))
        sections.append(OutlineSection(section, items))
    return IssueOutline(nl, issue, sections)


def reader_html(compiled: rendering.CompiledIssue) -> str:
    values = dict.fromkeys(rendering.PLACEHOLDERS, "https://news.example.org/archive/12")
    values.update(name="Alesia Reader", greeting="Dear Alesia,", email="alesia@example.net")
    return rendering.personalise(compiled, values)[0]


@pytest.mark.parametrize("layout", rendering.LAYOUTS)
def test_each_layout_fits_every_width_in_light_and_dark_with_images_on_and_blocked(
    browser: Any, layout: str
) -> None:
    outline = seeded_outline(layout)
    html = reader_html(rendering.compile_issue(outline))
    urls = [entry.article.url for entry in outline.items]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    images = {"on": True}

    def serve(route: Any) -> None:
        if route.request.resource_type == "image" and images["on"]:
            route.fulfill(status=200, content_type="image/png", body=PHOTO)
        else:  # images blocked, and nothing else may load (no fonts, no trackers)
            route.abort()

    for width in WIDTHS:
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.route(re.compile(r"^https?://"), serve)
        try:
            # blocked first: once shown, the page's memory cache would show the images again
            for shown, scheme in [(s, c) for s in (False, True) for c in ("light", "dark")]:
                images["on"] = shown
                page.emulate_media(color_scheme=scheme)
                page.set_content(html, wait_until="load")
                seen = page.evaluate(MEASURE, urls)
                where = f"{layout}, {width} px, {scheme}, images {'on' if shown else 'blocked'}"
                assert seen["loaded"] == (seen["images"] if shown else 0), where
                assert seen["scrollWidth"] <= width, f"{where}: scrolls sideways"
                assert seen["imagesWithoutAlt"] == [], where
                lead, *rest = seen["tops"]
                assert all(lead < top for top in rest), f"{where}: lead not first: {seen['tops']}"
                assert (seen["body"] == DARK_PAGE) == (scheme == "dark"), where
                if shown and width in SHOT_WIDTHS:
                    shot = ARTIFACTS / f"{layout}-{width}-{scheme}.png"
                    page.screenshot(path=str(shot), full_page=True)
        finally:
            page.close()
    if layout != "letter":
        assert seen["images"] > 0  # the test looked at images; the letter has none
