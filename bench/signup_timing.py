"""Sign-up timing: does the answer's timing tell a new address from one already subscribed?

``POST /api/subscribe`` in process (Starlette's TestClient), on a fresh SQLite file and a fresh
PostgreSQL database, alternating a new address (a pending subscription and a confirmation email
to queue) and an active subscriber's address (nothing to send). The confirmation is queued for
real: Celery's ``send_confirmation.delay`` to a private redis-server (``--no-broker``: a 2 ms
sleep stands in for the round trip). Two times per request, from the request's start:

- ``answer``: until the last byte of the answer leaves the app (what the client waits for, and
  all an observer can time);
- ``app``: until the app is done, background work (queueing the confirmation) included.

It prints the medians per database and kind, and the ratio new/active of each; the last line is
one JSON object (``*_answer_ratio`` near 1.0 means the timing tells nothing).

    python bench/signup_timing.py                  # 400 of each kind per database
    python bench/signup_timing.py --repeat 100 --skip-postgres --no-broker
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from sqlmodel import Session  # noqa: E402
from starlette.types import ASGIApp, Message, Receive, Scope, Send  # noqa: E402

from newsletter import db  # noqa: E402
from newsletter.api import create_app  # noqa: E402
from newsletter.api.deps import ConfirmationSender  # noqa: E402
from newsletter.audience import abuse  # noqa: E402
from newsletter.audience.lifecycle import ConfirmationRequest  # noqa: E402
from newsletter.config import Settings  # noqa: E402
from newsletter.models import Newsletter, Subscriber, Subscription, SubscriptionStatus  # noqa: E402
from tests.support import scratch  # noqa: E402
from tests.support.scratch import RedisServer  # noqa: E402
from worker.dispatch import celery_send_confirmation  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SLUG = "bench-weekly"
WARM_UP = 30


def say(message: str) -> None:
    print(message, flush=True)


class Stopwatch:
    """An ASGI wrapper noting when the answer's last byte left the app and when the app ended."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answer = self.done = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()

        async def timed(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.answer = time.perf_counter() - start

        await self.app(scope, receive, timed)
        self.done = time.perf_counter() - start


def seed(url: str, active: int) -> list[str]:
    """Migrate; one newsletter and ``active`` confirmed readers; their addresses."""
    db.upgrade(url)
    emails = [f"active.{i}@bench.example.org" for i in range(active)]
    with db.session_scope(url) as session:
        newsletter = Newsletter(
            slug=SLUG,
            name="Bench Weekly",
            from_name="Bench Weekly",
            from_email="weekly@bench.example.org",
            postal_address="Bench Ltd, 1 Test Street",
        )
        session.add(newsletter)
        session.flush()
        _add_active(session, newsletter, emails)
    return emails


def _add_active(session: Session, newsletter: Newsletter, emails: list[str]) -> None:
    people = [Subscriber(email=e) for e in emails]  # email_hash: stamped on insert
    session.add_all(people)
    session.flush()
    session.add_all(
        Subscription(
            subscriber_id=p.id,  # type: ignore[arg-type]
            newsletter_id=newsletter.id,  # type: ignore[arg-type]
            status=SubscriptionStatus.active,
        )
        for p in people
    )


def settings_for(url: str, broker: str | None, workdir: Path) -> Settings:
    return Settings(
        environment="test",
        secret_key="bench-secret",
        base_url="https://bench.example.org",
        database_url=url,
        broker_url=broker or "filesystem://",
        broker_folder=workdir / "broker",
    )


def sender_for(settings: Settings, broker: str | None) -> ConfirmationSender:
    if broker is None:

        def pretend(_request: ConfirmationRequest) -> None:
            time.sleep(0.002)

        return pretend
    from worker.celery_app import configure

    configure(settings)
    return celery_send_confirmation


def measure(url: str, broker: str | None, repeat: int, workdir: Path) -> dict[str, float]:
    """Median seconds of each kind's answer and whole app call on one database."""
    active = seed(url, repeat + WARM_UP)
    settings = settings_for(url, broker, workdir)
    app = create_app(settings)
    app.state.send_confirmation = sender_for(settings, broker)
    app.state.signup_limiter = abuse.SignupLimiter(
        abuse.MemoryWindow(), per_ip=10**9, per_address=10**9, seconds=3600
    )
    watch = Stopwatch(app)
    times: dict[str, list[tuple[float, float]]] = {"new": [], "active": []}
    with TestClient(watch) as client:
        for i in range(repeat + WARM_UP):
            for kind, email in (
                ("new", f"new.{uuid.uuid4().hex}@bench.example.org"),
                ("active", active[i]),
            ):
                response = client.post(
                    "/api/subscribe", json={"email": email, "newsletters": [SLUG]}
                )
                assert response.status_code == 202, response.text
                if i >= WARM_UP:
                    times[kind].append((watch.answer, watch.done))
    db.get_engine(url).dispose()
    out: dict[str, float] = {}
    for kind, pairs in times.items():
        out[f"{kind}_answer_ms"] = statistics.median(a for a, _ in pairs) * 1000
        out[f"{kind}_app_ms"] = statistics.median(d for _, d in pairs) * 1000
    out["answer_ratio"] = out["new_answer_ms"] / out["active_answer_ms"]
    out["app_ratio"] = out["new_app_ms"] / out["active_app_ms"]
    return out


def report(name: str, figures: dict[str, float]) -> None:
    say(
        f"{name}: answer new {figures['new_answer_ms']:.2f} ms, "
        f"active {figures['active_answer_ms']:.2f} ms, ratio {figures['answer_ratio']:.2f} | "
        f"app incl. queueing new {figures['new_app_ms']:.2f} ms, "
        f"active {figures['active_app_ms']:.2f} ms, ratio {figures['app_ratio']:.2f}"
    )


@contextlib.contextmanager
def broker(enabled: bool, workdir: Path) -> Iterator[str | None]:
    if not enabled or shutil.which("redis-server") is None:
        say("broker: none (a 2 ms sleep stands in for the round trip)")
        yield None
        return
    server = RedisServer(workdir=workdir).start()
    say(f"broker: private redis-server on port {server.port} (Celery send_confirmation.delay)")
    try:
        yield f"{server.url}/0"
    finally:
        server.stop()


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"repeat": args.repeat}
    workdir = Path(tempfile.mkdtemp(prefix="nl-bench-signup-"))
    try:
        with broker(not args.no_broker, workdir) as broker_url:
            result["broker"] = "redis" if broker_url else "sleep-2ms"
            runs: list[tuple[str, Callable[[], contextlib.AbstractContextManager[str]]]] = [
                ("sqlite", lambda: contextlib.nullcontext(f"sqlite:///{workdir / 'bench.db'}"))
            ]
            if not args.skip_postgres:
                runs.append(
                    ("postgres", lambda: scratch.scratch_database(PG_ADMIN_URL, prefix="nl_bench"))
                )
            for name, database in runs:
                with database() as url:
                    figures = measure(url, broker_url, args.repeat, workdir)
                report(name, figures)
                result.update({f"{name}_{k}": round(v, 3) for k, v in figures.items()})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=400, help="sign-ups of each kind")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--no-broker", action="store_true", help="sleep 2 ms instead of Redis")
    args = parser.parse_args()
    print(json.dumps(run(args)), flush=True)


if __name__ == "__main__":
    main()
