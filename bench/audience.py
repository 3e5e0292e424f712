"""The audience desk at a million readers: subscriber search and the dashboard over real HTTP.

Builds N subscribers (1,000,000 by default) in a scratch PostgreSQL database, set-based
(``generate_series``, a few statements): varied addresses on three domains, a subscription each
to one newsletter (85% active, 8% unsubscribed, 4% pending, 2% bounced, 1% complained) and to a
second for one in three, and two years of sign-up/confirm/unsubscribe/bounce events. Then runs
``newsletter serve`` (uvicorn) on a free local port and times, over one keep-alive HTTP
connection, ``--runs`` rounds of these requests (one of each per round, so that a busy moment
of the machine weighs on all alike; median and 95th percentile, in ms):

  baseline       GET /api/newsletters (a token check and one tiny query): the floor of any
                 API call in this run, which the ratios divide by
  list           GET /api/subscribers                      (page 1, 50 rows)
  list_deep      GET /api/subscribers?after=<id at 90%>     (keyset, deep in the list)
  address        GET /api/subscribers?email=<one address, upper case>
  substring      GET /api/subscribers?email=<part of one address>
  substring_wide GET /api/subscribers?email=example.net     (a third of the list: count capped)
  status         GET /api/subscribers?status=unsubscribed
  status_nl      GET /api/subscribers?status=pending&newsletter=<the second>
  ui_address     GET /admin/subscribers?email=<one address>  (signed-in editor)
  dashboard      GET /admin/                                (list health of both newsletters,
                 counted once a minute: these loads mostly reuse it)
  health_*_uncached  the list health's queries themselves, in process, by week and by day

Targets: list, address, substring and status each < 150 ms median. The last line is one JSON
object (``subscribers``, ``runs``, per request ``p50_ms``/``p95_ms``/``ratio``, ``targets_met``).

    python bench/audience.py                       # 1,000,000 subscribers
    python bench/audience.py --subscribers 100000 --runs 15
    python bench/audience.py --keep                # keep the database; --url URL reuses it
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402

from newsletter import db  # noqa: E402
from newsletter.access import api_tokens, editors  # noqa: E402
from newsletter.audience import list_health  # noqa: E402
from newsletter.models import Newsletter  # noqa: E402
from newsletter.transports.sink import free_port  # noqa: E402
from tests.support import scratch  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PASSWORD = "a benchmark password"
TARGET_MS = 150.0
TARGETED = ("list", "address", "substring", "status")

FIRST = "'{anna,boris,chloe,dmitry,eva,fedor,galina,hanna,igor,julia,kiril,lena,maxim,nina}'"
LAST = "'{ivanova,petrov,smith,kowalski,novak,schmidt,garcia,rossi,dubois,jensen,horvat}'"
DOMAINS = "'{mail.example.org,news.example.net,post.example.com}'"


def say(message: str) -> None:
    print(message, flush=True)


def email_of(g: int) -> str:
    """The address row ``g`` gets (the same expression as the SQL below)."""
    first = FIRST.strip("'{}").split(",")
    last = LAST.strip("'{}").split(",")
    domains = DOMAINS.strip("'{}").split(",")
    return f"{first[g % 14]}.{last[g % 11]}{g}@{domains[g % 3]}"


def build(url: str, n: int) -> None:
    db.upgrade(url)
    started = time.perf_counter()
    statements = [
        "DROP INDEX IF EXISTS ix_subscriber_email_trgm",  # built once after the load: faster
        "INSERT INTO subscriber (id, email, email_hash, name, attributes, created_at) "
        "SELECT g, e, encode(sha256(convert_to(lower(e), 'UTF8')), 'hex'), 'Reader ' || g, "
        "'{}'::json, now() - make_interval(days => g % 730) FROM ("
        f"SELECT g, ({FIRST}::text[])[g % 14 + 1] || '.' || ({LAST}::text[])[g % 11 + 1] "
        f"|| g || '@' || ({DOMAINS}::text[])[g % 3 + 1] AS e "
        "FROM generate_series(1, :n) AS g) AS people",
        "SELECT setval(pg_get_serial_sequence('subscriber', 'id'), :n)",
        "INSERT INTO subscription (subscriber_id, newsletter_id, status, consent_at, "
        "consent_source, created_at, updated_at, soft_bounces) "
        "SELECT s.id, nl.id, CASE WHEN s.id % 100 < 85 THEN 'active' "
        "WHEN s.id % 100 < 93 THEN 'unsubscribed' WHEN s.id % 100 < 97 THEN 'pending' "
        "WHEN s.id % 100 < 99 THEN 'bounced' ELSE 'complained' END, s.created_at, 'bench', "
        "s.created_at, s.created_at, 0 FROM subscriber s JOIN newsletter nl "
        "ON nl.slug = 'bench-weekly' OR (nl.slug = 'bench-daily' AND s.id % 3 = 0)",
        "INSERT INTO subscriberevent (subscriber_id, newsletter_id, kind, at, source, detail) "
        "SELECT subscriber_id, newsletter_id, k, created_at + make_interval(hours => o), "
        "'bench', '{}'::json FROM subscription, LATERAL (VALUES ('signup', 0), ('confirm', 2), "
        "(CASE status WHEN 'unsubscribed' THEN 'unsubscribe' WHEN 'bounced' THEN 'bounce' END, "
        "200)) AS e(k, o) WHERE k IS NOT NULL AND NOT (status = 'pending' AND k <> 'signup')",
        "SET maintenance_work_mem = '512MB'",
        "CREATE INDEX ix_subscriber_email_trgm ON subscriber USING gin (email gin_trgm_ops)",
    ]
    with db.session_scope(url) as s:
        for slug in ("bench-weekly", "bench-daily"):
            s.add(
                Newsletter(
                    slug=slug,
                    name=slug.replace("-", " ").title(),
                    from_name="Bench",
                    from_email=f"{slug}@bench.example.org",
                    postal_address="1 Bench Street",
                )
            )
        s.flush()
        for sql in statements:
            t0 = time.perf_counter()
            s.execute(text(sql), {"n": n} if ":n" in sql else {})
            say(f"  {time.perf_counter() - t0:6.1f} s  {sql[:70]}")
    with db.get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    say(f"built {n:,} subscribers in {time.perf_counter() - started:.1f} s")


def credentials(url: str) -> str:
    with db.session_scope(url) as s:
        editors.create_user(
            s, email=f"bench{time.time_ns()}@example.org", password=PASSWORD, role="admin"
        )
        return api_tokens.create(s, f"bench-{time.time_ns()}")


@contextlib.contextmanager
def server(url: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "NEWSLETTER_DATABASE_URL": url,
        "NEWSLETTER_TWO_FACTOR_ROLES": "",  # the bench signs in with a password alone
        "NEWSLETTER_LOG_LEVEL": "WARNING",
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("the server did not answer /healthz within 60 s")
        yield base
    finally:
        child.terminate()
        child.wait(timeout=15)


def sign_in(client: httpx.Client, email: str) -> None:
    form = client.get("/admin/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, form[:500]
    answer = client.post(
        "/admin/login", data={"email": email, "password": PASSWORD, "csrf_token": token[1]}
    )
    assert answer.status_code in (200, 303), answer.text[:500]


def timed(client: httpx.Client, path: str, params: dict[str, str | int]) -> float:
    t0 = time.perf_counter()
    answer = client.get(path, params=params)
    elapsed = (time.perf_counter() - t0) * 1000
    assert answer.status_code == 200, f"{path} {params}: {answer.status_code} {answer.text}"
    return elapsed


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
    }


def measure(url: str, n: int, runs: int) -> dict[str, dict[str, float]]:
    token = credentials(url)
    with db.session_scope(url) as s:
        editor = s.execute(text("SELECT email FROM editoruser ORDER BY id DESC LIMIT 1")).scalar()
        daily = s.execute(text("SELECT id FROM newsletter WHERE slug = 'bench-daily'")).scalar()
    one = email_of(n * 2 // 3)
    cases: dict[str, tuple[str, dict[str, str | int]]] = {
        "baseline": ("/api/newsletters", {}),
        "list": ("/api/subscribers", {}),
        "list_deep": ("/api/subscribers", {"after": n * 9 // 10}),
        "address": ("/api/subscribers", {"email": one.upper()}),
        "substring": ("/api/subscribers", {"email": one.split("@")[0][-9:]}),
        "substring_wide": ("/api/subscribers", {"email": "example.net"}),
        "status": ("/api/subscribers", {"status": "unsubscribed"}),
        "status_nl": ("/api/subscribers", {"status": "pending", "newsletter": str(daily)}),
        "ui_address": ("/admin/subscribers", {"email": one}),
        "dashboard": ("/admin/", {}),
    }
    results: dict[str, dict[str, float]] = {}
    with db.session_scope(url) as s:  # what the dashboard pays once a minute (then cached)
        units: tuple[tuple[list_health.Unit, int], ...] = (("week", 12), ("day", 30))
        for unit, periods in units:
            samples = []
            for _ in range(max(3, runs // 3)):
                t0 = time.perf_counter()
                list_health.list_health(s, [1, 2], unit=unit, periods=periods)
                samples.append((time.perf_counter() - t0) * 1000)
            results[f"health_{unit}_uncached"] = summary(samples)
    with server(url) as base, httpx.Client(base_url=base, timeout=30) as client:
        sign_in(client, str(editor))
        client.headers["Authorization"] = f"Bearer {token}"
        found = client.get("/api/subscribers", params={"email": one}).json()
        assert [i["email"] for i in found["items"]] == [one], found
        rounds: dict[str, list[float]] = {name: [] for name in cases}
        for run in range(runs + 1):  # round after round, so a busy moment hits every request
            for name, (path, params) in cases.items():
                elapsed = timed(client, path, params)
                if run:  # the first round warms the caches
                    rounds[name].append(elapsed)
        results.update({name: summary(times) for name, times in rounds.items()})
    floor = results["baseline"]["p50_ms"]
    for figures in results.values():
        figures["ratio"] = round(figures["p50_ms"] / floor, 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--url", help="a database this bench built before (--keep): reuse it")
    args = parser.parse_args()
    if args.url:
        results = measure(args.url, args.subscribers, args.runs)
    else:
        with scratch.scratch_database(
            PG_ADMIN_URL, prefix="nl_bench_audience", keep=args.keep, say=say
        ) as url:
            build(url, args.subscribers)
            results = measure(url, args.subscribers, args.runs)
    for name, figures in results.items():
        say(
            f"{name:15} p50 {figures['p50_ms']:8.2f} ms   p95 {figures['p95_ms']:8.2f} ms   "
            f"{figures['ratio']:6.2f}x baseline"
        )
    met = all(results[name]["p50_ms"] < TARGET_MS for name in TARGETED)
    verdict = "met" if met else "MISSED"
    say(f"targets (< {TARGET_MS:.0f} ms median: {', '.join(TARGETED)}): {verdict}")
    print(
        json.dumps(
            {
                "subscribers": args.subscribers,
                "runs": args.runs,
                **results,
                "target_ms": TARGET_MS,
                "targets_met": met,
            }
        )
    )


if __name__ == "__main__":
    main()
