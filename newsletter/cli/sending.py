"""``newsletter issues`` (sending): test-send, send, follow, pause, resume, cancel, schedule."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from newsletter.access.permissions import cli_actor
from newsletter.audience import segments
from newsletter.cli.common import (
    audited,
    console,
    err,
    progress_bar,
    session,
    settings,
)
from newsletter.cli.issues import app
from newsletter.content import issues as content_issues
from newsletter.exceptions import InvalidInput
from newsletter.models import DeliveryStatus, IssueStatus
from newsletter.sending import controls, relay_checks, subject_pick, subject_tests, testsend
from newsletter.sending.checks import qa_config
from newsletter.sending.local_time import set_local_time
from newsletter.sending.start import start_send


@app.command("send")
def issues_send(
    issue_id: int,
    follow: Annotated[bool, typer.Option(help="show progress until the send ends")] = False,
    segment: Annotated[
        int | None, typer.Option(help="send to this segment (id) of the active subscribers")
    ] = None,
    everyone: Annotated[bool, typer.Option(help="send to all active subscribers")] = False,
    subject_test: Annotated[
        list[str] | None,
        typer.Option("--subject-test", help="a subject to test (2 to 4 of them: repeat it)"),
    ] = None,
    sample: Annotated[int, typer.Option(help="percent of the list per tested subject")] = 10,
    wait: Annotated[str, typer.Option(help="how long before the pick: 4h, 90m, 1d")] = "4h",
    by: Annotated[str, typer.Option(help="pick by unique human clicks or opens")] = "clicks",
    local_time: Annotated[
        str | None,
        typer.Option(
            help="08:00: each reader at that time in their own zone (the first day it has not "
            "passed there); '' sends to everyone at once"
        ),
    ] = None,
) -> None:
    """Start sending an issue: check and freeze it; a worker fills the ledger and sends.
    With --subject-test, each subject goes to --sample percent first; after --wait the one with
    the most unique human clicks (or opens) per message goes to the rest."""
    from worker.tasks import dispatch

    with session() as s:
        if segment is not None or everyone:
            chosen = None if everyone else segment
            segments.set_issue_segment(s, content_issues.get_issue(s, issue_id), chosen)
        if subject_test:
            test = subject_tests.spec(subject_test, sample=sample, wait=wait, metric=by)
            subject_tests.configure(s, content_issues.get_issue(s, issue_id), test)
        if local_time is not None:
            set_local_time(s, content_issues.get_issue(s, issue_id), local_time)
        start = start_send(settings(), s, issue_id=issue_id, dispatch=dispatch.delay)
        if start.started:
            audited(s, "issue.send", target_type="issue", target_id=issue_id)
        state = None if start.started else controls.status(s, issue_id=issue_id)
    if state is None:
        console.print(
            f"issue {issue_id}: {start.recipients} recipients ({start.skipped} not sent to: "
            "not active or suppressed)"
        )
        _queued(issue_id, follow)
        return
    console.print(_already_started(state))
    if follow and state.progress.status in (IssueStatus.preparing, IssueStatus.sending):
        _follow(issue_id)


def _already_started(state: controls.Status) -> str:
    """One line for a send of an issue that was started before: where it is, what to do."""
    p = state.progress
    done = f"{p.done} of {p.total} done"
    said = {
        IssueStatus.preparing: "is being prepared (a worker fills its ledger); its dispatch was "
        "queued again for a running `newsletter worker`",
        IssueStatus.sending: f"is already sending ({done}); its batches were queued again for "
        "a running `newsletter worker`",
        IssueStatus.paused: f"is paused ({done}); `newsletter issues resume {p.issue_id}` goes on",
        IssueStatus.sent: f"was sent already ({done}); nothing is sent twice",
        IssueStatus.cancelled: f"was cancelled ({done}); it cannot be sent",
    }
    return f"issue {p.issue_id} " + said.get(IssueStatus(p.status), f"is {p.status}")


def _dispatch(issue_id: int, follow: bool) -> None:
    from worker.tasks import dispatch

    dispatch.delay(issue_id)
    _queued(issue_id, follow)


def _queued(issue_id: int, follow: bool) -> None:
    if follow:
        _follow(issue_id)
    else:
        console.print("queued; a running `newsletter worker` delivers it")


def _follow(issue_id: int) -> None:
    notice: str | None = None  # said once when it appears, and once when a worker shows up
    said: str | None = None  # a breaker pause's reason (each probe's), then its resume's
    with progress_bar(f"issue {issue_id}") as (bar, task):
        while True:
            with session() as s:
                state = controls.status(s, issue_id=issue_id)
            if state.worker_notice != notice:
                if state.worker_notice:
                    bar.console.print(f"[yellow]{state.worker_notice}[/]", highlight=False)
                elif notice:
                    bar.console.print("a worker picked the send up", highlight=False)
                notice = state.worker_notice
            p = state.progress
            if (p.awaiting_probe or said is not None) and p.reason and p.reason != said:
                style = "yellow" if p.awaiting_probe else "green"
                bar.console.print(p.reason, style=style, markup=False, highlight=False)
                said = p.reason
            bar.update(
                task,
                total=p.total or None,
                completed=p.done,
                rate=f"{state.rate:,.0f}/s",
                eta=_eta(state.eta_seconds),
            )
            # a breaker pause waiting for the relay goes on by itself: keep following it
            if p.finished or (p.status == IssueStatus.paused and not p.awaiting_probe):
                break
            time.sleep(0.5)
    _print_status(state)


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA -"
    minutes, secs = divmod(int(seconds), 60)
    if minutes >= 60:  # a local-time send's later waves are hours away
        return f"ETA {minutes // 60}h{minutes % 60:02d}m"
    return f"ETA {minutes}:{secs:02d}"


@app.command("status")
def issues_status(
    issue_id: int,
    follow: Annotated[bool, typer.Option(help="show live progress until it ends")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Counts by delivery state, current rate, ETA and the last errors."""
    if follow:
        _follow(issue_id)
        return
    with session() as s:
        state = controls.status(s, issue_id=issue_id)
    if as_json:
        console.print_json(data=state.as_dict())
    else:
        _print_status(state)


