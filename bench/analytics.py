"""Analytics bench: an issue's report at a million engagement events, against a plain COUNT.

Builds, in a scratch PostgreSQL database, the seeded issue sent to N readers (200,000 by
default: a ledger row each), its story links numbered as tracking numbers them (two per story),
and E events (1,000,000): opens and clicks, about a quarter of them machines'. Then times, in
the same run and alternating:

- baseline: ``SELECT count(*) FROM engagement_event WHERE issue_id = :id``
- report: ``analytics.issue_report`` (every figure of the issue's page: outcomes, people and
  machines per kind, per article, per link, the machines' rules)
- trends: ``analytics.trends`` of the newsletter (one issue here)

Median of ``--runs`` (default 7) and the ratio to the baseline. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from newsletter import db  # noqa: E402
from newsletter.analytics.issue_report import issue_report  # noqa: E402
from newsletter.analytics.trends import trends  # noqa: E402
from tests.support import scratch  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def say(message: str) -> None:
    print(message, flush=True)


def build(url: str, readers: int, events: int) -> int:
    issue_id = scratch.prepare_issue(url, active=readers, domain="bench.example.org", source="b")
    statements = [
        "UPDATE issue SET status = 'sent', send_started_at = now() - interval '2 days', "
        "sent_at = now() - interval '2 days' WHERE id = :i",
        "INSERT INTO delivery (issue_id, subscriber_id, status, attempts, sent_at) "
        "SELECT :i, subscriber_id, 'sent', 1, now() - interval '2 days' FROM subscription",
        # two links per story (headline, read more), in the issue's order
        "INSERT INTO issue_link (issue_id, n, url, kind, article_id, section, position) "
        "SELECT :i, row_number() OVER (ORDER BY p, k), a.url || '#' || k, k, a.id, s.title, p "
        "FROM (SELECT it.article_id, it.section_id, row_number() OVER "
        "(ORDER BY s2.position, it.position) AS p FROM issueitem it JOIN issuesection s2 "
        "ON s2.id = it.section_id WHERE s2.issue_id = :i) AS placed "
        "JOIN article a ON a.id = placed.article_id "
        "JOIN issuesection s ON s.id = placed.section_id "
        "CROSS JOIN (VALUES ('headline'), ('read_more')) AS kinds(k)",
        # events: 40% opens, 60% clicks on a link weighted towards the top; 1 in 4 a machine's
        "INSERT INTO engagement_event (issue_id, subscriber_id, link_id, kind, verdict, rule, at) "
        "SELECT :i, first + (g::bigint * 7919) % :readers, "
        "CASE WHEN g % 5 < 2 THEN NULL "
        "ELSE links[1 + (g::bigint * g) % 20 % cardinality(links)] END, "
        "CASE WHEN g % 5 < 2 THEN 'open' ELSE 'click' END, "
        "CASE WHEN g % 4 = 0 THEN 'machine' ELSE 'human' END, "
        "CASE WHEN g % 4 = 0 THEN 'bench' ELSE '' END, now() - interval '1 day' "
        "FROM generate_series(1, :events) AS g, "
        "(SELECT array_agg(id ORDER BY n) AS links FROM issue_link WHERE issue_id = :i) AS l, "
        "(SELECT min(id) AS first FROM subscriber) AS f",
        "ANALYZE delivery, issue_link",
    ]
    started = time.perf_counter()
    with db.session_scope(url) as s:
        for sql in statements:
            s.execute(text(sql), {"i": issue_id, "readers": readers, "events": events})
    # what autovacuum does to a table after inserts: the visibility map lets index-only scans
    # skip the table (outside a transaction, as VACUUM must be)
    with db.get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE engagement_event"))
    say(f"built {readers:,} deliveries, {events:,} events in {time.perf_counter() - started:.1f} s")
    return issue_id


def timed(url: str, runs: int, jobs: dict[str, Callable[[Session], object]]) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in jobs}
    with Session(db.get_engine(url)) as s:
        for job in jobs.values():  # warm the caches once
            job(s)
        for _ in range(runs):
            for name, job in jobs.items():
                started = time.perf_counter()
                job(s)
                samples[name].append((time.perf_counter() - started) * 1000)
    return {name: round(statistics.median(v), 2) for name, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with scratch.scratch_database(PG_ADMIN_URL, prefix="nl_bench_analytics", say=say) as url:
        issue_id = build(url, args.readers, args.events)
        with Session(db.get_engine(url)) as s:
            newsletter_id = issue_report(s, issue_id).newsletter_id
        count = text("SELECT count(*) FROM engagement_event WHERE issue_id = :i")
        medians = timed(
            url,
            args.runs,
            {
                "baseline": lambda s: s.execute(count, {"i": issue_id}).scalar_one(),
                "report": lambda s: issue_report(s, issue_id),
                "trends": lambda s: trends(s, newsletter_id),
            },
        )
    floor = max(medians["baseline"], 0.01)
    for name, ms in medians.items():
        say(f"{name:9} median {ms:9.2f} ms   {ms / floor:6.2f}x baseline")
    print(
        json.dumps(
            {
                "readers": args.readers,
                "events": args.events,
                "runs": args.runs,
                **{f"{name}_ms": ms for name, ms in medians.items()},
                "report_ratio": round(medians["report"] / floor, 2),
                "trends_ratio": round(medians["trends"] / floor, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
