"""CSV import throughput: N generated rows into a fresh SQLite file and a fresh PostgreSQL database.

Each run writes one CSV (email, name, newsletters, status, consent columns; 1 row in 50 repeats
an earlier address, so duplicate detection is exercised: those rows are rejected) to a temporary
folder, migrates a fresh database (``nl_bench_import_<hex>`` on PostgreSQL, dropped at the end),
creates the newsletter and times ``csvio.import_csv`` plus the commit. The last line is one JSON
object with ``rows``, ``sqlite_s`` and ``postgres_s`` (and rows/s for each), and
``postgres_cpu_s``: the CPU seconds of this process plus its PostgreSQL backend, which is about
what the wall time comes to on an idle machine (the client waits while the server works).

    python bench/import_subscribers.py                 # 100,000 rows
    python bench/import_subscribers.py --rows 20000 --skip-postgres
    python bench/import_subscribers.py --rows 1000000 --skip-sqlite   # issue 14's target: < 60 s

The timed import includes the ANALYZE a bulk import ends with on PostgreSQL.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from newsletter import db  # noqa: E402
from newsletter.audience import csv_import  # noqa: E402
from newsletter.models import Newsletter  # noqa: E402
from tests.support import scratch  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SLUG = "bench-weekly"


def say(message: str) -> None:
    print(message, flush=True)


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(csv_import.IMPORT_COLUMNS)
        for i in range(rows):
            n = i - 7 if i % 50 == 49 else i  # a duplicate of an earlier row now and then
            out.writerow(
                [
                    f"reader.{n}@mail{n % 97}.example.org",
                    f"Reader Number {n}",
                    SLUG,
                    "active",
                    "2025-10-19T08:00:00+00:00",
                    f"192.0.2.{n % 250}",
                    "import",
                    "2025-10",
                ]
            )


def postgres_database() -> contextlib.AbstractContextManager[str]:
    return scratch.scratch_database(PG_ADMIN_URL, prefix="nl_bench_import", say=say)


def backend_pid(session: Session) -> int | None:
    """The PostgreSQL backend of the session's connection (None on SQLite)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def backend_cpu(pid: int | None) -> float:
    """CPU seconds the PostgreSQL backend ``pid`` has used (its /proc entry: the server runs on
    this machine); 0 on SQLite, where the database works inside this process. Read by the pid
    taken before the import: the session may hand its connection back to the pool at the
    commit, and the one it checks out next may be another backend."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CPU: dict[str, float] = {}


def timed_import(url: str, path: Path) -> tuple[float, csv_import.ImportReport]:
    db.upgrade(url)
    with Session(db.get_engine(url)) as session:
        session.add(
            Newsletter(
                slug=SLUG,
                name="Bench Weekly",
                from_name="Bench Weekly",
                from_email="weekly@bench.example.org",
                postal_address="1 Bench Street",
            )
        )
        session.commit()
    with Session(db.get_engine(url)) as session, path.open("rb") as stream:
        pid = backend_pid(session)
        server = backend_cpu(pid)
        client = time.process_time()
        start = time.perf_counter()
        report = csv_import.import_csv(session, stream)
        session.commit()
        elapsed = time.perf_counter() - start
        CPU["client"] = time.process_time() - client
        CPU["server"] = backend_cpu(pid) - server
    return elapsed, report


def run(label: str, url: str, path: Path, rows: int) -> float:
    elapsed, report = timed_import(url, path)
    say(
        f"{label}: {rows:,} rows in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s "
        f"({report.imported:,} imported, {report.duplicates:,} duplicates, "
        f"{report.errors_total} errors); CPU: {CPU['client']:.1f} s here + "
        f"{CPU['server']:.1f} s in the database backend (on a shared machine the wall time "
        "can be far above their sum)"
    )
    if report.errors_total != report.duplicates or report.imported + report.duplicates != rows:
        raise SystemExit(f"{label}: unexpected report {report.as_dict()}")
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, float | int | None] = {"rows": args.rows}
    with tempfile.TemporaryDirectory(prefix="nl-bench-import-") as tmp:
        path = Path(tmp) / "subscribers.csv"
        write_csv(path, args.rows)
        say(f"{path.stat().st_size / 1e6:.1f} MB of CSV, {args.rows:,} rows")
        results["sqlite_s"] = None
        if not args.skip_sqlite:
            sqlite_s = run("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", path, args.rows)
            results["sqlite_s"] = round(sqlite_s, 3)
            results["sqlite_rows_per_s"] = round(args.rows / sqlite_s)
        results["postgres_s"] = None
        if not args.skip_postgres:
            with postgres_database() as url:
                postgres_s = run("postgresql", url, path, args.rows)
            results["postgres_s"] = round(postgres_s, 3)
            results["postgres_cpu_s"] = round(CPU["client"] + CPU["server"], 1)
            results["postgres_rows_per_s"] = round(args.rows / postgres_s)
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
