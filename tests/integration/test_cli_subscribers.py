"""`newsletter subscribers import|export|export-data|erase` and `newsletter bounces process`,
through the real entry point on a seeded SQLite folder."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from newsletter.audience import gdpr
from newsletter.models import Newsletter, Subscriber, Subscription
from tests.conftest import make_newsletter
from tests.integration import mail_reports
from tests.integration.test_cli import assert_one_line_error, cli, cli_env

SLUG = "belarus-weekly"


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    done = cli(tmp_path, "seed")
    assert done.returncode == 0, done.stderr
    return tmp_path


def export(folder: Path, *args: str) -> list[dict[str, str]]:
    done = cli(folder, "subscribers", "export", *args)
    assert done.returncode == 0, done.stderr
    return list(csv.DictReader(io.StringIO(done.stdout)))


def status_of(folder: Path, email: str) -> str | None:
    rows = [r for r in export(folder) if r["email"] == email]
    return rows[0]["status"] if rows else None


# ---------------------------------------------------------------- on the seeded SQLite folder


def test_import_lists_bad_rows_by_line_and_exits_1_with_the_good_rows_in(seeded: Path) -> None:
    (seeded / "list.csv").write_bytes(
        b"email,name,newsletters\n"
        b"new.reader@example.org,New Reader,\n"
        b"not-an-address,Bad,\n"
        b"latin@example.org,Ren\xe9\n"
        b'"inject@example.org","Eve\r\nBcc: x@example.org",\n'
    )

    done = cli(seeded, "subscribers", "import", "list.csv", "--newsletter", SLUG)

    assert done.returncode == 1, done.stderr
    assert "4 rows: 2 imported" in done.stdout and "2 rejected" in done.stdout
    assert "line 3: error: invalid email address 'not-an-address'" in done.stderr
    assert "line 4: error: not UTF-8 text" in done.stderr
    assert "line 5: warning: name: line breaks" in done.stderr
    assert "Traceback" not in done.stderr
    assert status_of(seeded, "new.reader@example.org") == "active"
    names = {r["email"]: r["name"] for r in export(seeded)}
    assert names["inject@example.org"] == "Eve Bcc: x@example.org"


def test_import_previews_then_keeps_names_unless_overwrite(seeded: Path) -> None:
    (seeded / "first.csv").write_text("email,name\nkeep@example.org,First\n", encoding="utf-8")
    (seeded / "second.csv").write_text("email,name\nkeep@example.org,Second\n", encoding="utf-8")
    assert cli(seeded, "subscribers", "import", "first.csv", "--newsletter", SLUG).returncode == 0

    shown = cli(seeded, "subscribers", "import", "second.csv", "--preview", "--newsletter", SLUG)
    assert shown.returncode == 0, shown.stderr
    assert "name -> Name" in shown.stdout and "unchanged" in shown.stdout
    over = cli(
        seeded,
        "subscribers",
        "import",
        "second.csv",
        "--preview",
        "--overwrite",
        "--newsletter",
        SLUG,
    )
    assert "update" in over.stdout and "name" in over.stdout

    done = cli(seeded, "subscribers", "import", "second.csv", "--newsletter", SLUG)
    assert "1 unchanged" in done.stdout
    assert {r["email"]: r["name"] for r in export(seeded)}["keep@example.org"] == "First"
    cli(seeded, "subscribers", "import", "second.csv", "--newsletter", SLUG, "--overwrite")
    assert {r["email"]: r["name"] for r in export(seeded)}["keep@example.org"] == "Second"


def test_an_unusable_file_is_one_line_and_exit_1(seeded: Path) -> None:
    (seeded / "noemail.csv").write_text("name\nNobody\n", encoding="utf-8")
    assert_one_line_error(cli(seeded, "subscribers", "import", "noemail.csv"), "no 'email' column")
    assert_one_line_error(cli(seeded, "subscribers", "import", "missing.csv"), "missing.csv")


def test_import_never_reactivates_the_seeded_unsubscribed(seeded: Path) -> None:
    gone = [r["email"] for r in export(seeded, "--status", "unsubscribed")]
    assert len(gone) == 8
    (seeded / "back.csv").write_text(
        "email,status\n" + "\n".join(f"{e},active" for e in gone) + "\n", encoding="utf-8"
    )

    done = cli(seeded, "subscribers", "import", "back.csv", "--newsletter", SLUG)

    assert done.returncode == 0, done.stderr
    assert "8 left unsubscribed/bounced/complained" in done.stdout
    assert len(export(seeded, "--status", "unsubscribed")) == 8


def test_export_neutralises_formulas_and_writes_a_file(seeded: Path) -> None:
    (seeded / "f.csv").write_text(
        'email,name\nf@example.org,"=HYPERLINK(""http://evil.example"",""x"")"\n',
        encoding="utf-8",
    )
    assert cli(seeded, "subscribers", "import", "f.csv", "--newsletter", SLUG).returncode == 0

    rows = export(seeded, "--newsletter", SLUG, "--status", "active")

    assert len(rows) == 43
    row = next(r for r in rows if r["email"] == "f@example.org")
    assert row["name"] == '\'=HYPERLINK("http://evil.example","x")'
    done = cli(seeded, "subscribers", "export", "--out", "all.csv")
    assert done.returncode == 0 and "exported to all.csv" in done.stdout
    assert (seeded / "all.csv").read_text(encoding="utf-8").startswith("email,name,newsletters")


def test_export_data_prints_json_and_erase_suppresses(seeded: Path) -> None:
    email = export(seeded)[0]["email"]

    data = cli(seeded, "subscribers", "export-data", email)
    assert data.returncode == 0, data.stderr
    assert json.loads(data.stdout)["subscriber"]["email"] == email

    refused = subprocess.run(
        [sys.executable, "-m", "newsletter", "subscribers", "erase", email],
        cwd=seeded,
        env={k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")},
        input="n\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1 and status_of(seeded, email) is not None

    erased = cli(seeded, "subscribers", "erase", email, "--yes")
    assert erased.returncode == 0, erased.stderr
    assert "erased: 1 subscriptions" in erased.stdout
    assert status_of(seeded, email) is None

    (seeded / "again.csv").write_text(f"email\n{email}\n", encoding="utf-8")
    again = cli(seeded, "subscribers", "import", "again.csv", "--newsletter", SLUG)
    assert "1 suppressed" in again.stdout
    assert f"line 2: warning: {email} is on the suppression list (erased)" in again.stderr
    assert_one_line_error(cli(seeded, "subscribers", "export-data", email), "no subscriber")


def test_bounces_process_an_mbox_and_stdin(seeded: Path) -> None:
    active = [r["email"] for r in export(seeded, "--status", "active")]
    (seeded / "bounces.mbox").write_bytes(
        mail_reports.mbox(
            mail_reports.dsn(active[0]),
            mail_reports.arf(active[1]),
            mail_reports.dsn(active[2], status="4.2.2", action="delayed"),
            mail_reports.plain(),
        )
    )

    done = cli(seeded, "bounces", "process", "bounces.mbox")

    assert done.returncode == 0, done.stderr
    assert f"1: hard {active[0]}: bounced on 1 subscriptions" in done.stdout
    assert "2: complaint" in done.stdout
    assert "3: soft" in done.stdout and "soft bounce 1 of 3 in a row" in done.stdout
    assert "4 messages: 1 hard, 1 soft, 1 complaint, 0 unsubscribe, 1 ignored" in done.stdout
    assert status_of(seeded, active[0]) == "bounced"
    assert status_of(seeded, active[1]) == "complained"

    piped = subprocess.run(
        [sys.executable, "-m", "newsletter", "bounces", "process", "-"],
        cwd=seeded,
        env={k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")},
        input=mail_reports.dsn(active[3]),
        capture_output=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert b"1 messages: 1 hard" in piped.stdout


# ---------------------------------------------------------------- on SQLite and PostgreSQL


def import_file(
    database_url: str, folder: Path, text: str, newsletter: Newsletter
) -> subprocess.CompletedProcess[str]:
    (folder / "list.csv").write_text(text, encoding="utf-8")
    env = {"NEWSLETTER_DATABASE_URL": database_url}
    assert newsletter.slug is not None
    return cli_env(
        folder, env, "subscribers", "import", "list.csv", "--newsletter", newsletter.slug
    )


def statuses(session: Session) -> dict[str, str]:
    session.expire_all()
    rows = session.exec(
        select(Subscriber.email, Subscription.status).join(
            Subscription, col(Subscription.subscriber_id) == Subscriber.id
        )
    ).all()
    return dict(rows)


def test_rejected_rows_exit_1_after_the_good_rows_are_imported(
    database_url: str, session: Session, tmp_path: Path
) -> None:
    weekly = make_newsletter(session)
    text = "email,name\ngood@example.org,Good\nbad-address,Bad\nfine@example.org,Fine\n"

    done = import_file(database_url, tmp_path, text, weekly)

    assert done.returncode == 1, done.stderr
    assert "3 rows: 2 imported, 0 updated, 0 unchanged, 0 suppressed, 1 rejected" in done.stdout
    assert "line 3: error: invalid email address 'bad-address'" in done.stderr
    assert "Traceback" not in done.stderr
    assert statuses(session) == {"good@example.org": "active", "fine@example.org": "active"}


def test_a_clean_file_exits_0(database_url: str, session: Session, tmp_path: Path) -> None:
    weekly = make_newsletter(session)
    done = import_file(database_url, tmp_path, "email\nclean@example.org\n", weekly)
    assert done.returncode == 0, done.stderr
    assert "1 rows: 1 imported, 0 updated, 0 unchanged, 0 suppressed, 0 rejected" in done.stdout


def test_a_case_twin_is_a_duplicate_of_its_first_line(
    database_url: str, session: Session, tmp_path: Path
) -> None:
    weekly = make_newsletter(session)
    text = "email,name\nReader@Example.com,First\nreader@example.com,Second\n"

    done = import_file(database_url, tmp_path, text, weekly)

    assert done.returncode == 1
    assert "1 rejected (1 duplicates)" in done.stdout
    assert "line 3: error: duplicate of line 2" in done.stderr
    assert statuses(session) == {"Reader@example.com": "active"}


def test_consent_no_in_the_file_leaves_the_subscription_pending(
    database_url: str, session: Session, tmp_path: Path
) -> None:
    weekly = make_newsletter(session)
    text = "email,consent\nyes@example.org,yes\nno@example.org,no\n"

    done = import_file(database_url, tmp_path, text, weekly)

    assert done.returncode == 0, done.stderr
    assert "ignored columns" not in done.stdout
    assert statuses(session) == {"yes@example.org": "active", "no@example.org": "pending"}


def test_more_than_1000_errors_list_the_first_1000_and_count_the_rest(
    database_url: str, session: Session, tmp_path: Path
) -> None:
    weekly = make_newsletter(session)
    text = "email\n" + "".join(f"junk{i}\n" for i in range(1200)) + "ok@example.org\n"

    done = import_file(database_url, tmp_path, text, weekly)

    assert done.returncode == 1
    assert "1201 rows: 1 imported" in done.stdout and "1200 rejected" in done.stdout
    errors = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1000 and errors[-1].startswith("line 1001: error:")
    assert "... and 200 more errors (only the first 1000 are listed)" in done.stderr


def test_an_erased_address_imports_as_suppressed_not_active(
    database_url: str, session: Session, tmp_path: Path
) -> None:
    weekly = make_newsletter(session)
    assert import_file(database_url, tmp_path, "email\ngone@example.org\n", weekly).returncode == 0
    gdpr.erase_subscriber(session, "gone@example.org")
    session.commit()

    done = import_file(database_url, tmp_path, "email\nGone@Example.org\n", weekly)

    assert done.returncode == 0, done.stderr
    assert "1 suppressed" in done.stdout
    assert "line 2: warning: Gone@example.org is on the suppression list (erased)" in done.stderr
    assert "active" not in statuses(session).values()
