"""The sending view's waves of a local-time send (issue 16 gap), on SQLite and PostgreSQL: each
wave's due time in its readers' zones ("08:00 Europe/Vilnius"), zones whose clocks agree in one
wave, in the newsletter's zone and in UTC."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session

from newsletter.sending import controls, local_waves
from newsletter.tables import SUB
from tests.integration.test_local_time_send import Clock, _local_send, clock

__all__ = ["clock"]  # fixture


def test_each_wave_shows_its_readers_local_time_the_newsletters_and_utc(
    session: Session, clock: Clock
) -> None:
    # Minsk (+03) is the newsletter's zone; Vilnius and Kyiv move to +03 that same night, so
    # their 08:00 is Minsk's: one wave
    issue_id, readers = _local_send(session)
    for zone, person in zip(
        ("Europe/Vilnius", "Europe/Kyiv"), readers["Europe/Minsk"], strict=True
    ):
        session.execute(update(SUB).where(SUB.c.id == person.id).values(time_zone=zone))
    session.commit()
    waves = controls.status(session, issue_id=issue_id).waves

    shown = local_waves.wave_times(
        session,
        issue_id=issue_id,
        newsletter_zone="Europe/Minsk",
        due_times=[w.due_at for w in waves],
    )

    minsk, warsaw, new_york = shown
    (clock_,) = minsk.local  # no zone of their own: the newsletter's, counted first (2 readers)
    assert (clock_.day, clock_.time, clock_.readers) == ("2026-03-29", "08:00", 4)
    assert clock_.zones == ("Europe/Minsk", "Europe/Kyiv", "Europe/Vilnius")
    assert (minsk.newsletter_time, minsk.utc) == ("08:00", "2026-03-29 05:00 UTC")
    assert [(c.time, c.zones) for c in warsaw.local] == [("08:00", ("Europe/Warsaw",))]
    assert (warsaw.newsletter_time, warsaw.utc) == ("09:00", "2026-03-29 06:00 UTC")
    assert [(c.time, c.zones) for c in new_york.local] == [("08:00", ("America/New_York",))]
    assert (new_york.newsletter_day, new_york.newsletter_time) == ("2026-03-29", "15:00")
    assert new_york.utc == "2026-03-29 12:00 UTC"


def test_a_long_list_of_zones_names_the_first_and_counts_the_rest(
    session: Session, clock: Clock
) -> None:
    issue_id, readers = _local_send(session)
    others = ("Europe/Vilnius", "Europe/Kyiv", "Europe/Riga", "Europe/Tallinn")
    people = readers["Europe/Minsk"] + readers[""]
    for zone, person in zip(others, people, strict=True):
        session.execute(update(SUB).where(SUB.c.id == person.id).values(time_zone=zone))
    session.commit()
    waves = controls.status(session, issue_id=issue_id).waves
    first = local_waves.wave_times(
        session, issue_id=issue_id, newsletter_zone="Europe/Minsk", due_times=[waves[0].due_at]
    )[0]
    (shared,) = first.local
    assert shared.zones == tuple(sorted(others))  # one reader each: by name
    assert (shared.shown, shared.more) == (shared.zones[:3], 1)
