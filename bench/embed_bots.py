"""Sign-up box timing: does the answer's timing tell a bot it was caught?

``POST /subscribe`` in process (Starlette's TestClient) on a fresh SQLite file and a fresh
PostgreSQL database, the way the sign-up box (``GET /embed/<slug>``) sends it, three kinds in a
random order each round, each with a new address: a person (a box served 10 s ago), a bot that
filled the honeypot and a bot that sent the box back at once. Bots' sign-ups run like a
person's and are rolled back, so the answer should take about as long. The time measured is
until the answer's last byte leaves the app (the confirmation is queued after it, by a stand-in
that does nothing).

It prints the median answer time per database and kind and the ratio bot/person; the last line
is one JSON object.

    python bench/embed_bots.py                  # 300 of each kind per database
    python bench/embed_bots.py --repeat 50 --skip-postgres
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from random import shuffle

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from bench.signup_timing import SLUG, Stopwatch, seed, settings_for  # noqa: E402
from newsletter.api import create_app  # noqa: E402
from newsletter.audience import abuse  # noqa: E402
from newsletter.audience.signup_guard import issue_stamp  # noqa: E402
from tests.support.scratch import scratch_database  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
KINDS = ("person", "honeypot", "too_fast")
WARM_UP = 20


def measure(url: str, repeat: int, workdir: Path) -> dict[str, float]:
    seed(url, active=0)
    settings = settings_for(url, None, workdir)
    app = create_app(settings, send_confirmation=lambda request: None)
    app.state.signup_limiter = abuse.SignupLimiter(
        abuse.MemoryWindow(), per_ip=0, per_address=0, seconds=3600
    )
    watch = Stopwatch(app)
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    with TestClient(watch) as client:
        served = re.search(r'name="issued" value="([^"]+)"', client.get(f"/embed/{SLUG}").text)
        assert served, "the box carries no signed time"
        order = list(KINDS)
        for n in range(WARM_UP + repeat):
            shuffle(order)  # no kind always follows another's commit
            for kind in order:
                stamp = (
                    served.group(1)
                    if kind == "too_fast"
                    else issue_stamp(settings.secret_key, now=time.time() - 10)
                )
                form = {
                    "email": f"{kind}.{n}@bench.example.org",
                    "newsletters": SLUG,
                    "consent_text_version": settings.consent_text_version,
                    "source": "https://news.example.org/2026/11/28/story",
                    "issued": stamp,
                    "embed": "1",
                    "website": "http://spam.example" if kind == "honeypot" else "",
                }
                answer = client.post("/subscribe", data=form)
                assert answer.status_code == 200, answer.text
                if n >= WARM_UP:
                    times[kind].append(watch.answer)
    return {k: statistics.median(v) * 1000 for k, v in times.items()}


#: a database for one run, in a scratch folder: its URL while the context lasts
DatabaseFactory = Callable[[Path], contextlib.AbstractContextManager[str]]


@contextlib.contextmanager
def sqlite_url(workdir: Path) -> Iterator[str]:
    yield f"sqlite:///{workdir / 'bench.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    result: dict[str, float] = {}
    databases: list[tuple[str, DatabaseFactory]] = [("sqlite", sqlite_url)]
    if not args.skip_postgres:
        databases.append(("postgresql", lambda _w: scratch_database(PG_ADMIN_URL)))
    for name, make in databases:
        with tempfile.TemporaryDirectory() as tmp, make(Path(tmp)) as url:
            medians = measure(url, args.repeat, Path(tmp))
        for kind, ms in medians.items():
            print(f"{name:10} {kind:9} median answer {ms:6.2f} ms", flush=True)
            result[f"{name}_{kind}_ms"] = round(ms, 3)
        for bot in ("honeypot", "too_fast"):
            ratio = medians[bot] / medians["person"]
            print(f"{name:10} {bot}/person {ratio:.2f}", flush=True)
            result[f"{name}_{bot}_ratio"] = round(ratio, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
