"""The `newsletter` command as a user meets it: mistakes give one line and exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import cli_fork


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli_env(folder, {}, *args)


def cli_env(folder: Path, extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_SPAM_CHECK"] = "off"  # seconds per SpamAssassin run
    env["COLUMNS"] = "200"  # keep rich from wrapping the one-line errors
    env.update(extra)
    return cli_fork.run(list(args), cwd=folder, env=env)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    assert cli(folder, "seed").returncode == 0
    done = cli(folder, "issues", "create", "--newsletter", "belarus-weekly", "--title", "Test")
    assert done.returncode == 0, done.stderr
    return folder


def assert_one_line_error(done: subprocess.CompletedProcess[str], text: str) -> None:
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert text in lines[0]


def test_unknown_issue_id_is_one_line_error(seeded: Path) -> None:
    assert_one_line_error(cli(seeded, "issues", "show", "999"), "no issue with id 999")


def test_missing_article_file_is_one_line_error(seeded: Path) -> None:
    assert_one_line_error(cli(seeded, "articles", "import", "missing.yaml"), "missing.yaml")


def test_malformed_yaml_names_the_file_and_line(seeded: Path) -> None:
    (seeded / "bad.yaml").write_text("- url: [unclosed\n", encoding="utf-8")
    assert_one_line_error(cli(seeded, "articles", "import", "bad.yaml"), "bad.yaml")


def test_sending_an_empty_issue_is_blocked_by_qa(seeded: Path) -> None:
    done = cli(seeded, "issues", "send", "1")
    assert_one_line_error(done, "QA blocks sending")
    assert "draft" in cli(seeded, "issues", "status", "1").stdout


def test_qa_exits_1_and_names_blocking_findings(seeded: Path) -> None:
    done = cli(seeded, "issues", "qa", "1")
    assert done.returncode == 1
    assert "no-items" in done.stdout


def test_adding_and_moving_items_changes_the_shown_order(seeded: Path) -> None:
    assert cli(seeded, "issues", "add", "1", "1", "--section", "Diplomacy").returncode == 0
    assert cli(seeded, "issues", "add", "1", "2", "--section", "Diplomacy").returncode == 0
    before = cli(seeded, "issues", "show", "1").stdout
    assert before.index("item 1:") < before.index("item 2:")
    assert cli(seeded, "issues", "move", "2", "0").returncode == 0
    after = cli(seeded, "issues", "show", "1").stdout
    assert after.index("item 2:") < after.index("item 1:")


@pytest.fixture(scope="module")
def drafted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded folder with one issue that passes QA (two articles in one section)."""
    folder = tmp_path_factory.mktemp("cli-controls")
    assert cli(folder, "seed").returncode == 0
    done = cli(folder, "issues", "create", "--newsletter", "belarus-weekly", "--title", "Controls")
    assert done.returncode == 0, done.stderr
    for article in ("1", "2"):
        added = cli(folder, "issues", "add", "1", article, "--section", "News")
        assert added.returncode == 0, added.stderr
    return folder


def _worker_fills(folder: Path) -> None:
    """What a worker's dispatch does first: fill the ledger of the issue sent now."""
    from newsletter import db
    from newsletter.sending import start

    with db.session_scope(f"sqlite:///{folder / 'newsletter.db'}") as s:
        assert start.fill_prepared(s, issue_id=1) is not None


def _status(folder: Path) -> dict[str, object]:
    import json

    done = cli(folder, "issues", "status", "1", "--json")
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


