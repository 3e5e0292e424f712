"""An issue's editions by language (issue 16, part 4): the translated text and the frozen email.

The default edition is the issue itself (its subject, preheader, intro; the articles' own
headlines and blurbs); an ``Edition`` row is another language's text, each field empty where the
editor has not translated it yet (``edition_render``: QA blocks, or the default's text is used,
per the newsletter's ``missing_translation``), with its sections' titles. ``EditionItem``
overrides one story's headline, blurb and image alt text (the article's links stay).
``RenderedEdition`` is an edition's frozen email, compiled once at the start of a send like
``RenderedIssue``, which stays the default edition's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["Edition", "EditionItem", "RenderedEdition"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Edition(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("issue_id", "language"),)

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", index=True, ondelete="CASCADE")
    language: str = Field(sa_type=String(35))  # BCP 47, as Subscriber.language
    subject: str = Field(default="", sa_type=Text)  # "": not translated yet
    preheader: str = Field(default="", sa_type=Text)
    intro_md: str = Field(default="", sa_type=Text)
    title: str = Field(default="", sa_type=Text)
    #: section id (as text) -> the section's title in this edition
    section_titles: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow)


class EditionItem(SQLModel, table=True):
    __tablename__ = "edition_item"

    edition_id: int = Field(foreign_key="edition.id", primary_key=True, ondelete="CASCADE")
    item_id: int = Field(foreign_key="issueitem.id", primary_key=True, ondelete="CASCADE")
    headline: str = Field(default="", sa_type=Text)
    blurb: str = Field(default="", sa_type=Text)
    image_alt: str = Field(default="", sa_type=Text)  # the picture described in this language


class RenderedEdition(SQLModel, table=True):
    __tablename__ = "rendered_edition"

    issue_id: int = Field(foreign_key="issue.id", primary_key=True, ondelete="CASCADE")
    language: str = Field(primary_key=True, sa_type=String(35))
    subject: str
    preheader: str = ""
    html: str = Field(sa_type=Text)
    text: str = Field(sa_type=Text)
    compiled_at: datetime = Field(default_factory=utcnow)
