"""The unsubscribe storm at CI size: 500 one-click POSTs against ``newsletter serve`` while a
Celery worker sends to 8,000 subscribers; every POST recorded, nobody mailed after their answer.

The scenario is ``bench/unsubscribe_storm.py`` (10,000 POSTs during a 20,000-message send by
default); this test runs it small, as a subprocess, and checks its last line, a JSON object.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PG_ADMIN_URL, require

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "unsubscribe_storm.py"
SUBSCRIBERS, POSTS = (
    8000,
    500,
)  # a send of a few seconds: 2,000 went out in 0.7 s, before most POSTs
TIMEOUT = 600  # seconds; about 30 on an idle 2-core machine


def _services_or_skip() -> None:
    conninfo = make_url(PG_ADMIN_URL).set(drivername="postgresql")
    try:
        with psycopg.connect(
            conninfo.render_as_string(hide_password=False), connect_timeout=3
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        require("PostgreSQL", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if shutil.which("redis-server") is None:
        require("Redis", "no redis-server binary on PATH (the storm runs its own server)")


@pytest.mark.services
def test_an_unsubscribe_storm_during_a_send_is_recorded_and_mails_nobody_after_the_answer() -> None:
    _services_or_skip()
    argv = [sys.executable, str(SCRIPT), "--subscribers", str(SUBSCRIBERS), "--posts", str(POSTS)]
    argv += ["--rate", "6000", "--before", "0.5", "--clients", "4"]
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the script stops its server, workers and Redis
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"storm still running after {TIMEOUT}s\n{out[-4000:]}\n{err[-4000:]}")
    report = f"exit {proc.returncode}\n--- stdout\n{out[-6000:]}\n--- stderr\n{err[-6000:]}"
    lines = out.strip().splitlines()
    assert proc.returncode == 0 and lines, report
    result = json.loads(lines[-1])
    assert result["posts"] == POSTS, report
    assert result["answered_2xx"] == POSTS, report
    assert result["recorded"] == POSTS, report
    assert result["mailed_after_answer"] == 0, report
    # no POST lost its kept-alive connection unanswered (the bench sends such a one again)
    assert result["retried"] == {}, report
    # each reader POSTed to was mailed (before or after the answer) or skipped: the sink's
    # arrivals are matched to the readers, not merely counted
    mailed = result["mailed_before_answer"] + result["mailed_after_answer"]
    assert mailed + result["never_mailed_skipped"] == POSTS, report
    # the storm raced the send: some readers were reached first, some never (skipped)
    assert result["never_mailed_skipped"] > 0, report
    assert result["messages"] == SUBSCRIBERS - result["never_mailed_skipped"], report
