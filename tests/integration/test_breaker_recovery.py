"""A relay outage that fixes itself: a real Celery worker sends through a real aiosmtpd sink that
starts failing and then goes away mid-send; the circuit breaker pauses the issue, the tick's
probes fail while the relay is down, then the sink comes back on the same port and the next
probe resumes the send by itself; every reader gets the issue exactly once. An issue an
operator paused stays paused. SQLite and PostgreSQL; cool-downs of half a second. And the
sending view of the editor UI: a breaker pause's next probe, and its "Keep paused"."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path

import pytest
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.db import session_scope
from newsletter.models import Delivery, IssueStatus
from newsletter.sending import controls, progress
from newsletter.sending.progress import Progress
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import Received, SMTPSink, free_port
from tests.conftest import celery_worker, make_issue, make_subscribers
from tests.integration.admin_support import Editor
from tests.support import cli_fork

REDIS_DB = 7  # this test's own database on the test Redis, flushed before it
READERS = 60


def _state(settings: Settings, issue_id: int) -> Progress:
    with session_scope(settings.database_url) as s:
        return progress.progress(s, issue_id=issue_id)


def _ticking_until(
    settings: Settings, issue_id: int, done: Callable[[Progress], bool], timeout: float = 30
) -> Progress:
    """Run the beat's tick task on the worker (as the beat does, faster) until ``done``."""
    from worker.tasks import tick

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _state(settings, issue_id)
        if done(state):
            return state
        tick.delay()
        time.sleep(0.25)
    raise AssertionError(f"issue {issue_id}: not there in {timeout}s: {state}")