def test_controls_from_the_command_line(drafted: Path) -> None:
    assert_one_line_error(cli(drafted, "issues", "pause", "1"), "cannot pause issue 1: it is draft")
    assert_one_line_error(
        cli(drafted, "issues", "schedule", "1", "next tuesday"), "not an ISO date and time"
    )
    assert_one_line_error(
        cli(drafted, "issues", "schedule", "1", "2030-01-01T08:00"), "needs a time zone"
    )
    done = cli(drafted, "issues", "schedule", "1", "2030-01-01T08:00+01:00")
    assert done.returncode == 0, done.stderr
    assert _status(drafted)["scheduled_at"] == "2030-01-01T07:00:00+00:00"
    assert cli(drafted, "issues", "unschedule", "1").returncode == 0
    assert _status(drafted)["status"] == "draft"

    # started, with no worker running: the issue waits, preparing, for a worker's fill
    sent = cli(drafted, "issues", "send", "1")
    assert sent.returncode == 0, sent.stderr
    assert _status(drafted)["status"] == "preparing"
    assert_one_line_error(cli(drafted, "issues", "pause", "1"), "it is preparing")
    _worker_fills(drafted)  # the worker's dispatch: the rows wait in the ledger
    assert cli(drafted, "issues", "pause", "1", "--reason", "a typo").returncode == 0
    state = _status(drafted)
    assert (state["status"], state["reason"]) == ("paused", "a typo")
    assert cli(drafted, "issues", "resume", "1").returncode == 0
    assert _status(drafted)["status"] == "sending"
    cancelled = cli(drafted, "issues", "cancel", "1")
    assert cancelled.returncode == 0, cancelled.stderr
    state = _status(drafted)
    counts = state["counts"]
    assert isinstance(counts, dict)
    assert state["status"] == "cancelled" and counts["cancelled"] == 42  # the active seeds
    assert_one_line_error(cli(drafted, "issues", "resume", "1"), "it is cancelled")


def test_a_subject_with_a_line_break_is_refused_in_one_line(seeded: Path) -> None:
    done = cli(seeded, "issues", "create", "--newsletter", "belarus-weekly", "--title", "T",
               "--subject", "Hello\r\nBcc: everyone@example.org")  # fmt: skip
    assert_one_line_error(done, "subject contains a line break")


def test_an_erased_address_cannot_be_added_back_from_the_command_line(seeded: Path) -> None:
    add = ("subscribers", "add", "Gone.Reader@example.org", "--newsletter", "belarus-weekly")
    assert cli(seeded, *add).returncode == 0
    assert cli(seeded, "subscribers", "erase", "gone.reader@example.org", "--yes").returncode == 0
    assert_one_line_error(cli(seeded, *add), "suppression list (erased)")
    listed = cli(seeded, "subscribers", "list", "--search", "gone.reader")
    assert "Gone.Reader@example.org" not in listed.stdout


# an EC (P-256) private key: a valid key that the DKIM signer cannot use (RSA or ed25519 only)
EC_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgyygFmJ2hy+zcJPOx\n"
    "R823jn4f/MDwrNkeh5Q23x/NYW6hRANCAARC4XflrqHXn3hBIn3F6nkVLat8URCv\n"
    "c7fPUSp6JVbrIgKyXXDll8hTDNsjekXQyMTngP1FgeRsKs+VbUs+q93h\n"
    "-----END PRIVATE KEY-----\n"
)


def _unusable_dkim(folder: Path) -> dict[str, str]:
    key = folder / "ec.pem"
    key.write_text(EC_PEM, encoding="utf-8")
    return {
        "NEWSLETTER_DKIM_SELECTOR": "s1",
        "NEWSLETTER_DKIM_DOMAIN": "news.example.org",
        "NEWSLETTER_DKIM_KEY_FILE": str(key),
    }


def test_a_dkim_key_that_cannot_sign_refuses_the_send_in_one_line(seeded: Path) -> None:
    env = _unusable_dkim(seeded)
    done = cli_env(seeded, env, "issues", "send", "1")
    assert_one_line_error(done, "EC keys are not supported")
    assert "draft" in cli(seeded, "issues", "status", "1").stdout  # nothing was started


def test_the_demo_stops_in_one_line_on_a_dkim_key_that_cannot_sign(tmp_path: Path) -> None:
    done = cli_env(tmp_path, _unusable_dkim(tmp_path), "demo")
    assert_one_line_error(done, "EC keys are not supported")


def test_a_celery_worker_refuses_to_start_with_a_dkim_key_that_cannot_sign(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_SPAM_CHECK"] = "off"  # seconds per SpamAssassin run
    env.update(_unusable_dkim(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--pool=solo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "EC keys are not supported" in done.stderr
