"""A newsletter's relay is one of the configured relays: the API says 422, the settings form
comes back with the reason, the CLI says one red line; ``newsletter relays`` lists and checks
them; /metrics has a gauge per relay."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.models import Newsletter
from newsletter.sending import relay_checks
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import SMTPSink
from tests.conftest import make_issue, make_newsletter, make_subscribers
from tests.integration.admin_support import Editor
from tests.integration.test_admin_newsletters import FORM
from tests.support import cli_fork

RELAYS = json.dumps(
    [
        {"name": "bulk", "host": "127.0.0.1", "port": 2525, "weight": 3},
        {"name": "direct", "host": "127.0.0.1", "port": 2526, "weight": 0, "caps": True},
    ]
)


@pytest.fixture(autouse=True)
def _relays_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    # autouse: set before the ``settings`` fixture reads the environment (the editor's app too)
    monkeypatch.setenv("NEWSLETTER_SMTP_RELAYS", RELAYS)


@pytest.fixture
def relayed(settings: Settings) -> Settings:
    assert settings.relay_names() == ("bulk", "direct")
    return settings


@pytest.fixture
def client(relayed: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(relayed, dispatch=lambda _issue_id: None)) as c:
        yield c


@pytest.fixture
def auth(session: Session) -> dict[str, str]:
    token = api_tokens.create(session, "tests")
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def relay_of(session: Session, newsletter_id: int | None) -> str:
    session.expire_all()
    found = session.get(Newsletter, newsletter_id)
    assert found is not None
    return found.relay


def test_the_api_takes_a_configured_relay_and_refuses_another_with_a_422(
    client: TestClient, auth: dict[str, str], session: Session
) -> None:
    evening = make_newsletter(session)
    path = f"/api/newsletters/{evening.id}"

    refused = client.patch(path, json={"relay": "nope"}, headers=auth)
    assert refused.status_code == 422, refused.text
    assert "relay 'nope' is not one of the configured relays (bulk, direct)" in refused.text
    assert relay_of(session, evening.id) == ""

    taken = client.patch(path, json={"relay": "direct"}, headers=auth)
    assert taken.status_code == 200, taken.text
    assert taken.json()["relay"] == "direct"
    assert relay_of(session, evening.id) == "direct"
    back = client.patch(path, json={"relay": ""}, headers=auth)
    assert back.json()["relay"] == "" and relay_of(session, evening.id) == ""

    new = {"slug": "x-relay", "name": "X", "from_email": "x@news.example.org"}
    created = client.post(
        "/api/newsletters",
        json={**new, "postal_address": "1 Street", "relay": "bulk2"},
        headers=auth,
    )
    assert created.status_code == 422 and "relay 'bulk2'" in created.text


def test_the_settings_form_offers_the_relays_and_refuses_an_unknown_one(
    relayed: Settings, editor: Editor, session: Session
) -> None:
    evening = make_newsletter(session, slug="evening")
    page = editor.client.get(f"/admin/newsletters/{evening.id}").text
    assert '<option value="" selected>All relays, by weight</option>' in page
    assert '<option value="direct">direct</option>' in page

    refused = editor.post(f"/admin/newsletters/{evening.id}", {**FORM, "relay": "nope"})
    assert refused.status_code == 422
    assert "relay &#39;nope&#39; is not one of the configured relays" in refused.text
    assert relay_of(session, evening.id) == ""

    saved = editor.post(f"/admin/newsletters/{evening.id}", {**FORM, "relay": "bulk"})
    assert saved.status_code == 303
    assert relay_of(session, evening.id) == "bulk"


def test_metrics_have_a_gauge_per_relay(client: TestClient, relayed: Settings) -> None:
    relay_checks.check(relayed, ["direct"])  # nothing listens on 2526: out
    text = client.get("/metrics").text
    assert 'newsletter_relay_up{relay="bulk"} 1.0' in text
    assert 'newsletter_relay_up{relay="direct"} 0.0' in text
    line = next(
        x for x in text.splitlines() if x.startswith('newsletter_relay_out_seconds{relay="direct"}')
    )
    assert 50 < float(line.split()[-1]) <= 60  # its first cool-down: 60 s


def test_the_sending_view_says_which_relay_is_out_and_why(
    relayed: Settings, editor: Editor, session: Session
) -> None:
    relay_checks.check(relayed, ["direct"])  # nothing listens on 2526: out
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 2)
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    session.commit()
    page = editor.client.get(f"/admin/issues/{fx.issue.id}/sending").text
    assert "Relay direct is out until " in page
    assert "health check: 127.0.0.1:2526" in page
    assert "Relay bulk" not in page


# ---------------------------------------------------------------- the CLI


def cli(
    settings: Settings, folder: Path, relays: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_DATABASE_URL"] = settings.database_url  # the test's database, migrated
    env["NEWSLETTER_SMTP_RELAYS"] = relays
    env["COLUMNS"] = "200"  # keep rich from wrapping the lines
    return cli_fork.run(list(args), cwd=folder, env=env)


def test_the_cli_lists_and_checks_relays_and_refuses_an_unknown_newsletter_relay(
    settings: Settings, session: Session, tmp_path: Path
) -> None:
    evening = make_newsletter(session)
    with SMTPSink() as sink:
        relays = json.dumps(
            [
                {"name": "up", "host": sink.host, "port": sink.port, "weight": 2},
                {"name": "down", "host": "127.0.0.1", "port": 9, "weight": 1},
            ]
        )
        refused = cli(
            settings, tmp_path, relays, "newsletters", "edit", evening.slug, "--relay", "nope"
        )
        assert refused.returncode == 1 and "Traceback" not in refused.stderr + refused.stdout
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "relay 'nope' is not one of the configured relays" in lines[0]
        assert relay_of(session, evening.id) == ""
        taken = cli(
            settings, tmp_path, relays, "newsletters", "edit", evening.slug, "--relay", "up"
        )
        assert taken.returncode == 0, taken.stderr
        assert relay_of(session, evening.id) == "up"

        checked = cli(settings, tmp_path, relays, "relays", "check")
        assert checked.returncode == 1  # one relay did not answer
        assert "up: answered" in checked.stdout and "down: 127.0.0.1:9" in checked.stdout
        listed = cli(settings, tmp_path, relays, "relays").stdout
        up_line = next(line for line in listed.splitlines() if " up " in line)
        down_line = next(line for line in listed.splitlines() if " down " in line)
        assert "in service" in up_line and f"127.0.0.1:{sink.port}" in up_line
        assert " out " in down_line and "health check" in down_line
