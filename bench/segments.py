"""A segment's count and its ledger fill over N subscribers on PostgreSQL (1,000,000 by default).

Builds a scratch database set-based (``INSERT ... SELECT generate_series``): N subscribers with
JSON attributes (``city`` of five, ``age`` 18-97), a language, sign-up dates over two years, 95%
active and 5% unsubscribed on one newsletter, and tags (``donor`` on 1 in 7, ``press`` on 1 in
50). The segment is "city is Minsk, age 30 or more, not tagged press". Then it times, three times
each (median), against baselines measured in the same run:

- the send confirmation's count of the segment (``audience.reach.count`` with the rules) vs. the
  plain count of the newsletter's active recipients (the same query without a segment);
- the ledger fill's INSERT ... SELECT for the segment vs. the unsegmented fill (each rolled back).

The last line is one JSON object: ``subscribers``, ``segment_size``, ``count_s``, ``fill_s``
(and the baselines and ratios).

    python bench/segments.py                      # 1,000,000 subscribers
    python bench/segments.py --subscribers 100000
"""

from __future__ import annotations

import argparse
import json
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

from bench._harness import prepare_issue, say, scratch_database  # noqa: E402
from newsletter import db  # noqa: E402
from newsletter.audience import reach, segments  # noqa: E402
from newsletter.audience.segment_rules import Group  # noqa: E402
from newsletter.models import Issue  # noqa: E402
from newsletter.sending import start  # noqa: E402

RULES = {
    "match": "all",
    "conditions": [
        {"kind": "attribute", "key": "city", "op": "equals", "value": "Minsk"},
        {"kind": "attribute", "key": "age", "op": "ge", "value": 30},
        {"kind": "tag", "tag": "press", "has": False},
    ],
}
REPEATS = 3


def build(url: str, n: int) -> tuple[int, int]:
    """(issue id, newsletter id) of a database holding ``n`` subscribers, set-based."""
    issue_id = prepare_issue(url, active=0)
    with db.session_scope(url) as s:
        newsletter_id = s.get(Issue, issue_id).newsletter_id  # type: ignore[union-attr]
        t0 = time.perf_counter()
        s.execute(
            text(
                "INSERT INTO subscriber "
                "(email, email_hash, name, attributes, created_at, language) "
                "SELECT a, encode(sha256(convert_to(a, 'UTF8')), 'hex'), 'Reader ' || g, "
                "json_build_object('city', (ARRAY['Minsk','Brest','Gomel','Hrodna','Vitebsk'])"
                "[g % 5 + 1], 'age', 18 + g % 80), "
                "now() - make_interval(days => g % 730), (ARRAY['be','ru','en'])[g % 3 + 1] "
                "FROM (SELECT g, 'reader' || g || '@seg.example.org' AS a "
                "FROM generate_series(1, :n) AS g) AS people"
            ),
            {"n": n},
        )
        s.execute(
            text(
                "INSERT INTO subscription (subscriber_id, newsletter_id, status, consent_at, "
                "consent_source, created_at, updated_at, soft_bounces) "
                "SELECT id, :nl, CASE WHEN id % 20 = 0 THEN 'unsubscribed' ELSE 'active' END, "
                "now(), 'bench', now(), now(), 0 FROM subscriber"
            ),
            {"nl": newsletter_id},
        )
        s.execute(
            text(
                "INSERT INTO subscribertag (subscriber_id, tag, created_at) "
                "SELECT id, 'donor', now() FROM subscriber WHERE id % 7 = 0 "
                "UNION ALL SELECT id, 'press', now() FROM subscriber WHERE id % 50 = 0"
            )
        )
        say(f"built {n:,} subscribers in {time.perf_counter() - t0:.1f} s")
    with db.session_scope(url) as s:
        s.execute(text("ANALYZE subscriber, subscription, subscribertag"))
    return issue_id, newsletter_id


def median_of(label: str, run: Callable[[], int]) -> tuple[float, int]:
    times, result = [], 0
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    say(
        f"{label:<28} {median:8.3f} s  (runs: {', '.join(f'{t:.3f}' for t in times)}) -> {result:,}"
    )
    return median, result


def fill(url: str, issue_id: int, newsletter_id: int, rules: Group | None) -> int:
    """The ledger fill's statement (INSERT ... SELECT), rolled back so it can run again."""
    with Session(db.get_engine(url)) as s:
        issue = s.get(Issue, issue_id)
        assert issue is not None and issue.newsletter_id == newsletter_id
        inserted = start._insert_ledger(s, issue, rules=rules)
        s.rollback()
    return inserted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    args = parser.parse_args()
    rules = segments.check_rules(RULES)
    with scratch_database() as url:
        issue_id, nl = build(url, args.subscribers)

        def count(r: Group | None) -> Callable[[], int]:
            def run() -> int:
                with Session(db.get_engine(url)) as s:
                    return reach.count(s, newsletter_id=nl, rules=r)

            return run

        base_count_s, active = median_of("count, all active", count(None))
        count_s, size = median_of("count, segment", count(rules))
        base_fill_s, _ = median_of("fill, all active", lambda: fill(url, issue_id, nl, None))
        fill_s, filled = median_of("fill, segment", lambda: fill(url, issue_id, nl, rules))
        assert filled == size, (filled, size)
    say(
        f"segment of {size:,} in {active:,} active: count {count_s:.3f} s "
        f"({count_s / base_count_s:.2f}x the plain count), fill {fill_s:.2f} s "
        f"({fill_s / base_fill_s:.2f}x the unsegmented fill of {active:,})"
    )
    print(
        json.dumps(
            {
                "subscribers": args.subscribers,
                "segment_size": size,
                "count_s": round(count_s, 3),
                "fill_s": round(fill_s, 3),
                "active": active,
                "baseline_count_s": round(base_count_s, 3),
                "baseline_fill_s": round(base_fill_s, 3),
                "count_ratio": round(count_s / base_count_s, 2),
                "fill_ratio": round(fill_s / base_fill_s, 2),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
