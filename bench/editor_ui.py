"""How quickly the composer answers: an edit, the page, the preview, against the render floor.

Seeds a temporary SQLite database with the sample issue (10 articles in 4 sections), signs an
editor in through the real app (in process, httpx TestClient), then measures in one run:
  * floor: load the outline and compile the email (Jinja2 -> MJML -> HTML), the least any
    preview can cost;
  * move: POST an item move (what a drag or an arrow button sends), answered by the redirect
    to the composer page, followed as composer.js follows it: the page with the QA panel;
  * preview: GET preview.html, which composer.js loads after every change.
Prints milliseconds (median and 95th percentile) per step and the edit-to-preview round trip
as a ratio of the floor; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from newsletter import db, seeding
from newsletter.access import editors
from newsletter.api import create_app
from newsletter.config import Settings
from newsletter.content import issues, rendering

PASSWORD = "a benchmark password"


def timed(step: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        step()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
            base_url="http://testserver",
            two_factor_roles="",  # the bench signs in with a password alone
        )
        db.upgrade(settings.database_url)
        with db.session_scope(settings.database_url) as session:
            seeding.seed(session)
            issue_id = seeding.draft_sample_issue(session).id
            editors.create_user(session, email="bench@example.org", password=PASSWORD)
        assert issue_id is not None

        def floor() -> None:
            with db.session_scope(settings.database_url) as session:
                rendering.compile_issue(issues.load_outline(session, issue_id))

        with TestClient(create_app(settings, dispatch=lambda _: None)) as client:
            form = client.get("/admin/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert token
            client.post(
                "/admin/login",
                data={"email": "bench@example.org", "password": PASSWORD, "csrf_token": token[1]},
            )
            page = client.get(f"/admin/issues/{issue_id}").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
            item = re.search(r'data-item-id="(\d+)"', page)
            assert csrf and item
            headers = {"X-Requested-With": "fetch", "X-CSRF-Token": csrf[1]}
            positions = iter(range(10**6))

            def move() -> None:
                answer = client.post(
                    f"/admin/items/{item[1]}/move",
                    data={"position": str(next(positions) % 3)},
                    headers=headers,
                )
                assert answer.status_code == 200, answer.text

            def preview() -> None:
                assert client.get(f"/admin/issues/{issue_id}/preview.html").status_code == 200

            floor()
            results = {
                "floor": summary(timed(floor, args.runs)),
                "move_and_page": summary(timed(move, args.runs)),
                "preview": summary(timed(preview, args.runs)),
            }
    round_trip = results["move_and_page"]["p50_ms"] + results["preview"]["p50_ms"]
    for name, figures in results.items():
        print(f"{name:14} p50 {figures['p50_ms']:7.2f} ms   p95 {figures['p95_ms']:7.2f} ms")
    ratio = round(round_trip / results["floor"]["p50_ms"], 2)
    print(f"edit -> preview round trip {round_trip:.1f} ms = {ratio}x the render floor")
    print(
        json.dumps(
            {
                "runs": args.runs,
                **results,
                "round_trip_ms": round(round_trip, 1),
                "ratio_to_floor": ratio,
            }
        )
    )


if __name__ == "__main__":
    main()
