"""Two-factor sign-in of editor accounts: enrolment with a QR code, the second step of sign-in,
codes used once, recovery codes, the site-wide requirement, turning it off, the operator's reset."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from newsletter import cli, db
from newsletter.access import editors, two_factor
from newsletter.api import create_app
from newsletter.api.admin.auth import LOGIN_PER_ADDRESS, SESSION_COOKIE
from newsletter.config import Settings
from newsletter.models import EditorRecoveryCode, EditorSession, EditorUser
from tests.integration.admin_support import (
    EDITOR_EMAIL,
    EDITOR_PASSWORD,
    Editor,
    csrf_of,
    make_editor,
)

SECRET = re.compile(r'<code class="secret">([A-Z2-7]+)</code>')
CODE = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")


def enrol(editor: Editor) -> tuple[str, list[str]]:
    """Turn 2FA on through the account page; returns (secret, recovery codes)."""
    assert editor.post("/admin/account/2fa/begin").status_code == 303
    page = editor.client.get("/admin/account")
    assert 'src="data:image/svg+xml' in page.text  # the QR code
    found = SECRET.search(page.text)
    assert found, "the key is not shown for typing by hand"
    secret = found.group(1)
    done = editor.post("/admin/account/2fa/confirm", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200, done.text
    return secret, CODE.findall(done.text)


def next_code(secret: str) -> str:
    """The code of the next 30-second step: accepted (one step of clock drift is allowed) and
    later than the step the enrolment just used up."""
    return pyotp.TOTP(secret).at(int(time.time()) + 30)


def password_step(client: TestClient) -> TestClient:
    form = client.get("/admin/login")
    answer = client.post(
        "/admin/login",
        data={"email": EDITOR_EMAIL, "password": EDITOR_PASSWORD, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 200, answer.status_code  # the code form, not a redirect
    assert "Two-factor sign-in" in answer.text
    client.last_form = answer.text  # type: ignore[attr-defined]
    return client


def code_step(client: TestClient, code: str) -> int:
    token = csrf_of(client.last_form)  # type: ignore[attr-defined]
    answer = client.post(
        "/admin/login/code", data={"code": code, "csrf_token": token}, follow_redirects=False
    )
    if answer.status_code != 303:
        client.last_form = answer.text  # type: ignore[attr-defined]
    return answer.status_code


def new_client(settings: Settings) -> TestClient:
    return TestClient(
        create_app(settings, dispatch=lambda _id: None), base_url="https://testserver"
    )


def user(settings: Settings) -> EditorUser:
    with db.session_scope(settings.database_url) as s:
        found = s.exec(select(EditorUser)).one()
        s.expunge(found)
        return found


def test_enrolment_turns_it_on_with_ten_recovery_codes(editor: Editor, settings: Settings) -> None:
    before = editor.client.get("/admin/account")
    assert "Set up two-factor sign-in" in before.text
    secret, codes = enrol(editor)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert user(settings).totp_enabled_at is not None
    assert "On since" in editor.client.get("/admin/account").text
    # the secret is kept encrypted: a copy of the database alone does not hold it
    assert secret not in (user(settings).totp_secret or "")


def test_a_wrong_code_does_not_turn_it_on(editor: Editor, settings: Settings) -> None:
    editor.post("/admin/account/2fa/begin")
    secret = SECRET.search(editor.client.get("/admin/account").text).group(1)  # type: ignore[union-attr]
    wrong = f"{(int(pyotp.TOTP(secret).now()) + 1) % 1_000_000:06d}"
    answer = editor.post("/admin/account/2fa/confirm", {"code": wrong})
    assert answer.status_code == 303  # back to the page with the reason
    assert "does not match" in editor.client.get("/admin/account").text
    assert user(settings).totp_enabled_at is None


def test_a_password_alone_no_longer_signs_in(editor: Editor, settings: Settings) -> None:
    secret, _ = enrol(editor)
    with new_client(settings) as client:
        password_step(client)
        assert SESSION_COOKIE not in client.cookies
        assert client.get("/admin/", follow_redirects=False).status_code == 303  # to sign-in
        assert code_step(client, next_code(secret)) == 303
        assert client.get("/admin/", follow_redirects=False).status_code == 200


def test_a_code_signs_in_once(editor: Editor, settings: Settings) -> None:
    secret, _ = enrol(editor)
    code = next_code(secret)  # not the one enrolment used up
    with new_client(settings) as first:
        password_step(first)
        assert code_step(first, code) == 303
    with new_client(settings) as second:  # the same code read over a shoulder, or replayed
        password_step(second)
        assert code_step(second, code) == 401
        assert SESSION_COOKIE not in second.cookies


def test_a_recovery_code_works_once(editor: Editor, settings: Settings) -> None:
    _, codes = enrol(editor)
    with new_client(settings) as client:
        password_step(client)
        assert code_step(client, codes[0].upper()) == 303  # case and the hyphen do not matter
    with new_client(settings) as client:
        password_step(client)
        assert code_step(client, codes[0]) == 401
        assert code_step(client, codes[1].replace("-", "")) == 303
    with db.session_scope(settings.database_url) as s:
        used = s.exec(select(EditorRecoveryCode).where(EditorRecoveryCode.used_at != None)).all()  # noqa: E711
        assert len(used) == 2


def test_the_code_step_needs_the_password_step_first(editor: Editor, settings: Settings) -> None:
    secret, _ = enrol(editor)
    with new_client(settings) as client:
        form = client.get("/admin/login").text
        client.last_form = form  # type: ignore[attr-defined]
        assert code_step(client, pyotp.TOTP(secret).now()) == 401
        assert "took too long" in client.last_form  # type: ignore[attr-defined]
    with db.session_scope(settings.database_url) as s:
        assert len(s.exec(select(EditorSession)).all()) == 1  # only the enrolling editor's


def test_wrong_codes_count_against_the_sign_in_limit(editor: Editor, settings: Settings) -> None:
    secret, _ = enrol(editor)
    with new_client(settings) as client:
        password_step(client)
        answers = [code_step(client, "000000") for _ in range(LOGIN_PER_ADDRESS)]
        assert answers == [401] * LOGIN_PER_ADDRESS
        assert code_step(client, next_code(secret)) == 429  # the right one, too late


def test_by_default_admins_and_editors_need_it_and_writers_do_not() -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert [defaults.two_factor_required(r) for r in ("admin", "editor", "writer", "audience")] == [
        True,
        True,
        False,
        False,
    ]


def test_the_site_can_require_it(settings: Settings, session: Session) -> None:
    required = settings.model_copy(update={"two_factor_roles": "admin, editor"})
    make_editor(required)
    with new_client(required) as client:
        form = client.get("/admin/login")
        client.post(
            "/admin/login",
            data={
                "email": EDITOR_EMAIL,
                "password": EDITOR_PASSWORD,
                "csrf_token": csrf_of(form.text),
            },
        )
        away = client.get("/admin/articles", follow_redirects=False)
        assert (away.status_code, away.headers["location"]) == (303, "/admin/account")
        assert "requires two-factor" in client.get("/admin/account").text
        editor = Editor(client, csrf_of(client.get("/admin/account").text))
        enrol(editor)
        assert client.get("/admin/articles", follow_redirects=False).status_code == 200


def test_turning_it_off_takes_the_password_and_a_code(editor: Editor, settings: Settings) -> None:
    secret, _ = enrol(editor)
    code = next_code(secret)
    refused = editor.post(
        "/admin/account/2fa/disable", {"password": "not my password at all", "code": code}
    )
    assert refused.status_code == 303 and user(settings).totp_enabled_at is not None
    done = editor.post("/admin/account/2fa/disable", {"password": EDITOR_PASSWORD, "code": code})
    assert done.status_code == 303
    assert user(settings).totp_enabled_at is None
    with db.session_scope(settings.database_url) as s:
        assert s.exec(select(EditorRecoveryCode)).all() == []


def test_an_operator_can_reset_it(
    editor: Editor, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    enrol(editor)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", settings.secret_key)
    result = CliRunner().invoke(cli.app, ["admin", "reset-2fa", EDITOR_EMAIL])
    assert result.exit_code == 0, result.output
    assert "is off" in result.output
    assert user(settings).totp_enabled_at is None
    with new_client(settings) as client:  # the password alone signs in again
        form = client.get("/admin/login")
        answer = client.post(
            "/admin/login",
            data={
                "email": EDITOR_EMAIL,
                "password": EDITOR_PASSWORD,
                "csrf_token": csrf_of(form.text),
            },
            follow_redirects=False,
        )
        assert answer.status_code == 303


def test_a_changed_secret_key_says_what_to_do(editor: Editor, settings: Settings) -> None:
    enrol(editor)
    other = settings.model_copy(update={"secret_key": "another key " * 4})
    with db.session_scope(other.database_url) as s:
        found = editors.get_user(s, EDITOR_EMAIL)
        with pytest.raises(two_factor.InvalidState, match="reset-2fa"):
            two_factor.verify(s, found, "123456", secret_key=other.secret_key)
