"""The admin API's bearer authentication: ``Authorization: Bearer <token>``.

Missing or unknown tokens raise ``InvalidToken`` (401 with ``WWW-Authenticate: Bearer``), revoked
ones ``RevokedToken`` (403); the app's error handlers turn them into responses. Put
``dependencies=[Depends(require_token)]`` on a router whose routes are all admin-only, or take a
``TokenDep`` argument in a route that wants to know who called.

Authentication is its own short transaction, not the route's: a token's use is recorded (and
``last_used_at`` committed) even when the route then fails and rolls back.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from newsletter import db
from newsletter.access import api_tokens
from newsletter.api.deps import SettingsDep
from newsletter.exceptions import InvalidToken
from newsletter.models import ApiToken

# auto_error=False: we raise our own errors so that every failure has the same JSON body;
# declaring the scheme also gives /docs its "Authorize" button
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="admin token",
    description="An admin API token from `newsletter admin create-token NAME`.",
)


def require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiToken:
    if credentials is None:
        raise InvalidToken("an admin API token is required (Authorization: Bearer <token>)")
    with db.session_scope(settings.database_url) as session:
        return api_tokens.authenticate(session, credentials.credentials)


TokenDep = Annotated[ApiToken, Depends(require_token)]
