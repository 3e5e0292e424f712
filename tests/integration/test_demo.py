"""`newsletter demo` as a user runs it: a fresh folder, the embedded default, twice."""

from __future__ import annotations

import csv
import os
import re
import sqlite3
import subprocess
import sys
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from newsletter.audience.links import Purpose, read_token
from newsletter.config import DEV_SECRET
from newsletter.seeding import SEEDS_DIR

LEAD_HEADLINE = "Belarus KGB chief says agency is open to dialogue with Kyiv"  # seeds/articles.yaml


#: what the demo has no use for (issue 17: most of its wall time is imports): the Redis client,
#: the HTTP API transports' client, PostgreSQL's driver and the CSV importer, the feed reader,
#: the web app and the migrations
NOT_FOR_THE_DEMO = (
    "redis",
    "httpx",
    "psycopg",
    "feedparser",
    "newsletter.audience.import_jobs",
    "newsletter.audience.csv_import",
    "newsletter.api",
    "fastapi",
    "uvicorn",
    "alembic",
)


def demo_process(folder: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """``python [flags] -m newsletter demo`` in ``folder``; it must end well."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_SPAM_CHECK"] = "off"  # seconds per SpamAssassin run
    done = subprocess.run(
        [sys.executable, *flags, "-m", "newsletter", "demo"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done


def run_demo(folder: Path) -> str:
    return demo_process(folder).stdout


def seeded(status: str) -> set[str]:
    with (SEEDS_DIR / "subscribers.csv").open(encoding="utf-8") as handle:
        return {row["email"].lower() for row in csv.DictReader(handle) if row["status"] == status}


def outbox(folder: Path) -> list[EmailMessage]:
    files = sorted((folder / "outbox").glob("*.eml"))
    return [message_from_bytes(f.read_bytes(), policy=default_policy) for f in files]  # type: ignore[misc]


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    folder = tmp_path_factory.mktemp("demo")
    first = run_demo(folder)
    second = run_demo(folder)
    return folder, first, second


def test_demo_delivers_exactly_one_message_per_active_seeded_subscriber(
    demo_folder: tuple[Path, str, str],
) -> None:
    folder, _, _ = demo_folder
    recipients = [str(m["To"].addresses[0].addr_spec).lower() for m in outbox(folder)]
    assert sorted(recipients) == sorted(seeded("active"))
    assert not set(recipients) & seeded("unsubscribed")


def test_demo_prints_counts_outbox_and_preview(demo_folder: tuple[Path, str, str]) -> None:
    folder, first, second = demo_folder
    active, unsubscribed = len(seeded("active")), len(seeded("unsubscribed"))
    for output, number in ((first, 1), (second, 2)):
        assert f"issue #{number}" in output
        assert f"delivered: {active}" in output
        assert f"skipped (unsubscribed): {unsubscribed}" in output
        assert str(folder / "outbox") in output
    preview = re.search(r"preview: (\S+)", second)
    assert preview is not None
    assert "Read more" in Path(preview.group(1)).read_text(encoding="utf-8")


def test_demo_messages_carry_both_parts_and_the_list_headers(
    demo_folder: tuple[Path, str, str],
) -> None:
    folder, _, _ = demo_folder
    for message in outbox(folder):
        assert message.get_content_type() == "multipart/alternative"
        assert "Read more" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Read more" in message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        # the lead headline; the sender name is in From, not repeated in the subject
        assert str(message["Subject"]) == LEAD_HEADLINE
        for header in ("From", "Date", "Message-ID", "List-Id", "List-Unsubscribe"):
            assert message[header], header
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_each_demo_message_has_its_own_subscribers_unsubscribe_url(
    demo_folder: tuple[Path, str, str],
) -> None:
    folder, _, _ = demo_folder
    with sqlite3.connect(folder / "newsletter.db") as conn:
        emails = dict(conn.execute("select id, email from subscriber").fetchall())
    for message in outbox(folder):
        url = re.search(r"<(https?://[^>]+/unsubscribe/([^>]+))>", str(message["List-Unsubscribe"]))
        assert url is not None
        token = read_token(DEV_SECRET, Purpose.unsubscribe, url.group(2))
        assert emails[token.subscriber_id] == message["To"].addresses[0].addr_spec
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert url.group(1) in html


def test_the_demo_loads_no_module_it_has_no_use_for(tmp_path: Path) -> None:
    """A module made lazy for the demo stays lazy in a real run, the worker thread's imports
    included (``-X importtime`` names every module the process imported)."""
    done = demo_process(tmp_path, "-X", "importtime")
    loaded = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "self [us]" not in line
    }
    assert {"newsletter.cli.demo", "worker.tasks", "mjml"} <= loaded  # the listing is whole
    unwanted = sorted(
        name
        for name in loaded
        if any(name == lazy or name.startswith(f"{lazy}.") for lazy in NOT_FOR_THE_DEMO)
    )
    assert unwanted == []
