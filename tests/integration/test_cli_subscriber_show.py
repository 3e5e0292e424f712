"""`newsletter subscribers show`: the whole story in tables, through the real entry point."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_cli import assert_one_line_error, cli

SLUG = "belarus-weekly"


def test_show_prints_the_story_and_an_unknown_subscriber_is_one_line(tmp_path: Path) -> None:
    assert cli(tmp_path, "seed").returncode == 0
    added = cli(
        tmp_path,
        "subscribers",
        "add",
        "ann@example.org",
        "--newsletter",
        SLUG,
        "--name",
        "Ann [bold]Markup[/bold]",
    )
    assert added.returncode == 0, added.stderr
    assert cli(tmp_path, "subscribers", "export-data", "ann@example.org").returncode == 0

    done = cli(tmp_path, "subscribers", "show", "ANN@example.org")

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "ann@example.org" in out and "Ann [bold]Markup[/bold]" in out  # no markup applied
    for title in ("Subscriptions", "History", "Last deliveries"):
        assert title in out
    assert SLUG in out and "active" in out
    assert "data exported (GDPR)" in out and "cli " in out  # the export, by the CLI's user
    assert_one_line_error(
        cli(tmp_path, "subscribers", "show", "nobody@example.org"), "no subscriber"
    )
    assert_one_line_error(cli(tmp_path, "subscribers", "show", "424242"), "no subscriber")
