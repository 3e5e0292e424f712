"""docker-compose.yml, Dockerfile and .env.example, checked without a Docker engine.

The YAML parses; every app service runs an entry point that exists (a ``newsletter`` subcommand
with options the CLI accepts, or ``celery -A worker.celery_app`` worker/beat/flower); every
NEWSLETTER_* variable set is a real setting; .env.example lists every setting and nothing else;
no two services publish the same host port; the app services start after ``migrate`` succeeded;
the worker can be scaled.
"""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from newsletter.cli import app as cli_app
from newsletter.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETTINGS = {f"NEWSLETTER_{name.upper()}" for name in Settings.model_fields}
APP_SERVICES = sorted(name for name, svc in SERVICES.items() if "build" in svc)
CELERY_SUBCOMMANDS = {"worker", "beat", "flower"}


def _commands(service: dict[str, Any]) -> list[list[str]]:
    """The argv lists a service runs (``sh -c 'a && b'`` is split into its parts)."""
    command = service.get("command")
    assert command, "an app service must say what it runs"
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if argv[:1] in (["sh"], ["bash"]) and argv[1:2] == ["-c"]:
        parts = re.split(r"\s*(?:&&|;)\s*", argv[2])
        return [shlex.split(p) for p in parts if p.strip()]
    return [argv]


def _check_newsletter(args: list[str]) -> None:
    """Walk the Typer app to the subcommand and let it parse the options (nothing runs).

    Typer ships its own copy of click (``typer._click``), so groups are told apart by their
    ``get_command`` and parse errors by ``format_message``, not by click's classes.
    """
    command: Any = typer.main.get_command(cli_app)
    path = ["newsletter"]
    rest = list(args)
    while hasattr(command, "get_command"):
        assert rest, f"`{' '.join(path)}` needs a subcommand"
        ctx = command.make_context(path[-1], [], resilient_parsing=True)
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"`{' '.join(path)}` has no subcommand {rest[0]!r}"
        path.append(rest.pop(0))
        command = sub
    try:
        command.make_context(path[-1], rest)
    except Exception as exc:
        if not hasattr(exc, "format_message"):
            raise
        pytest.fail(f"`{' '.join(path + rest)}`: {exc.format_message()}")


def test_the_entry_point_check_catches_mistakes() -> None:
    with pytest.raises(AssertionError, match="no subcommand 'upgrad'"):
        _check_newsletter(["db", "upgrad"])
    with pytest.raises(pytest.fail.Exception, match="No such option: --hots"):
        _check_newsletter(["serve", "--hots", "0.0.0.0"])
    with pytest.raises(AssertionError, match="needs a subcommand"):
        _check_newsletter(["db"])
    _check_newsletter(["serve", "--host", "0.0.0.0", "--port", "8000"])


def _check_celery(args: list[str]) -> None:
    assert args[:1] == ["-A"] or args[0].startswith("--app"), "celery needs -A worker.celery_app"
    module = args[1] if args[0] == "-A" else args[0].split("=", 1)[1]
    sub = args[2] if args[0] == "-A" else args[1]
    assert module == "worker.celery_app"
    assert hasattr(importlib.import_module(module), "app")
    assert sub in CELERY_SUBCOMMANDS, f"celery {sub}"
    if sub == "flower":  # a separate package: the image must install it
        assert any(
            d.startswith("flower") for d in PYPROJECT["project"]["optional-dependencies"]["ops"]
        )
        assert "[ops]" in (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_compose_parses_and_has_the_stack() -> None:
    assert {"postgres", "redis", "migrate", "api", "worker", "beat", "mailpit", "flower"} <= set(
        SERVICES
    )
    assert "pgdata" in COMPOSE["volumes"]
    assert any(v.startswith("pgdata:") for v in SERVICES["postgres"]["volumes"])
    assert "--appendonly" in SERVICES["redis"]["command"]
    assert any(v.endswith(":/data") for v in SERVICES["redis"]["volumes"])
    for name in ("postgres", "redis", "api", "worker", "mailpit", "flower"):
        assert "healthcheck" in SERVICES[name], f"{name} has no health check"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_command_runs_an_entry_point_that_exists(service: str) -> None:
    scripts = PYPROJECT["project"]["scripts"]
    for argv in _commands(SERVICES[service]):
        program, args = argv[0], argv[1:]
        if program == "newsletter":
            assert "newsletter" in scripts
            _check_newsletter(args)
        elif program == "celery":
            _check_celery(args)
        else:
            pytest.fail(f"{service} runs {program!r}, not an entry point of the image")


def test_migrate_runs_alembic_upgrade_head_once() -> None:
    assert _commands(SERVICES["migrate"]) == [["newsletter", "db", "upgrade"]]
    assert SERVICES["migrate"].get("restart") == "no"


@pytest.mark.parametrize("service", ["api", "worker", "beat", "flower"])
def test_app_services_wait_for_migrate(service: str) -> None:
    depends = SERVICES[service]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert "migrate" not in SERVICES["migrate"].get("depends_on", {})


def test_worker_scales() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker  # `--scale worker=4` would clash on a fixed host port
    assert "container_name" not in SERVICES["beat"]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_newsletter_variable_is_a_real_setting(service: str) -> None:
    env = SERVICES[service].get("environment", {})
    names = env.keys() if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
    unknown = {n for n in names if n.startswith("NEWSLETTER_")} - SETTINGS
    assert not unknown, f"{service} sets {sorted(unknown)}, which Settings does not have"
    # the whole stack talks to its own services
    assert env["NEWSLETTER_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["NEWSLETTER_BROKER_URL"].startswith("redis://redis:")


def test_interpolated_newsletter_variables_are_settings() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{(NEWSLETTER_[A-Z0-9_]+)", text))
    assert used - SETTINGS == set()


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    listed = set(
        re.findall(
            r"^#?\s*(NEWSLETTER_[A-Z0-9_]+)=",
            (ROOT / ".env.example").read_text(encoding="utf-8"),
            flags=re.MULTILINE,
        )
    )
    assert sorted(SETTINGS - listed) == [], "settings missing from .env.example"
    assert sorted(listed - SETTINGS) == [], ".env.example names unknown settings"


def _host_port(mapping: str | dict[str, Any]) -> str | None:
    if isinstance(mapping, dict):
        published = mapping.get("published")
        return f"{mapping.get('host_ip', '')}:{published}" if published else None
    parts = str(mapping).split("/")[0].split(":")
    if len(parts) == 1:
        return None  # container port only: Docker picks a free host port
    return f"{parts[0] if len(parts) == 3 else ''}:{parts[-2]}"


def test_published_host_ports_do_not_clash() -> None:
    seen: dict[str, str] = {}
    for name, svc in SERVICES.items():
        for mapping in svc.get("ports", []):
            port = _host_port(mapping)
            if port is None:
                continue
            assert port not in seen, f"{name} and {seen[port]} both publish {port}"
            seen[port] = name
    assert {p.split(":")[-1] for p in seen} >= {"8000", "8025", "5555"}


def test_dockerfile_copies_what_exists() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert dockerfile.startswith("#") or "FROM python:3.11" in dockerfile
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
