"""Load the sample newsletter, articles and subscribers from ``seeds/`` (idempotent)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session, select

from newsletter import newsletters
from newsletter.audience import subscribers
from newsletter.autopilot import rules as autopilot_rules
from newsletter.autopilot import sources
from newsletter.content import articles, issues
from newsletter.exceptions import InvalidInput
from newsletter.models import Article, Issue, Newsletter, SubscriptionStatus

SEEDS_DIR = Path(__file__).resolve().parent.parent / "seeds"


@dataclass(frozen=True)
class SeedResult:
    newsletter: Newsletter
    articles: int
    subscribers: int


#: the seeds are this project's own files: read with libyaml where PyYAML has it (a tenth of
#: the pure-Python parser's time, some 40 ms of ``newsletter demo``); SafeLoader's constructor
#: either way. Files from users (``content.importers``) stay on the pure-Python parser: libyaml
#: crashes the process on a document nested deeply enough
_SEED_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_SEED_LOADER)  # noqa: S506
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"cannot read seed file {path}: {exc}") from exc


def _seed_articles(path: Path) -> list[Any]:
    records = _load_yaml(path)
    if not isinstance(records, list):
        raise InvalidInput(f"seed file {path}: expected a list of articles")
    return records


def seed(session: Session, *, folder: Path = SEEDS_DIR) -> SeedResult:
    """Create or update the sample data; running it again changes nothing new."""
    spec = _load_yaml(folder / "newsletter.yaml")
    newsletter = _upsert_newsletter(session, spec["newsletter"])
    result = articles.import_records(session, _seed_articles(folder / "articles.yaml"))
    if result.errors:
        raise InvalidInput("seed articles: " + "; ".join(result.errors))
    count = _seed_subscribers(session, folder / "subscribers.csv", newsletter)
    if spec.get("autopilot"):
        _seed_autopilot(session, newsletter, dict(spec["autopilot"]))
    return SeedResult(newsletter, result.created + result.updated, count)


def _upsert_newsletter(session: Session, data: dict[str, Any]) -> Newsletter:
    slug = str(data.get("slug", ""))
    existing = session.exec(select(Newsletter).where(Newsletter.slug == slug)).first()
    if existing is None:
        return newsletters.create_newsletter(session, data)
    return newsletters.update_newsletter(session, existing.id, data)  # type: ignore[arg-type]


def _seed_autopilot(session: Session, newsletter: Newsletter, data: dict[str, Any]) -> None:
    """The autopilot's settings, and its library queries unless the newsletter has them."""
    queries = data.pop("sources", [])
    autopilot_rules.update_autopilot(session, newsletter, data)
    known = {
        (s.tag, s.section, s.author)
        for s in sources.list_sources(session, newsletter.id)  # type: ignore[arg-type]
    }
    for query in queries:
        fields = {k: str(query.get(k, "")) for k in ("tag", "section", "author")}
        if (fields["tag"], fields["section"], fields["author"]) not in known:
            sources.add_query(session, newsletter=newsletter.id, **fields)  # type: ignore[arg-type]


def _seed_subscribers(session: Session, path: Path, newsletter: Newsletter) -> int:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    added = 0
    for row in rows:
        status = SubscriptionStatus(row.get("status") or "active")
        try:
            subscribers.subscribe(
                session,
                email=row["email"],
                name=row.get("name", ""),
                newsletters=[newsletter.slug],
                status=status,
                source="seed",
            )
        except subscribers.Suppressed:
            continue  # a sample reader who was erased (or bounced) stays out
        added += 1
    return added


def draft_sample_issue(session: Session, *, folder: Path = SEEDS_DIR) -> Issue:
    """A new draft of the sample issue, laid out as seeds/newsletter.yaml says."""
    spec = _load_yaml(folder / "newsletter.yaml")
    layout = spec["issue"]
    issue = issues.create_issue(
        session,
        newsletter=spec["newsletter"]["slug"],
        title=layout["title"],
        preheader=layout.get("preheader", ""),
        intro_md=layout.get("intro", ""),
    )
    for section_spec in layout["sections"]:
        section = issues.add_section(session, issue_id=issue.id, title=section_spec["title"])  # type: ignore[arg-type]
        for url in section_spec["articles"]:
            article = session.exec(select(Article).where(Article.url == url)).first()
            if article is None:
                raise InvalidInput(f"seed issue names an unknown article {url}")
            issues.add_item(session, section_id=section.id, article_id=article.id)  # type: ignore[arg-type]
    return issue
