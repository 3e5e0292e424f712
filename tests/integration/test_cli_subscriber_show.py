"""`newsletter subscribers show`: the whole story in rich tables (in process, on both databases;
``main()`` turns the NotFound of an unknown subscriber into one red line, see test_cli)."""

from __future__ import annotations

from sqlmodel import Session
from typer.testing import CliRunner

from newsletter import cli
from newsletter.audience import desk
from newsletter.exceptions import NotFound
from tests.conftest import make_newsletter, make_subscribers


def test_show_prints_the_story_and_refuses_an_unknown_subscriber(session: Session) -> None:
    weekly = make_newsletter(session)
    person = make_subscribers(session, weekly, 1)[0]
    person.name = "Ann [bold]Markup[/bold]"
    session.add(person)
    desk.add_tag(session, person.id or 0, "donor", actor="editor desk@news.example.org")
    session.commit()
    runner = CliRunner()
    env = {"COLUMNS": "200"}
    exported = runner.invoke(cli.app, ["subscribers", "export-data", str(person.id)], env=env)
    assert exported.exit_code == 0, exported.output

    done = runner.invoke(cli.app, ["subscribers", "show", person.email.upper()], env=env)

    assert done.exit_code == 0, done.output
    out = done.output
    assert person.email in out and "Ann [bold]Markup[/bold]" in out  # no markup applied
    for title in ("Subscriptions", "History", "Last deliveries"):
        assert title in out
    assert weekly.slug in out and "active" in out and "donor" in out
    assert "data exported (GDPR)" in out and "cli " in out  # the export, by the CLI's user
    assert "tags changed" in out and "editor desk@news.example.org" in out
    unknown = runner.invoke(cli.app, ["subscribers", "show", "nobody@example.org"], env=env)
    assert unknown.exit_code == 1 and isinstance(unknown.exception, NotFound)
    assert "no subscriber" in str(unknown.exception)