def _print_status(state: controls.Status) -> None:
    p = state.progress
    console.print(f"issue {p.issue_id}: {p.status}" + (f" ({p.reason})" if p.reason else ""))
    if state.scheduled_at and p.status == IssueStatus.scheduled:
        console.print(f"  scheduled for {state.scheduled_at.isoformat(timespec='minutes')}")
    for name in DeliveryStatus:
        if name != DeliveryStatus.cancelled or p.counts.get(name):
            console.print(f"  {name}: {p.counts.get(name, 0)}")
    if p.status == IssueStatus.sending:
        console.print(f"  rate: {state.rate:,.1f} msg/s, {_eta(state.eta_seconds)}")
    if state.held:
        console.print(f"  held for the subject test's winner: {state.held:,} (not in the ETA)")
    if state.local_time:
        console.print(f"  at {state.local_time} in each reader's time zone:")
    for w in state.waves:
        console.print(
            f"    {w.due_at:%Y-%m-%d %H:%M} UTC: {w.total} readers, {w.sent} sent, "
            f"{w.waiting} waiting"
        )
    if state.subject_test:
        _print_subject_test(state.subject_test)
    for relay in relay_checks.statuses(settings()):
        if not relay.up and p.status in (IssueStatus.sending, IssueStatus.paused):
            until = f" until {relay.out_until:%H:%M:%S} UTC" if relay.out_until else ""
            line = f"  relay {relay.relay.name} out{until}: {relay.reason}"
            console.print(line, markup=False, highlight=False)
    if state.last_errors:
        console.print("  last errors:")
        for e in state.last_errors:
            console.print(f"    {e.email}: {e.response}", markup=False, highlight=False)


def _print_subject_test(test: dict[str, Any]) -> None:
    console.print(f"  {test['headline']}", markup=False, highlight=False)
    for v in test["variants"]:
        won = " (winner)" if v["variant"] == test["winner"] else ""
        shown = [f"{k} {v[k]}" for k in subject_tests.FIGURES if v[k] is not None]
        line = f"    {v['letter']}{won}: {v['subject']}  [{', '.join(shown)}]"
        console.print(line, markup=False, highlight=False)


@app.command("pick-subject")
def issues_pick_subject(
    issue_id: int,
    variant: Annotated[int, typer.Argument(help="the winning subject: 1 for the first one")],
    follow: Annotated[bool, typer.Option(help="show progress until the send ends")] = False,
) -> None:
    """Pick a subject test's winner now, before its wait is over; the rest get its subject."""
    with session() as s:
        test = subject_pick.decide(s, issue_id=issue_id, variant=variant, by=cli_actor().label)
        audited(s, "issue.subject-pick", target_type="issue", target_id=issue_id)
    if test is not None:
        console.print(f"issue {issue_id}: {test.reason}", markup=False, highlight=False)
    _dispatch(issue_id, follow)


