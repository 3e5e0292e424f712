"""The chaos send at CI size: worker kills, a PostgreSQL restart, a relay outage and a sign-up
storm with the broker down; nobody missed, duplicates bounded, no confirmation lost.

The scenario itself is ``tests/chaos/chaos_send.py`` (run it by hand with ``--subscribers 10000``
for the large run); this test runs it as a subprocess and checks its last line, a JSON object.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require
from tests.support import pg_cluster

SCRIPT = Path(__file__).with_name("chaos_send.py")
ROOT = SCRIPT.parents[2]
SUBSCRIBERS = 1000  # CI size (the script's default is 2,000; --subscribers 10000 by hand)
SIGNUPS = 100
TIMEOUT = 900  # seconds; the run takes well under 2 minutes on a 2-core machine


def _services_or_skip() -> None:
    problem = pg_cluster.unavailable()  # the script runs (and restarts) a cluster of its own
    if problem is not None:
        require("PostgreSQL", problem)
    if shutil.which("redis-server") is None:
        require("Redis", "no redis-server binary on PATH (the chaos test runs its own server)")


@pytest.mark.services
def test_chaos_send_reaches_everyone_with_bounded_duplicates() -> None:
    _services_or_skip()
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--subscribers", str(SUBSCRIBERS), "--signups", str(SIGNUPS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the script cleans up its workers and Redis
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"chaos send still running after {TIMEOUT}s\n{out[-4000:]}\n{err[-4000:]}")
    report = f"exit {proc.returncode}\n--- stdout\n{out[-6000:]}\n--- stderr\n{err[-6000:]}"
    lines = out.strip().splitlines()
    assert lines, report
    result = json.loads(lines[-1])
    assert "error" not in result, report

    assert result["subscribers"] == SUBSCRIBERS, report
    assert result["kills"] == 3, report
    assert result["pg_restarts"] == 1, report
    assert result["relay_outages"] == 1, report
    assert result["missed"] == 0, report
    assert result["received_unique"] == SUBSCRIBERS, report
    assert result["duplicates"] <= result["kills"] + result["pg_restarts"], report
    assert result["duplicates_same_message_id"] is True, report
    assert result["final_status"] == "sent", report
    assert result["breaker_pauses"] >= 1, report  # the relay outage paused the send ...
    assert result["auto_resumed"] == result["breaker_pauses"], report  # ... and it resumed
    assert result["signups"] == SIGNUPS and result["signup_errors"] == 0, report  # all 2xx
    assert result["confirmations_lost"] == 0, report
    assert result["counter_drifts"] == 0, report  # the issue counters never left the ledger
    assert proc.returncode == 0, report  # the script's own further checks (ledger, Redis restart)
