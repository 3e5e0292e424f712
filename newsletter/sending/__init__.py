"""Sending an issue: start it, run its batches, watch and steer it.

- ``start``       the one verb (``start_send``): check, freeze, fill the ledger, dispatch
- ``ledger``      one row per (issue, recipient): claim under a lease, record, requeue, finish
- ``batch``       one batch: claim, send each message, record each outcome
- ``outcomes``    what became of one message (``Outcome``) and the one call that records it
- ``prepare``     the issue's message template and DKIM signer, built once per process
- ``recipients``  one reader's personal values and signed links
- ``scheduler``   the periodic tick: due issues started, expired leases requeued, chains restarted
- ``controls``    schedule, pause, resume, cancel, resend to the failed; status (``send_status``)
- ``local_time``  send at a local time in each reader's zone: due times, waves
- ``progress``    delivery counts by status
- ``pickup``      a send no worker picks up, or a schedule no beat starts (the status says so)
- ``ratelimit``   the shared send rate (a Redis token bucket)
- ``breaker``     the circuit breaker that pauses an issue when sends keep failing
- ``probe``       a breaker pause for a relay that is down: probe it, resume when it answers
- ``relays``      several SMTP relays as one transport: weights, failover, a newsletter's relay
- ``relay_health`` which relay is out, until when and why; each relay's own breaker
- ``relay_checks`` the relays' states, their health checks (CLI, /metrics, the beat)
- ``domain_caps`` caps per receiving-domain group: messages per connection, a shared rate
- ``metrics``     Prometheus figures read from the ledger
- ``testsend``    the draft to a few typed addresses
- ``previews``    the email as one sample reader gets it
- ``welcome``     the welcome email: a standing issue, once to each subscriber who confirms
- ``subject_tests`` a subject test set up; ``subject_pick`` its samples, held rows and winner

No name exported here is also a module's: ``from newsletter.sending import x`` stays module x.
"""

from __future__ import annotations

from newsletter.sending.batch import BatchResult, run_batch
from newsletter.sending.controls import (
    cancel,
    pause,
    resend_failed,
    resume,
    schedule,
    status,
    unschedule,
)
from newsletter.sending.progress import Progress
from newsletter.sending.scheduler import tick
from newsletter.sending.start import SendStart, check_signing, fill_ledger, start_send
from newsletter.sending.testsend import send_test

__all__ = [
    "BatchResult",
    "Progress",
    "SendStart",
    "cancel",
    "check_signing",
    "fill_ledger",
    "pause",
    "resend_failed",
    "resume",
    "run_batch",
    "schedule",
    "send_test",
    "start_send",
    "status",
    "tick",
    "unschedule",
]