def _said(output: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if output.exists() and text in output.read_text(encoding="utf-8", errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"`issues status --follow` never said {text!r} in {timeout}s")


def _cli(settings: Settings, folder: Path, *args: str, stdout: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_DATABASE_URL"] = settings.database_url
    env["COLUMNS"] = "400"
    done = cli_fork.run(list(args), cwd=folder, env=env, timeout=90, stdout=stdout)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_breaker_pauses_a_send_when_the_relay_goes_down_and_resumes_it_when_it_is_back(
    session: Session,
    settings: Settings,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from worker.tasks import dispatch

    port = free_port()
    first = SMTPSink(port=port)
    failing = threading.Event()

    def relay_starts_failing(_: Received) -> None:
        if len(first.messages) >= 15:  # from now on every message gets a 451 and is not kept
            first.faults.temp_fail_ratio = 1.0
            failing.set()

    first.on_message = relay_starts_failing
    fx = make_issue(session)
    readers = make_subscribers(session, fx.newsletter, READERS)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    # another send, paused by an operator: no probe ever resumes it
    other = make_issue(session)
    make_subscribers(session, other.newsletter, 3)
    held_id = other.issue.id
    assert held_id is not None
    fill_ledger(session, issue_id=held_id, checks=QAConfig())
    controls.pause(session, issue_id=held_id, reason="paused by hand")
    session.commit()

    first.start()
    second: SMTPSink | None = None
    try:
        with celery_worker(
            redis_url,
            REDIS_DB,
            first,
            monkeypatch,
            batch_size="5",
            send_parallelism="2",
            breaker_window="10",
            breaker_min_results="5",
            breaker_threshold="0.5",
            breaker_probe_seconds="0.5",
            breaker_probe_max_seconds="1",
            retry_base_seconds="0.2",
            max_attempts="10",
        ) as current:
            dispatch.delay(issue_id)
            assert failing.wait(30), "the send never reached the sink"
            time.sleep(0.3)  # replies already on their way reach the worker
            first.stop()  # the relay is down: every connection refused

            paused = _ticking_until(current, issue_id, lambda s: s.status == IssueStatus.paused)
            assert paused.awaiting_probe and paused.next_probe_at is not None
            assert paused.reason is not None
            assert paused.reason.startswith("paused by the circuit breaker at ")
            assert "sends failed" in paused.reason
            assert "; next probe of the relay at " in paused.reason
            said = _cli(current, tmp_path, "issues", "status", str(issue_id))
            assert f"issue {issue_id}: paused (paused by the circuit breaker at" in said
            assert "next probe of the relay at" in said
            # `status --follow` (as `send --follow`) follows a breaker pause through its resume
            followed: list[str] = []
            live = tmp_path / "follow.out"
            follower = threading.Thread(
                target=lambda: followed.append(
                    _cli(
                        current,
                        tmp_path,
                        "issues",
                        "status",
                        str(issue_id),
                        "--follow",
                        stdout=live,
                    )
                )
            )
            follower.start()

            # probes while the relay is down fail: the issue stays paused, the probe moves on
            probed = _ticking_until(
                current,
                issue_id,
                lambda s: (
                    s.next_probe_at is not None
                    and paused.next_probe_at is not None
                    and s.next_probe_at > paused.next_probe_at
                ),
            )
            assert probed.status == IssueStatus.paused
            assert _state(current, issue_id).counts.get("sent") == len(first.messages)

            # the relay stays down until the follower has said so (its start can take seconds
            # on a busy machine: a resume before its first look would leave nothing to follow)
            _said(live, "paused by the circuit breaker at")
            second = SMTPSink(port=port).start()  # the relay is back, on the same port
            done = _ticking_until(current, issue_id, lambda s: s.finished)
            follower.join(60)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert second is not None

    assert done.status == IssueStatus.sent and done.counts == {"sent": READERS}
    assert done.reason is not None
    assert done.reason.startswith("resumed automatically after the relay answered again at ")
    assert "(paused at " in done.reason and "sends failed" in done.reason
    # every reader exactly once, each message with its ledger row's Message-ID
    received = first.messages + second.messages
    assert first.messages and second.messages
    assert sorted(m.rcpt_tos[0] for m in received) == sorted(r.email for r in readers)
    ids = [str(message_from_bytes(m.data)["Message-ID"]) for m in received]
    session.expire_all()
    ledger = session.exec(select(Delivery.message_id).where(Delivery.issue_id == issue_id)).all()
    assert sorted(ids) == sorted(str(i) for i in ledger) and len(set(ids)) == READERS

    assert len(followed) == 1, "`issues status --follow` did not end with the send"
    lines = followed[0].splitlines()
    paused_line = next(i for i, x in enumerate(lines) if "paused by the circuit breaker at" in x)
    resumed_line = next(i for i, x in enumerate(lines) if x.startswith("resumed automatically"))
    assert paused_line < resumed_line
    assert f"issue {issue_id}: sent (resumed automatically after" in followed[0]

    held = _state(settings, held_id)
    assert held.status == IssueStatus.paused and held.reason == "paused by hand"
    assert held.counts == {"pending": 3} and not held.awaiting_probe


def test_the_sending_view_shows_a_breaker_pause_and_keep_paused_holds_it(
    session: Session, settings: Settings, editor: Editor
) -> None:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 3)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    probe_at = datetime(2026, 11, 28, 14, 2, 40, tzinfo=UTC)
    reason = "circuit breaker: 5 of the last 10 sends failed (last: cannot connect)"
    assert controls.trip(session, issue_id=issue_id, reason=reason, probe_at=probe_at)
    session.commit()

    page = editor.client.get(f"/admin/issues/{issue_id}/sending").text
    shown = page.split('id="state-reason">')[1].split("</p>")[0]
    assert shown.startswith("paused by the circuit breaker at ")
    assert shown.endswith("; next probe of the relay at 14:02:40 UTC")
    assert "Keep paused" in page and f"/admin/issues/{issue_id}/resume" in page

    assert editor.post(f"/admin/issues/{issue_id}/pause").status_code == 303
    page = editor.client.get(f"/admin/issues/{issue_id}/sending").text
    assert "Keep paused" not in page and "next probe" not in page
    assert _state(settings, issue_id).status == IssueStatus.paused
    assert not _state(settings, issue_id).awaiting_probe
