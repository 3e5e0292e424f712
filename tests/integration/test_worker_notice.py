"""A send nobody picks up is said so within seconds: in the status (API, editor UI, CLI).

The signal is the ledger's own (``sending.pickup``): an issue sending for a few seconds with due
rows, none in flight and none recorded lately has no worker; a scheduled issue past its time
plus a tick has no beat. Time passing is simulated by moving the issue's timestamps back.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session
from typer.testing import CliRunner

from newsletter.config import Settings
from newsletter.models import DeliveryStatus, utcnow
from newsletter.sending import controls, ledger, pickup
from newsletter.sending.checks import qa_config
from newsletter.sending.start import fill_ledger
from newsletter.tables import D, I
from tests.conftest import make_issue, make_subscribers
from tests.integration.admin_support import Editor

LONG_AGO = timedelta(seconds=pickup.PICKUP_SECONDS + pickup.TICK_SECONDS + 20)


def started(session: Session, settings: Settings, readers: int = 5) -> int:
    fx = make_issue(session, layout=(1,))
    make_subscribers(session, fx.newsletter, readers)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=qa_config(settings))
    session.commit()
    return issue_id


def age(session: Session, issue_id: int, **columns: timedelta) -> None:
    """Move the issue's timestamps back by the given amounts (time passing, as the ledger sees)."""
    now = utcnow()
    session.execute(
        update(I).where(I.c.id == issue_id).values({k: now - v for k, v in columns.items()})
    )
    session.commit()


def min_row(session: Session, issue_id: int) -> int:
    return int(
        session.execute(select(func.min(D.c.id)).where(D.c.issue_id == issue_id)).scalar_one()
    )


def notice(session: Session, issue_id: int) -> str | None:
    return controls.status(session, issue_id=issue_id).worker_notice


def test_a_send_nobody_claims_for_seconds_says_no_worker(
    session: Session, settings: Settings
) -> None:
    issue_id = started(session, settings)
    age(session, issue_id, send_started_at=LONG_AGO)
    assert notice(session, issue_id) == pickup.NO_WORKER
    assert controls.status(session, issue_id=issue_id).as_dict()["worker_notice"] == (
        pickup.NO_WORKER
    )


def test_a_send_just_started_says_nothing_yet(session: Session, settings: Settings) -> None:
    issue_id = started(session, settings)
    assert notice(session, issue_id) is None


def test_a_send_a_worker_holds_rows_of_says_nothing(session: Session, settings: Settings) -> None:
    issue_id = started(session, settings)
    age(session, issue_id, send_started_at=LONG_AGO)
    ledger.claim(session, issue_id=issue_id, limit=2, lease_seconds=300)
    session.commit()
    assert notice(session, issue_id) is None


def test_a_send_whose_worker_recorded_a_failure_lately_says_nothing(
    session: Session, settings: Settings
) -> None:
    issue_id = started(session, settings)
    age(session, issue_id, send_started_at=LONG_AGO)
    session.execute(
        update(D)
        .where(D.c.issue_id == issue_id, D.c.id == min_row(session, issue_id))
        .values(status=DeliveryStatus.failed, updated_at=utcnow(), attempts=1)
    )
    session.commit()
    assert notice(session, issue_id) is None


def test_a_send_whose_rows_all_wait_for_a_retry_says_nothing(
    session: Session, settings: Settings
) -> None:
    issue_id = started(session, settings)
    age(session, issue_id, send_started_at=LONG_AGO)
    session.execute(
        update(D)
        .where(D.c.issue_id == issue_id)
        .values(next_attempt_at=utcnow() + timedelta(minutes=5), attempts=1)
    )
    session.commit()
    assert notice(session, issue_id) is None


def test_a_resumed_send_nobody_picks_up_says_no_worker_after_seconds(
    session: Session, settings: Settings
) -> None:
    issue_id = started(session, settings)
    age(session, issue_id, send_started_at=timedelta(hours=1))
    controls.pause(session, issue_id=issue_id)
    assert notice(session, issue_id) is None  # paused: nobody is expected to send
    controls.resume(session, issue_id=issue_id)
    session.commit()
    assert notice(session, issue_id) is None  # just resumed
    age(session, issue_id, status_changed_at=LONG_AGO)
    assert notice(session, issue_id) == pickup.NO_WORKER


def test_a_scheduled_issue_past_its_time_says_no_beat(session: Session, settings: Settings) -> None:
    fx = make_issue(session, layout=(1,))
    make_subscribers(session, fx.newsletter, 2)
    issue_id = fx.issue.id
    assert issue_id is not None
    controls.schedule(
        session,
        issue_id=issue_id,
        at=utcnow() + timedelta(hours=1),
        checks=qa_config(settings),
    )
    session.commit()
    assert notice(session, issue_id) is None  # its time has not come
    age(session, issue_id, scheduled_at=LONG_AGO)
    assert notice(session, issue_id) == pickup.NO_BEAT


def test_the_sending_view_shows_the_notice_and_its_poll_carries_it(
    session: Session, settings: Settings, editor: Editor
) -> None:
    issue_id = started(session, settings)
    page = editor.client.get(f"/admin/issues/{issue_id}/sending")
    assert 'id="worker-notice"' in page.text and "no worker has picked" not in page.text
    age(session, issue_id, send_started_at=LONG_AGO)
    page = editor.client.get(f"/admin/issues/{issue_id}/sending")
    assert "no worker has picked this send up" in page.text
    assert "<code>" not in page.text.split('id="worker-notice"')[1].split("</p>")[0]
    polled = editor.client.get(
        f"/admin/issues/{issue_id}/status.json", headers={"X-Requested-With": "fetch"}
    ).json()
    assert polled["worker_notice"] == pickup.NO_WORKER


def test_issues_send_follow_says_no_worker_then_ends_when_the_send_does(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.cli import app, sending
    from worker import tasks

    fx = make_issue(session, layout=(1,))
    make_subscribers(session, fx.newsletter, 3)
    issue_id = fx.issue.id
    assert issue_id is not None
    queued: list[int] = []
    monkeypatch.setattr(tasks.dispatch, "delay", queued.append)  # a queue nobody consumes
    polls: list[float] = []

    def seconds_pass(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 1:
            # ... and no worker came to fill its ledger
            age(session, issue_id, status_changed_at=timedelta(seconds=pickup.PREPARE_SECONDS + 5))
        else:
            controls.cancel(session, issue_id=issue_id)
            session.commit()

    monkeypatch.setattr(sending.time, "sleep", seconds_pass)
    done = CliRunner().invoke(app, ["issues", "send", str(issue_id), "--follow"])
    assert done.exit_code == 0, done.output
    assert queued == [issue_id]
    said = " ".join(done.output.split())
    assert pickup.NO_WORKER in said
    assert said.count("no worker has picked") == 1  # said once, not at every poll
    assert f"issue {issue_id}: cancelled" in said