@app.command("pause")
def issues_pause(
    issue_id: int, reason: Annotated[str, typer.Option(help="shown in status")] = "paused by hand"
) -> None:
    """Stop sending after the messages in flight; resume picks up where it stopped. An issue the
    circuit breaker paused stays paused: no probe of the relay resumes it any more."""
    with session() as s:
        controls.pause(s, issue_id=issue_id, reason=reason)
        audited(s, "issue.pause", target_type="issue", target_id=issue_id, detail=reason)
    console.print(f"issue {issue_id}: paused")


@app.command("resume")
def issues_resume(
    issue_id: int,
    follow: Annotated[bool, typer.Option(help="show progress until the send ends")] = False,
) -> None:
    """Go on sending a paused issue (also one the circuit breaker paused, before its probe)."""
    with session() as s:
        controls.resume(s, issue_id=issue_id)
        audited(s, "issue.resume", target_type="issue", target_id=issue_id)
    console.print(f"issue {issue_id}: sending again")
    _dispatch(issue_id, follow)


@app.command("cancel")
def issues_cancel(issue_id: int) -> None:
    """Stop for good; the rows not yet sent are marked cancelled."""
    with session() as s:
        count = controls.cancel(s, issue_id=issue_id)
        audited(s, "issue.cancel", target_type="issue", target_id=issue_id)
    console.print(f"issue {issue_id}: cancelled ({count} not sent)")


@app.command("resend-failed")
def issues_resend_failed(
    issue_id: int,
    follow: Annotated[bool, typer.Option(help="show progress until the send ends")] = False,
) -> None:
    """Send again to the recipients whose delivery failed (and who are still subscribed)."""
    with session() as s:
        count = controls.resend_failed(s, issue_id=issue_id)
        audited(s, "issue.resend-failed", target_type="issue", target_id=issue_id)
    if not count:
        console.print(f"issue {issue_id}: no failed deliveries to resend")
        return
    console.print(f"issue {issue_id}: {count} failed deliveries queued again")
    _dispatch(issue_id, follow)


@app.command("test-send")
def issues_test_send(
    issue_id: int,
    addresses: Annotated[list[str], typer.Argument(help="up to 10 addresses")],
) -> None:
    """Send the draft as it stands to a few addresses, "[Test]" before the subject; nothing is
    recorded. Exit 1 if a copy was refused."""
    result = testsend.send_test(settings(), issue_id=issue_id, addresses=" ".join(addresses))
    if result.sent:
        console.print(f"issue {issue_id}: test sent to {', '.join(result.sent)}", markup=False)
    for address, why in result.failed.items():
        err.print(f"[red]not sent[/] to {escape(address)}: {escape(why)}", highlight=False)
    if result.failed:
        raise typer.Exit(1)


@app.command("schedule")
def issues_schedule(
    issue_id: int,
    at: Annotated[str, typer.Argument(help="ISO time with zone, e.g. 2026-12-01T08:00+01:00")],
    local_time: Annotated[
        str | None,
        typer.Option(
            help="08:00: each reader at that time in their own zone (the first day it has not "
            "passed there); '' sends to everyone at once"
        ),
    ] = None,
) -> None:
    """Send at a later time, given with its zone (a running worker with --beat starts it)."""
    try:
        when = datetime.fromisoformat(at)
    except ValueError as exc:
        raise InvalidInput(f"not an ISO date and time: {at!r}") from exc
    with session() as s:
        if local_time is not None:
            set_local_time(s, content_issues.get_issue(s, issue_id), local_time)
        issue = controls.schedule(s, issue_id=issue_id, at=when, checks=qa_config(settings()))
        audited(s, "issue.schedule", target_type="issue", target_id=issue_id, detail=at)
    assert issue.scheduled_at is not None
    console.print(f"issue {issue_id}: scheduled for {issue.scheduled_at.isoformat()}")


@app.command("unschedule")
def issues_unschedule(issue_id: int) -> None:
    """Back to draft."""
    with session() as s:
        controls.unschedule(s, issue_id=issue_id)
        audited(s, "issue.unschedule", target_type="issue", target_id=issue_id)
    console.print(f"issue {issue_id}: draft again")
