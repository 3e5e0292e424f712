"""`newsletter autopilot` as a user meets it: the seeded schedule shown, changed, mistakes in one
line (exit 1), one beat run by hand."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_cli import assert_one_line_error, cli, seeded

__all__ = ["seeded"]  # the fixture: a seeded database in a folder of its own


def test_the_autopilot_is_shown_changed_and_run(seeded: Path) -> None:
    shown = cli(seeded, "autopilot", "show", "belarus-weekly")
    assert shown.returncode == 0, shown.stderr
    assert "autopilot off, Fridays at 07:00 (Europe/Warsaw)" in shown.stdout
    assert "library: section 'Diplomacy'" in shown.stdout
    changed = cli(
        seeded,
        "autopilot",
        "set",
        "belarus-weekly",
        "--rule",
        "mon,thu 08:00",
        "--on",
        "--map",
        "diplomacy=World",
        "--per-section",
        "2",
    )
    assert changed.returncode == 0, changed.stderr
    assert "autopilot on, Mondays, Thursdays at 08:00" in changed.stdout
    assert "diplomacy = World" in changed.stdout
    added = cli(seeded, "autopilot", "add-feed", "belarus-weekly", "https://news.example.org/f")
    assert added.returncode == 0 and "source 5: https://news.example.org/f, every 30 min" in (
        added.stdout
    )
    every = cli(seeded, "autopilot", "set-feed", "5", "--fetch-minutes", "90")
    assert every.returncode == 0 and "source 5: every 90 min" in every.stdout
    assert "90 min" in cli(seeded, "autopilot", "show", "belarus-weekly").stdout
    assert cli(seeded, "autopilot", "remove-source", "5").returncode == 0
    ran = cli(seeded, "autopilot", "run")  # the seeds are a year old: nothing new, if due
    assert ran.returncode == 0, ran.stderr


def test_autopilot_mistakes_are_one_line(seeded: Path) -> None:
    bad_day = cli(seeded, "autopilot", "set", "belarus-weekly", "--rule", "funday 08:00")
    assert_one_line_error(bad_day, "'funday' is not a day of the week")
    bad_order = cli(seeded, "autopilot", "set", "belarus-weekly", "--order", "random")
    assert_one_line_error(bad_order, "the order must be one of: newest, priority")
    no_priority = cli(seeded, "autopilot", "set", "belarus-weekly", "--lead", "priority")
    assert_one_line_error(no_priority, "'priority' needs a priority tag")
    assert_one_line_error(
        cli(seeded, "autopilot", "add-feed", "belarus-weekly", "ftp://x.org/f"), "http(s) URL"
    )
    assert_one_line_error(cli(seeded, "autopilot", "add-query", "belarus-weekly"), "needs a tag")
    feed = ["add-feed", "belarus-weekly", "https://news.example.org/f"]
    assert_one_line_error(
        cli(seeded, "autopilot", *feed, "--fetch-minutes", "2"),
        "the fetch interval is between 5 and 1440 minutes (a day), not 2",
    )
    assert_one_line_error(
        cli(seeded, "autopilot", "set-feed", "1", "--fetch-minutes", "hourly"),
        "is a library query: it is not fetched",
    )
    assert_one_line_error(
        cli(seeded, "autopilot", "set", "belarus-weekly", "--catch-up-hours", "200"),
        "the catch-up time (hours) must be between 0 and 144",
    )
    assert_one_line_error(cli(seeded, "autopilot", "show", "nope"), "nope")
