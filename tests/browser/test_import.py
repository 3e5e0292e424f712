"""An editor imports a CSV in the browser: upload, preview (mapping, the default newsletter ticked,
keep or overwrite, what each row will do), start, the progress page, the counts and the error
report. A real Celery worker runs the job. Screenshots of the preview and of the result at 375
and 1200 px."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import select

from newsletter.audience import import_jobs, import_reaper
from newsletter.models import ImportJob, Subscriber, utcnow
from tests.browser import conftest as browser_conftest
from tests.browser.conftest import Live, screenshot, sign_in


@pytest.fixture(autouse=True)
def own_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """This feature's Redis database for the live stack's worker (see the brief's REDISDB)."""
    monkeypatch.setattr(browser_conftest, "REDIS_DB", 3)


CSV = (
    "Email,Full name,Language,City\n"
    "olga@example.org,Olga K,be,Minsk\n"
    "not an address,Broken,,\n"
    "ivan@example.org,Ivan P,ru,Brest\n"
    "OLGA@example.org,Olga Again,,\n"
    "anna@example.org,Anna L,klingon!!,Grodno\n"
)


def test_an_editor_previews_maps_and_imports_a_csv_and_downloads_the_report(
    page: Any, live: Live, tmp_path: Path
) -> None:
    upload = tmp_path / "readers.csv"
    upload.write_text(CSV, encoding="utf-8")
    sign_in(page)
    page.goto("/admin/subscribers")
    page.get_by_role("link", name="Import CSV").click()
    page.get_by_label("CSV file", exact=True).set_input_files(str(upload))
    page.get_by_role("button", name="Upload and preview").click()

    page.get_by_role("heading", name="What the first rows will do").wait_for()
    # the only newsletter is ticked; existing subscribers keep their fields by default
    assert page.get_by_label("Belarus Weekly").is_checked()
    assert page.get_by_label("Keep their name", exact=False).is_checked()
    assert page.get_by_label("Email", exact=True).input_value() == "email"
    assert page.get_by_label("City", exact=True).input_value() == "ignore"
    assert "Of the first 5: 3 new, 0 to update, 0 unchanged, 2 skipped" in (
        page.get_by_role("status").inner_text()
    )
    verdicts = page.locator("strong.verdict").all_inner_texts()
    assert verdicts == ["New", "Skip", "New", "Skip", "New"]
    assert "duplicate of line 2" in page.locator("tr.verdict-skip").nth(1).inner_text()
    page.get_by_label("City", exact=True).select_option("attribute:city")
    page.get_by_role("button", name="Update the preview").click()
    page.get_by_role("heading", name="What the first rows will do").wait_for()
    assert page.get_by_label("City", exact=True).input_value() == "attribute:city"
    for width in (1200, 375):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"import-preview-{width}.png")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("button", name="Start the import").click()
    page.get_by_text("3 imported").wait_for(timeout=60_000)  # progress page, reloaded when done
    assert "Status: done" in page.get_by_role("heading", level=2).first.inner_text()
    assert "2 with errors" in page.get_by_role("status").inner_text()
    with page.expect_download() as caught:
        page.get_by_role("link", name="Download the error report (CSV)").click()
    report = Path(caught.value.path()).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(report)))
    assert [(r[0], r[1]) for r in rows[1:]] == [("3", "error"), ("5", "error"), ("6", "warning")]
    for width in (1200, 375):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"import-done-{width}.png")

    with live.session() as s:
        people = {p.email: p for p in s.exec(select(Subscriber)).all()}
    assert people["olga@example.org"].attributes == {"city": "Minsk"}
    assert people["olga@example.org"].language == "be"
    assert people["anna@example.org"].language is None  # the bad tag was a warning, left out


def test_the_progress_page_waits_for_a_worker_then_shows_the_result_by_itself(
    page: Any, live: Live
) -> None:
    rows = "".join(f"p{i}@example.org,Reader {i}\n" for i in range(50))
    with live.session() as s:
        job = import_jobs.create(
            s, ("email,name\n" + rows).encode(), filename="big.csv", created_by="test"
        )
        import_jobs.configure(s, job, newsletters=["belarus-weekly"])
        import_jobs.start(s, job)  # queued, and handed to no worker: it waits
        s.commit()
        job_id = job.id
    assert job_id is not None
    sign_in(page)
    page.goto(f"/admin/subscribers/import/{job_id}")
    page.get_by_text("Waiting for a worker").wait_for()
    assert page.locator("#import-progress").get_attribute("value") == "0"
    for width in (1200, 375):
        page.set_viewport_size({"width": width, "height": 700})
        screenshot(page, f"import-progress-{width}.png")

    with live.session() as s:
        done = import_jobs.run(s, job_id)  # what the worker does
    assert done is not None and done.status == "done"
    page.get_by_text("50 rows: 50 imported").wait_for(timeout=15_000)  # import.js reloaded it
    assert page.get_by_text("No row was rejected").is_visible()


def test_a_job_started_again_after_its_worker_went_away_says_so_while_it_waits(
    page: Any, live: Live
) -> None:
    with live.session() as s:
        job = import_jobs.create(
            s, b"email,name\nolga@example.org,Olga\n", filename="list.csv", created_by="test"
        )
        import_jobs.configure(s, job, newsletters=["belarus-weekly"])
        import_jobs.start(s, job)
        s.commit()
        job_id = job.id
        # what a worker killed mid-import leaves: running, an hour without a sign of life
        s.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id)  # type: ignore[arg-type]
            .values(status="running", attempts=1, heartbeat_at=utcnow() - timedelta(hours=1))
        )
        s.commit()
        assert import_reaper.reap_stalled(s, stale_seconds=300) == [job_id]  # the beat's look
    sign_in(page)
    page.goto(f"/admin/subscribers/import/{job_id}")
    page.get_by_text("An earlier run: its run stopped (no progress since").wait_for()
    assert page.get_by_text("Waiting for a worker").is_visible()
    for width in (1200, 375):
        page.set_viewport_size({"width": width, "height": 700})
        screenshot(page, f"import-restarted-{width}.png")
