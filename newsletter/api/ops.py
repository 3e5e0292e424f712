"""Operations endpoints for load balancers, orchestrators and Prometheus.

=================  ==========================================================================
``GET /healthz``   liveness: 200 ``{"status": "ok"}`` while the process serves requests; it
                   touches nothing else, so a database outage never restarts the web process
``GET /readyz``    readiness: the database answers and its schema is at the migrations' head,
                   and Redis (the shared Redis and the broker, when they are Redis) answers
                   ``PING``; 200, or 503 naming the check that failed ("schema not at head:
                   run `newsletter db upgrade`" for a database behind the code). Redis that
                   is not configured is ``"not used"``
``GET /metrics``   Prometheus text format (``newsletter.sending.metrics``): the ledger's figures,
                   computed at scrape time, so they cover every worker process
=================  ==========================================================================

``/metrics`` shows aggregate counts only (no address, no subject). It is open unless
``NEWSLETTER_METRICS_TOKEN`` is set; then it needs ``Authorization: Bearer <that token>``.
"""

from __future__ import annotations

import hmac
from typing import Any

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from newsletter import db
from newsletter.api.deps import SettingsDep
from newsletter.api.errors import HTML_ERROR, page_errors
from newsletter.api.inputs import StrictRoute
from newsletter.audience.signup_guard import BotsCollector
from newsletter.config import Settings
from newsletter.exceptions import InvalidToken
from newsletter.sending.metrics import registry_for

router = APIRouter(
    tags=["operations"], route_class=StrictRoute, responses=page_errors(database=False)
)

_NO_STORE = {"Cache-Control": "no-store"}


@router.get("/healthz", summary="Liveness: the process is up")
def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


def _redis_urls(settings: Settings) -> list[str]:
    urls = [settings.shared_redis_url, settings.broker_url]
    redis_urls = [u for u in urls if u and u.startswith(("redis://", "rediss://"))]
    return list(dict.fromkeys(redis_urls))


def _check_database(settings: Settings) -> str:
    """The database's check: "ok" when it answers and its schema is the one this code expects."""
    try:
        at_head = db.schema_at_head(settings.database_url)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        return f"error: {type(exc).__name__}: {str(reason).splitlines()[0]}"
    return "ok" if at_head else db.SCHEMA_BEHIND


def _check_redis(settings: Settings) -> str:
    urls = _redis_urls(settings)
    if not urls:
        return "not used"
    for url in urls:
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            with client:
                client.ping()
        except redis.RedisError as exc:
            return f"error: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    return "ok"


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


@router.get(
    "/readyz",
    summary="Readiness: database (at the schema's head) and Redis reachable",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a check failed; it says which"}},
)
def readyz(settings: SettingsDep) -> JSONResponse:
    checks = {"database": _check_database(settings), "redis": _check_redis(settings)}
    ready = all(v in ("ok", "not used") for v in checks.values())
    body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503, headers=_NO_STORE)


def _registry(request: Request) -> CollectorRegistry:
    registry: CollectorRegistry | None = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = request.app.state.metrics_registry = registry_for(request.app.state.settings)
        registry.register(BotsCollector(request.app.state.bot_counter))
    return registry


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}},
        401: {"content": HTML_ERROR, "description": "the metrics token is required"},
        **page_errors(),
    },
)
def metrics(request: Request, settings: SettingsDep) -> Response:
    if settings.metrics_token:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {settings.metrics_token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise InvalidToken("GET /metrics needs the metrics token")
    body = generate_latest(_registry(request))
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers=_NO_STORE)
