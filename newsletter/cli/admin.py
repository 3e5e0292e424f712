"""``newsletter admin``: admin API tokens and editor accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from newsletter.cli.common import (
    audited,
    console,
    session,
    settings,
)

app = typer.Typer(help="Admin API tokens and editor accounts.", no_args_is_help=True)


Role = Annotated[str, typer.Option(help="writer | editor | audience | admin")]


@app.command("create-token")
def admin_create_token(name: str, role: Role = "admin") -> None:
    """Create an admin API token; it is printed once and only its hash is kept."""
    from newsletter.access import api_tokens

    with session() as s:
        token = api_tokens.create(s, name, role=role)
        audited(s, "token.create", detail=f"{name} ({role})")
    console.print(f"token {name!r} (shown only once, store it now; only its hash is kept):")
    console.print(token, markup=False, highlight=False, soft_wrap=True)


@app.command("revoke-token")
def admin_revoke_token(name: str) -> None:
    """Revoke an admin API token; requests with it get 403 from then on."""
    from newsletter.access import api_tokens

    with session() as s:
        token = api_tokens.revoke(s, name)
        audited(s, "token.revoke", target_id=token.id, target_type="token", detail=token.name)
    console.print(f"token {token.name!r} revoked at {token.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


@app.command("list-tokens")
def admin_list_tokens() -> None:
    """List admin API tokens (names and dates; the tokens themselves are not stored)."""
    from newsletter.access import api_tokens

    def when(value: datetime | None) -> str:
        return f"{value:%Y-%m-%d %H:%M}" if value else "-"

    table = Table("name", "role", "created", "last used", "revoked")
    with session() as s:
        for t in api_tokens.list_tokens(s):
            table.add_row(
                t.name, t.role, when(t.created_at), when(t.last_used_at), when(t.revoked_at)
            )
    console.print(table)


Password = Annotated[
    str,
    typer.Option(
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        envvar="NEWSLETTER_NEW_PASSWORD",
        help="asked for when not given (or read from NEWSLETTER_NEW_PASSWORD)",
    ),
]


@app.command("create-user")
def admin_create_user(
    email: str,
    password: Password,
    name: Annotated[str, typer.Option(help="shown in the editor UI")] = "",
    role: Annotated[
        str | None,
        typer.Option(help="writer | editor | audience | admin (the first account: admin)"),
    ] = None,
) -> None:
    """Create an editor account for the web UI at /admin (password hashed with Argon2id)."""
    from newsletter.access import editors

    with session() as s:
        user = editors.create_user(s, email=email, password=password, name=name, role=role)
        audited(s, "user.create", target_type="user", target_id=user.id, detail=user.role)
    console.print(f"editor {user.email} created; sign in at {settings().base_url}/admin/")


@app.command("set-password")
def admin_set_password(email: str, password: Password) -> None:
    """Give an editor a new password; their open sessions end."""
    from newsletter.access import editors

    with session() as s:
        user = editors.set_password(s, email=email, password=password)
        audited(s, "user.password", target_type="user", target_id=user.id)
    console.print(f"password of {user.email} changed; their sessions were ended")


@app.command("disable-user")
def admin_disable_user(
    email: str, enable: Annotated[bool, typer.Option(help="enable again instead")] = False
) -> None:
    """Stop (or, with --enable, allow again) an editor signing in; open sessions end."""
    from newsletter.access import editors

    with session() as s:
        user = editors.set_disabled(s, email=email, disabled=not enable)
        audited(
            s, "user.enable" if enable else "user.disable", target_type="user", target_id=user.id
        )
    console.print(f"editor {user.email} {'enabled' if enable else 'disabled'}")


@app.command("reset-2fa")
def admin_reset_2fa(email: str) -> None:
    """Turn an editor's two-factor sign-in off (lost phone and recovery codes); they set it up
    again from their account page."""
    from newsletter.access import two_factor

    with session() as s:
        user = two_factor.reset(s, email)
        audited(s, "user.2fa-reset", target_type="user", target_id=user.id)
    console.print(f"two-factor sign-in of {user.email} is off; their recovery codes are void")


@app.command("set-role")
def admin_set_role(
    email: str,
    role: Annotated[str, typer.Argument(help="writer | editor | audience | admin")],
    newsletter: Annotated[
        str | None, typer.Option(help="only for this newsletter (slug or id)")
    ] = None,
) -> None:
    """Change what an editor may do, everywhere or for one newsletter's issues."""
    from newsletter.access import permissions

    with session() as s:
        user = permissions.set_role(s, email=email, role=role, newsletter=newsletter)
        where = f" for {newsletter}" if newsletter else ""
        audited(s, "user.role", target_type="user", target_id=user.id, detail=f"{role}{where}")
    console.print(f"{user.email} is now {role.strip().lower()}{where}")


@app.command("list-users")
def admin_list_users() -> None:
    """List editor accounts."""
    from newsletter.access import editors

    table = Table("email", "name", "role", "created", "last sign-in", "2FA", "disabled")
    with session() as s:
        for u in editors.list_users(s):
            table.add_row(
                u.email,
                u.name,
                u.role,
                f"{u.created_at:%Y-%m-%d %H:%M}",
                f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "-",
                "on" if u.totp_enabled_at else "off",
                f"{u.disabled_at:%Y-%m-%d %H:%M}" if u.disabled_at else "-",
            )
    console.print(table)
