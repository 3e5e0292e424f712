"""``newsletter demo``: seed, draft a Belarus Weekly issue, send it via Celery to a local sink."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from newsletter import db, schema_snapshot, seeding
from newsletter.config import Settings
from newsletter.sending import previews, progress
from newsletter.sending.start import check_signing, start_send
from newsletter.transports.sink import SMTPSink
from worker.embedded import celery_worker


@dataclass(frozen=True)
class DemoResult:
    issue_id: int
    issue_number: int
    delivered: int
    skipped: int
    failed: int
    received: int
    outbox: Path
    preview: Path


ProgressHook = Callable[[progress.Progress], None]

#: the embedded worker's look at the file broker: the demo's send is three hops (dispatch, the
#: batch, the stop), each waiting up to this long; a worker idling for seconds at this rate
#: costs about 3% of a core, nothing next to the demo's own work (``newsletter dev`` keeps 0.1)
POLL_SECONDS = 0.01


def run_demo(
    settings: Settings, *, on_progress: ProgressHook | None = None, timeout: float = 300.0
) -> DemoResult:
    """Run the whole job on the embedded default; return what happened."""
    # worker errors must reach the terminal; routine INFO from the worker thread must not
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # the file-system broker has no host; kombu warns about that on every connection
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    schema_snapshot.upgrade(settings.database_url)
    with db.session_scope(settings.database_url) as session:
        seeding.seed(session)
        issue = seeding.draft_sample_issue(session)
        issue_id, number = issue.id, issue.number
    assert issue_id is not None
    outbox = settings.outbox_dir.resolve()
    shutil.rmtree(outbox, ignore_errors=True)
    with SMTPSink(host="127.0.0.1", folder=outbox) as sink:
        # the worker thread gets its settings handed over (``configure``), not through the env
        settings = settings.model_copy(update=_demo_overrides(settings, sink))
        from worker.celery_app import configure
        from worker.tasks import dispatch, tick

        app = configure(settings, poll=POLL_SECONDS)
        check_signing(settings)  # a DKIM key that cannot sign stops here, in a line
        with celery_worker(app):
            with db.session_scope(settings.database_url) as session:
                start = start_send(settings, session, issue_id=issue_id, dispatch=dispatch.delay)
            final = _wait(settings, issue_id, tick.delay, on_progress, timeout)
        preview = previews.write_preview(settings, issue_id=issue_id)
        received = len(sink.messages)
    return DemoResult(
        issue_id=issue_id,
        issue_number=number,
        delivered=final.counts.get("sent", 0),
        skipped=start.skipped,
        failed=final.counts.get("failed", 0),
        received=received,
        outbox=outbox,
        preview=preview,
    )


def _demo_overrides(settings: Settings, sink: SMTPSink) -> dict[str, object]:
    """The local sink; and no SpamAssassin run unless NEWSLETTER_SPAM_CHECK asks for one: the
    binary takes seconds to start, several times the rest of the demo (the composer's QA panel
    and ``issues qa`` score an issue where an editor looks at one)."""
    overrides: dict[str, object] = {"smtp_host": sink.host, "smtp_port": sink.port}
    if "spam_check" not in settings.model_fields_set:
        overrides["spam_check"] = "off"
    return overrides


def _wait(
    settings: Settings,
    issue_id: int,
    kick: Callable[[], object],
    on_progress: ProgressHook | None,
    timeout: float,
) -> progress.Progress:
    """Poll the ledger until the issue is sent; kick the periodic task as beat would."""
    deadline, next_kick = time.monotonic() + timeout, time.monotonic() + 5
    while True:
        with db.session_scope(settings.database_url) as session:
            state = progress.progress(session, issue_id=issue_id)
        if on_progress:
            on_progress(state)
        if state.finished or state.status == "paused":
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"issue {issue_id} did not finish in {timeout:.0f}s: {state}")
        if time.monotonic() > next_kick:
            kick()
            next_kick = time.monotonic() + 5
        time.sleep(0.05)  # a local send of 50 ends within a second: poll often
