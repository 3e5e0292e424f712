"""newsletter settings: language, time zone, logo, masthead, footer text, membership CTA,
default sections, requires_review

Until now ``description`` was shown both on the public pages and in every email's footer. It
stays the "about this newsletter" text of the public pages; the new ``footer_text`` ("why you
get this", the email footer) starts as a copy of it, so no reader sees a change after the
upgrade. The membership call-to-action was shown whenever ``membership_url`` was set: it is
switched on for exactly those newsletters, with the text the email used to carry.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 12:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: what the issue email said above its membership button before this revision
OLD_CTA_TEXT = "Independent journalism depends on readers like you."

newsletter = sa.table(
    "newsletter",
    sa.column("description", sa.Text),
    sa.column("footer_text", sa.Text),
    sa.column("membership_url", sa.String),
    sa.column("membership_cta", sa.Boolean),
    sa.column("membership_text", sa.String),
)

COLUMNS = (
    ("language", sa.String(length=35), "en"),
    ("time_zone", sa.String(length=64), "UTC"),
    ("logo_url", sa.String(length=2000), ""),
    ("masthead", sa.String(), ""),
    ("footer_text", sa.Text(), ""),
    ("membership_cta", sa.Boolean(), sa.false()),
    ("membership_text", sa.String(), ""),
    ("membership_button", sa.String(), "Become a member"),
    ("default_sections", sa.JSON(), "[]"),
    ("requires_review", sa.Boolean(), sa.false()),
)


def upgrade() -> None:
    with op.batch_alter_table("newsletter", schema=None) as batch_op:
        for name, type_, default in COLUMNS:
            batch_op.add_column(
                sa.Column(name, type_, nullable=False, server_default=default)
            )
    conn = op.get_bind()
    conn.execute(newsletter.update().values(footer_text=newsletter.c.description))
    conn.execute(
        newsletter.update()
        .where(newsletter.c.membership_url != "")
        .values(membership_cta=True, membership_text=OLD_CTA_TEXT)
    )


def downgrade() -> None:
    # the older schema has one text for both: keep the footer where there was no about text
    op.get_bind().execute(
        newsletter.update()
        .where(newsletter.c.description == "")
        .values(description=newsletter.c.footer_text)
    )
    with op.batch_alter_table("newsletter", schema=None) as batch_op:
        for name, _type, _default in reversed(COLUMNS):
            batch_op.drop_column(name)
